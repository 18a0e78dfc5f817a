use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use abi_stable::std_types::RResult;
use arc_swap::ArcSwapOption;
use gp_core::manifest::Manifest;
use gp_core::{CallErrorKind, ExecuteFn};

use crate::events::{Event, Hub};
use crate::library::Module;
use crate::metrics::PluginMetrics;
use crate::{Context, Error};

/// What a host knows about a loaded plugin version: its manifest and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The plugin's `plugin.json`, verified against the manifest embedded in its library.
    pub manifest: Manifest,
    /// The folder its `plugin.json` and library were read from (for a package, where it was
    /// unpacked; for a `remote_git` plugin, where it was built).
    pub dir: PathBuf,
    /// What the plugin was loaded from and a watching manager follows: its plugin folder, or
    /// its `.plg` package (for a `remote_git` plugin, the folder of its `plugin.json`).
    pub origin: PathBuf,
    /// The library it was loaded from (the host runs a private copy of it; see
    /// [`Manager`](crate::Manager)).
    pub library: PathBuf,
    /// The SHA-256 of the library, in hex.
    pub sha256: String,
    /// The `gp-core` version the plugin was built against.
    pub abi_version: String,
    /// Whether the plugin has an `#[on_load]` hook.
    pub has_on_load: bool,
    /// Whether the plugin has an `#[on_unload]` hook.
    pub has_on_unload: bool,
}

impl Spec {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &semver::Version {
        &self.manifest.version
    }
}

/// How many [`Loaded`] instances of each build (by SHA-256) are alive in this process.
///
/// The dynamic loader maps a build once per process, so every instance of a build shares its
/// code *and its statics*: an unload that times out, followed by a reload of the same build,
/// gives two instances over one set of statics. The hooks therefore bracket the build's life,
/// not the instance's: `on_load` runs when the first instance appears, `on_unload` when the
/// last one goes. Each build has a mutex of its own, held while its hook runs, so two
/// managers loading the same build agree on which one runs `on_load`.
fn live_builds(sha256: &str) -> Arc<Mutex<usize>> {
    static LIVE: OnceLock<Mutex<HashMap<String, Arc<Mutex<usize>>>>> = OnceLock::new();
    let mut live = LIVE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    Arc::clone(live.entry(sha256.to_owned()).or_default())
}

/// One loaded version of a plugin.
///
/// It serves while a [`Slot`] points at it; calls in flight hold it alive after it stops
/// serving. When it goes, and it is the last live instance of its build, its `on_unload` hook
/// runs (see [`live_builds`]).
pub(crate) struct Loaded {
    pub(crate) spec: Arc<Spec>,
    execute: ExecuteFn,
    on_unload: Option<ExecuteFn>,
    /// This build's instance count; decremented once, by [`Loaded::run_unload_hook`].
    build: Arc<Mutex<usize>>,
    counted: AtomicBool,
    /// Set by an unload: calls in flight see themselves cancelled.
    pub(crate) retiring: AtomicBool,
}

/// What [`Loaded::run_unload_hook`] did.
pub(crate) enum UnloadHookRun {
    /// The plugin has no `on_unload`, or the hook had run already.
    Nothing,
    /// Another instance of the same build is still loaded: the hook waits for the last one.
    Shared,
    /// The hook ran.
    Ran(Result<(), Error>),
}

impl Loaded {
    /// Runs the plugin's `on_load` hook (if any, and if no other instance of the same build is
    /// alive) and returns the version ready to serve.
    pub(crate) fn activate(spec: Spec, module: Module) -> Result<Loaded, Error> {
        let on_load = module.on_load();
        let on_unload = module.on_unload();
        let spec = Spec {
            has_on_load: on_load.is_some(),
            has_on_unload: on_unload.is_some(),
            ..spec
        };
        let build = live_builds(&spec.sha256);
        {
            let mut instances = build.lock().unwrap_or_else(|p| p.into_inner());
            match on_load {
                Some(hook) if *instances == 0 => run_hook(&spec, "on_load", hook)?,
                Some(_) => {
                    tracing::debug!(target: "gp", plugin = spec.name(), "this build is already loaded; its on_load ran then")
                }
                None => {}
            }
            *instances += 1;
        }
        Ok(Loaded {
            spec: Arc::new(spec),
            execute: module.execute(),
            on_unload,
            build,
            counted: AtomicBool::new(true),
            retiring: AtomicBool::new(false),
        })
    }

    /// Calls the plugin.
    #[inline]
    fn call(&self, ctx: &mut Context) -> Result<(), Error> {
        let execute = self.execute;
        let outcome = crate::context::with_scope(
            ctx,
            &self.spec.manifest.name,
            Some(&self.retiring),
            |host| execute(host),
        );
        match outcome {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(error) => Err(self.call_error(ctx, error)),
        }
    }

    #[cold]
    fn call_error(&self, ctx: &Context, error: gp_core::CallError) -> Error {
        let plugin = self.spec.manifest.name.clone();
        let message = error.message.into_string();
        if error.kind == CallErrorKind::PANICKED {
            tracing::error!(target: "gp::plugin", plugin = %plugin, "plugin panicked: {message}");
            Error::Panicked { plugin, message }
        } else if ctx.is_cancelled() {
            Error::Cancelled { plugin }
        } else if ctx.is_past_deadline() {
            Error::DeadlineExceeded { plugin }
        } else if self.retiring.load(Ordering::Relaxed) {
            Error::Unloaded { plugin }
        } else {
            Error::Failed { plugin, message }
        }
    }

    /// Leaves the build's instance count, once, and runs `on_unload` if this was the last
    /// instance of the build.
    pub(crate) fn run_unload_hook(&self) -> UnloadHookRun {
        if !self.counted.swap(false, Ordering::AcqRel) {
            return UnloadHookRun::Nothing;
        }
        let mut instances = self.build.lock().unwrap_or_else(|p| p.into_inner());
        *instances = instances.saturating_sub(1);
        match self.on_unload {
            None => UnloadHookRun::Nothing,
            Some(_) if *instances > 0 => UnloadHookRun::Shared,
            Some(hook) => UnloadHookRun::Ran(run_hook(&self.spec, "on_unload", hook)),
        }
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        if let UnloadHookRun::Ran(Err(error)) = self.run_unload_hook() {
            tracing::warn!(target: "gp", plugin = self.spec.name(), "{error}");
        }
    }
}

/// Runs a lifecycle hook with an empty context (the plugin can log through it).
fn run_hook(spec: &Spec, hook: &'static str, f: ExecuteFn) -> Result<(), Error> {
    let mut ctx = Context::new();
    let outcome = crate::context::with_scope(&mut ctx, spec.name(), None, |host| f(host));
    match outcome {
        RResult::ROk(()) => Ok(()),
        RResult::RErr(error) => Err(Error::HookFailed {
            plugin: spec.name().to_owned(),
            version: spec.version().clone(),
            hook,
            panicked: error.kind == CallErrorKind::PANICKED,
            message: error.message.into_string(),
        }),
    }
}

/// A plugin's place in the registry: the version serving now (none once unloaded), and the
/// plugin's metrics across versions. [`Executor`]s point here, so an upgrade reaches them all.
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) current: ArcSwapOption<Loaded>,
    pub(crate) metrics: PluginMetrics,
    /// Whether calls are counted and timed.
    record_calls: bool,
    pub(crate) hub: Arc<Hub>,
}

impl Slot {
    pub(crate) fn new(name: String, record_calls: bool, sample: u32, hub: Arc<Hub>) -> Slot {
        Slot {
            name,
            current: ArcSwapOption::empty(),
            metrics: PluginMetrics::new(sample),
            record_calls,
            hub,
        }
    }

    /// The spec of the version serving now.
    pub(crate) fn spec(&self) -> Option<Arc<Spec>> {
        self.current.load().as_ref().map(|l| Arc::clone(&l.spec))
    }
}

/// Calls one plugin. Cheap to clone, `Send + Sync`, and callable from many threads at once:
/// a call takes no lock.
///
/// An executor follows its plugin: after an upgrade, its next call runs the new version; after
/// an unload, its calls fail with [`Error::NotFound`] (and work again if a plugin of the same
/// name is loaded later).
///
/// ```no_run
/// # fn main() -> Result<(), gp_host::Error> {
/// let manager = gp_host::Manager::new("plugins");
/// manager.load_plugins();
/// let (_spec, executor) = manager.get_plugin("sample")?;
/// let mut ctx = gp_host::Context::new();
/// ctx.set("sample", "hello");
/// executor.execute(&mut ctx)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Executor {
    slot: Arc<Slot>,
}

impl Executor {
    pub(crate) fn new(slot: Arc<Slot>) -> Executor {
        Executor { slot }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// The spec of the version serving now, or `None` if the plugin is unloaded.
    pub fn spec(&self) -> Option<Arc<Spec>> {
        self.slot.spec()
    }

    /// Calls the plugin's entry point with `ctx`, on the version serving now.
    ///
    /// A plugin that returns an error gives [`Error::Failed`]; one that panics gives
    /// [`Error::Panicked`] (the panic is caught inside the plugin, logged here, and both
    /// carry on); one that stops because `ctx` was cancelled or passed its deadline gives
    /// [`Error::Cancelled`] or [`Error::DeadlineExceeded`], and one that stops because it was
    /// unloaded meanwhile gives [`Error::Unloaded`]. If the plugin is not loaded, the call
    /// gives [`Error::NotFound`].
    #[inline]
    pub fn execute(&self, ctx: &mut Context) -> Result<(), Error> {
        let slot = &*self.slot;
        // The guard keeps this version alive until the call returns, even if it is swapped
        // out meanwhile.
        let guard = slot.current.load();
        let Some(plugin) = guard.as_deref() else {
            return Err(self.not_loaded());
        };
        if slot.hub.watches_calls() {
            return self.execute_observed(plugin, ctx);
        }
        if !slot.record_calls {
            return plugin.call(ctx);
        }
        let (recorder, start) = slot.metrics.start();
        let outcome = plugin.call(ctx);
        slot.metrics.finish(recorder, start, &outcome);
        outcome
    }

    /// [`execute`](Self::execute) with call events for subscribers.
    #[cold]
    #[inline(never)]
    fn execute_observed(&self, plugin: &Loaded, ctx: &mut Context) -> Result<(), Error> {
        let slot = &*self.slot;
        slot.hub.emit(&Event::BeforeCall {
            spec: &plugin.spec,
            ctx,
        });
        let started = slot.record_calls.then(|| slot.metrics.start());
        // The event reports a duration even for calls the metrics do not time.
        let untimed = started.as_ref().is_none_or(|(_, start)| !start.is_timed());
        let clock = untimed.then(Instant::now);
        let outcome = plugin.call(ctx);
        let timed =
            started.and_then(|(recorder, start)| slot.metrics.finish(recorder, start, &outcome));
        let duration = timed
            .or_else(|| clock.map(|c| c.elapsed()))
            .unwrap_or_default();
        slot.hub.emit(&Event::AfterCall {
            spec: &plugin.spec,
            ctx,
            outcome: &outcome,
            duration,
        });
        outcome
    }

    #[cold]
    fn not_loaded(&self) -> Error {
        Error::NotFound {
            name: self.slot.name.clone(),
        }
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.spec().map(|s| s.version().to_string());
        f.debug_struct("Executor")
            .field("plugin", &self.slot.name)
            .field("version", &version)
            .finish()
    }
}
