//! The contract between a gp host and its plugins.
//!
//! This crate is the *interface* in abi_stable's sense: it holds the types that cross the
//! boundary between a host built with `gp-host` and a plugin built with `gp-sdk`, and nothing
//! else. Its version is the ABI version: when a host loads a plugin, abi_stable compares the
//! `gp-core` version each side was built with (same major; for `0.x`, the plugin's minor must
//! not be lower than the host's) and then the layout of every type reachable from the root
//! module, so a plugin built against an incompatible interface is refused, never called.
//!
//! It is not for plugin authors (they use `gp-sdk`) nor for applications (they use
//! `gp-host`), and it does no I/O.
//!
//! With the default `abi` feature it holds:
//! - [`PluginMod`], the root module every plugin exports (embedded manifest and `execute`),
//! - [`HostContext`], the `#[sabi_trait]` through which a plugin reads and writes the call's
//!   values, label, cancellation and deadline, and logs,
//! - [`CallTable`], the context's values as a table a plugin reads and overwrites itself,
//!   handed to [`PluginMod::call`] by hosts built from [`TABLE_SINCE`] on,
//! - [`StateHandle`] and [`CallInfo`]: one instance's state, built by [`PluginMod::open`] and
//!   handed to [`PluginMod::call_with`] with the call's label, by hosts built from
//!   [`INSTANCE_SINCE`] on,
//! - [`Value`], the stable value enum, and [`CallError`], what a failed call returns.
//!
//! [`http`] names the context keys of a call that serves an HTTP route; [`typed`] maps a serde
//! type to a call's values and back, for typed labels.
//!
//! Without it, only [`manifest`]: the `plugin.json` model and its validation, shared by the
//! host, the CLI and the `#[plugin_entry]` macro (which checks a plugin's manifest at compile
//! time with the same code the host runs at load time).
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod http;
pub mod manifest;

// `#[sabi_trait]` and `#[derive(StableAbi)]` expand to unsafe impls; nothing else here is unsafe.
#[cfg(feature = "abi")]
#[allow(unsafe_code)]
mod abi;
#[cfg(feature = "abi")]
mod instance;
#[cfg(feature = "abi")]
mod table;
#[cfg(feature = "abi")]
pub mod typed;
#[cfg(feature = "abi")]
mod value;

#[cfg(feature = "abi")]
pub use abi::*;
#[cfg(feature = "abi")]
pub use instance::*;
#[cfg(feature = "abi")]
pub use table::*;
#[cfg(feature = "abi")]
pub use value::Value;

/// The version of this crate, which is the ABI version plugins are checked against.
pub const ABI_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The name of the link section that holds a plugin's embedded manifest.
///
/// The section holds the [`manifest::Embedded`] JSON document (the ABI version and the
/// plugin's manifest) so that a host can read it with an object-file parser *before* loading
/// the library, which runs the plugin's constructors.
pub const MANIFEST_SECTION: &str = "gp_manifest";

/// [`MANIFEST_SECTION`] as Mach-O spells it (segment, section).
pub const MANIFEST_SECTION_MACHO: &str = "__DATA,__gp_manifest";

/// The name of the link section that holds a plugin's [`manifest::Details`]: what `#[plugin]`
/// records about its handlers (which are `async`) beside the manifest. Optional: a library
/// without it has the default details.
pub const DETAILS_SECTION: &str = "gp_details";

/// [`DETAILS_SECTION`] as Mach-O spells it (segment, section).
pub const DETAILS_SECTION_MACHO: &str = "__DATA,__gp_details";
