//! The context of a call as the host holds it, and as the plugin sees it through the ABI.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use abi_stable::std_types::{RDuration, ROption, RStr, RString, RVec};
use gp_core::{HostContext, LogLevel, Value};
use serde::Serialize;

use crate::runtime::values::Values;
#[cfg(feature = "http")]
use crate::runtime::values::{Deferred, Later};
use crate::util::lock;

/// The context of one call: the values a plugin reads and writes, the call's label, its
/// cancellation token and deadline.
///
/// The host owns it; the plugin sees it through the ABI-stable [`gp_core::HostContext`]
/// trait, which borrows values without copying them and stores integers inline, so a get
/// and a set cost two hash lookups.
///
/// ```
/// use gp_host::Context;
/// let mut ctx = Context::new().with_label("plugin.get");
/// ctx.set("count", 41);
/// assert_eq!(ctx.get("count").and_then(|v| v.as_i64()), Some(41));
/// ```
#[derive(Debug, Default)]
pub struct Context {
    values: Values,
    label: Option<String>,
    cancel: CancelToken,
    deadline: Option<Instant>,
    /// The keys a plugin set or removed, when they are noted (see `journal_changes`).
    journal: Option<Vec<String>>,
}

impl Context {
    /// An empty context: no values, no label, not cancelled, no deadline.
    pub fn new() -> Context {
        Context::default()
    }

    /// Sets the label the plugin sees (`ctx.label()` in the plugin).
    pub fn with_label(mut self, label: impl Into<String>) -> Context {
        self.label = Some(label.into());
        self
    }

    /// Gives the call a deadline `timeout` from now; past it the plugin sees itself cancelled.
    pub fn with_timeout(mut self, timeout: Duration) -> Context {
        self.deadline = Some(Instant::now() + timeout);
        self
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// Stores `value` under `key`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.values.insert(key.into(), value.into());
    }

    /// [`set`](Self::set) for one of gp's own keys: the key is not copied.
    #[cfg(feature = "http")]
    pub(crate) fn set_static(&mut self, key: &'static str, value: impl Into<Value>) {
        self.values.insert(key, value.into());
    }

    /// An empty context with room for `n` values before its map grows.
    #[cfg(feature = "http")]
    pub(crate) fn with_capacity(n: usize) -> Context {
        Context {
            values: Values::with_capacity(n),
            ..Context::default()
        }
    }

    /// Offers the keys of `source`, made into values only when first read (see
    /// [`Deferred`]): a request's parts, most of which a call never looks at.
    #[cfg(feature = "http")]
    pub(crate) fn defer(&mut self, source: impl Deferred + 'static) {
        self.values.defer(Later::new(source));
    }

    /// Serialises `value` (through JSON) and stores it under `key`.
    pub fn set_as<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let json = serde_json::to_value(value)?;
        self.set(key, Value::from(json));
        Ok(())
    }

    /// Removes the value stored under `key` and returns it.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.values.remove(key)
    }

    /// Applies what an isolated call changed, back from its runner: `values` set, `removed`
    /// gone.
    #[cfg(feature = "isolate")]
    pub(crate) fn apply_changes(&mut self, values: Vec<(String, Value)>, removed: Vec<String>) {
        for key in removed {
            self.values.remove(&key);
        }
        for (key, value) in values {
            self.values.insert(key, value);
        }
    }

    /// From now on, notes the keys the plugin sets or removes (a runner's context, which
    /// sends only those back).
    #[cfg(feature = "isolate")]
    pub(crate) fn journal_changes(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// The values of the keys noted since [`journal_changes`](Self::journal_changes), moved
    /// out, and the noted keys that hold no value now.
    #[cfg(feature = "isolate")]
    pub(crate) fn take_changes(&mut self) -> (Vec<(String, Value)>, Vec<String>) {
        let mut keys = self.journal.take().unwrap_or_default();
        keys.sort_unstable();
        keys.dedup();
        let (mut set, mut removed) = (Vec::new(), Vec::new());
        for key in keys {
            match self.values.remove(&key) {
                Some(value) => set.push((key, value)),
                None => removed.push(key),
            }
        }
        (set, removed)
    }

    /// Every key and value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter()
    }

    /// The values as a JSON object (sorted by key).
    pub fn to_json(&self) -> serde_json::Value {
        let sorted: std::collections::BTreeMap<_, _> = self
            .values
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_json()))
            .collect();
        serde_json::Value::Object(sorted.into_iter().collect())
    }

    /// The label.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Sets or clears the label.
    pub fn set_label(&mut self, label: Option<String>) {
        self.label = label;
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Sets or clears the deadline.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// A handle that cancels this context from another thread.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Whether the context was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Whether the deadline has passed.
    pub fn is_past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Cancels a call from another thread. Cloning shares the token.
///
/// Cancellation is cooperative: the plugin sees it through `ctx.is_cancelled()` and is
/// expected to return promptly; the host cannot stop native code that ignores it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every call whose context holds this token.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A context seen by one plugin during one call: what implements the ABI trait.
pub(crate) struct CallScope<'a> {
    pub(crate) ctx: &'a mut Context,
    pub(crate) plugin: &'a str,
    /// The plugin version's "being unloaded" flag: set, the call sees itself cancelled.
    pub(crate) retiring: Option<&'a AtomicBool>,
}

/// `key` to keep: gp's own response keys, which every HTTP call sets, are not copied.
fn own_key(key: &str) -> crate::runtime::values::Key {
    use gp_core::http as keys;
    match key {
        keys::STATUS => keys::STATUS.into(),
        keys::RESPONSE_HEADERS => keys::RESPONSE_HEADERS.into(),
        keys::RESPONSE_BODY => keys::RESPONSE_BODY.into(),
        other => other.to_owned().into(),
    }
}

impl CallScope<'_> {
    /// Stores `value` under `key`. Overwriting an existing key allocates nothing.
    #[inline]
    fn store(&mut self, key: RStr<'_>, value: Value) {
        if let Some(journal) = &mut self.ctx.journal {
            journal.push(key.as_str().to_owned());
        }
        match self.ctx.values.get_mut(key.as_str()) {
            Some(slot) => *slot = value,
            None => {
                self.ctx.values.insert(own_key(key.as_str()), value);
            }
        }
    }
}

impl HostContext for CallScope<'_> {
    fn get(&self, key: RStr<'_>) -> ROption<&Value> {
        self.ctx.values.get(key.as_str()).into()
    }

    fn set(&mut self, key: RStr<'_>, value: Value) {
        self.store(key, value);
    }

    fn set_i64(&mut self, key: RStr<'_>, value: i64) {
        self.store(key, Value::Int(value));
    }

    fn set_f64(&mut self, key: RStr<'_>, value: f64) {
        self.store(key, Value::Float(value));
    }

    fn remove(&mut self, key: RStr<'_>) -> ROption<Value> {
        if let Some(journal) = &mut self.ctx.journal {
            journal.push(key.as_str().to_owned());
        }
        self.ctx.values.remove(key.as_str()).into()
    }

    fn keys(&self) -> RVec<RString> {
        self.ctx
            .values
            .iter()
            .map(|(k, _)| RString::from(k))
            .collect()
    }

    fn label(&self) -> ROption<RStr<'_>> {
        self.ctx.label.as_deref().map(RStr::from_str).into()
    }

    fn is_cancelled(&self) -> bool {
        self.ctx.is_cancelled()
            || self.ctx.is_past_deadline()
            || self.retiring.is_some_and(|r| r.load(Ordering::Relaxed))
    }

    fn remaining(&self) -> ROption<RDuration> {
        self.ctx
            .deadline
            .map(|d| RDuration::from(d.saturating_duration_since(Instant::now())))
            .into()
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        log_for(self.plugin, level, message.as_str());
    }
}

/// Logs `message` from plugin `plugin` (target `gp::plugin`, field `plugin`).
fn log_for(plugin: &str, level: LogLevel, message: &str) {
    if LOG_TO_STDERR.load(Ordering::Relaxed) {
        return log_line(level, message);
    }
    match level {
        LogLevel::Error => tracing::error!(target: "gp::plugin", plugin, "{message}"),
        LogLevel::Warn => tracing::warn!(target: "gp::plugin", plugin, "{message}"),
        LogLevel::Info => tracing::info!(target: "gp::plugin", plugin, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "gp::plugin", plugin, "{message}"),
        LogLevel::Trace => tracing::trace!(target: "gp::plugin", plugin, "{message}"),
    }
}

/// Set in a plugin runner: the plugin's log records go to standard error as marked lines,
/// which the host reads and logs (`runtime::isolation`), tagged with the plugin's name.
static LOG_TO_STDERR: AtomicBool = AtomicBool::new(false);

/// The mark that starts a log line on a runner's standard error.
#[cfg_attr(not(feature = "isolate"), allow(dead_code))]
pub(crate) const LOG_MARK: &str = "\u{1e}gp-log ";

/// Sends every plugin log record of this process to standard error (in a runner).
#[cfg(feature = "isolate")]
pub(crate) fn log_to_stderr() {
    LOG_TO_STDERR.store(true, Ordering::Relaxed);
}

/// `LOG_MARK`, the level, a space and the message on one line (its line breaks as U+001F).
fn log_line(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    // Not `eprintln!`, which panics when standard error is gone (a runner whose host went):
    // this runs inside `extern "C"` functions, where a panic aborts.
    let _ = writeln!(
        std::io::stderr(),
        "{LOG_MARK}{level} {}",
        message.replace('\n', "\u{1f}")
    );
}

/// Runs `f` with `ctx` seen as a plugin sees it (the ABI trait object), tagged with `plugin`,
/// outside any call for the host's services (`gp_host::__private::with_host_context`).
pub(crate) fn outside_a_call<R>(
    ctx: &mut Context,
    plugin: &str,
    f: impl FnOnce(gp_core::HostContextMut<'_>) -> R,
) -> R {
    scoped(ctx, plugin, None, f)
}

/// Runs `f` with `ctx` seen as plugin `plugin` sees it, cancelled once `retiring` is set.
/// Until `f` returns, the thread is inside a call of `plugin` for [`SERVICES`].
#[inline]
pub(crate) fn with_scope<R>(
    ctx: &mut Context,
    plugin: &'static PluginName,
    retiring: Option<&AtomicBool>,
    f: impl FnOnce(gp_core::HostContextMut<'_>) -> R,
) -> R {
    // `with` and a closure that only reads or writes: `replace` and `LocalKey::set` go
    // through functions the call path's inliner gives up on, a call each.
    let _restore = Inside(IN_CALL.with(Cell::get));
    IN_CALL.with(|inside| inside.set(Some(plugin)));
    scoped(ctx, plugin.as_str(), retiring, f)
}

/// [`with_scope`] without telling the host's services.
#[inline]
fn scoped<R>(
    ctx: &mut Context,
    plugin: &str,
    retiring: Option<&AtomicBool>,
    f: impl FnOnce(gp_core::HostContextMut<'_>) -> R,
) -> R {
    let mut scope = CallScope {
        ctx,
        plugin,
        retiring,
    };
    f(gp_core::HostContext_TO::from_ptr(
        abi_stable::sabi_types::RMut::new(&mut scope),
        abi_stable::sabi_trait::TD_Opaque,
    ))
}

thread_local! {
    /// The plugin whose call or hook runs innermost on this thread: what [`SERVICES`] answer
    /// from. A const thread-local with no destructor: reading it is a plain load.
    static IN_CALL: Cell<Option<&'static PluginName>> = const { Cell::new(None) };
}

/// Puts back the call a nested one interrupted (also when unwinding).
struct Inside(Option<&'static PluginName>);

impl Drop for Inside {
    #[inline]
    fn drop(&mut self) {
        let previous = self.0;
        IN_CALL.with(|inside| inside.set(previous));
    }
}

/// What this host offers plugins outside any one call (see [`gp_core::HostServices`]):
/// a plugin built against gp-core 0.1.2 or later then keeps no per-call state of its own.
pub(crate) const SERVICES: gp_core::HostServices = gp_core::HostServices {
    in_call: services_in_call,
    log: services_log,
};

extern "C" fn services_in_call() -> bool {
    IN_CALL.with(Cell::get).is_some()
}

extern "C" fn services_log(level: LogLevel, message: RStr<'_>) -> bool {
    let Some(plugin) = IN_CALL.with(Cell::get) else {
        return false;
    };
    // Nothing may unwind out of an `extern "C"` function (it would abort the process): a log
    // subscriber that panics loses this message only.
    let logged = std::panic::catch_unwind(|| log_for(plugin.as_str(), level, message.as_str()));
    if logged.is_err() {
        // Not `eprintln!`: it panics when standard error is gone, and this may not panic.
        let _ = writeln!(
            std::io::stderr(),
            "gp: a log subscriber panicked on a message from plugin `{}`",
            plugin.as_str()
        );
    }
    true
}

/// A plugin's name, interned: one word to pass and to keep in a thread-local (a `&str` is two,
/// and a thread-local written as two words and read back as one 16-byte load misses the
/// store-to-load forwarding: about 4 ns a call).
#[derive(Debug)]
pub(crate) struct PluginName(String);

impl PluginName {
    /// The one `&'static` copy of `name`. Each distinct name is leaked once per process: a
    /// process loads a bounded set of plugins.
    pub(crate) fn intern(name: &str) -> &'static PluginName {
        static NAMES: Mutex<BTreeMap<&'static str, &'static PluginName>> =
            Mutex::new(BTreeMap::new());
        let mut names = lock(&NAMES);
        if let Some(interned) = names.get(name) {
            return interned;
        }
        let interned: &'static PluginName = Box::leak(Box::new(PluginName(name.to_owned())));
        names.insert(interned.as_str(), interned);
        interned
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}
