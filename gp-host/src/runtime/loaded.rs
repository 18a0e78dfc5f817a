//! One loaded version of a plugin: how it was opened and how it is called.
//!
//! [`Loaded`] is what a slot points at. How the version runs is an [`Instance`]: in this
//! process, a library mapped by the dynamic loader ([`InProcess`]), or in a runner process of
//! its own ([`Remote`](super::isolation::remote::Remote), feature `isolate`). Slots, executors,
//! the reaper and the manager see only `Loaded`, and the call path matches on the enum: no
//! `dyn`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::error::Error;
use crate::folder::LibraryFile;
use crate::library::{self, Module};
use crate::runtime::activity;
use crate::runtime::context::Context;
use crate::runtime::inprocess::InProcess;
pub(crate) use crate::runtime::inprocess::UnloadHookRun;
use crate::runtime::spec::Spec;
use crate::util::{lock, short_hash, write_atomically};

/// The root module of every build (by SHA-256) this process has loaded and checked.
fn loaded_modules() -> std::sync::MutexGuard<'static, HashMap<String, Module>> {
    static MODULES: OnceLock<Mutex<HashMap<String, Module>>> = OnceLock::new();
    lock(MODULES.get_or_init(Default::default))
}

/// Whether this process has loaded build `sha256` (its code stays mapped).
#[cfg(feature = "isolate")]
pub(crate) fn is_mapped(sha256: &str) -> bool {
    loaded_modules().contains_key(sha256)
}

/// A private copy of `library` for a pre-flight ahead of its load (number `n` of this
/// process's), named for this process as a load's copy is; the caller deletes it.
#[cfg(feature = "isolate")]
pub(crate) fn preflight_copy(
    library: &LibraryFile,
    runtime_dir: &Path,
    n: usize,
) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(runtime_dir).map_err(|e| Error::io(runtime_dir, e))?;
    write_copy(
        library,
        runtime_dir,
        &format!("{LOADING_TAG}{}-{n}", std::process::id()),
    )
}

/// A check of a library's private copy before this process maps it (the pre-flight in a
/// throwaway runner, when the manager asks for one): `Ok(true)` if it ran and passed,
/// `Ok(false)` if there was none.
pub(crate) type Preflight<'a> = &'a dyn Fn(&Spec, &Path) -> Result<bool, Error>;

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

/// What names an isolated version's private copy, `<stem>-<short hash>-isolated-<pid>-<n>`:
/// the process that wrote it (and removes it when the version goes), and a count of its own.
const ISOLATED_TAG: &str = "-isolated-";

/// What names an in-process load's private copy, `<stem>-<short hash>-loading-<pid>`: the
/// process that is loading it (and deletes it once mapped, unless the load took it down).
const LOADING_TAG: &str = "-loading-";

/// The process that wrote the private copy named `name` (an isolated version's, or an
/// in-process load's), if it is one: a collection removes the copy once that process is gone
/// (one killed, one a library crashed while loading, or one that exited without dropping its
/// manager, could not remove it), at the next start's first load.
pub(crate) fn isolated_copy_owner(name: &str) -> Option<u32> {
    let (_, rest) = name
        .rsplit_once(ISOLATED_TAG)
        .or_else(|| name.rsplit_once(LOADING_TAG))?;
    rest.split(['-', '.']).next()?.parse().ok()
}

/// Writes the library's private copy, loads it through abi_stable's checks, deletes the copy.
fn load_copy(
    spec: &Spec,
    library: &LibraryFile,
    runtime_dir: &Path,
    preflight: Preflight<'_>,
) -> Result<Module, Error> {
    let copy = write_copy(
        library,
        runtime_dir,
        &format!("{LOADING_TAG}{}", std::process::id()),
    )?;
    let module = preflight(spec, &copy).and_then(|passed| {
        // A crash here after a clean pre-flight says so: the two loads differed.
        let _passed = passed.then(|| {
            activity::doing(format!(
                "loading the plugin at {}, which passed pre-flight (its library's start-up code)",
                spec.origin.display()
            ))
        });
        let shown = &library.path;
        let module = activity::on_a_thread_of_its_own("gp-dlopen", || {
            library::load(&copy, shown, spec.name(), &spec.abi_version)
        });
        activity::mapped(spec.name());
        module
    });
    // The loader keeps what it mapped; the copy is no longer needed either way.
    let _ = std::fs::remove_file(&copy);
    module
}

/// One loaded version of a plugin.
///
/// It serves while a [`Slot`](crate::runtime::slot::Slot) points at it; calls in flight hold
/// it alive after it stops serving. When it goes, its instance ends (for an in-process one:
/// `on_unload` runs if it was the last live instance of its build).
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
    /// In a runner process of its own (see [`isolation`](super::isolation)).
    #[cfg(feature = "isolate")]
    Isolated(Box<super::isolation::remote::Remote>),
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
        isolation: Arc<super::isolation::Isolation>,
    ) -> Result<Loaded, Error> {
        use super::isolation::protocol::{Open, Purpose};
        use super::isolation::remote::Remote;
        std::fs::create_dir_all(runtime_dir).map_err(|e| Error::io(runtime_dir, e))?;
        // Its own name: an in-process load of the same build deletes its copy once mapped.
        static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let tag = format!(
            "{ISOLATED_TAG}{}-{}",
            std::process::id(),
            COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let copy = write_copy(library, runtime_dir, &tag)?;
        let purpose = Purpose::Serve {
            hook_timeout,
            spin: isolation.spin,
        };
        let open = Open::new(&spec, &copy, purpose);
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
    pub(crate) fn isolation(&self) -> Option<super::isolation::IsolationStatus> {
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

    /// Runs the plugin's `on_load` hook (if any, and if no other instance of the same build is
    /// alive) and returns the version ready to serve.
    fn activate(spec: Spec, module: Module, hook_timeout: Duration) -> Result<Loaded, Error> {
        let (spec, instance) = InProcess::activate(spec, module, hook_timeout)?;
        Ok(Loaded {
            spec: Arc::new(spec),
            instance: Instance::InProcess(instance),
            retiring: Arc::default(),
            hook_timeout,
        })
    }

    /// Calls the plugin. The error is boxed so that a successful call returns one word: the
    /// whole [`Error`] is over a hundred bytes, and moving it through the call path's
    /// closures cost a few nanoseconds a call even when nothing failed.
    #[inline(always)]
    pub(crate) fn call(&self, ctx: &mut Context) -> Result<(), Box<Error>> {
        match &self.instance {
            #[cfg(feature = "isolate")]
            Instance::Isolated(remote) => remote.call(ctx, &self.retiring),
            Instance::InProcess(instance) => instance.call(&self.spec, ctx, &self.retiring),
        }
    }

    /// Calls the plugin once for each context, in order: isolated, as one batch (see
    /// `Remote::call_many`); in process, one call after another.
    #[cfg_attr(not(all(feature = "http", feature = "isolate")), allow(dead_code))]
    pub(crate) fn call_many(&self, ctxs: &mut [&mut Context]) -> Vec<Result<(), Box<Error>>> {
        match &self.instance {
            #[cfg(feature = "isolate")]
            Instance::Isolated(remote) => remote.call_many(ctxs, &self.retiring),
            Instance::InProcess(instance) => ctxs
                .iter_mut()
                .map(|ctx| instance.call(&self.spec, ctx, &self.retiring))
                .collect(),
        }
    }

    /// Ends the version's instance: runs `on_unload` where it should run (in process: if this
    /// was the last live instance of its build; isolated: in the runner, which then exits).
    pub(crate) fn run_unload_hook(&self) -> UnloadHookRun {
        match &self.instance {
            Instance::InProcess(instance) => instance.run_unload_hook(&self.spec),
            #[cfg(feature = "isolate")]
            Instance::Isolated(remote) => match remote.unload(self.hook_timeout) {
                Some(Err(error)) => UnloadHookRun::Ran(Err(error)),
                Some(Ok(())) if self.spec.has_on_unload => UnloadHookRun::Ran(Ok(())),
                _ => UnloadHookRun::Nothing,
            },
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
