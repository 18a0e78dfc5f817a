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

/// How many lines may wait for the writer.
const QUEUE: usize = 16384;

/// One request, as the access log says it.
pub(crate) struct Line {
    pub(super) method: axum::http::Method,
    pub(super) path: String,
    pub(super) status: u16,
    pub(super) plugin: String,
    pub(super) label: String,
    pub(super) request_id: String,
    pub(super) micros: u64,
}

/// The queue to the writer thread.
pub(crate) struct AccessLog {
    lines: SyncSender<Line>,
    dropped: Arc<AtomicU64>,
}

impl AccessLog {
    /// Starts the writer thread; it ends when the log is dropped, after writing what is queued.
    pub(super) fn start() -> AccessLog {
        let (lines, queued) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&dropped);
        let spawned = std::thread::Builder::new()
            .name("gp-access-log".into())
            .spawn(move || write(queued, &counted));
        if let Err(error) = spawned {
            tracing::warn!(target: "gp::http", "no access log: its thread did not start: {error}");
        }
        AccessLog { lines, dropped }
    }

    /// Whether a line would be written at all (the subscriber wants `gp::access` at INFO).
    pub(super) fn enabled() -> bool {
        tracing::enabled!(target: "gp::access", tracing::Level::INFO)
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

fn write(queued: Receiver<Line>, dropped: &AtomicU64) {
    let mut said = Instant::now();
    loop {
        loop {
            match queued.try_recv() {
                Ok(line) => {
                    tracing::info!(target: "gp::access", method = line.method.as_str(), path = line.path, status = line.status, plugin = line.plugin, label = line.label, request_id = line.request_id, micros = line.micros, "request");
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
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
