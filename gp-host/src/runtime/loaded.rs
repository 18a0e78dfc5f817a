//! One loaded version of a plugin: how it was opened, how it is called, and its lifecycle
//! hooks.
//!
//! [`Loaded`] is what a slot points at. How the version runs is an [`Instance`]: today always
//! in this process, a library mapped by the dynamic loader; an out-of-process runner becomes
//! another variant here, with no change to slots, executors or the registry, and no `dyn` on
//! the call path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use abi_stable::std_types::RResult;
use gp_core::{CallErrorKind, ExecuteFn};

use crate::error::Error;
use crate::folder::LibraryFile;
use crate::library::{self, Module};
use crate::runtime::activity;
use crate::runtime::context::{self, Context};
use crate::runtime::spec::Spec;
use crate::util::{bounded, short_hash, write_atomically, MAX_PLUGIN_MESSAGE};

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

/// Builds (by SHA-256) whose hook ran past its timeout and has not returned, with that hook.
/// Their statics may be mid-change: no instance of them is made until the hook returns.
fn quarantine() -> std::sync::MutexGuard<'static, HashMap<String, &'static str>> {
    static QUARANTINE: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    QUARANTINE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn refuse_quarantined(spec: &Spec) -> Result<(), Error> {
    match quarantine().get(&spec.sha256) {
        Some(hook) => Err(Error::Quarantined {
            plugin: spec.name().to_owned(),
            path: spec.origin.clone(),
            hook,
        }),
        None => Ok(()),
    }
}

/// The root module of every build (by SHA-256) this process has loaded and checked.
fn loaded_modules() -> std::sync::MutexGuard<'static, HashMap<String, Module>> {
    static MODULES: OnceLock<Mutex<HashMap<String, Module>>> = OnceLock::new();
    MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// A check of a library's private copy before this process maps it (the pre-flight in a
/// throwaway runner, when the manager asks for one).
pub(crate) type Preflight<'a> = &'a dyn Fn(&Spec, &Path) -> Result<(), Error>;

/// Writes `library`'s private copy into `runtime_dir` as `<stem>-<short hash><tag>.<ext>`
/// (content-addressed, so that the dynamic loader, which caches libraries by path, maps each
/// build under a name of its own); returns its path.
fn write_copy(library: &LibraryFile, runtime_dir: &Path, tag: &str) -> Result<PathBuf, Error> {
    let stem = library
        .path
        .file_stem()
        .map_or_else(|| "plugin".into(), |s| s.to_string_lossy());
    let extension = library
        .path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let copy = runtime_dir.join(format!(
        "{stem}-{}{tag}{extension}",
        short_hash(&library.sha256)
    ));
    let data = library.data()?;
    write_atomically(&copy, |tmp| std::fs::write(tmp, data))?;
    Ok(copy)
}

/// Writes the library's private copy, loads it through abi_stable's checks, deletes the copy.
fn load_copy(
    spec: &Spec,
    library: &LibraryFile,
    runtime_dir: &Path,
    preflight: Preflight<'_>,
) -> Result<Module, Error> {
    let copy = write_copy(library, runtime_dir, "")?;
    let module = preflight(spec, &copy)
        .and_then(|()| library::load(&copy, &library.path, spec.name(), &spec.abi_version));
    // The loader keeps what it mapped; the copy is no longer needed either way.
    let _ = std::fs::remove_file(&copy);
    module
}

/// One loaded version of a plugin.
///
/// It serves while a [`Slot`](crate::runtime::slot::Slot) points at it; calls in flight hold
/// it alive after it stops serving. When it goes, its instance ends (for an in-process one:
/// `on_unload` runs if it was the last live instance of its build; see [`live_builds`]).
pub(crate) struct Loaded {
    pub(crate) spec: Arc<Spec>,
    instance: Instance,
    /// Set by an unload: calls in flight see themselves cancelled.
    pub(crate) retiring: Arc<AtomicBool>,
    /// How long its hooks may run.
    #[cfg_attr(not(feature = "isolate"), allow(dead_code))]
    hook_timeout: Duration,
}

/// How a loaded version runs.
pub(crate) enum Instance {
    /// Mapped into this process: a call is a function call.
    InProcess(InProcess),
    /// In a runner process of its own (see [`isolated`](super::isolated)).
    #[cfg(feature = "isolate")]
    Isolated(Box<super::isolated::remote::Remote>),
}

/// A version mapped into this process by the dynamic loader.
pub(crate) struct InProcess {
    execute: ExecuteFn,
    /// The plugin's name, interned: what the host's services say is calling.
    name: &'static context::PluginName,
    on_unload: Option<ExecuteFn>,
    /// This build's instance count; decremented once, by [`Loaded::run_unload_hook`].
    build: Arc<Mutex<usize>>,
    counted: AtomicBool,
    /// How long `on_unload` may run before it is abandoned.
    hook_timeout: Duration,
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
    /// Copies the library to its content-addressed path in `runtime_dir`, loads the copy
    /// through abi_stable's checks, and runs the plugin's `on_load` hook.
    ///
    /// The dynamic loader caches libraries by path, so each build needs a path of its own,
    /// and a build tool that overwrites the original in place cannot corrupt the running
    /// code. The copy is deleted once loaded (the loaded code stays mapped). A build this
    /// process has already loaded and checked is not copied or checked again: its code is
    /// still mapped (libraries are never unloaded), and its root module is reused.
    pub(crate) fn open(
        spec: Spec,
        library: &LibraryFile,
        runtime_dir: &Path,
        hook_timeout: Duration,
        preflight: Preflight<'_>,
    ) -> Result<Loaded, Error> {
        // Made even when not needed: a manager's runtime directory exists once it loads.
        std::fs::create_dir_all(runtime_dir).map_err(|e| Error::io(runtime_dir, e))?;
        // A crash in the library's start-up code or its on_load names the folder.
        let _loading = activity::doing(format!(
            "loading the plugin at {} (its library's start-up code or on_load)",
            spec.origin.display()
        ));
        let known = loaded_modules().get(&library.sha256).copied();
        let module = match known {
            Some(module) => module,
            None => {
                let module = load_copy(&spec, library, runtime_dir, preflight)?;
                loaded_modules().insert(library.sha256.clone(), module);
                module
            }
        };
        Loaded::activate(spec, module, hook_timeout)
    }

    /// Starts a runner process for the library, which loads it with the same checks and runs
    /// `on_load` there; the version is ready to serve once it answered. The library's private
    /// copy stays for the version's life: a runner that crashed loads it again.
    #[cfg(feature = "isolate")]
    pub(crate) fn open_isolated(
        spec: Spec,
        library: &LibraryFile,
        runtime_dir: &Path,
        hook_timeout: Duration,
        isolation: Arc<super::isolated::Isolation>,
    ) -> Result<Loaded, Error> {
        use super::isolated::{protocol::Open, remote::Remote};
        std::fs::create_dir_all(runtime_dir).map_err(|e| Error::io(runtime_dir, e))?;
        // Its own name: an in-process load of the same build deletes its copy once mapped.
        static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tag = format!(
            "-isolated-{}-{}",
            std::process::id(),
            COPIES.fetch_add(1, Ordering::Relaxed)
        );
        let copy = write_copy(library, runtime_dir, &tag)?;
        let open = Open::new(&spec, &copy, hook_timeout, false, isolation.spin);
        let (remote, opened) = match Remote::start(&spec, open, isolation) {
            Ok(started) => started,
            Err(error) => {
                let _ = std::fs::remove_file(&copy);
                return Err(error);
            }
        };
        Ok(Loaded {
            spec: Arc::new(Spec {
                has_on_load: opened.has_on_load,
                has_on_unload: opened.has_on_unload,
                ..spec
            }),
            instance: Instance::Isolated(Box::new(remote)),
            retiring: Arc::default(),
            hook_timeout,
        })
    }

    /// How this version's runner is doing, if it runs isolated.
    #[cfg(feature = "isolate")]
    pub(crate) fn isolation(&self) -> Option<super::isolated::IsolationStatus> {
        match &self.instance {
            Instance::InProcess(_) => None,
            Instance::Isolated(remote) => Some(remote.status()),
        }
    }

    /// The bare round trip to an isolated version's runner (for benchmarks).
    #[cfg(feature = "isolate")]
    pub(crate) fn ping(&self) -> Option<Result<(), Error>> {
        match &self.instance {
            Instance::InProcess(_) => None,
            Instance::Isolated(remote) => Some(remote.ping()),
        }
    }

    #[cfg(feature = "isolate")]
    fn hook_timeout(&self) -> Duration {
        self.hook_timeout
    }

    /// Runs the plugin's `on_load` hook (if any, and if no other instance of the same build is
    /// alive) and returns the version ready to serve.
    pub(crate) fn activate(
        spec: Spec,
        module: Module,
        hook_timeout: Duration,
    ) -> Result<Loaded, Error> {
        refuse_quarantined(&spec)?;
        // Before any of the plugin's code runs in a call or hook.
        module.bind_host(context::SERVICES);
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
            // Again under the build's lock: a load that waited for it may find the build
            // quarantined by the one that held it.
            refuse_quarantined(&spec)?;
            match on_load {
                Some(hook) if *instances == 0 => {
                    run_hook_bounded(&spec, "on_load", hook, hook_timeout)?
                }
                Some(_) => {
                    tracing::debug!(target: "gp", plugin = spec.name(), "this build is already loaded; its on_load ran then")
                }
                None => {}
            }
            *instances += 1;
        }
        let name = context::PluginName::intern(spec.name());
        Ok(Loaded {
            spec: Arc::new(spec),
            instance: Instance::InProcess(InProcess {
                execute: module.execute(),
                name,
                on_unload,
                build,
                counted: AtomicBool::new(true),
                hook_timeout,
            }),
            retiring: Arc::default(),
            hook_timeout,
        })
    }

    /// Calls the plugin. The error is boxed so that a successful call returns one word: the
    /// whole [`Error`] is over a hundred bytes, and moving it through the call path's
    /// closures cost a few nanoseconds a call even when nothing failed.
    #[inline(always)]
    pub(crate) fn call(&self, ctx: &mut Context) -> Result<(), Box<Error>> {
        let outcome = match &self.instance {
            #[cfg(feature = "isolate")]
            Instance::Isolated(remote) => return remote.call(ctx, &self.retiring),
            Instance::InProcess(instance) => {
                let execute = instance.execute;
                context::with_scope(ctx, instance.name, Some(&*self.retiring), |host| {
                    execute(host)
                })
            }
        };
        match outcome {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(error) => Err(self.call_error(ctx, error)),
        }
    }

    #[cold]
    fn call_error(&self, ctx: &Context, error: gp_core::CallError) -> Box<Error> {
        let plugin = self.spec.manifest.name.clone();
        let message = bounded(error.message.into_string(), MAX_PLUGIN_MESSAGE);
        if error.kind == CallErrorKind::PANICKED {
            tracing::error!(target: "gp::plugin", plugin = %plugin, "plugin panicked: {message}");
            Box::new(Error::Panicked { plugin, message })
        } else if ctx.is_cancelled() {
            Box::new(Error::Cancelled { plugin })
        } else if ctx.is_past_deadline() {
            Box::new(Error::DeadlineExceeded { plugin })
        } else if self.retiring.load(Ordering::Relaxed) {
            Box::new(Error::Unloaded { plugin })
        } else {
            Box::new(Error::Failed { plugin, message })
        }
    }

    /// Leaves the build's instance count, once, and runs `on_unload` if this was the last
    /// instance of the build.
    pub(crate) fn run_unload_hook(&self) -> UnloadHookRun {
        #[allow(clippy::infallible_destructuring_match)] // one variant without `isolate`
        let instance = match &self.instance {
            Instance::InProcess(instance) => instance,
            #[cfg(feature = "isolate")]
            Instance::Isolated(remote) => {
                return match remote.unload(self.hook_timeout()) {
                    Some(Err(error)) => UnloadHookRun::Ran(Err(error)),
                    Some(Ok(())) if self.spec.has_on_unload => UnloadHookRun::Ran(Ok(())),
                    _ => UnloadHookRun::Nothing,
                };
            }
        };
        if !instance.counted.swap(false, Ordering::AcqRel) {
            return UnloadHookRun::Nothing;
        }
        let mut instances = instance.build.lock().unwrap_or_else(|p| p.into_inner());
        *instances = instances.saturating_sub(1);
        match instance.on_unload {
            None => UnloadHookRun::Nothing,
            Some(_) if *instances > 0 => UnloadHookRun::Shared,
            Some(hook) => UnloadHookRun::Ran(run_hook_bounded(
                &self.spec,
                "on_unload",
                hook,
                instance.hook_timeout,
            )),
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

/// Runs a lifecycle hook on a thread of its own and waits at most `timeout` for it. A hook
/// that does not return in time is abandoned (a thread cannot be stopped): the call gives
/// [`Error::HookTimedOut`], and the build is quarantined until the hook returns, since its
/// statics may be mid-change.
fn run_hook_bounded(
    spec: &Spec,
    hook: &'static str,
    f: ExecuteFn,
    timeout: Duration,
) -> Result<(), Error> {
    let (done, outcome) = std::sync::mpsc::channel();
    let owned = spec.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("gp-{hook}"))
        .spawn(move || {
            let started = std::time::Instant::now();
            let result = run_hook(&owned, hook, f);
            if done.send(result).is_err() {
                // Abandoned: nobody waits for the result any more. The build may load again.
                quarantine().remove(&owned.sha256);
                tracing::warn!(target: "gp", plugin = owned.name(), "its {hook} returned after {:?}, past its timeout; the build is no longer quarantined", started.elapsed());
            }
        });
    let Ok(_thread) = spawned else {
        // No thread to spare: run it here, unbounded, rather than not at all.
        return run_hook(spec, hook, f);
    };
    match outcome.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => {
            // Quarantined while the receiver is still alive: the hook's thread sees the send
            // fail, and lifts it, only after this (the receiver drops on return).
            quarantine().insert(spec.sha256.clone(), hook);
            if let Ok(result) = outcome.try_recv() {
                // It returned in between: nothing to quarantine after all.
                quarantine().remove(&spec.sha256);
                return result;
            }
            tracing::error!(target: "gp", plugin = spec.name(), "its {hook} did not return within {timeout:?}: abandoned, build quarantined");
            Err(Error::HookTimedOut {
                plugin: spec.name().to_owned(),
                version: spec.version().clone(),
                hook,
                timeout,
            })
        }
    }
}

/// Runs a lifecycle hook with an empty context (the plugin can log through it).
fn run_hook(spec: &Spec, hook: &'static str, f: ExecuteFn) -> Result<(), Error> {
    let _running = activity::doing(format!("running plugin `{}`'s {hook}", spec.name()));
    let mut ctx = Context::new();
    let plugin = context::PluginName::intern(spec.name());
    let outcome = context::with_scope(&mut ctx, plugin, None, |host| f(host));
    match outcome {
        RResult::ROk(()) => Ok(()),
        RResult::RErr(error) => Err(Error::HookFailed {
            plugin: spec.name().to_owned(),
            version: spec.version().clone(),
            hook,
            panicked: error.kind == CallErrorKind::PANICKED,
            message: bounded(error.message.into_string(), MAX_PLUGIN_MESSAGE),
        }),
    }
}

/// [`verify`](crate::verify)s a library and hands it this host's services, as a
/// [`Manager`](crate::Manager) does when it loads one: for benchmarks that call a library's
/// functions directly and must measure the plugin as a host runs it. Not part of the stable
/// API.
#[doc(hidden)]
pub fn __bind_host(path: &std::path::Path) -> Result<(), Error> {
    let (_, module) = crate::library::verified(path)?;
    module.bind_host(context::SERVICES);
    Ok(())
}
