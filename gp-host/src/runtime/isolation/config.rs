//! What an embedder sets and reads about isolation: [`Isolation`] (which plugins, and the
//! runner's limits), [`Isolated`], [`IsolationStatus`], and the environment variables a runner
//! is started with.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// Set (to the protocol version) in a runner's environment; `run_if_runner` looks for it.
pub const RUNNER_ENV: &str = "GP_RUNNER";
/// The host's process id, in a runner's environment: the runner exits if its parent is
/// already another process when it starts.
pub(crate) const PARENT_ENV: &str = "GP_RUNNER_PARENT";
/// The memory limit in bytes (`RLIMIT_AS`), in a runner's environment, if the host set one.
pub(crate) const MEMORY_ENV: &str = "GP_RUNNER_MEMORY";

/// Which plugins a [`Manager`](crate::Manager) runs isolated, and how
/// ([`ManagerBuilder::isolation`](crate::ManagerBuilder::isolation)).
///
/// The plugin's library is the same as in process; `plugin.json` does not change. A runner is
/// the host's own program started again (unless [`program`](Self::program) names another),
/// so the program must call `gp_host::isolation::run_if_runner` first thing in `main`.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// Which plugins run isolated.
    pub plugins: Isolated,
    /// The runner program (default: this process's executable, `std::env::current_exe`).
    pub program: Option<PathBuf>,
    /// The environment variables passed on to isolated plugins' runners; all others are
    /// cleared (default: `PATH`, `HOME`, `LANG`, `LC_ALL`, `TZ`, `RUST_BACKTRACE`,
    /// `GP_PLUGIN_LOG`), so that what is meant for the host does not reach them. A
    /// pre-flight's runner gets the host's whole environment instead, as the in-process load it
    /// stands for does.
    pub env: Vec<String>,
    /// The address space a runner may use, in bytes (`RLIMIT_AS`; default: no limit). An
    /// allocation past it fails, which aborts a Rust plugin: one call's error.
    pub memory_limit: Option<u64>,
    /// The CPU time one call may use (default: no limit), in whole seconds: before each call
    /// the runner's `RLIMIT_CPU` is moved to what it has used so far plus this (plus up to a
    /// second of rounding), and lifted once no call runs, so a long-lived runner is not killed
    /// by its total. The limit is the process's: with calls running in parallel it counts from
    /// the latest call's start and all their time together.
    pub cpu_per_call: Option<Duration>,
    /// How long a call may run past its deadline or cancellation before its runner is killed
    /// (default 1 s).
    pub grace: Duration,
    /// How many calls a runner runs at once, each on a connection and a thread of its own
    /// (default 8); more wait for one to finish.
    pub concurrency: usize,
    /// How long each side polls for the other's answer before it sleeps in the kernel
    /// (default: zero, it sleeps at once). A sleeping side is woken by the scheduler, which
    /// costs tens of microseconds on a virtual machine; polling answers in a few while a core
    /// is free, and costs up to `spin` of CPU time per call on each side when calls are
    /// further apart than that. See `benches/README.md`.
    pub spin: Duration,
    /// The first restart's delay after a crash; it doubles with each crash in a row, up to 5 s
    /// (default 100 ms).
    pub backoff: Duration,
    /// After this many crashes within [`crash_window`](Self::crash_window) the plugin is
    /// marked failed until it is loaded again (default 5).
    pub max_crashes: u32,
    /// The window of [`max_crashes`](Self::max_crashes) (default 60 s).
    pub crash_window: Duration,
}

/// How an isolated plugin's runner is doing ([`Executor::isolation`](crate::Executor::isolation)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct IsolationStatus {
    /// The runner's process id, if one runs now (none between a crash and the next call).
    pub runner_pid: Option<u32>,
    /// Runners started after the first: one per crash, kill or failed start that a later
    /// call recovered from.
    pub restarts: u64,
    /// Crashes since the version was loaded.
    pub crashes: u64,
    /// Whether the circuit breaker is open: the plugin crashed
    /// [`Isolation::max_crashes`] times within [`Isolation::crash_window`] and fails every
    /// call until it is loaded again.
    pub circuit_open: bool,
}

/// Which plugins run isolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Isolated {
    /// None of them (the default).
    None,
    /// Every plugin.
    All,
    /// The plugins of these names.
    Named(BTreeSet<String>),
}

impl Default for Isolation {
    fn default() -> Isolation {
        Isolation {
            plugins: Isolated::None,
            program: None,
            env: [
                "PATH",
                "HOME",
                "LANG",
                "LC_ALL",
                "TZ",
                "RUST_BACKTRACE",
                "GP_PLUGIN_LOG",
            ]
            .map(String::from)
            .to_vec(),
            memory_limit: None,
            cpu_per_call: None,
            grace: Duration::from_secs(1),
            concurrency: 8,
            spin: Duration::ZERO,
            backoff: Duration::from_millis(100),
            max_crashes: 5,
            crash_window: Duration::from_secs(60),
        }
    }
}

impl Isolation {
    /// Every plugin isolated, with the default settings.
    #[must_use]
    pub fn all() -> Isolation {
        Isolation {
            plugins: Isolated::All,
            ..Isolation::default()
        }
    }

    /// The plugins named isolated, with the default settings.
    #[must_use]
    pub fn named<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Isolation {
        Isolation {
            plugins: Isolated::Named(names.into_iter().map(Into::into).collect()),
            ..Isolation::default()
        }
    }

    /// The same, with `program` as the runner.
    #[must_use]
    pub fn program(mut self, program: impl Into<PathBuf>) -> Isolation {
        self.program = Some(program.into());
        self
    }

    /// Whether the plugin `name` runs isolated.
    pub fn covers(&self, name: &str) -> bool {
        match &self.plugins {
            Isolated::None => false,
            Isolated::All => true,
            Isolated::Named(names) => names.contains(name),
        }
    }
}
