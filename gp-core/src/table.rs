//! The context's values as a table the plugin reads and overwrites itself: a host built
//! against gp-core [`TABLE_SINCE`] or later calls a plugin's [`PluginMod::call`] with it, so
//! that a read or an overwrite of a key costs a short scan in the plugin instead of a call
//! into the host through [`HostContext`]'s vtable.
//!
//! [`PluginMod::call`]: crate::PluginMod::call
//! [`HostContext`]: crate::HostContext

// `#[derive(StableAbi)]` expands to unsafe impls; nothing else here is unsafe.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use abi_stable::{
    std_types::{RCowStr, RResult, RVec},
    StableAbi,
};

use crate::{CallError, HostContextMut, Value};

/// The first gp-core version whose root module has the [`call`](crate::PluginMod::call) field.
pub const TABLE_SINCE: &str = "0.1.3";

/// One value of a call's context, as the host keeps it: its key and its value.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Slot {
    /// The key: borrowed when it is one of gp's own (`http.response.status`), owned otherwise.
    pub key: RCowStr<'static>,
    /// The value.
    pub value: Value,
}

impl Slot {
    /// Whether this slot holds `key`: the comparison host and plugin both search the table
    /// with.
    #[inline(always)]
    pub fn has_key(&self, key: &str) -> bool {
        same_key(self.key.as_str(), key)
    }
}

/// Key equality without a call to `memcmp`: context keys are short, and for them the call
/// costs more than the comparison. Lengths first; then the same text (a host looks its own
/// keys up by the constants it stored them under); then bytes from the end, where keys of
/// one length differ (`http.request.route` and `http.response.body` share ten bytes first).
#[inline(always)]
pub fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && (std::ptr::eq(a.as_ptr(), b.as_ptr())
            || a.bytes().rev().zip(b.bytes().rev()).all(|(x, y)| x == y))
}

/// What a host hands a plugin's [`call`](crate::PluginMod::call) besides its context, valid
/// for that call.
///
/// The contract:
/// - A key found in [`values`](Self::values) holds that value. A key not found there may
///   still have a value (a context with many values keeps them elsewhere, and an HTTP
///   request's keys are made only when first asked for): the plugin asks the host through
///   the context.
/// - Only when [`overwrite`](Self::overwrite) is set, the plugin may replace the value of a
///   slot it found, in place (the old value is dropped by the plugin: abi_stable's types
///   carry the functions that free them). It never adds, removes or moves a slot: that is
///   the host's, through the context.
/// - The host adds, removes or moves slots, or changes a value, only in the context's
///   methods that take `&mut self` ([`set`](crate::HostContext::set),
///   [`set_i64`](crate::HostContext::set_i64), [`set_f64`](crate::HostContext::set_f64),
///   [`remove`](crate::HostContext::remove)); its `&self` methods leave the table as it is.
///   So a plugin's reference into the slots stays valid until its next call to one of
///   those, and no longer.
///
/// Never changes within gp-core 0.1: anything more is a new root-module field.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct CallTable {
    /// The context's values while they are few (at most 16): the host's own storage, read
    /// without copying. Empty once the context held more (it stays empty for the rest of
    /// the call, even if values are removed). Values the host makes on first read (most of
    /// an HTTP request's keys) are never in it; those it sets before the call (gp-host 0.2.1:
    /// the method, each path parameter's key) are.
    pub values: NonNull<RVec<Slot>>,
    /// Whether the plugin may overwrite a value it found in [`values`](Self::values). Unset
    /// when the host must see every write (an isolated runner notes the keys a call
    /// changed, to send only those back).
    pub overwrite: bool,
}

/// The signature of a plugin's [`call`](crate::PluginMod::call) entry point: the author's
/// function with the context and the table of its values. Like [`crate::ExecuteFn`], it never
/// unwinds.
pub type CallFn =
    extern "C" fn(ctx: HostContextMut<'_>, table: CallTable) -> RResult<(), CallError>;
