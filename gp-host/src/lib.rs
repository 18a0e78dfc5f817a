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
//! forever ignoring cancellation, or one that corrupts memory through `unsafe` code. For
//! those, run the plugin isolated, in a process of its own (feature `isolate`,
//! [`isolation`]).
//!
//! Loaded libraries are never unmapped: abi_stable keeps every library it opens for the life
//! of the process, because values and vtables the plugin created may still be referenced.
//! Removing a plugin from a manager is therefore logical (it stops being callable); its code
//! stays in memory (a small release-built plugin is a 0.8 MB file).
//!
//! # Features
//!
//! With default features, gp-host is a loader with what most hosts want: packages, watching
//! and Prometheus metrics. Everything else is opt-in, so an embedder pays only for what it
//! uses. (A test compares this table with `Cargo.toml`.)
//!
//! | feature | default | what it adds | implies |
//! |---|---|---|---|
//! | `package` | yes | `.plg` packages: [`package`] (pack, verify, unpack, signatures), loading packages from the base directory, `ManagerBuilder::trust` | |
//! | `watch` | yes | `Manager::watch`: follow the base directory, load, upgrade and unload as files change | |
//! | `metrics` | yes | `Manager::prometheus` and `Manager::register_metrics` (call counting and `Manager::stats` are always there) | |
//! | `git` | no | build `remote_git` plugins: `ManagerBuilder::remote_git` and `git_build` (clone with the `git` command, build with cargo) | |
//! | `install` | no | `Manager::install`: download a package over HTTP(S), verify it, install it | `package` |
//! | `hub` | no | [`hub`]: push, resolve (`NAME@RANGE`), pull, search and delete plugins in OCI registries; `Manager::install` of `oci://` references; `Manager::follow` | `install` |
//! | `http` | no | [`http`]: serving plugins' routes (`PluginServer`), `/metrics` and `/stats` for operators, the listener `gp serve` runs | `metrics` |
//! | `admin` | no | `http::Admin`: the management REST API and the web GUI | `http`, `package` |
//! | `tls` | no | TLS for `gp serve`'s admin listener | `admin` |
//! | `isolate` | no | [`isolation`]: plugins in runner processes of their own, and the pre-flight | |
//! | `cli` | no | the `gp` command-line tool | every feature above |
//!
//! Without `package`, a `.plg` in the base directory is refused with a message that names the
//! feature, not skipped.
//!
//! # Layers
//!
//! Inside, each module imports only modules below it, in the order `docs/architecture.md`
//! lists, which a test reads and enforces: `error` at the bottom, then `util`; `library` (a
//! library file), `folder` (a plugin folder checked against its library), `build` (cargo),
//! `source` (folders, packages, git, downloads), `hub` (OCI registries); `metrics` and
//! `runtime` (a loaded version and how it is called, in process or isolated); `manager` (the
//! [`Manager`]); `watch` and `http` on top.
//!
//! The crate's `unsafe` code is in two modules of the runtime, each allowed where it is
//! declared and each block with its argument (`clippy::undocumented_unsafe_blocks` is on):
//! `rcu` (how a call protects the version it runs on without a lock or a shared counter:
//! hazard pointers with asymmetric fences) and `fatal` (the signal handler that names the
//! plugin a crash happened in). `rcu` has unit tests of its own, which `.ci/miri` runs under
//! Miri with the fallback's fences, and its protocol's steps (`rcu/protocol.rs`, no `unsafe`)
//! are model-checked by loom in `gp-host/loom`.
//!
//! This crate is not for plugin authors; they use `gp-sdk`.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod build;
mod error;
mod folder;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "hub")]
pub mod hub;
mod library;
mod manager;
mod metrics;
mod name;
mod runtime;
mod source;
mod util;
#[cfg(feature = "watch")]
mod watch;

#[doc(hidden)]
pub mod __private;

pub use error::{Error, ErrorKind, Hook, HubFailure, RunnerFailure};
pub use folder::MANIFEST_FILE;
pub use gp_core::manifest::{self, Manifest};
pub use gp_core::{Value, ABI_VERSION};
pub use library::{inspect, verify, LibraryInfo};
#[cfg(feature = "hub")]
pub use manager::follow::{Follow, FollowOptions, FollowStatus, Following};
pub use manager::gc::{GcMode, GcOptions, GcReport};
#[cfg(feature = "install")]
pub use manager::install::InstallOptions;
pub use manager::report::{LoadFailure, LoadReport, Synced, Upgrade, UpgradeOptions, Upgraded};
pub use manager::{
    builder::{DEFAULT_BASE_DIR, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HOOK_TIMEOUT, DEFAULT_RUNTIME_DIR},
    AdmissionId, Disabled, Manager, ManagerBuilder, Readiness, Refusal, DISABLED_DIR, MAX_REASON,
};
pub use metrics::recorder::DEFAULT_LATENCY_SAMPLING;
pub use metrics::{
    LastError, LastErrorSummary, Latency, LatencySummary, PluginStats, PluginSummary,
};
pub use name::PluginName;
pub use runtime::context::{CancelToken, Context};
pub use runtime::events::{Event, SubscriptionId};
pub use runtime::executor::Executor;
pub use runtime::fatal;
#[cfg(feature = "isolate")]
pub use runtime::isolation;
pub use runtime::reaper::{StillRunning, UnloadHook, UnloadReport};
pub use runtime::spec::Spec;
#[cfg(feature = "package")]
pub use source::package;
#[cfg(feature = "watch")]
pub use watch::{WatchOptions, Watcher};
