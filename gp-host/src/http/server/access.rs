//! The access log, off the request's path: a request hands its facts to a bounded queue and
//! goes on; a thread of its own formats each line (`gp::access`, INFO) and writes it. Formatting
//! and writing a line in the request cost about 12 % of a fast plugin's throughput.
//!
//! One line per request, with its request id, within [`DRAIN_EVERY`] or so, unless the writer
//! falls behind by more than [`QUEUE`] lines: then lines are dropped, counted, and the count logged (at most once a
//! second) rather than slowing every request down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
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

/// The queue to the writer thread.
pub(crate) struct AccessLog {
    lines: SyncSender<Line>,
    dropped: Arc<AtomicU64>,
    /// Whether lines go to a writer rather than to `tracing`.
    to_writer: bool,
}

impl AccessLog {
    /// Starts the writer thread, writing to `writer` if given, else as `tracing` events; it
    /// ends when the log is dropped, after writing what is queued.
    pub(super) fn start(writer: Option<AccessWriter>) -> AccessLog {
        let (lines, queued) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        let to_writer = writer.is_some();
        let spawned = std::thread::Builder::new()
            .name("gp-access-log".into())
            .spawn(move || write(queued, writer, &counted));
        if let Err(error) = spawned {
            tracing::warn!(target: "gp::http", "no access log: its thread did not start: {error}");
        }
        AccessLog {
            lines,
            dropped,
            to_writer,
        }
    }

    /// Whether a line would be written at all: always to a writer; as an event, if the
    /// subscriber wants `gp::access` at INFO.
    pub(super) fn enabled(&self) -> bool {
        self.to_writer || tracing::enabled!(target: "gp::access", tracing::Level::INFO)
    }

    /// Queues `line`; counts it as dropped if the writer is that far behind.
    pub(super) fn log(&self, line: Line) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.lines.try_send(line)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
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

fn write(queued: Receiver<Line>, writer: Option<AccessWriter>, dropped: &AtomicU64) {
    let mut said = Instant::now();
    let mut batch = String::new();
    loop {
        let ended = loop {
            match queued.try_recv() {
                Ok(line) => match &writer {
                    Some(writer) => line.push_to(&writer.prefix, &mut batch),
                    None => {
                        let (plugin, label) = line.plugin_and_label();
                        // Displayed, not debug-quoted: none of these can hold a space or a
                        // control character (a path is URI characters; names, labels and ids
                        // are checked), and escaping each string was most of a line's cost.
                        tracing::info!(target: "gp::access", method = %line.method, path = %line.uri.path(), status = line.status, plugin = %plugin, label = %label, request_id = %line.request_id, micros = line.micros, "request");
                    }
                },
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        if let (Some(writer), false) = (&writer, batch.is_empty()) {
            let mut out = writer.out.lock().unwrap_or_else(|p| p.into_inner());
            let _ = out.write_all(batch.as_bytes());
            let _ = out.flush();
            batch.clear();
        }
        if ended {
            return;
        }
        if said.elapsed() >= Duration::from_secs(1) {
            let lost = dropped.swap(0, Ordering::Relaxed);
            if lost > 0 {
                tracing::warn!(target: "gp::access", lost, "access log lines dropped: the log's writer fell behind");
            }
            said = Instant::now();
        }
        std::thread::sleep(DRAIN_EVERY);
    }
}
