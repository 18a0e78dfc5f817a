//! Isolated plugins (feature `isolate`): a plugin that runs in a runner process of its own,
//! so that a segfault, an abort, `exit`, a stack overflow or a runaway allocation costs one
//! call ([`Error::Crashed`](crate::Error::Crashed)) instead of the host, a call that ignores its
//! deadline is stopped by ending its runner, and an unload frees everything the plugin had,
//! threads included.
//!
//! The plugin is the same library as in process; `plugin.json` does not change. Choose which
//! plugins run isolated with [`ManagerBuilder::isolation`](crate::ManagerBuilder::isolation).
//! A runner is this program started again, so the program calls [`run_if_runner`] first thing
//! in `main` (or names another runner with [`Isolation::program`]):
//!
//! ```no_run
//! # #[allow(clippy::needless_doctest_main)]
//! fn main() {
//!     gp_host::isolation::run_if_runner();
//!     let manager = gp_host::Manager::builder("plugins")
//!         .isolation(gp_host::isolation::Isolation::named(["untrusted"]))
//!         .build();
//!     let report = manager.load_plugins();
//!     print!("{report}");
//! }
//! ```
//!
//! Isolation is crash isolation, not a sandbox: the runner runs as the same user and shares the
//! filesystem and the network. It starts with a cleared environment (see [`Isolation::env`]),
//! `no_new_privs`, no core dumps, and dies with its host.
//!
//! Inside, one file per idea, the host's side first:
//!
//! - `config`: [`Isolation`], [`Isolated`], [`IsolationStatus`], the runner's environment;
//! - `protocol`: the frames host and runner exchange, and reading them;
//! - `remote`: a version that lives in a runner process (the slot's side of it: calls,
//!   crashes, back-off and the circuit breaker);
//! - `process`: one runner process, its control socket and call connections;
//! - `stderr`: the runner's standard error, forwarded to `tracing` and kept for crash reports;
//! - `watchdog`: the thread that cancels, then kills, calls past their deadline;
//! - `spawner`: the thread every runner is started from;
//! - `preflight`: loading a build in a throwaway runner before this process maps it;
//! - `runner`: the runner's side, [`run_if_runner`].
//!
//! The runner loads a plugin as an in-process host does (`runtime::inprocess`), which is
//! below this module; the slot's `Loaded` is above it.

mod config;
pub(crate) mod preflight;
mod process;
pub(crate) mod protocol;
pub(crate) mod remote;
pub(crate) mod runner;
mod spawner;
mod stderr;
mod watchdog;

pub use crate::error::RunnerFailure;
pub use config::{Isolated, Isolation, IsolationStatus, RUNNER_ENV};
pub use runner::run_if_runner;
