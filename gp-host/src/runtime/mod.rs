//! One loaded plugin version and how it is called.
//!
//! - [`spec`]: what the host knows about a version; [`config`]: an instance's configuration,
//!   its secrets resolved;
//! - [`values`], [`context`] and [`scope`]: the context of a call, as the host holds it and as
//!   the plugin sees it;
//! - [`inprocess`]: a version mapped into this process, its hooks, and the call into it;
//! - [`loaded`]: a version opened, in process or isolated (the [`loaded::Instance`] enum), as a
//!   slot holds it;
//! - [`slot`]: a plugin's place, pointing at the version serving now;
//! - [`executor`]: the handle applications call through; [`typed`]: its typed call, serde
//!   values in and out;
//! - [`reaper`]: draining and retiring versions that stopped serving;
//! - [`events`]: the subscribers that calls and lifecycle changes notify;
//! - [`fatal`]: naming the plugin that took the process down (a signal handler);
//! - `isolation` (feature `isolate`): versions that run in a runner process of their own, the
//!   host's side and the runner's (public as `gp_host::isolation`).
//!
//! The runtime knows nothing of folders, packages or the manager's rules: the manager
//! decides which version a slot holds, the runtime runs it.

pub(crate) mod activity;
pub(crate) mod config;
pub(crate) mod context;
pub(crate) mod events;
pub(crate) mod executor;
#[allow(unsafe_code)] // a signal handler: see its documentation
pub mod fatal;
pub(crate) mod inprocess;
#[cfg(feature = "isolate")]
pub mod isolation;
pub(crate) mod loaded;
#[allow(unsafe_code)] // hazard pointers: see its documentation
pub(crate) mod rcu;
pub(crate) mod reaper;
pub(crate) mod redact;
#[allow(unsafe_code)] // the context shared with the plugin's table: see `CallScope`
pub(crate) mod scope;
pub(crate) mod slot;
pub(crate) mod spec;
pub(crate) mod typed;
pub(crate) mod values;
