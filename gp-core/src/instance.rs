//! One loaded instance of a plugin and what it keeps: the state its `open` builds from the
//! configuration, handed back with each call, and the call's label passed along with it.
//!
//! A host built against gp-core [`INSTANCE_SINCE`] or later calls a plugin's
//! [`PluginMod::open`](crate::PluginMod::open) once per instance (each load, upgrade or
//! configuration change), every call through [`PluginMod::call_with`](crate::PluginMod::call_with)
//! with that instance's [`StateHandle`] in a [`CallInfo`], and
//! [`PluginMod::close`](crate::PluginMod::close) after the instance's last call. The dynamic
//! loader maps a build once per process, so the statics of a build are shared by all its
//! instances; the handle is what is not.

use abi_stable::std_types::{ROption, RResult, RStr};
use abi_stable::StableAbi;

use crate::{CallError, CallTable, HostContextMut};

/// The first gp-core version whose root module has `open`, `close` and `call_with`.
pub const INSTANCE_SINCE: &str = "0.1.4";

/// A plugin instance's state, as the plugin's `open` made it: opaque to the host, which only
/// hands it back (to `call_with` and, once, to `close`). `StateHandle::NONE` when the plugin
/// keeps none.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateHandle(pub usize);

impl StateHandle {
    /// No state.
    pub const NONE: StateHandle = StateHandle(0);
}

/// What a host passes a plugin's `call_with` besides the context and its table.
///
/// Never changes within gp-core 0.1: anything more is a new root-module field.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct CallInfo<'a> {
    /// The call's label, as [`HostContext::label`](crate::HostContext::label) would say,
    /// without the call into the host.
    pub label: ROption<RStr<'a>>,
    /// The calling instance's state.
    pub state: StateHandle,
}

/// The signature of [`PluginMod::open`](crate::PluginMod::open): the instance's configuration
/// as JSON text (`null` when it has none) in, its state out; an error refuses the load.
pub type OpenFn =
    extern "C" fn(ctx: HostContextMut<'_>, config: RStr<'_>) -> RResult<StateHandle, CallError>;

/// The signature of [`PluginMod::close`](crate::PluginMod::close): drops an instance's state.
pub type CloseFn =
    extern "C" fn(ctx: HostContextMut<'_>, state: StateHandle) -> RResult<(), CallError>;

/// The signature of [`PluginMod::call_with`](crate::PluginMod::call_with).
///
/// `info` is passed by reference: one register, where the struct itself would be copied to
/// the stack on every call.
pub type CallWithFn = extern "C" fn(
    ctx: HostContextMut<'_>,
    table: CallTable,
    info: &CallInfo<'_>,
) -> RResult<(), CallError>;
