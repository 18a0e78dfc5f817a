//! A runner's standard error: read line by line on a thread of its own, the plugin's log
//! records re-emitted through the host's `tracing` at their level, other lines logged at info
//! and the last ones kept for a crash report. The pipe's end is how the host learns, between
//! calls, that a runner has exited.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::runtime::scope::LOG_MARK;
use crate::util::{bounded, lock, MAX_PLUGIN_MESSAGE};

/// How many of a runner's last standard-error lines a crash report carries.
const STDERR_LINES: usize = 20;

/// The reading end of a runner's standard error.
pub(super) struct Stderr {
    tail: Arc<Mutex<VecDeque<String>>>,
    /// Closed when the reader has read to the end of the pipe.
    done: Mutex<Option<Receiver<()>>>,
    /// Set by the reader at the end of the pipe: the runner has exited.
    exited: Arc<AtomicBool>,
}

impl Stderr {
    /// Starts reading `pipe` (`None`: nothing to read; the last lines are empty at once, and
    /// the runner is seen to exit only when a call or `end` finds it gone).
    pub(super) fn forward(pipe: Option<impl Read + Send + 'static>, plugin: &str) -> Stderr {
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let exited = Arc::new(AtomicBool::new(false));
        let (finished, done) = std::sync::mpsc::channel::<()>();
        if let Some(pipe) = pipe {
            let (tail, plugin, exited) =
                (Arc::clone(&tail), plugin.to_owned(), Arc::clone(&exited));
            let _ = std::thread::Builder::new()
                .name(format!("gp-runner-{plugin}-stderr"))
                .spawn(move || {
                    forward_lines(pipe, &plugin, &tail);
                    exited.store(true, Ordering::Release);
                    drop(finished);
                });
        }
        Stderr {
            tail,
            done: Mutex::new(Some(done)),
            exited,
        }
    }

    /// Whether the pipe has ended: the runner has exited.
    pub(super) fn ended(&self) -> bool {
        self.exited.load(Ordering::Acquire)
    }

    /// The last lines, once the reader has read to the end of the pipe. A process that kept
    /// the pipe open (out of reach of the group kill) must not hold this up: half a second,
    /// then the lines are reported as they are.
    pub(super) fn last_lines(&self) -> String {
        if let Some(done) = lock(&self.done).take() {
            let _ = done.recv_timeout(Duration::from_millis(500));
        }
        let tail = lock(&self.tail);
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Logs the runner's standard error through the host's `tracing` (the plugin's log records
/// at their level, anything else at info), keeping the last lines for a crash report.
fn forward_lines(pipe: impl Read, plugin: &str, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A line is cut at 16 KiB; the rest of it reads as further lines.
        match reader
            .by_ref()
            .take(MAX_PLUGIN_MESSAGE as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        if let Some(record) = text.strip_prefix(LOG_MARK) {
            let (level, message) = record.split_once(' ').unwrap_or(("info", record));
            let message = message.replace('\u{1f}', "\n");
            match level {
                "error" => tracing::error!(target: "gp::plugin", plugin, "{message}"),
                "warn" => tracing::warn!(target: "gp::plugin", plugin, "{message}"),
                "debug" => tracing::debug!(target: "gp::plugin", plugin, "{message}"),
                "trace" => tracing::trace!(target: "gp::plugin", plugin, "{message}"),
                _ => tracing::info!(target: "gp::plugin", plugin, "{message}"),
            }
            continue;
        }
        tracing::info!(target: "gp::plugin", plugin, "stderr: {text}");
        // A backtrace's frames would push the message before them out of the crash report.
        let frame = text.trim_start();
        let is_frame = frame.starts_with("at ")
            || frame
                .split_once(": ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_frame {
            continue;
        }
        let mut tail = lock(tail);
        if tail.len() == STDERR_LINES {
            tail.pop_front();
        }
        tail.push_back(bounded(text.to_owned(), 512));
    }
}
