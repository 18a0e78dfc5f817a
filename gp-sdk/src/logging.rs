//! Forwards the plugin's own `tracing` events and `log` records to the host's log.
//!
//! A plugin is a `cdylib` with its own copies of `tracing` and `log`, which have no subscriber
//! or logger: without this module, `tracing::info!` in the plugin (or in any of its
//! dependencies) prints nothing. When the root module is built, [`install`] sets a global
//! default subscriber in the plugin's `tracing` and a logger in its `log`. Both format the
//! event as `[target] message field=value ...` and hand it to the host for the call running on
//! the same thread (through the host's services when it bound them, else through
//! `HostContext::log` of that call, which the SDK then keeps in a thread-local), so the host
//! logs it (target `gp::plugin`, field `plugin`) like [`Context::log`](crate::Context::log).
//!
//! The host's context only exists during a call. An event on a thread with no call in progress
//! (a thread the plugin started, or while the library is being loaded) is buffered, up to
//! [`BUFFERED`] messages, and forwarded at the start or end of the next call or hook, on
//! whichever thread that runs; beyond that, messages are dropped and counted, and the count is
//! reported with the next flush.
//!
//! Levels: INFO and above by default; the host process's `GP_PLUGIN_LOG` environment variable
//! (`off`, `error`, `warn`, `info`, `debug` or `trace`), read when the library is loaded,
//! changes that. The host's own filter still applies to what is forwarded.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use abi_stable::std_types::RStr;
use gp_core::{HostContextMut, LogLevel};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// How many messages logged outside a call are kept until the next call.
pub const BUFFERED: usize = 256;

/// The environment variable that sets the most detailed level forwarded.
pub const ENV: &str = "GP_PLUGIN_LOG";

/// Messages logged outside a call, waiting for the next one.
static PENDING: Mutex<VecDeque<(LogLevel, String)>> = Mutex::new(VecDeque::new());
/// Whether [`PENDING`] may hold messages or [`DROPPED`] is not zero: the cheap check a call
/// makes before taking the lock.
static HAS_PENDING: AtomicBool = AtomicBool::new(false);
/// Messages dropped because [`PENDING`] was full, since the last flush.
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Installs the subscriber and the logger, once. If the plugin (or a dependency) already
/// installed its own, that one stays and this does nothing for that crate.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let max = max_level();
        let _ = tracing::subscriber::set_global_default(Forward {
            max,
            next_span: AtomicU64::new(1),
        });
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(match max.into_level() {
                None => log::LevelFilter::Off,
                Some(tracing::Level::ERROR) => log::LevelFilter::Error,
                Some(tracing::Level::WARN) => log::LevelFilter::Warn,
                Some(tracing::Level::INFO) => log::LevelFilter::Info,
                Some(tracing::Level::DEBUG) => log::LevelFilter::Debug,
                Some(_) => log::LevelFilter::Trace,
            });
        }
    });
}

/// The most detailed level forwarded: `GP_PLUGIN_LOG`, else INFO.
fn max_level() -> LevelFilter {
    std::env::var(ENV)
        .ok()
        .and_then(|v| v.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO)
}

/// Forwards `message` to the host through this thread's call, or buffers it.
fn forward(level: LogLevel, message: String) {
    if let Some(host) = crate::__private::HOST.get() {
        // The host knows the call running on this thread, if any.
        if (host.log)(level, RStr::from_str(&message)) {
            return;
        }
        return queue(level, message);
    }
    let current = crate::__private::CALL.with(|c| c.sink.get());
    if !current.is_null() {
        // SAFETY: the sink is only set by `__private::run`, on this thread, to a copy of the
        // host's context of the call it is running (which it keeps for longer), and put back
        // before `run` returns. `log` takes `&self`: it only reads the host's call scope (the
        // plugin's name) and writes to the host's log.
        let host = unsafe { &*current };
        host.log(level, RStr::from_str(&message));
        return;
    }
    queue(level, message);
}

/// Keeps `message`, logged outside a call, for the next call to forward.
fn queue(level: LogLevel, message: String) {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if pending.len() < BUFFERED {
        pending.push_back((level, message));
    } else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
    HAS_PENDING.store(true, Ordering::Release);
}

/// Forwards the messages logged outside a call through `host`.
/// Forwards what was logged outside a call (cheap when nothing was: one relaxed load, inlined
/// into every call).
#[inline(always)]
pub(crate) fn flush(host: &HostContextMut<'_>) {
    if HAS_PENDING.load(Ordering::Relaxed) {
        flush_pending(host);
    }
}

#[cold]
#[inline(never)]
fn flush_pending(host: &HostContextMut<'_>) {
    // Pairs with the store in `forward`, which happens after the message is queued.
    std::sync::atomic::fence(Ordering::Acquire);
    let (messages, dropped) = {
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        HAS_PENDING.store(false, Ordering::Release);
        (
            std::mem::take(&mut *pending),
            DROPPED.swap(0, Ordering::Relaxed),
        )
    };
    for (level, message) in messages {
        host.log(level, RStr::from_str(&message));
    }
    if dropped > 0 {
        let message = format!(
            "{dropped} log message(s) logged outside a call were dropped (more than {BUFFERED} waiting)"
        );
        host.log(LogLevel::Warn, RStr::from_str(&message));
    }
}

fn level_of(level: &tracing::Level) -> LogLevel {
    match *level {
        tracing::Level::ERROR => LogLevel::Error,
        tracing::Level::WARN => LogLevel::Warn,
        tracing::Level::INFO => LogLevel::Info,
        tracing::Level::DEBUG => LogLevel::Debug,
        _ => LogLevel::Trace,
    }
}

/// The plugin's global `tracing` subscriber: forwards events, ignores spans.
struct Forward {
    max: LevelFilter,
    next_span: AtomicU64,
}

impl Subscriber for Forward {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && self.max >= *metadata.level()
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut text = Text::new(metadata.target());
        event.record(&mut text);
        forward(level_of(metadata.level()), text.finish());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// `[target] message field=value ...`, as the event's fields are visited.
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn new(target: &str) -> Text {
        Text {
            message: format!("[{target}]"),
            fields: String::new(),
        }
    }

    fn finish(mut self) -> String {
        self.message.push_str(&self.fields);
        self.message
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.message, " {value}");
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, " {value:?}");
            }
            // Fields `tracing` adds when it converts `log` records; never set here.
            name if name.starts_with("log.") => {}
            name => {
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }
}

/// The plugin's `log` logger.
struct Logger;

static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Error => LogLevel::Error,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Info => LogLevel::Info,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Trace => LogLevel::Trace,
        };
        forward(level, format!("[{}] {}", record.target(), record.args()));
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::Text;

    #[test]
    fn formats_target_message_and_fields() {
        struct Capture(std::sync::Mutex<Vec<String>>);
        impl tracing::Subscriber for Capture {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, event: &tracing::Event<'_>) {
                let mut text = Text::new(event.metadata().target());
                event.record(&mut text);
                self.0.lock().unwrap().push(text.finish());
            }
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        let capture = std::sync::Arc::new(Capture(Default::default()));
        let dispatch = tracing::Dispatch::from(capture.clone());
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(target: "my_dep::net", host = "db", port = 5432, "connected to {}", "db");
        });
        assert_eq!(
            capture.0.lock().unwrap().as_slice(),
            ["[my_dep::net] connected to db host=\"db\" port=5432"]
        );
    }
}
