//! The access log, off the request's path: one line per request, with its request id,
//! written by a thread of its own within [`DRAIN_EVERY`] or so.
//!
//! - To a writer (`gp serve`'s log, [`AccessWriter`]): the request formats its line into its
//!   own thread's buffer, numbered from one counter; the log's thread takes every buffer each
//!   [`DRAIN_EVERY`], puts the lines in number order and writes them in one go. A request
//!   pays for formatting its line, one uncontended lock and one counter increment: no queue
//!   shared with another thread, and nothing it holds is dropped on another thread. (Through a
//!   queue, as before, the log cost 3.5 % of a fast plugin's request; formatting in the
//!   request's buffer without numbers put later requests' lines ahead of earlier ones.)
//! - As `tracing` events (an application's subscriber): the request hands its facts to a
//!   bounded queue, and the log's thread makes the events.
//!
//! If the log's thread falls behind by more than [`QUEUE`] lines (a thread's buffer, or the
//! queue), lines are dropped, counted, and the count logged at most once a second, rather
//! than slowing every request down.
//!
//! Why the order holds: a line's number is taken under its buffer's lock. Each round the
//! log's thread reads the counter (`next`) before it takes any buffer, writes the lines
//! numbered below it, and keeps the rest for the next round. A line numbered below `next`
//! took its number before the counter was read, so it is in its buffer before that buffer's
//! lock is taken next: no line written later can number below one written earlier.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::util::lock;

use axum::response::Response;

use super::id::RequestId;
use super::response::Answer;
use super::Shared;
use crate::http::routes::RouteEntry;

/// Where a server writes its access lines instead of `tracing` events, and the text each line
/// starts with.
#[derive(Clone)]
pub(crate) struct AccessWriter {
    pub(crate) out: Arc<std::sync::Mutex<dyn std::io::Write + Send>>,
    pub(crate) prefix: Arc<str>,
}

impl std::fmt::Debug for AccessWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessWriter")
    }
}

/// A request's path as the access log keeps it: inline unless it is long.
pub(crate) type Path = smallvec::SmallVec<[u8; 48]>;

/// How many lines may wait for the writer.
const QUEUE: usize = 16384;

/// One request, as the access log says it.
pub(crate) struct Line {
    pub(super) method: axum::http::Method,
    /// The request's path, copied (cheaper than sharing the request's URI: a short path is a
    /// copy, where the URI's clone and drop are two atomic operations and four calls).
    pub(super) path: Path,
    pub(super) status: u16,
    /// The route the request reached, if any: its plugin and label.
    pub(super) route: Option<Arc<RouteEntry>>,
    pub(super) request_id: RequestId,
    pub(super) micros: u64,
}

/// What the end of a request needs from its start: its id, when it arrived, and its method
/// and path if requests are logged.
#[derive(Clone)]
pub(super) struct Asked {
    pub(super) id: RequestId,
    pub(super) started: Instant,
    pub(super) logged: Option<(axum::http::Method, Path)>,
}

impl Asked {
    /// The response for `answer`, with the request's id, counted and logged (unless it was
    /// answered already: see `call::run_here`).
    pub(super) fn finish(self, shared: &Shared, answer: Answer) -> Response {
        let Answer {
            mut response,
            route,
            sent,
        } = answer;
        if sent {
            return response;
        }
        response
            .headers_mut()
            .insert(super::id::X_REQUEST_ID, self.id.header());
        let status = response.status().as_u16();
        let elapsed = self.started.elapsed();
        match &route {
            Some(entry) => shared.metrics.observe_route(
                &entry.plugin,
                &entry.label,
                &entry.stats,
                status,
                elapsed,
            ),
            None => shared.metrics.observe_unrouted(status, elapsed),
        }
        if let (Some(log), Some((method, path))) = (&shared.access, self.logged) {
            log.log(Line {
                method,
                path,
                status,
                route,
                request_id: self.id,
                micros: elapsed.as_micros() as u64,
            });
        }
        response
    }
}

/// Where a server's access lines go: a writer, through per-thread buffers, or `tracing`,
/// through a queue.
pub(crate) struct AccessLog {
    sink: Sink,
    dropped: Arc<AtomicU64>,
    /// The log's thread, woken at once when the log is dropped.
    thread: Option<std::thread::Thread>,
}

enum Sink {
    Text(Arc<Buffers>),
    Events(SyncSender<Line>),
}

/// Every thread's buffer of formatted lines, for one log.
struct Buffers {
    prefix: Arc<str>,
    /// The next line's number.
    next: AtomicU64,
    all: Mutex<Vec<Arc<Mutex<Buffer>>>>,
    /// The log was dropped: write what is left, then end.
    closed: AtomicBool,
}

/// One thread's lines: their text, and each one's number and end in it.
#[derive(Default)]
struct Buffer {
    text: Vec<u8>,
    ends: Vec<(u64, usize)>,
}

/// A thread's buffer in one log.
type Mine = (Weak<Buffers>, Arc<Mutex<Buffer>>);

thread_local! {
    /// This thread's buffer in each log it has written to (usually one).
    static MINE: RefCell<Vec<Mine>> = const { RefCell::new(Vec::new()) };
}

impl AccessLog {
    /// Starts the log's thread, writing to `writer` if given, else as `tracing` events; it
    /// ends when the log is dropped, after writing what is left.
    pub(super) fn start(writer: Option<AccessWriter>) -> AccessLog {
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        let (sink, spawned) = match writer {
            Some(writer) => {
                let buffers = Arc::new(Buffers {
                    prefix: Arc::clone(&writer.prefix),
                    next: AtomicU64::new(0),
                    all: Mutex::default(),
                    closed: AtomicBool::new(false),
                });
                let taken = Arc::clone(&buffers);
                let spawned = std::thread::Builder::new()
                    .name("gp-access-log".into())
                    .spawn(move || write_text(&taken, &writer, &counted));
                (Sink::Text(buffers), spawned)
            }
            None => {
                let (lines, queued) = sync_channel(QUEUE);
                let spawned = std::thread::Builder::new()
                    .name("gp-access-log".into())
                    .spawn(move || write_events(queued, &counted));
                (Sink::Events(lines), spawned)
            }
        };
        let thread = match spawned {
            Ok(handle) => Some(handle.thread().clone()),
            Err(error) => {
                tracing::warn!(target: "gp::http", "no access log: its thread did not start: {error}");
                None
            }
        };
        AccessLog {
            sink,
            dropped,
            thread,
        }
    }

    /// Whether a line would be written at all: always to a writer; as an event, if the
    /// subscriber wants `gp::access` at INFO.
    pub(super) fn enabled(&self) -> bool {
        matches!(self.sink, Sink::Text(_))
            || tracing::enabled!(target: "gp::access", tracing::Level::INFO)
    }

    /// Logs `line`; counts it as dropped if the log's thread is that far behind.
    pub(super) fn log(&self, line: Line) {
        let kept = match &self.sink {
            Sink::Text(buffers) => buffers.push(&line),
            Sink::Events(lines) => !matches!(
                lines.try_send(line),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_))
            ),
        };
        if !kept {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        if let Sink::Text(buffers) = &self.sink {
            buffers.closed.store(true, Ordering::SeqCst);
        }
        if let Some(thread) = &self.thread {
            thread.unpark();
        }
    }
}

impl Buffers {
    /// Formats `line` into this thread's buffer (made and registered on its first line),
    /// numbered; false if the buffer is full.
    fn push(self: &Arc<Self>, line: &Line) -> bool {
        MINE.with(|mine| {
            let mut mine = mine.borrow_mut();
            let found = mine
                .iter()
                .position(|(log, _)| std::ptr::eq(log.as_ptr(), Arc::as_ptr(self)));
            let at = found.unwrap_or_else(|| {
                // A log this thread wrote to before is gone: forget its buffer.
                mine.retain(|(log, _)| log.strong_count() > 0);
                let buffer = Arc::new(Mutex::new(Buffer::default()));
                lock(&self.all).push(Arc::clone(&buffer));
                mine.push((Arc::downgrade(self), buffer));
                mine.len() - 1
            });
            let mut buffer = lock(&mine[at].1);
            if buffer.ends.len() >= QUEUE {
                return false;
            }
            let number = self.next.fetch_add(1, Ordering::SeqCst);
            line.push_to(&self.prefix, &mut buffer.text);
            let end = buffer.text.len();
            buffer.ends.push((number, end));
            true
        })
    }
}

/// How often the log's thread takes what is queued: it is never woken per line (on a busy
/// server a wake-up per request would cost more than the line).
const DRAIN_EVERY: Duration = Duration::from_millis(20);

impl Line {
    fn plugin_and_label(&self) -> (&str, &str) {
        self.route
            .as_deref()
            .map_or(("", ""), |r| (r.plugin.as_str(), &*r.label))
    }
}

impl Line {
    /// Appends the line and its newline to `out`, with no formatting machinery (which cost
    /// as much as the rest of writing it), in as few copies as its parts allow: the method
    /// with the text around it, and the route's plugin and label, are one piece each.
    fn push_to(&self, prefix: &str, out: &mut Vec<u8>) {
        let path = self.path.as_slice();
        let id = self.request_id.as_bytes();
        let tail = self
            .route
            .as_deref()
            .map_or(b" plugin= label= request_id=".as_slice(), |route| {
                route.log_tail.as_bytes()
            });
        out.reserve(prefix.len() + 32 + path.len() + 11 + tail.len() + id.len() + 29);
        out.extend_from_slice(prefix.as_bytes());
        match method_field(&self.method) {
            Some(field) => out.extend_from_slice(field),
            None => {
                out.extend_from_slice(b"method=");
                out.extend_from_slice(self.method.as_str().as_bytes());
                out.extend_from_slice(b" path=");
            }
        }
        out.extend_from_slice(path);
        out.extend_from_slice(&status_field(self.status));
        out.extend_from_slice(tail);
        out.extend_from_slice(id);
        out.extend_from_slice(b" micros=");
        out.extend_from_slice(itoa::Buffer::new().format(self.micros).as_bytes());
        out.push(b'\n');
    }
}

/// `method=… path=` for the methods plugins declare routes for.
fn method_field(method: &axum::http::Method) -> Option<&'static [u8]> {
    use axum::http::Method;
    Some(match *method {
        Method::GET => b"method=GET path=",
        Method::POST => b"method=POST path=",
        Method::PUT => b"method=PUT path=",
        Method::DELETE => b"method=DELETE path=",
        Method::PATCH => b"method=PATCH path=",
        Method::HEAD => b"method=HEAD path=",
        Method::OPTIONS => b"method=OPTIONS path=",
        _ => return None,
    })
}

/// ` status=NNN`: an HTTP status is three digits (100 to 999).
fn status_field(status: u16) -> [u8; 11] {
    let mut field = *b" status=000";
    let digit = |n: u16| b'0' + (n % 10) as u8;
    field[8] = digit(status / 100);
    field[9] = digit(status / 10);
    field[10] = digit(status);
    field
}

/// The log's thread for a writer: every [`DRAIN_EVERY`] (or at once when the log is
/// dropped), takes every thread's lines, writes those numbered below the counter it read first
/// in number order, and keeps the rest for the next round (see the module documentation).
fn write_text(buffers: &Buffers, writer: &AccessWriter, dropped: &AtomicU64) {
    let mut said = Instant::now();
    // Each buffer's lines as taken, swapped back in empty (keeping their room).
    let mut taken: Vec<Buffer> = Vec::new();
    let mut kept = Buffer::default();
    let mut batch = Vec::new();
    loop {
        let closed = buffers.closed.load(Ordering::SeqCst);
        let below = if closed {
            u64::MAX
        } else {
            buffers.next.load(Ordering::SeqCst)
        };
        let all: Vec<Arc<Mutex<Buffer>>> = {
            let mut all = lock(&buffers.all);
            // A thread that ended dropped its hold on its buffer: forget it once empty.
            all.retain(|buffer| Arc::strong_count(buffer) > 1 || !lock(buffer).ends.is_empty());
            all.clone()
        };
        taken.resize_with(all.len(), Buffer::default);
        for (buffer, spare) in all.iter().zip(taken.iter_mut()) {
            std::mem::swap(&mut *lock(buffer), spare);
        }
        round(below, &mut taken, &mut kept, &mut batch);
        if !batch.is_empty() {
            let mut out = lock(&writer.out);
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
        }
        if closed {
            return;
        }
        said = say_dropped(said, dropped);
        std::thread::park_timeout(DRAIN_EVERY);
    }
}

/// One round of [`write_text`]: appends to `batch`, in number order, the lines of `taken`
/// (emptied) and `kept` numbered below `below`; keeps the others in `kept`, in order too.
///
/// Each buffer's lines are in number order already (a thread numbers its lines as it adds
/// them), so the round merges them: the next line is always the lowest of the buffers'
/// first lines not yet taken.
fn round(below: u64, taken: &mut [Buffer], kept: &mut Buffer, batch: &mut Vec<u8>) {
    let mut later = Buffer::default();
    {
        let sources: Vec<&Buffer> = taken.iter().chain(std::iter::once(&*kept)).collect();
        // Per buffer: its next line, and where that line starts.
        let mut next = vec![(0usize, 0usize); sources.len()];
        loop {
            let lowest = sources
                .iter()
                .zip(&next)
                .enumerate()
                .filter_map(|(source, (buffer, &(line, _)))| {
                    buffer.ends.get(line).map(|&(number, _)| (number, source))
                })
                .min();
            let Some((number, source)) = lowest else {
                break;
            };
            let (line, start) = next[source];
            let end = sources[source].ends[line].1;
            let text = &sources[source].text[start..end];
            if number < below {
                batch.extend_from_slice(text);
            } else {
                later.text.extend_from_slice(text);
                later.ends.push((number, later.text.len()));
            }
            next[source] = (line + 1, end);
        }
    }
    *kept = later;
    for buffer in taken {
        buffer.text.clear();
        buffer.ends.clear();
    }
}

/// Logs how many lines were dropped since it last did, at most once a second.
fn say_dropped(said: Instant, dropped: &AtomicU64) -> Instant {
    if said.elapsed() < Duration::from_secs(1) {
        return said;
    }
    let lost = dropped.swap(0, Ordering::Relaxed);
    if lost > 0 {
        tracing::warn!(target: "gp::access", lost, "access log lines dropped: the log's writer fell behind");
    }
    Instant::now()
}

/// The log's thread for `tracing` events: every [`DRAIN_EVERY`], an event for each queued
/// line; ends when the log is dropped, after the last.
fn write_events(queued: Receiver<Line>, dropped: &AtomicU64) {
    let mut said = Instant::now();
    loop {
        let ended = loop {
            match queued.try_recv() {
                Ok(line) => {
                    let (plugin, label) = line.plugin_and_label();
                    // Displayed, not debug-quoted: none of these can hold a space or a
                    // control character (a path is URI characters; names, labels and ids
                    // are checked), and escaping each string was most of a line's cost.
                    tracing::info!(target: "gp::access", method = %line.method, path = %String::from_utf8_lossy(&line.path), status = line.status, plugin = %plugin, label = %label, request_id = %line.request_id, micros = line.micros, "request");
                }
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if ended {
            return;
        }
        said = say_dropped(said, dropped);
        std::thread::park_timeout(DRAIN_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::{round, Buffer, Line, Path};
    use crate::http::server::id::RequestId;
    use axum::http::{HeaderValue, Method};

    #[test]
    fn a_line_reads_as_the_tracing_event_it_stands_for() {
        let line = |method: Method, status: u16| Line {
            method,
            path: Path::from_slice(b"/items/7"),
            status,
            route: None,
            request_id: RequestId::Given(HeaderValue::from_static("req-1")),
            micros: 42,
        };
        let mut out = Vec::new();
        line(Method::GET, 404).push_to("P ", &mut out);
        line(Method::from_bytes(b"PURGE").unwrap(), 200).push_to("P ", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "P method=GET path=/items/7 status=404 plugin= label= request_id=req-1 micros=42\n\
             P method=PURGE path=/items/7 status=200 plugin= label= request_id=req-1 micros=42\n"
        );
    }

    fn buffer(lines: &[u64]) -> Buffer {
        let mut buffer = Buffer::default();
        for n in lines {
            buffer.text.extend_from_slice(format!("{n}\n").as_bytes());
            buffer.ends.push((*n, buffer.text.len()));
        }
        buffer
    }

    #[test]
    fn a_round_writes_lines_in_number_order_up_to_the_counter_and_keeps_the_rest() {
        // Two threads' buffers and a line kept from the last round; the counter read 5 before
        // the buffers were taken, so 5 and 6 (numbered since) wait for the next round.
        let mut taken = vec![buffer(&[0, 3, 6]), buffer(&[1, 2, 5])];
        let mut kept = buffer(&[4]);
        let mut batch = Vec::new();
        round(5, &mut taken, &mut kept, &mut batch);
        assert_eq!(batch, b"0\n1\n2\n3\n4\n");
        assert_eq!(kept.text, b"5\n6\n");
        assert_eq!(kept.ends, [(5, 2), (6, 4)]);
        assert!(taken.iter().all(|b| b.text.is_empty() && b.ends.is_empty()));
        // Next round: 7 arrived in the first buffer.
        taken[0] = buffer(&[7]);
        batch.clear();
        round(8, &mut taken, &mut kept, &mut batch);
        assert_eq!(batch, b"5\n6\n7\n");
        assert!(kept.ends.is_empty());
    }
}
