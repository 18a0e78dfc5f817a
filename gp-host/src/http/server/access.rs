//! The access log, off the request's path: one line per request, with its request id, written
//! by a thread of its own every [`DRAIN_EVERY`] or so. Writing a line in the request (a
//! `tracing` event formatted there) cost about 12 % of a fast plugin's throughput.
//!
//! - To a writer (`gp serve`'s log): each request appends its line, formatted with `itoa`, to a
//!   buffer of its own thread's (one uncontended lock); the writer thread swaps the buffers
//!   out and writes them in one go. No queue, no copy of the request's facts to drop on
//!   another thread: the channel and those drops were two thirds of what a line cost.
//! - As `tracing` events (an application's own subscriber): a request hands its facts to a
//!   bounded queue ([`QUEUE`]), and the thread makes each an event.
//!
//! When the writer falls behind (a buffer past [`BUFFERED`] bytes, or the queue full), lines
//! are dropped, counted, and the count logged at most once a second, rather than slowing every
//! request down.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::id::RequestId;
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

/// How many lines may wait for the writer.
const QUEUE: usize = 16384;

/// One request, as the access log says it.
pub(crate) struct Line {
    pub(super) method: axum::http::Method,
    /// The request's URI, shared with the request (its path is logged).
    pub(super) uri: axum::http::Uri,
    pub(super) status: u16,
    /// The route the request reached, if any: its plugin and label.
    pub(super) route: Option<Arc<RouteEntry>>,
    pub(super) request_id: RequestId,
    pub(super) micros: u64,
}

/// How many bytes of lines a thread's buffer holds at most before lines are dropped.
const BUFFERED: usize = 4 << 20;

/// The lines of each thread that logs, for the writer thread to take.
struct Buffers {
    /// Which log they belong to (a process may run several servers).
    log: u64,
    all: Mutex<Vec<Arc<Mutex<String>>>>,
    prefix: Arc<str>,
    /// Set when the log is dropped: the writer takes what is left and ends.
    closed: AtomicBool,
}

thread_local! {
    /// This thread's buffer in each log it wrote to.
    static MINE: RefCell<Vec<(u64, Arc<Mutex<String>>)>> = const { RefCell::new(Vec::new()) };
}

/// The access log: lines to the writer thread.
pub(crate) struct AccessLog {
    /// To a writer: the threads' buffers.
    buffers: Option<Arc<Buffers>>,
    /// As `tracing` events: the queue.
    lines: Option<SyncSender<Line>>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Starts the writer thread, writing to `writer` if given, else as `tracing` events; it
    /// ends when the log is dropped, after writing what is queued.
    pub(super) fn start(writer: Option<AccessWriter>) -> AccessLog {
        static LOGS: AtomicU64 = AtomicU64::new(0);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        let (buffers, lines, spawned) = match writer {
            Some(writer) => {
                let buffers = Arc::new(Buffers {
                    log: LOGS.fetch_add(1, Ordering::Relaxed),
                    all: Mutex::default(),
                    prefix: Arc::clone(&writer.prefix),
                    closed: AtomicBool::new(false),
                });
                let taken = Arc::clone(&buffers);
                let spawned = std::thread::Builder::new()
                    .name("gp-access-log".into())
                    .spawn(move || write_buffers(&taken, &writer, &counted));
                (Some(buffers), None, spawned)
            }
            None => {
                let (lines, queued) = sync_channel(QUEUE);
                let spawned = std::thread::Builder::new()
                    .name("gp-access-log".into())
                    .spawn(move || write_events(queued, &counted));
                (None, Some(lines), spawned)
            }
        };
        if let Err(error) = spawned {
            tracing::warn!(target: "gp::http", "no access log: its thread did not start: {error}");
        }
        AccessLog {
            buffers,
            lines,
            dropped,
        }
    }

    /// Whether a line would be written at all: always to a writer; as an event, if the
    /// subscriber wants `gp::access` at INFO.
    pub(super) fn enabled(&self) -> bool {
        self.buffers.is_some() || tracing::enabled!(target: "gp::access", tracing::Level::INFO)
    }

    /// Logs `line`: into this thread's buffer, or onto the queue; counted as dropped if the
    /// writer is that far behind.
    pub(super) fn log(&self, line: Line) {
        match (&self.buffers, &self.lines) {
            (Some(buffers), _) => {
                if !buffers.append(&line) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            (None, Some(lines)) => {
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                    lines.try_send(line)
                {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            (None, None) => {}
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        if let Some(buffers) = &self.buffers {
            buffers.closed.store(true, Ordering::Release);
        }
    }
}

impl Buffers {
    /// Appends `line` to this thread's buffer (made and registered on its first line);
    /// `false` if the buffer is full.
    fn append(self: &Arc<Self>, line: &Line) -> bool {
        MINE.with(|mine| {
            let mut mine = mine.borrow_mut();
            let at = match mine.iter().position(|(log, _)| *log == self.log) {
                Some(at) => at,
                None => {
                    // Buffers of logs gone (their writer let go of them) go first.
                    mine.retain(|(_, buffer)| Arc::strong_count(buffer) > 1);
                    let buffer = Arc::new(Mutex::new(String::new()));
                    crate::util::lock(&self.all).push(Arc::clone(&buffer));
                    mine.push((self.log, buffer));
                    mine.len() - 1
                }
            };
            let mut buffer = crate::util::lock(&mine[at].1);
            if buffer.len() >= BUFFERED {
                return false;
            }
            line.push_to(&self.prefix, &mut buffer);
            true
        })
    }

    /// Everything the threads have buffered, taken; the buffers of threads gone, let go.
    fn take(&self, into: &mut String) {
        let mut all = crate::util::lock(&self.all);
        for buffer in all.iter() {
            let mut buffer = crate::util::lock(buffer);
            if into.is_empty() {
                std::mem::swap(into, &mut buffer);
            } else {
                into.push_str(&buffer);
                buffer.clear();
            }
        }
        // Only this list holds it: its thread ended (and it was just emptied).
        all.retain(|buffer| Arc::strong_count(buffer) > 1);
    }
}

/// How often the writer takes what is queued: it is never woken per line (on a busy server a
/// wake-up per request would cost more than the line).
const DRAIN_EVERY: Duration = Duration::from_millis(20);

impl Line {
    fn plugin_and_label(&self) -> (&str, &str) {
        self.route
            .as_deref()
            .map_or(("", ""), |r| (r.plugin.as_str(), r.label.as_str()))
    }
}

impl Line {
    /// Appends the line and its newline to `out`, with no formatting machinery (which cost
    /// as much as the rest of writing it).
    fn push_to(&self, prefix: &str, out: &mut String) {
        let (plugin, label) = self.plugin_and_label();
        let mut number = itoa::Buffer::new();
        out.push_str(prefix);
        out.push_str("method=");
        out.push_str(self.method.as_str());
        out.push_str(" path=");
        out.push_str(self.uri.path());
        out.push_str(" status=");
        out.push_str(number.format(self.status));
        out.push_str(" plugin=");
        out.push_str(plugin);
        out.push_str(" label=");
        out.push_str(label);
        out.push_str(" request_id=");
        out.push_str(self.request_id.as_str());
        out.push_str(" micros=");
        out.push_str(number.format(self.micros));
        out.push('\n');
    }
}

/// The writer thread of a log to a writer: every [`DRAIN_EVERY`], the threads' buffers, in one
/// `write_all`; the rest once the log is dropped.
fn write_buffers(buffers: &Buffers, writer: &AccessWriter, dropped: &AtomicU64) {
    let mut said = Instant::now();
    let mut batch = String::new();
    loop {
        let ended = buffers.closed.load(Ordering::Acquire);
        buffers.take(&mut batch);
        if !batch.is_empty() {
            let mut out = writer.out.lock().unwrap_or_else(|p| p.into_inner());
            let _ = out.write_all(batch.as_bytes());
            let _ = out.flush();
            batch.clear();
        }
        if ended {
            return;
        }
        report_dropped(dropped, &mut said);
        std::thread::sleep(DRAIN_EVERY);
    }
}

/// The writer thread of a log as `tracing` events: every [`DRAIN_EVERY`], what is queued.
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
                    tracing::info!(target: "gp::access", method = %line.method, path = %line.uri.path(), status = line.status, plugin = %plugin, label = %label, request_id = %line.request_id, micros = line.micros, "request");
                }
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if ended {
            return;
        }
        report_dropped(dropped, &mut said);
        std::thread::sleep(DRAIN_EVERY);
    }
}

/// Logs how many lines were dropped since it last said, at most once a second.
fn report_dropped(dropped: &AtomicU64, said: &mut Instant) {
    if said.elapsed() >= Duration::from_secs(1) {
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(target: "gp::access", lost, "access log lines dropped: the log's writer fell behind");
        }
        *said = Instant::now();
    }
}
