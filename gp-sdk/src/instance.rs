//! One instance's state: built by the plugin's `open` from its configuration, handed back by
//! the host with each of the instance's calls, dropped by `close` after the last one. With
//! the state, the runtime of the instance's async handlers (see `asynchronous`), if it has any.
//!
//! The instance is a `Box<Instance<S>>` whose address is the [`StateHandle`] the host keeps.
//! The `unsafe` here is the one assumption that makes that sound: the host hands back, with a
//! call or to `close`, only a handle this plugin's `open` returned, and to `close` once, after
//! the instance's last call returned (gp-core's contract for `PluginMod::open`). The generated
//! code names one `S` for a plugin's `open`, its handlers and its `close`.

use std::time::Duration;

use abi_stable::std_types::{RResult, RStr};
use gp_core::{CallError, CallErrorKind, HostContextMut, StateHandle};

use crate::asynchronous::{self, Runtime};
use crate::handlers::OpenError;
use crate::{Context, Error, Result};

/// How long `close` waits for the tasks an async plugin's runtime still runs, when the host
/// gives the hook no deadline (gp-host gives none: its hook timeout is kept on its side).
const STOP_WAIT: Duration = Duration::from_secs(1);

/// What a handle points to.
struct Instance<S> {
    state: S,
    /// The runtime of the instance's async handlers, when it has any.
    runtime: Option<Runtime>,
}

/// The body of a generated `open`: starts the runtime of the plugin's async handlers if it
/// has any (`asynchronous`), runs `build` (the author's `#[on_load]`) with the
/// configuration's JSON text, and boxes both as the instance.
pub fn open_state<S, F>(
    host: HostContextMut<'_>,
    config: RStr<'_>,
    asynchronous: bool,
    build: F,
) -> RResult<StateHandle, CallError>
where
    S: Send + Sync + 'static,
    F: FnOnce(&str, &mut Context<'_>) -> std::result::Result<S, OpenError>,
{
    let mut made: Option<Box<Instance<S>>> = None;
    let mut config_refused = false;
    let outcome = crate::__private::hook(host, |ctx| {
        let runtime = match asynchronous {
            true => Some(asynchronous::start()?),
            false => None,
        };
        // In the runtime's context: `#[on_load]` may build a client that needs one.
        let built = {
            let _entered = runtime.as_ref().map(asynchronous::enter);
            build(config.as_str(), ctx)
        };
        match built {
            Ok(state) => {
                made = Some(Box::new(Instance { state, runtime }));
                Ok(())
            }
            Err(error) => {
                if let Some(runtime) = runtime {
                    asynchronous::stop(runtime, Duration::ZERO);
                }
                config_refused = error.config;
                Err(error.message)
            }
        }
    });
    match (outcome, made) {
        (RResult::ROk(()), Some(instance)) => {
            RResult::ROk(StateHandle(Box::into_raw(instance) as usize))
        }
        (RResult::RErr(mut error), _) => {
            if config_refused {
                error.kind = CallErrorKind::CONFIG;
            }
            RResult::RErr(error)
        }
        (RResult::ROk(()), None) => RResult::RErr(CallError::failed("open returned no state")),
    }
}

/// The body of a generated `close`: drops the state `open_state::<S>` made, then stops the
/// instance's runtime, waiting for its tasks until the hook's deadline at most.
///
/// # Safety
///
/// `state` is a handle `open_state::<S>` returned, with this same `S`, not closed before, and
/// no call of its instance runs any more: what the host guarantees the `close` it calls.
pub unsafe fn close_state<S: Send + Sync + 'static>(
    host: HostContextMut<'_>,
    state: StateHandle,
) -> RResult<(), CallError> {
    crate::__private::hook(host, |ctx| {
        if state != StateHandle::NONE {
            // SAFETY: by this function's contract, the handle is a `Box<Instance<S>>` leaked
            // as its address by `open_state::<S>`, ours to take back once, borrowed by no call.
            let instance = unsafe { Box::from_raw(state.0 as *mut Instance<S>) };
            let Instance { state, runtime } = *instance;
            drop(state);
            if let Some(runtime) = runtime {
                asynchronous::stop(runtime, ctx.remaining().unwrap_or(STOP_WAIT));
            }
        }
    })
}

/// The calling instance, for a handler's `&S` argument or its runtime: borrowed for the call.
///
/// # Safety
///
/// As for [`state`].
unsafe fn instance<'a, S: Send + Sync + 'static>(ctx: &Context<'a>) -> Result<&'a Instance<S>> {
    let handle = ctx.__state();
    if handle == StateHandle::NONE {
        return Err(Error::msg(
            "this call carries no state: the plugin keeps its state per instance, which hosts built against gp-core 0.1.4 or later give it; upgrade the host",
        ));
    }
    // SAFETY: a handle that comes with a call is one `open_state::<S>` returned for the
    // calling instance (the host's contract), of this `S` (the caller's), and the host
    // closes it only after the instance's last call returned: the instance lives, unchanged,
    // for the whole call `'a`.
    Ok(unsafe { &*(handle.0 as *const Instance<S>) })
}

/// The calling instance's state, for a handler's `&S` argument: borrowed for the call.
///
/// # Safety
///
/// `S` is the type the plugin's `open_state` was given: the host hands a call a handle that
/// `open_state::<S>` returned for the calling instance, so the generated code, which names
/// one `S` for both, calls this soundly.
pub unsafe fn state<'a, S: Send + Sync + 'static>(ctx: &Context<'a>) -> Result<&'a S> {
    // SAFETY: this function's contract is `instance`'s.
    unsafe { instance::<S>(ctx) }.map(|instance| &instance.state)
}

/// The calling instance's runtime, for an async handler's call: borrowed for the call.
///
/// # Safety
///
/// As for [`state`].
pub unsafe fn runtime<'a, S: Send + Sync + 'static>(ctx: &Context<'a>) -> Result<&'a Runtime> {
    // SAFETY: this function's contract is `instance`'s.
    let instance = unsafe { instance::<S>(ctx) }?;
    instance
        .runtime
        .as_ref()
        .ok_or_else(|| Error::msg("this instance has no async runtime: rebuild the plugin"))
}
