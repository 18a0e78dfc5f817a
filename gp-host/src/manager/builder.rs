//! Configuring a [`Manager`]: every setting, its default, and the constants behind them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::build::BuildOptions;
use crate::manager::gc::{self, GcOptions};
use crate::manager::{Inner, Manager};
use crate::metrics::recorder::DEFAULT_LATENCY_SAMPLING;
use crate::runtime::events::Subscribers;
use crate::runtime::reaper::Reaper;
#[cfg(feature = "package")]
use crate::source::package::{Limits, Trust};

/// The plugin base directory a [`Manager::default`] uses: `plugins`, relative to the working
/// directory (as in the original go-plugin).
pub const DEFAULT_BASE_DIR: &str = "plugins";

/// The folder, inside the base directory, where a manager keeps the private copies of the
/// libraries it loads, unless [`ManagerBuilder::runtime_dir`] says otherwise. Hidden, so it
/// is never taken for a plugin folder.
pub const DEFAULT_RUNTIME_DIR: &str = ".gp-runtime";

/// How long [`Manager::unload`] waits for calls in flight, unless
/// [`ManagerBuilder::drain_timeout`] says otherwise.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a lifecycle hook (`on_load`, `on_unload`) may run, unless
/// [`ManagerBuilder::hook_timeout`] says otherwise.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Configures a [`Manager`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` makes the manager"]
pub struct ManagerBuilder {
    pub(crate) base_dir: PathBuf,
    pub(crate) runtime_dir: Option<PathBuf>,
    pub(crate) drain_timeout: Duration,
    pub(crate) hook_timeout: Duration,
    pub(crate) metrics: bool,
    pub(crate) latency_sampling: u32,
    #[cfg(feature = "package")]
    pub(crate) trust: Trust,
    #[cfg(feature = "package")]
    pub(crate) limits: Limits,
    pub(crate) git_build: BuildOptions,
    pub(crate) remote_git: bool,
    pub(crate) reload_same_version: bool,
    pub(crate) gc: Option<GcOptions>,
    #[cfg(feature = "isolate")]
    pub(crate) isolation: Arc<crate::runtime::isolation::Isolation>,
    /// Set by [`ManagerBuilder::preflight`]; else decided by [`ManagerBuilder::build`].
    #[cfg(feature = "isolate")]
    pub(crate) preflight: Option<bool>,
    #[cfg(feature = "isolate")]
    pub(crate) isolated:
        std::collections::BTreeMap<String, Arc<crate::runtime::isolation::Isolation>>,
    /// Plugins the host cannot do without (`require`).
    pub(crate) required: Vec<String>,
}

impl Manager {
    /// A manager over the plugin base directory `base_dir`, with default settings. Nothing is
    /// read until [`load_plugins`](Self::load_plugins).
    pub fn new(base_dir: impl Into<PathBuf>) -> Manager {
        Manager::builder(base_dir).build()
    }

    /// A manager over `base_dir`, configured.
    pub fn builder(base_dir: impl Into<PathBuf>) -> ManagerBuilder {
        ManagerBuilder {
            base_dir: base_dir.into(),
            runtime_dir: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            hook_timeout: DEFAULT_HOOK_TIMEOUT,
            metrics: true,
            latency_sampling: DEFAULT_LATENCY_SAMPLING,
            #[cfg(feature = "package")]
            trust: Trust::default(),
            #[cfg(feature = "package")]
            limits: Limits::default(),
            git_build: BuildOptions {
                release: true,
                target_dir: None,
                quiet: true,
            },
            remote_git: cfg!(feature = "git"),
            reload_same_version: false,
            gc: Some(GcOptions::default()),
            required: Vec::new(),
            #[cfg(feature = "isolate")]
            isolation: Arc::default(),
            #[cfg(feature = "isolate")]
            preflight: None,
            #[cfg(feature = "isolate")]
            isolated: Default::default(),
        }
    }
}

impl Default for Manager {
    /// A manager over [`DEFAULT_BASE_DIR`].
    fn default() -> Manager {
        Manager::new(DEFAULT_BASE_DIR)
    }
}

impl ManagerBuilder {
    /// Whether to build `remote_git` plugins (default: yes; feature `git`). Off, such a
    /// plugin is reported as [`Error::NeedsBuild`](crate::Error::NeedsBuild): building runs
    /// the repository's code with the host's rights. Without the feature, a host never builds
    /// them.
    #[cfg(feature = "git")]
    pub fn remote_git(mut self, build: bool) -> Self {
        self.remote_git = build;
        self
    }

    /// How `remote_git` plugins are built (default: release, cargo's output captured, a
    /// target dir per repository in the runtime directory; feature `git`).
    ///
    /// A `target_dir` shared between repositories is faster but only safe if their plugin
    /// crates have different package names: cargo identifies a workspace's root package by
    /// its name and its path relative to the workspace, so two repositories holding a package
    /// of the same name would share, and silently reuse, one build.
    #[cfg(feature = "git")]
    pub fn git_build(mut self, options: BuildOptions) -> Self {
        self.git_build = options;
        self
    }

    /// Which package signatures to accept (default: any package whose checksums hold,
    /// signed or not). See [`Trust`].
    #[cfg(feature = "package")]
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// How large a package may be once unpacked (default [`Limits::default`]).
    #[cfg(feature = "package")]
    pub fn package_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether a build whose version is the one running, but whose library or `plugin.json`
    /// differs, is upgraded to like a newer version (default: no, such an upgrade is refused
    /// with [`Error::SameVersion`](crate::Error::SameVersion)). On, editing a plugin and
    /// rebuilding it into a watched folder shows the change without a version bump: the
    /// plugin author's loop (`gp serve --watch --dev`). Lower versions stay refused unless the
    /// upgrade is forced.
    pub fn reload_same_version(mut self, reload: bool) -> Self {
        self.reload_same_version = reload;
        self
    }

    /// Whether and how the manager collects its runtime directory on its own (default:
    /// [`GcOptions::default`], after each load and upgrade from a package or a git build and
    /// every 10 minutes; `None`: only when [`Manager::gc`] is called, with the default
    /// options).
    pub fn gc(mut self, options: Option<GcOptions>) -> Self {
        self.gc = options;
        self
    }

    /// Where the private copies of loaded libraries go (default: [`DEFAULT_RUNTIME_DIR`]
    /// inside the base directory). Use a writable directory if the base directory is not.
    pub fn runtime_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runtime_dir = Some(dir.into());
        self
    }

    /// How long a lifecycle hook (`on_load`, `on_unload`) may run (default
    /// [`DEFAULT_HOOK_TIMEOUT`]). Past it the hook is abandoned on its thread: an `on_load`
    /// refuses the load with [`Error::HookTimedOut`](crate::Error::HookTimedOut), and until
    /// the hook returns its build is refused with
    /// [`Error::Quarantined`](crate::Error::Quarantined).
    pub fn hook_timeout(mut self, timeout: Duration) -> Self {
        self.hook_timeout = timeout;
        self
    }

    /// How long [`Manager::unload`] and the watcher wait for calls in flight (default
    /// [`DEFAULT_DRAIN_TIMEOUT`]).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Whether to count calls and time them (default: on). Off, [`Manager::stats`] still
    /// counts loads, upgrades and unloads, and calls cost a few nanoseconds less.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Time one call in `every` (default [`DEFAULT_LATENCY_SAMPLING`], 64), and the first call
    /// of each thread in each second; 1 times every call. Calls, errors and panics are always
    /// all counted; the latency histogram holds the timed calls only.
    ///
    /// Timing a call reads the CPU's time-stamp counter twice, which costs more than the rest
    /// of a call (see `benches/README.md`); one in 64 makes it a fraction of a nanosecond. The
    /// error sampling adds is that of a quantile of the samples: with `n` timed calls in a
    /// window, the p99's rank is off by about `sqrt(0.0099 / n)` (±0.1 percentile points at
    /// 10,000 calls a second over a minute, which is below the histogram's 12.5% bucket
    /// width), the p50's by `sqrt(0.25 / n)`. A plugin called a few times a second gets about
    /// one sample a second per calling thread: enough for its median, not for its p99.
    pub fn latency_sampling(mut self, every: u32) -> Self {
        self.latency_sampling = every.max(1);
        self
    }

    /// Which plugins run isolated, each in a runner process of its own, and with which limits
    /// (default: none; see [`Isolation`](crate::isolation::Isolation)). The program must call
    /// [`run_if_runner`](crate::isolation::run_if_runner) first thing in `main`, unless
    /// [`Isolation::program`](crate::isolation::Isolation::program) names another runner.
    #[cfg(feature = "isolate")]
    pub fn isolation(mut self, isolation: crate::isolation::Isolation) -> Self {
        self.isolation = Arc::new(isolation);
        self
    }

    /// Runs plugin `name` isolated with settings of its own (its limits, its `spin`, ...),
    /// whatever [`isolation`](Self::isolation) says of the others; `isolation.plugins` is not
    /// read here. For example a tighter memory limit for one plugin:
    ///
    /// ```
    /// use gp_host::isolation::Isolation;
    /// let manager = gp_host::Manager::builder("plugins")
    ///     .isolation(Isolation::all())
    ///     .isolate("resizer", Isolation { memory_limit: Some(512 << 20), ..Isolation::default() })
    ///     .build();
    /// ```
    #[cfg(feature = "isolate")]
    pub fn isolate(
        mut self,
        name: impl Into<String>,
        isolation: crate::isolation::Isolation,
    ) -> Self {
        self.isolated.insert(name.into(), Arc::new(isolation));
        self
    }

    /// Whether a build this process has not loaded yet is first loaded in a throwaway runner
    /// process before this one maps it. Default: yes where a runner can be had, that is when
    /// this process called [`run_if_runner`](crate::isolation::run_if_runner) (before building
    /// the manager) or the isolation names a runner with
    /// [`Isolation::program`](crate::isolation::Isolation::program); no otherwise (a test
    /// binary compiled with the feature is no runner). `preflight(false)` opts out. The
    /// runner exits through the library's finalisers as this process would at its exit, so
    /// a library that crashes at exit is refused too. The dynamic loader and abi_stable's
    /// layout check run the library's start-up code and read its data before any check of
    /// gp's can: a corrupted or hostile library can crash there, and in process that is the
    /// host. With pre-flight on, such a build is refused with
    /// [`Error::Preflight`](crate::Error::Preflight) naming the signal, and the plugins beside it load
    /// as usual. Each build (by SHA-256) is checked once per process; it costs a process
    /// start and a `dlopen` (a few milliseconds, see `benches/README.md`). The runner is
    /// [`Isolation::program`](crate::isolation::Isolation::program) (default: this program,
    /// which must call [`run_if_runner`](crate::isolation::run_if_runner)). `gp` has it on
    /// unless `--no-preflight`.
    #[cfg(feature = "isolate")]
    pub fn preflight(mut self, on: bool) -> Self {
        self.preflight = Some(on);
        self
    }

    /// The manager. Nothing is read until [`Manager::load_plugins`].
    #[cfg_attr(not(feature = "isolate"), allow(unused_mut))]
    pub fn build(mut self) -> Manager {
        #[cfg(feature = "isolate")]
        if self.preflight.is_none() {
            self.preflight = Some(
                crate::runtime::isolation::runner::called() || self.isolation.program.is_some(),
            );
        }
        let runtime_dir = self
            .runtime_dir
            .clone()
            .unwrap_or_else(|| self.base_dir.join(DEFAULT_RUNTIME_DIR));
        let interval = self.gc.and_then(|gc| gc.interval);
        let inner = Arc::new(Inner {
            config: self,
            runtime_dir,
            slots: RwLock::new(Default::default()),
            subscribers: Arc::new(Subscribers::default()),
            changes: Mutex::new(()),
            installs: Mutex::new(()),
            turns: Default::default(),
            origins: Mutex::new(Default::default()),
            kept_versions: Mutex::new(Default::default()),
            reaper: Reaper::start(),
            admissions: Default::default(),
            loading: Default::default(),
            loads_stopped: Default::default(),
            first_load_done: Default::default(),
            refusals: Default::default(),
        });
        if let Some(interval) = interval {
            gc::schedule(Arc::downgrade(&inner), interval);
        }
        Manager { inner }
    }
}
