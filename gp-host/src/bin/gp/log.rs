//! Where gp's log lines go: standard error (standard output for `gp serve --log-format json`,
//! where a container's collector reads), with the access log's lines (`gp::access`, one per
//! request under `gp serve`) gathered in a buffer rather than written one `write` each.
//!
//! A line of any other target is written at once, after what is buffered, so lines keep their
//! order and a warning is never held back; the buffer is also written every
//! [`FLUSH_EVERY`] by a thread of its own, and when `gp` ends. Under load this turns thousands
//! of small writes a second into a few large ones.

use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long an access line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// The stream the log goes to: standard error, or standard output.
type Stream = Box<dyn Write + Send>;

static OUT: Mutex<Option<BufWriter<Stream>>> = Mutex::new(None);

fn out() -> MutexGuard<'static, Option<BufWriter<Stream>>> {
    let mut out = OUT.lock().unwrap_or_else(|p| p.into_inner());
    if out.is_none() {
        let json_out = JSON_OUT.lock().unwrap_or_else(|p| p.into_inner()).take();
        let stream: Stream = match json_out {
            Some(file) => Box::new(file),
            None if JSON.load(Ordering::Relaxed) => Box::new(std::io::stdout()),
            None => Box::new(std::io::stderr()),
        };
        *out = Some(BufWriter::with_capacity(64 * 1024, stream));
    }
    out
}

/// The log's writer, for `tracing_subscriber::fmt().with_writer(..)`.
pub struct Log;

/// One line's writer: buffered, written out when dropped unless it is an access line.
pub struct Line {
    write_through: bool,
}

impl<'a> MakeWriter<'a> for Log {
    type Writer = Line;

    fn make_writer(&self) -> Line {
        Line {
            write_through: true,
        }
    }

    fn make_writer_for(&self, meta: &tracing::Metadata<'_>) -> Line {
        Line {
            write_through: meta.target() != "gp::access",
        }
    }
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match out().as_mut() {
            Some(out) => out.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.write_through {
            flush();
        }
    }
}

/// Writes out what is buffered.
pub fn flush() {
    if let Some(out) = out().as_mut() {
        let _ = out.flush();
    }
}

/// What each access line starts with, so that it reads as the `tracing` line it replaces.
pub const ACCESS_PREFIX: &str = " INFO gp::access: request ";

/// The plugin server's access lines (`PluginServerBuilder::access_log_to_prefixed`, each
/// starting with [`ACCESS_PREFIX`]), into the same buffer: ` INFO gp::access: request
/// method=GET …`. A batch of lines is one copy (splitting it to prefix each line cost most of
/// the access log's time).
pub struct AccessLines;

impl Write for AccessLines {
    fn write(&mut self, lines: &[u8]) -> std::io::Result<usize> {
        let mut guard = out();
        let Some(out) = guard.as_mut() else {
            return Ok(lines.len());
        };
        out.write_all(lines)?;
        Ok(lines.len())
    }

    /// The buffer is written out by [`flush_periodically`] and before any other line.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts the thread that writes the buffer out every [`FLUSH_EVERY`].
pub fn flush_periodically() {
    let _ = std::thread::Builder::new()
        .name("gp-log-flush".into())
        .spawn(|| loop {
            std::thread::sleep(FLUSH_EVERY);
            flush();
        });
}

/// Whether the log is JSON (`gp serve --log-format json`).
static JSON: AtomicBool = AtomicBool::new(false);

/// Standard output as the JSON log keeps it (see [`set_json`]).
static JSON_OUT: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// The target of what `gp serve` says itself ([`said`], [`error`], [`warning`], [`note`]) in a
/// JSON log: always shown, whatever `GP_LOG` filters (see `main`).
pub const SAID: &str = "gp::serve";

/// The log is JSON, on standard output: [`error`], [`warning`], [`note`] and [`said`] are log
/// events from now on, not lines of text. Called before anything is logged.
///
/// Standard output becomes the log's alone: the log keeps a copy of it (closed on exec), and
/// descriptor 1 becomes standard error, so that whatever else writes there (a plugin's
/// `println!`, an isolated plugin's runner, which inherits it) goes to standard error instead
/// of between the JSON lines.
pub fn set_json() {
    JSON.store(true, Ordering::Relaxed);
    if let Ok(copy) = rustix::io::fcntl_dupfd_cloexec(std::io::stdout(), 3) {
        if rustix::stdio::dup2_stdout(std::io::stderr()).is_ok() {
            *JSON_OUT.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::fs::File::from(copy));
        }
    }
}

/// Whether the log is JSON.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// A line `gp serve` prints for the person who started it (where it listens, that it is
/// ready): on standard output, or, with a JSON log, an `INFO` event with the line as its
/// message. Standard output closed is no reason to stop serving: not an error.
pub fn said(line: std::fmt::Arguments<'_>) {
    if json() {
        tracing::info!(target: SAID, "{line}");
        flush();
    } else {
        let _ = crate::output::write(format_args!("{line}\n"));
    }
}

/// An error said to the person or the collector reading standard error: `error: <it>` as a
/// line of text, or, with a JSON log, an `ERROR` event.
pub fn error(message: std::fmt::Arguments<'_>) {
    aside(tracing::Level::ERROR, "error: ", message);
}

/// [`error`]'s warning: `warning: <it>`, or a `WARN` event.
pub fn warning(message: std::fmt::Arguments<'_>) {
    aside(tracing::Level::WARN, "warning: ", message);
}

/// A note said on standard error: a line of text, or an `INFO` event.
pub fn note(message: std::fmt::Arguments<'_>) {
    aside(tracing::Level::INFO, "", message);
}

/// `message` on standard error after `prefix`, after what the log holds; or, with a JSON
/// log, an event at `level` of target [`SAID`].
fn aside(level: tracing::Level, prefix: &str, message: std::fmt::Arguments<'_>) {
    if !json() {
        flush();
        eprintln!("{prefix}{message}");
    } else if level == tracing::Level::ERROR {
        tracing::error!(target: SAID, "{message}");
    } else if level == tracing::Level::WARN {
        tracing::warn!(target: SAID, "{message}");
    } else {
        tracing::info!(target: SAID, "{message}");
    }
}
