//! What the code `#[plugin_entry]` generates calls. Not a public API: it changes with the macro.

use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

pub use abi_stable::library::{LibHeader, RootModuleResult};
pub use gp_core::{
    CallInfo, CallTable, CloseFn, ExecuteFn, HostContextMut, OpenFn, PluginModRef, StateHandle,
};

pub use crate::asynchronous::block_on;
pub use crate::instance::{close_state, open_state, runtime, state};
pub use linkme;

pub use crate::handlers::{
    config, extract, label_done, label_input, label_result, label_value, opened, path_param,
    respond, unknown_label, OpenError,
};
pub use abi_stable::std_types::RStr;

use abi_stable::library::{__call_root_module_loader, CheckTypeLayout};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::RResult;
use gp_core::{CallError, HostServices, PluginMod};

use crate::Context;

/// The result type of the generated `extern "C"` entry point.
pub type ExecuteResult = RResult<(), CallError>;

/// The result type of the generated `open`.
pub type OpenResult = RResult<StateHandle, CallError>;

/// The symbol abi_stable looks up in a library to find its root module (abi_stable 0.11).
/// The generated static must have exactly this name; a test pins it to abi_stable's constant.
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// The header the generated `#[no_mangle]` static holds.
///
/// # Safety
///
/// `constructor` must return a root module of type [`PluginModRef`] (abi_stable's loader
/// reads it as one): `#[plugin_entry]`'s generated `root_module_result`, which returns what
/// [`root_module`] builds, through [`root_module_result`].
pub const unsafe fn lib_header(constructor: extern "C" fn() -> RootModuleResult) -> LibHeader {
    // SAFETY: `from_constructor::<M>` requires that `constructor` returns a root module of
    // type `M`, `PluginModRef` here: this function's own contract, passed on to its caller.
    unsafe { LibHeader::from_constructor::<PluginModRef>(constructor, CheckTypeLayout::Yes) }
}

/// Runs the generated root-module function the way abi_stable's `#[export_root_module]` does.
pub fn root_module_result(root: fn() -> PluginModRef) -> RootModuleResult {
    __call_root_module_loader(root)
}

/// The plugin's `#[on_load]` hook, if it has one. `#[on_load]` adds to it from wherever the
/// function is in the crate; a second one is a compile error, so it holds at most one.
#[linkme::distributed_slice]
pub static ON_LOAD: [ExecuteFn];

/// The plugin's `#[on_unload]` hook, if it has one; see `ON_LOAD`.
#[linkme::distributed_slice]
pub static ON_UNLOAD: [ExecuteFn];

/// The generated entry points: one per kind of host (see [`gp_core::PluginMod`]).
pub struct Entries {
    /// What every host calls.
    pub execute: extern "C" fn(HostContextMut<'_>) -> ExecuteResult,
    /// What a host built against gp-core 0.1.3 calls.
    pub call: extern "C" fn(HostContextMut<'_>, CallTable) -> ExecuteResult,
    /// What a host built against gp-core 0.1.4 or later calls.
    pub call_with: extern "C" fn(HostContextMut<'_>, CallTable, &CallInfo<'_>) -> ExecuteResult,
    /// The instance's `open` and `close`, when the plugin keeps state.
    pub state: Option<(OpenFn, CloseFn)>,
}

/// Builds the root module. Runs once, when the host loads the library.
pub fn root_module(manifest: &'static [u8], entries: Entries) -> PluginModRef {
    let Entries {
        execute,
        call,
        call_with,
        state,
    } = entries;
    let manifest = std::str::from_utf8(manifest).expect("#[plugin_entry] embeds UTF-8 JSON");
    if let Ok(embedded) = gp_core::manifest::Embedded::parse(manifest.as_bytes()) {
        let _ = PLUGIN_NAME.set(embedded.manifest.name);
    }
    install_panic_hook();
    crate::logging::install();
    PluginMod {
        manifest: RStr::from_str(manifest),
        execute,
        on_load: ON_LOAD.first().copied(),
        on_unload: ON_UNLOAD.first().copied(),
        bind_host: Some(bind_host),
        call: Some(call),
        open: state.map(|s| s.0),
        close: state.map(|s| s.1),
        call_with: Some(call_with),
    }
    .leak_into_prefix()
}

/// The host's services, once the host handed them over (hosts built against gp-core 0.1.2
/// and later do, before any call). With them, a call keeps no state in [`CALL`]: the host
/// knows which call runs on a thread, and a thread-local access in a cdylib is a call to
/// `__tls_get_addr`.
pub(crate) static HOST: OnceLock<HostServices> = OnceLock::new();

extern "C" fn bind_host(services: HostServices) {
    let _ = HOST.set(services);
}

/// Whether the calling thread is inside a call. Bound, the host answers for a call of any
/// plugin; this plugin's code only runs inside this plugin's calls, so when the plugin asks,
/// the innermost call is its own.
fn in_call() -> bool {
    match HOST.get() {
        Some(host) => (host.in_call)(),
        None => CALL.with(|c| c.in_call.get()),
    }
}

/// What the SDK keeps about the call running on a thread, in one thread-local: in a cdylib
/// each thread-local access is a call to `__tls_get_addr`. A call reads and writes it only
/// when the host did not bind its services ([`HOST`]); a panic always does.
pub(crate) struct CallState {
    /// Whether this thread is inside a plugin call (the panic hook then stays quiet). Unused
    /// once the host bound its services.
    in_call: Cell<bool>,
    /// Whether a panic inside a call is unwinding now: another panic before `catch_unwind`
    /// returns is a panic in a `Drop` during unwinding, which aborts the process.
    /// (`std::thread::panicking()` cannot tell: it is already true for the first panic's hook.)
    unwinding: Cell<bool>,
    /// The host context of the call running on this thread, for forwarded logs (see
    /// `logging`); null outside a call, and always once the host bound its services.
    pub(crate) sink: Cell<*const HostContextMut<'static>>,
}

thread_local! {
    pub(crate) static CALL: CallState = const {
        CallState {
            in_call: Cell::new(false),
            unwinding: Cell::new(false),
            sink: Cell::new(std::ptr::null()),
        }
    };
    /// Where the last panic inside a call happened, as `file:line:column`.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The last panic's message inside a call, for when a second one aborts the process.
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Bumped by the panic hook each time it marks a thread as unwinding inside a call. The plugin
/// may catch that panic itself (its own `catch_unwind`, a runtime's task), and then the call's
/// own `catch_unwind` never sees it: a call that sees this move clears its thread's mark, which
/// would otherwise make the next panic look like a panic while panicking. A global, not a
/// thread-local: reading it costs a call nothing.
static MARKED: AtomicUsize = AtomicUsize::new(0);

/// The plugin's name, read from its embedded manifest when the root module is built: what
/// the panic hook names when a panic is about to abort the process.
static PLUGIN_NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}

/// The plugin links its own copy of std, with its own panic hook, which would print panics to
/// the host's stderr. Inside a call, the hook instead records where the panic happened and the
/// entry point returns the message to the host, which logs it. Panics on the plugin's own
/// threads still reach the previous hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let message = payload_text(info.payload());
            let in_call = in_call();
            let unwinding = CALL.with(|c| c.unwinding.get());
            if in_call && unwinding {
                // A panic while unwinding from another (in a `Drop`): the process aborts
                // after this hook returns, so this is the last chance to say what happened,
                // and in which plugin. Both messages, since the first was not printed.
                let plugin = PLUGIN_NAME.get().map_or("?", String::as_str);
                let first = PANIC_MESSAGE.with(|m| m.borrow_mut().take());
                let first_at = PANIC_LOCATION.with(|l| l.borrow_mut().take());
                eprintln!(
                    "gp: plugin `{plugin}` panicked while panicking, which aborts the process: first {:?} at {}, then {message:?} at {}",
                    first.as_deref().unwrap_or("(not recorded)"),
                    first_at.as_deref().unwrap_or("?"),
                    location.as_deref().unwrap_or("?"),
                );
                return;
            }
            if in_call {
                PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
                PANIC_MESSAGE.with(|slot| *slot.borrow_mut() = Some(message));
                CALL.with(|c| c.unwinding.set(true));
                MARKED.fetch_add(1, Ordering::Relaxed);
            } else {
                previous(info);
            }
        }));
    });
}

/// What the generated entry points hand [`execute`]: the host's context (`execute`, the entry
/// every host calls), or the context and the table of its values (`call`, which hosts built
/// against gp-core 0.1.3 or later call instead).
pub trait Entry<'a> {
    /// The plugin's view of the call.
    fn context(self) -> Context<'a>;
}

impl<'a> Entry<'a> for HostContextMut<'a> {
    #[inline(always)]
    fn context(self) -> Context<'a> {
        Context::__new(self)
    }
}

/// The host's context and the table of its values, as a host hands them to a plugin's `call`
/// entry point.
pub struct Tabled<'a> {
    host: HostContextMut<'a>,
    table: CallTable,
}

impl<'a> Tabled<'a> {
    /// The two together.
    ///
    /// # Safety
    ///
    /// As [`Context::__with_table`]: `table` came with `host`, from the host, for this call.
    #[inline(always)]
    pub unsafe fn new(host: HostContextMut<'a>, table: CallTable) -> Tabled<'a> {
        Tabled { host, table }
    }
}

impl<'a> Entry<'a> for Tabled<'a> {
    #[inline(always)]
    fn context(self) -> Context<'a> {
        // SAFETY: `Tabled::new`'s contract is this function's.
        unsafe { Context::__with_table(self.host, self.table) }
    }
}

/// The host's context, the table of its values and the call's label and instance state, as
/// a host hands them to a plugin's `call_with` entry point.
pub struct Informed<'a> {
    host: HostContextMut<'a>,
    table: CallTable,
    info: &'a CallInfo<'a>,
}

impl<'a> Informed<'a> {
    /// The three together.
    ///
    /// # Safety
    ///
    /// As [`Context::__with_info`]: all three came from the host, for this call, and `info`'s
    /// label lives as long as `host` (the host keeps both for the whole call). The entry
    /// point's signature cannot say so: its two lifetimes are independent.
    #[inline(always)]
    pub unsafe fn new(
        host: HostContextMut<'a>,
        table: CallTable,
        info: &CallInfo<'_>,
    ) -> Informed<'a> {
        // SAFETY: only the lifetimes change, to `host`'s, which the information and its label
        // outlive (this function's contract).
        let info = unsafe { std::mem::transmute::<&CallInfo<'_>, &'a CallInfo<'a>>(info) };
        Informed { host, table, info }
    }
}

impl<'a> Entry<'a> for Informed<'a> {
    #[inline(always)]
    fn context(self) -> Context<'a> {
        // SAFETY: `Informed::new`'s contract is this function's.
        unsafe { Context::__with_info(self.host, self.table, self.info) }
    }
}

/// The body of the generated entry points: runs the author's function, turning its error or
/// panic into a [`CallError`].
#[inline(always)]
pub fn execute<'a, F, E>(host: impl Entry<'a>, entry: F) -> ExecuteResult
where
    F: FnOnce(&mut Context<'_>) -> Result<(), E>,
    E: Display,
{
    run(host.context(), |ctx| {
        entry(ctx).map_err(|error| format!("{error:#}"))
    })
}

/// What a lifecycle hook may return: nothing, or `Result<(), E>` with `E: Display`.
#[diagnostic::on_unimplemented(
    message = "a gp lifecycle hook returns nothing or `Result<(), E>` where E: Display, not `{Self}`",
    label = "returns `{Self}`"
)]
pub trait HookOutput {
    /// `Err` with the error's message.
    fn into_outcome(self) -> Result<(), String>;
}

impl HookOutput for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> HookOutput for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|error| format!("{error:#}"))
    }
}

/// The body of a generated `#[on_load]` or `#[on_unload]` shim, as [`execute`] for the entry.
pub fn hook<F, R>(host: HostContextMut<'_>, hook: F) -> ExecuteResult
where
    F: FnOnce(&mut Context<'_>) -> R,
    R: HookOutput,
{
    run(Context::__new(host), |ctx| hook(ctx).into_outcome())
}

// Inline: in the entry point, the bound path is a dozen instructions, and a call and five
// saved registers more were a third of an empty call.
#[inline(always)]
fn run(
    ctx: Context<'_>,
    body: impl FnOnce(&mut Context<'_>) -> Result<(), String>,
) -> ExecuteResult {
    if HOST.get().is_some() {
        run_in(None, ctx, body)
    } else {
        CALL.with(|state| run_in(Some(state), ctx, body))
    }
}

/// Runs `body` in a call, keeping the call's state in `state` if the host did not bind its
/// services (else the host knows it).
#[inline(always)]
fn run_in(
    state: Option<&CallState>,
    mut ctx: Context<'_>,
    body: impl FnOnce(&mut Context<'_>) -> Result<(), String>,
) -> ExecuteResult {
    // Unbound, the plugin's `tracing` events and `log` records go to the host through this
    // call's context while it runs (see `logging`): through a copy of the host's trait object
    // kept here, beside the `Context`. A pointer into the `Context` would be invalidated by the
    // `&mut` the author's function gets while the logs still use it (Stacked Borrows).
    let sink_host = state.map(|_| {
        // SAFETY: a bitwise copy of a trait object over `RMut` (a raw pointer to the host's
        // call scope, and a vtable): the copy makes no reference, is used only for `log`
        // (`&self`, between the plugin's own calls into the host, on this thread), and is
        // never dropped (dropping an `RMut` object would do nothing anyway).
        ManuallyDrop::new(unsafe { std::ptr::read(ctx.host()) })
    });
    let previous = state.map(|state| {
        let sink = sink_host.as_deref().map_or(std::ptr::null(), |host| {
            (host as *const HostContextMut<'_>).cast::<HostContextMut<'static>>()
        });
        (state.in_call.replace(true), state.sink.replace(sink))
    });
    let marked = MARKED.load(Ordering::Relaxed);
    crate::logging::flush(ctx.host());
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| body(&mut ctx)));
    let outcome = outcome.map_err(|payload| {
        CALL.with(|c| c.unwinding.set(false));
        let message = payload_text(&*payload);
        let location = PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
        // A payload whose own `Drop` panics would abort the host if dropped outside a guard:
        // drop it under one too (still inside the call, so the hook stays quiet), and leak
        // whatever that second panic throws.
        if let Err(second) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(second);
            PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
            CALL.with(|c| c.unwinding.set(false));
        }
        (message, location)
    });
    // What the plugin's own threads logged since the last call goes out now.
    crate::logging::flush(ctx.host());
    if let (Some(state), Some((was_in_call, previous_sink))) = (state, previous) {
        state.in_call.set(was_in_call);
        state.sink.set(previous_sink);
    }
    if MARKED.load(Ordering::Relaxed) != marked && outcome.is_ok() {
        forget_caught_panic();
    }
    match outcome {
        Ok(Ok(())) => RResult::ROk(()),
        Ok(Err(message)) => RResult::RErr(CallError::failed(message)),
        Err((message, location)) => {
            PANIC_MESSAGE.with(|slot| slot.borrow_mut().take());
            let message = match location {
                Some(at) => format!("{message} (at {at})"),
                None => message,
            };
            RResult::RErr(CallError::panicked(message))
        }
    }
}

/// Clears what the panic hook recorded for a panic the plugin caught itself during this call.
#[cold]
#[inline(never)]
fn forget_caught_panic() {
    CALL.with(|c| c.unwinding.set(false));
    PANIC_LOCATION.with(|slot| slot.borrow_mut().take());
    PANIC_MESSAGE.with(|slot| slot.borrow_mut().take());
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
