//! Embed gp in an application: discover, verify, load and call native plugins.
//!
//! A [`Manager`] watches over a plugin base directory (`BASE/<plugin>/plugin.json` plus a
//! library). [`Manager::load_plugins`] loads every folder it can and reports every one it
//! cannot; [`Manager::get_plugin`] hands out a [`Spec`] and an [`Executor`], which calls the
//! plugin with a [`Context`] of values, a label, a cancellation token and a deadline.
//!
//! Before a library is loaded it is read as a file: it must be a complete shared library for
//! this platform, embed a valid manifest that agrees with its `plugin.json`, and be built
//! against a compatible `gp-core`. Loading then goes through abi_stable, which checks the
//! layout of every shared type. A plugin that fails any check is refused with an error that
//! says why; nothing it contains has run (beyond the loader's own work for a layout check),
//! and the plugins already loaded keep serving.
//!
//! # What a plugin can and cannot do to the host
//!
//! Plugins run in the host's process, as native code. gp catches their panics (they come back
//! as [`Error::Panicked`]) and cancels them cooperatively; it cannot stop a plugin that loops
//! forever ignoring cancellation, or one that corrupts memory through `unsafe` code.
//!
//! Loaded libraries are never unmapped: abi_stable keeps every library it opens for the life
//! of the process, because values and vtables the plugin created may still be referenced.
//! Removing a plugin from a manager is therefore logical (it stops being callable); its code
//! stays in memory (a small release-built plugin is a 0.8 MB file).
//!
//! This crate is not for plugin authors; they use `gp-sdk`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod build;
mod context;
mod error;
mod events;
mod executor;
#[cfg(feature = "git")]
mod git;
#[cfg(feature = "install")]
mod install;
mod library;
mod manager;
mod metrics;
pub mod package;
mod values;
mod watch;

pub use context::{__with_host_context, CancelToken, Context};
pub use error::Error;
pub use events::{Event, SubscriptionId};
pub use executor::{Executor, Spec};
pub use gp_core::manifest::{self, Manifest};
pub use gp_core::{Value, ABI_VERSION};
#[cfg(feature = "install")]
pub use install::InstallOptions;
pub use library::{inspect, verify, LibraryInfo};
pub use manager::{
    LoadFailure, LoadReport, Manager, ManagerBuilder, UnloadHook, UnloadReport, Upgrade,
    UpgradeOptions, Upgraded, DEFAULT_BASE_DIR, DEFAULT_DRAIN_TIMEOUT, DEFAULT_RUNTIME_DIR,
    MANIFEST_FILE,
};
pub use metrics::{LastError, Latency, PluginStats};
pub use watch::{WatchOptions, Watcher};
