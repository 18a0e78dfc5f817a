//! A call as the plugin sees it: the context behind the ABI trait ([`CallScope`]) and the
//! table of its values the plugin reads itself ([`gp_core::CallTable`]); which plugin's call
//! runs on a thread, and the services a plugin reaches outside any one call.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use abi_stable::std_types::{RDuration, ROption, RStr, RString, RVec};
use gp_core::{CallTable, HostContext, HostContextMut, LogLevel, Slot, Value};

use crate::runtime::context::Context;
use crate::util::lock;

/// A context seen by one plugin during one call: what implements the ABI trait.
///
/// It reaches the context through a pointer, not a `&mut`: the plugin holds a second one,
/// into the context's values ([`CallTable::values`]), and reads and writes through both in
/// turn. Both come from the same raw pointer, so neither access invalidates the other; each
/// method makes a reference that ends with it. The `&self` methods run while the plugin may
/// hold references into the table, so they must not write to it (none does: a deferred
/// value is made in its own cell, never in the table); the `&mut self` ones run only when
/// the plugin holds none (its own `&mut` borrow of its context orders them).
pub(crate) struct CallScope<'a> {
    ctx: NonNull<Context>,
    /// The `&'a mut Context` the pointer came from.
    borrowed: PhantomData<&'a mut Context>,
    plugin: &'a str,
    /// The plugin version's "being unloaded" flag: set, the call sees itself cancelled.
    retiring: Option<&'a AtomicBool>,
}

/// `key` to keep: gp's own response keys, which every HTTP call sets, are not copied.
fn own_key(key: &str) -> crate::runtime::values::Key {
    use gp_core::http as keys;
    match key {
        keys::STATUS => keys::STATUS.into(),
        keys::RESPONSE_HEADERS => keys::RESPONSE_HEADERS.into(),
        keys::RESPONSE_BODY => keys::RESPONSE_BODY.into(),
        keys::CONTENT_TYPE => keys::CONTENT_TYPE.into(),
        other => other.to_owned().into(),
    }
}

impl CallScope<'_> {
    #[inline(always)]
    fn ctx(&self) -> &Context {
        // SAFETY: `ctx` comes from the `&'a mut Context` this scope borrows (see `scoped`),
        // and the plugin writes through its table only between calls to this scope's methods.
        unsafe { self.ctx.as_ref() }
    }

    #[inline(always)]
    fn ctx_mut(&mut self) -> &mut Context {
        // SAFETY: as in `ctx`; `&mut self` makes this the only reference made from `ctx`.
        unsafe { self.ctx.as_mut() }
    }

    /// Stores `value` under `key`. Overwriting an existing key allocates nothing.
    #[inline]
    fn store(&mut self, key: RStr<'_>, value: Value) {
        let ctx = self.ctx_mut();
        if let Some(journal) = &mut ctx.journal {
            journal.push(key.as_str().to_owned());
        }
        ctx.values.insert_with(key.as_str(), own_key, value);
    }
}

impl HostContext for CallScope<'_> {
    fn get(&self, key: RStr<'_>) -> ROption<&Value> {
        self.ctx().values.get(key.as_str()).into()
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
        let ctx = self.ctx_mut();
        if let Some(journal) = &mut ctx.journal {
            journal.push(key.as_str().to_owned());
        }
        ctx.values.remove(key.as_str()).into()
    }

    fn keys(&self) -> RVec<RString> {
        self.ctx()
            .values
            .iter()
            .map(|(k, _)| RString::from(k))
            .collect()
    }

    fn label(&self) -> ROption<RStr<'_>> {
        self.ctx().label().map(RStr::from_str).into()
    }

    fn is_cancelled(&self) -> bool {
        let ctx = self.ctx();
        ctx.is_cancelled()
            || ctx.is_past_deadline()
            || self.retiring.is_some_and(|r| r.load(Ordering::Relaxed))
    }

    fn remaining(&self) -> ROption<RDuration> {
        self.ctx()
            .deadline()
            .map(|d| RDuration::from(d.saturating_duration_since(Instant::now())))
            .into()
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        log_for(self.plugin, level, message.as_str());
    }
}

/// Logs `message` from plugin `plugin` (target `gp::plugin`, field `plugin`), the secrets of
/// its live instances scrubbed.
fn log_for(plugin: &str, level: LogLevel, message: &str) {
    let message = crate::runtime::redact::log_line(plugin, message);
    let message = message.as_ref();
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
    f: impl FnOnce(HostContextMut<'_>) -> R,
) -> R {
    scoped(ctx, plugin, None, |host, _, _| f(host))
}

/// [`outside_a_call`], with the table of the context's values.
pub(crate) fn outside_a_call_with_table<R>(
    ctx: &mut Context,
    plugin: &str,
    f: impl FnOnce(HostContextMut<'_>, CallTable) -> R,
) -> R {
    scoped(ctx, plugin, None, |host, table, _| f(host, table))
}

/// Runs `f` as `plugin`'s call on `ctx`: with the context as the plugin sees it, the table of
/// its values (for a plugin's [`gp_core::PluginMod::call`]) and its label (for
/// [`gp_core::PluginMod::call_with`]).
///
/// Always inlined: on the call path, the inliner otherwise keeps it out of line (a call, and
/// the table and label spilled to memory), ~1.5 ns an empty call on a 2-vCPU EPYC.
#[inline(always)]
pub(crate) fn with_scope<R>(
    ctx: &mut Context,
    plugin: &'static PluginName,
    retiring: Option<&AtomicBool>,
    f: impl FnOnce(HostContextMut<'_>, CallTable, ROption<RStr<'_>>) -> R,
) -> R {
    // `with` and a closure that only reads or writes: `replace` and `LocalKey::set` go
    // through functions the call path's inliner gives up on, a call each.
    let _restore = Inside(IN_CALL.with(Cell::get));
    IN_CALL.with(|inside| inside.set(Some(plugin)));
    scoped(ctx, plugin.as_str(), retiring, f)
}

#[inline(always)]
fn scoped<R>(
    ctx: &mut Context,
    plugin: &str,
    retiring: Option<&AtomicBool>,
    f: impl FnOnce(HostContextMut<'_>, CallTable, ROption<RStr<'_>>) -> R,
) -> R {
    // The plugin may overwrite values in place unless every write must be noted.
    let overwrite = ctx.journal.is_none();
    let ctx = NonNull::from(ctx);
    let table = CallTable {
        values: table_of(ctx),
        overwrite,
    };
    let label = label_of(ctx);
    let mut scope = CallScope {
        ctx,
        borrowed: PhantomData,
        plugin,
        retiring,
    };
    f(
        gp_core::HostContext_TO::from_ptr(
            abi_stable::sabi_types::RMut::new(&mut scope),
            abi_stable::sabi_trait::TD_Opaque,
        ),
        table,
        label,
    )
}

/// The call's label, read through the same pointer as the table, before the call.
#[inline(always)]
fn label_of<'a>(ctx: NonNull<Context>) -> ROption<RStr<'a>> {
    // SAFETY: `ctx` points to a live `Context` (it comes from a `&mut`), and no other
    // reference to it is in use yet. The `RStr` points into the label's own heap buffer,
    // not into the `Context`, and nothing changes the label during a call (no `HostContext`
    // method does): it stays valid for the call, which is all `'a` is used for.
    let label: Option<&'a str> = unsafe { (*ctx.as_ptr()).label() };
    label.map(RStr::from_str).into()
}

/// The table of the values of the context `ctx` points to, as a pointer of the same
/// provenance (a reference made on the way would be invalidated by the scope's next one).
#[inline(always)]
fn table_of(ctx: NonNull<Context>) -> NonNull<RVec<Slot>> {
    // SAFETY: `ctx` points to a live `Context` (it comes from a `&mut`); this makes no
    // reference, only the address of a field, which is not null.
    unsafe { NonNull::new_unchecked(std::ptr::addr_of_mut!((*ctx.as_ptr()).values.entries.small)) }
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
