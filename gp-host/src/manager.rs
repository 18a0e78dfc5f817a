use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use gp_core::manifest::{Manifest, SourceMode};
use sha2::{Digest, Sha256};

use crate::events::{Event, Hub, SubscriptionId};
use crate::executor::{Executor, Loaded, Slot, Spec, UnloadHookRun};
use crate::metrics::{ManagerCollector, PluginStats};
use crate::package::{Limits, Trust};
use crate::watch::{WatchOptions, Watcher};
use crate::{library, Error};

/// The plugin base directory a [`Manager::default`] uses: `plugins`, relative to the working
/// directory (as in the original go-plugin).
pub const DEFAULT_BASE_DIR: &str = "plugins";

/// The name of a plugin's manifest file inside its folder.
pub const MANIFEST_FILE: &str = "plugin.json";

/// The folder, inside the base directory, where a manager keeps the private copies of the
/// libraries it loads, unless [`ManagerBuilder::runtime_dir`] says otherwise. Hidden, so it
/// is never taken for a plugin folder.
pub const DEFAULT_RUNTIME_DIR: &str = ".gp-runtime";

/// How long [`Manager::unload`] waits for calls in flight, unless
/// [`ManagerBuilder::drain_timeout`] says otherwise.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Discovers, verifies, loads, upgrades, unloads and hands out plugins.
///
/// Plugins live in a base directory, one folder each: `BASE/<folder>/plugin.json` plus the
/// library its `source.path` names, relative to that folder.
///
/// ```no_run
/// use gp_host::{Context, Manager};
///
/// let manager = Manager::new("plugins");
/// let report = manager.load_plugins();
/// for failure in &report.failed {
///     eprintln!("{}", failure.error); // one bad plugin never stops the others
/// }
/// let (spec, executor) = manager.get_plugin("sample")?;
/// println!("plugin '{}' loaded with version '{}'", spec.name(), spec.version());
/// let mut ctx = Context::new();
/// ctx.set("sample", "hello gp");
/// executor.execute(&mut ctx)?;
/// # Ok::<(), gp_host::Error>(())
/// ```
///
/// # Loading, upgrading, unloading
///
/// - A library is never opened where it lies: the manager copies it to
///   `runtime_dir/<file stem>-<sha256 prefix><suffix>` and loads the copy. The dynamic loader
///   caches libraries by path, so each build needs a path of its own, and a build tool that
///   overwrites the original in place cannot corrupt the running code. The copy is deleted
///   once loaded (the loaded code stays mapped).
/// - [`upgrade`](Self::upgrade) verifies the new version completely (file, manifest, name,
///   version, layout, `on_load`) before it swaps it in atomically. Calls already running
///   finish on the old version; every call that starts after the swap runs the new one. The
///   old version's `on_unload` runs when its last call has returned.
/// - [`unload`](Self::unload) removes the plugin at once, cancels its calls in flight
///   (`ctx.is_cancelled()` turns true in the plugin), waits for them, then runs `on_unload`.
///
/// Loaded code is never unmapped: abi_stable never closes a library, because values and
/// vtables a plugin created may still be referenced. An unloaded or replaced version stops
/// being callable, but its code and statics stay in memory until the process exits, and
/// loading the very same build again reuses them (its statics keep their values). The
/// original go-plugin has the same limit.
///
/// A `Manager` is a handle: clones share the same plugins.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    base_dir: PathBuf,
    runtime_dir: PathBuf,
    drain_timeout: Duration,
    record_calls: bool,
    latency_sampling: u32,
    trust: Trust,
    limits: Limits,
    git_build: crate::build::BuildOptions,
    remote_git: bool,
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    hub: Arc<Hub>,
    /// Held by every change to the registry (load, upgrade, unload), never by calls.
    changes: Mutex<()>,
    reaper: Reaper,
}

/// Configures a [`Manager`].
#[derive(Debug, Clone)]
pub struct ManagerBuilder {
    base_dir: PathBuf,
    runtime_dir: Option<PathBuf>,
    drain_timeout: Duration,
    metrics: bool,
    latency_sampling: u32,
    trust: Trust,
    limits: Limits,
    git_build: crate::build::BuildOptions,
    remote_git: bool,
}

impl ManagerBuilder {
    /// Whether to build `remote_git` plugins (default: yes when gp-host is compiled with its
    /// `git` feature, which it must be for `true` to matter). Off, such a plugin is reported
    /// as [`Error::NeedsBuild`]: building runs the repository's code with the host's rights.
    pub fn remote_git(mut self, build: bool) -> Self {
        self.remote_git = build;
        self
    }

    /// How `remote_git` plugins are built (default: release, cargo's output captured, a
    /// target dir per repository in the runtime directory). Needs the `git` feature to matter.
    ///
    /// A `target_dir` shared between repositories is faster but only safe if their plugin
    /// crates have different package names: cargo identifies a workspace's root package by
    /// its name and its path relative to the workspace, so two repositories holding a package
    /// of the same name would share, and silently reuse, one build.
    pub fn git_build(mut self, options: crate::build::BuildOptions) -> Self {
        self.git_build = options;
        self
    }

    /// Which package signatures to accept (default: any package whose checksums hold,
    /// signed or not). See [`Trust`].
    pub fn trust(mut self, trust: Trust) -> Self {
        self.trust = trust;
        self
    }

    /// How large a package may be once unpacked (default [`Limits::default`]).
    pub fn package_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Where the private copies of loaded libraries go (default: [`DEFAULT_RUNTIME_DIR`]
    /// inside the base directory). Use a writable directory if the base directory is not.
    pub fn runtime_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runtime_dir = Some(dir.into());
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

    /// Time one call in `every` per thread instead of every call (rounded up to a power of
    /// two; default 1). Calls, errors and panics are still all counted; the latency
    /// histogram holds the timed calls only. Timing a call reads the CPU's time-stamp counter
    /// twice, which is most of what metrics cost a call (see `benches/README.md`).
    pub fn latency_sampling(mut self, every: u32) -> Self {
        self.latency_sampling = every.max(1);
        self
    }

    /// The manager. Nothing is read until [`Manager::load_plugins`].
    pub fn build(self) -> Manager {
        let runtime_dir = self
            .runtime_dir
            .unwrap_or_else(|| self.base_dir.join(DEFAULT_RUNTIME_DIR));
        Manager {
            inner: Arc::new(Inner {
                base_dir: self.base_dir,
                runtime_dir,
                drain_timeout: self.drain_timeout,
                record_calls: self.metrics,
                latency_sampling: self.latency_sampling,
                trust: self.trust,
                limits: self.limits,
                git_build: self.git_build,
                remote_git: self.remote_git,
                slots: RwLock::new(BTreeMap::new()),
                hub: Arc::new(Hub::default()),
                changes: Mutex::new(()),
                reaper: Reaper::start(),
            }),
        }
    }
}

impl Default for Manager {
    /// A manager over [`DEFAULT_BASE_DIR`].
    fn default() -> Manager {
        Manager::new(DEFAULT_BASE_DIR)
    }
}

/// What [`Manager::load_plugins`] did: every plugin folder, loaded or not.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Plugins loaded by this call.
    pub loaded: Vec<Spec>,
    /// Plugins that were already loaded from the same folder, library and `plugin.json`,
    /// left as they are.
    pub unchanged: Vec<Spec>,
    /// Plugins whose folder changed since they were loaded, upgraded by this call.
    pub upgraded: Vec<Upgraded>,
    /// Folders that could not be loaded (or upgraded), each with the reason. Plugins already
    /// loaded from them keep serving.
    pub failed: Vec<LoadFailure>,
}

/// A plugin folder that could not be loaded.
#[derive(Debug)]
pub struct LoadFailure {
    /// The plugin folder (or the base directory, if it could not be read).
    pub dir: PathBuf,
    /// Why.
    pub error: Error,
}

/// An upgrade that happened: `from` stopped serving, `to` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgraded {
    /// The version that served before.
    pub from: Spec,
    /// The version serving now.
    pub to: Spec,
}

/// What [`Manager::upgrade`] did.
// One per upgrade, never on a call path: boxing would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// The new version serves.
    Upgraded(Upgraded),
    /// The library and manifest offered are those already serving: nothing changed.
    Unchanged(Spec),
}

/// How an upgrade may proceed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpgradeOptions {
    /// Allow a version that is not newer than the running one (a downgrade or a rebuild of
    /// the same version).
    pub force: bool,
}

/// What [`Manager::unload`] did.
#[derive(Debug)]
pub struct UnloadReport {
    /// The version that was unloaded.
    pub spec: Spec,
    /// How long the unload waited for calls in flight.
    pub waited: Duration,
    /// Calls still running when the wait timed out (0 if all returned). They keep running
    /// to completion on the unloaded version.
    pub still_running: usize,
    /// What became of the plugin's `on_unload` hook.
    pub on_unload: UnloadHook,
}

/// What became of a plugin's `on_unload` hook during an unload.
#[derive(Debug)]
pub enum UnloadHook {
    /// The plugin has none.
    Absent,
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed ([`Error::HookFailed`]).
    Failed(Error),
    /// Calls were still running at the timeout: it runs (and logs any error) when the last
    /// of them returns.
    Deferred,
    /// Another instance of the same build is still loaded (the same library loaded again, by
    /// this manager or another): the build's statics are shared, so `on_unload` runs when the
    /// last instance goes, as `on_load` ran when the first came.
    Shared,
}

impl LoadReport {
    /// Whether every plugin folder loaded.
    pub fn is_ok(&self) -> bool {
        self.failed.is_empty()
    }
}

impl fmt::Display for LoadReport {
    /// One line per plugin folder: the folder, then its plugin and version or its error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let folder = |dir: &Path| {
            dir.file_name().map_or_else(
                || dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        };
        for (specs, status) in [(&self.loaded, "loaded"), (&self.unchanged, "unchanged")] {
            for spec in specs {
                let plugin = format!("{} {}", spec.name(), spec.version());
                rows.push((folder(&spec.origin), status.to_owned(), plugin));
            }
        }
        for Upgraded { from, to } in &self.upgraded {
            let plugin = format!("{} {} -> {}", to.name(), from.version(), to.version());
            rows.push((folder(&to.origin), "upgraded".to_owned(), plugin));
        }
        for failure in &self.failed {
            rows.push((
                folder(&failure.dir),
                "failed".to_owned(),
                failure.error.to_string(),
            ));
        }
        rows.sort();
        let width = rows
            .iter()
            .map(|r| r.0.len())
            .max()
            .unwrap_or(0)
            .max("FOLDER".len());
        writeln!(f, "{:<width$}  {:<9}  PLUGIN / ERROR", "FOLDER", "STATUS")?;
        for (dir, status, detail) in rows {
            writeln!(f, "{dir:<width$}  {status:<9}  {detail}")?;
        }
        Ok(())
    }
}

/// What syncing one plugin folder did.
#[allow(clippy::large_enum_variant)] // as for `Upgrade`
#[derive(Debug)]
pub(crate) enum Synced {
    Loaded(Spec),
    Unchanged(Spec),
    Upgraded(Upgraded),
    Unloaded,
    /// The folder holds no plugin and none was loaded from it.
    Nothing,
}

/// A plugin folder, read: its manifest and the library it names.
struct Folder {
    dir: PathBuf,
    manifest_path: PathBuf,
    manifest: Manifest,
    library: PathBuf,
    /// What it was read from: the folder itself, the package it was unpacked from, or the
    /// folder of a `remote_git` `plugin.json` it was built for.
    origin: PathBuf,
}

impl Folder {
    fn origin(&self) -> &Path {
        &self.origin
    }
}

/// A library file, read into memory (so that what is checked is what is loaded).
struct LibraryFile {
    path: PathBuf,
    data: Vec<u8>,
    sha256: String,
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
            metrics: true,
            latency_sampling: 1,
            trust: Trust::default(),
            limits: Limits::default(),
            git_build: crate::build::BuildOptions {
                release: true,
                target_dir: None,
                quiet: true,
            },
            remote_git: cfg!(feature = "git"),
        }
    }

    /// The plugin base directory.
    pub fn base_dir(&self) -> &Path {
        &self.inner.base_dir
    }

    /// Where the private copies of loaded libraries go.
    pub fn runtime_dir(&self) -> &Path {
        &self.inner.runtime_dir
    }

    /// The package signatures this manager accepts.
    pub fn trust(&self) -> &Trust {
        &self.inner.trust
    }

    /// How large a package this manager accepts.
    pub fn package_limits(&self) -> Limits {
        self.inner.limits
    }

    /// Loads every plugin folder in the base directory that is not loaded yet, and upgrades
    /// the plugins whose folder changed since they were loaded (newer versions only).
    ///
    /// Folders are visited in name order; hidden folders (`.name`) are skipped. A folder
    /// that fails is reported and changes nothing: the others load, and plugins already
    /// loaded keep serving.
    pub fn load_plugins(&self) -> LoadReport {
        let mut report = LoadReport::default();
        let dirs = match self.plugin_folders() {
            Ok(dirs) => dirs,
            Err(error) => {
                self.report_failure(&self.inner.base_dir, &error);
                report.failed.push(LoadFailure {
                    dir: self.inner.base_dir.clone(),
                    error,
                });
                return report;
            }
        };
        for dir in dirs {
            match self.sync_source(&dir) {
                Ok(Synced::Loaded(spec)) => report.loaded.push(spec),
                Ok(Synced::Unchanged(spec)) => report.unchanged.push(spec),
                Ok(Synced::Upgraded(upgraded)) => report.upgraded.push(upgraded),
                Ok(Synced::Unloaded | Synced::Nothing) => {}
                Err(error) => {
                    self.report_failure(&dir, &error);
                    report.failed.push(LoadFailure { dir, error });
                }
            }
        }
        report
    }

    /// The plugin folders and packages in the base directory, in name order.
    fn plugin_folders(&self) -> Result<Vec<PathBuf>, Error> {
        let base = &self.inner.base_dir;
        let entries = std::fs::read_dir(base).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::MissingBaseDir { dir: base.clone() }
            } else {
                Error::io(base, e)
            }
        })?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) || is_package(&e.path()))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        Ok(dirs)
    }

    /// Loads the plugin in one folder (`dir/plugin.json` and its library). If it is loaded
    /// already from this folder, returns its spec, upgrading it first if the folder changed.
    pub fn load_plugin(&self, dir: impl AsRef<Path>) -> Result<Spec, Error> {
        self.load_source(dir.as_ref(), &self.inner.trust)
    }

    /// [`load_plugin`](Self::load_plugin) of a folder or package, accepting packages signed as
    /// `trust` says.
    pub(crate) fn load_source(&self, dir: &Path, trust: &Trust) -> Result<Spec, Error> {
        if !dir.exists() {
            // Loading is not the place to unload what a vanished folder held.
            let error = Error::MissingManifest {
                dir: dir.to_owned(),
            };
            self.report_failure(dir, &error);
            return Err(error);
        }
        match self.sync_source_with(dir, trust) {
            Ok(Synced::Loaded(spec) | Synced::Unchanged(spec)) => Ok(spec),
            Ok(Synced::Upgraded(upgraded)) => Ok(upgraded.to),
            Ok(Synced::Unloaded | Synced::Nothing) => Err(Error::MissingManifest {
                dir: dir.to_owned(),
            }),
            Err(error) => {
                self.report_failure(dir, &error);
                Err(error)
            }
        }
    }

    /// Brings the registry in line with one plugin folder or package: loads a new plugin,
    /// upgrades a changed one, leaves an unchanged one, unloads the plugin of a folder or
    /// package that is gone. Emits events for what it did, not for failures (the caller
    /// decides when a failure is final).
    pub(crate) fn sync_source(&self, origin: &Path) -> Result<Synced, Error> {
        self.sync_source_with(origin, &self.inner.trust)
    }

    fn sync_source_with(&self, origin: &Path, trust: &Trust) -> Result<Synced, Error> {
        let origin = &normalize(origin);
        let changes = self.lock_changes();
        let loaded_here = self.name_loaded_from(origin);
        if !origin.exists() {
            drop(changes);
            return match loaded_here {
                Some(name) => self.unload(&name).map(|_| Synced::Unloaded),
                None => Ok(Synced::Nothing),
            };
        }
        let folder = self.read_source(origin, trust)?;
        let library = read_library(&folder.library)?;
        let name = folder.manifest.name.clone();
        let existing = self.existing_slot(&name);
        let running = existing.as_ref().and_then(|slot| slot.current.load_full());
        let synced = match running {
            Some(running) if running.spec.origin == folder.origin() => {
                let slot = existing.expect("a running plugin has a slot");
                let synced = self.upgrade_locked(
                    &slot,
                    &running,
                    Some(folder),
                    library,
                    UpgradeOptions::default(),
                )?;
                drop(changes);
                self.announce(&synced);
                return Ok(synced);
            }
            Some(running) => {
                return Err(Error::Duplicate {
                    name,
                    first: running.spec.origin.clone(),
                    second: folder.origin().to_owned(),
                })
            }
            None => {
                let spec = examine(
                    Some(&folder),
                    &library,
                    folder.dir.clone(),
                    folder.origin.clone(),
                )?;
                let loaded = Arc::new(self.open(spec, &library)?);
                let spec = Spec::clone(&loaded.spec);
                let slot = self.slot(&name);
                slot.current.store(Some(loaded));
                slot.metrics.loaded();
                Synced::Loaded(spec)
            }
        };
        drop(changes);
        self.announce(&synced);
        // The folder now declares another plugin than the one loaded from it: that one goes.
        if let Some(old) = loaded_here.filter(|old| *old != name) {
            if let Err(error) = self.unload(&old) {
                tracing::warn!(target: "gp", plugin = old, "{error}");
            }
        }
        Ok(synced)
    }

    /// Reads a plugin folder, or unpacks and checks a package into the runtime directory's
    /// `packages/` and reads the folder it gives.
    fn read_source(&self, path: &Path, trust: &Trust) -> Result<Folder, Error> {
        if !is_package(path) {
            return read_folder_or_build(
                path,
                &self.inner.runtime_dir.join("git"),
                self.inner.remote_git.then_some(&self.inner.git_build),
            );
        }
        let unpacked = crate::package::unpack(
            path,
            &self.inner.runtime_dir.join("packages"),
            trust,
            &self.inner.limits,
        )?;
        if let Some(key) = &unpacked.signed_by {
            tracing::debug!(target: "gp", package = %path.display(), "package signed by {key}");
        }
        Ok(Folder {
            origin: path.to_owned(),
            ..read_folder(&unpacked.dir)?
        })
    }

    /// Re-reads the folder (or package) plugin `name` was loaded from and upgrades to what it
    /// holds now (newer versions only), or returns [`Upgrade::Unchanged`].
    pub fn reload(&self, name: &str) -> Result<Upgrade, Error> {
        let (spec, _) = self.get_plugin(name)?;
        self.upgrade(name, &spec.origin)
    }

    /// Upgrades plugin `name` to the library at `path`, or to the plugin folder at `path`
    /// (its `plugin.json` and library), if it holds a newer version.
    ///
    /// Everything is verified before anything changes: the file, the manifest, that it is the
    /// same plugin, that its version is greater than the running one, the type layouts, and
    /// its `on_load` hook. Then it is swapped in atomically. A refused upgrade returns
    /// [`Error::UpgradeRefused`], saying why; the running version keeps serving.
    ///
    /// The base directory is not touched: to keep the upgrade across restarts, put the new
    /// build in the plugin's folder (a watching manager then upgrades by itself).
    pub fn upgrade(&self, name: &str, path: impl AsRef<Path>) -> Result<Upgrade, Error> {
        self.upgrade_with(name, path, UpgradeOptions::default())
    }

    /// [`upgrade`](Self::upgrade), with options (such as allowing a downgrade).
    pub fn upgrade_with(
        &self,
        name: &str,
        path: impl AsRef<Path>,
        options: UpgradeOptions,
    ) -> Result<Upgrade, Error> {
        let path = path.as_ref();
        self.try_upgrade(name, path, options)
            .map_err(|error| self.reported(path, error))
    }

    fn try_upgrade(
        &self,
        name: &str,
        path: &Path,
        options: UpgradeOptions,
    ) -> Result<Upgrade, Error> {
        let changes = self.lock_changes();
        let slot = self.existing_slot(name);
        let Some(running) = slot.as_ref().and_then(|s| s.current.load_full()) else {
            return Err(Error::NotFound {
                name: name.to_owned(),
            });
        };
        let slot = slot.expect("a running plugin has a slot");
        let refuse = |reason: Error| self.refuse_upgrade(&running, reason);
        let (folder, library) = if path.is_dir() || is_package(path) {
            let folder = self
                .read_source(&normalize(path), &self.inner.trust)
                .map_err(refuse)?;
            let library = read_library(&folder.library).map_err(refuse)?;
            (Some(folder), library)
        } else {
            (None, read_library(path).map_err(refuse)?)
        };
        let synced = self.upgrade_locked(&slot, &running, folder, library, options)?;
        drop(changes);
        self.announce(&synced);
        Ok(match synced {
            Synced::Upgraded(upgraded) => Upgrade::Upgraded(upgraded),
            Synced::Unchanged(spec) => Upgrade::Unchanged(spec),
            _ => unreachable!("an upgrade upgrades or changes nothing"),
        })
    }

    /// The upgrade itself, with the change lock held.
    fn upgrade_locked(
        &self,
        slot: &Slot,
        running: &Arc<Loaded>,
        folder: Option<Folder>,
        library: LibraryFile,
        options: UpgradeOptions,
    ) -> Result<Synced, Error> {
        let refuse = |reason: Error| self.refuse_upgrade(running, reason);
        let same_manifest = folder
            .as_ref()
            .is_none_or(|f| f.manifest == running.spec.manifest);
        if library.sha256 == running.spec.sha256 && same_manifest {
            return Ok(Synced::Unchanged(Spec::clone(&running.spec)));
        }
        // A bare library keeps the plugin's folder and origin; a folder or package brings its own.
        let (dir, origin) = folder.as_ref().map_or_else(
            || (running.spec.dir.clone(), running.spec.origin.clone()),
            |f| (f.dir.clone(), f.origin.clone()),
        );
        let spec = examine(folder.as_ref(), &library, dir, origin).map_err(refuse)?;
        if spec.name() != slot.name {
            return Err(refuse(Error::NameMismatch {
                expected: slot.name.clone(),
                found: spec.name().to_owned(),
                path: folder.map_or(library.path, |f| f.origin().to_owned()),
            }));
        }
        if !options.force && spec.version() <= running.spec.version() {
            return Err(refuse(Error::NotNewer {
                running: running.spec.version().clone(),
                offered: spec.version().clone(),
            }));
        }
        let new = Arc::new(self.open(spec, &library).map_err(refuse)?);
        let old = slot
            .current
            .swap(Some(Arc::clone(&new)))
            .expect("the running version was in the slot");
        slot.metrics.upgraded();
        let upgraded = Upgraded {
            from: Spec::clone(&old.spec),
            to: Spec::clone(&new.spec),
        };
        // Calls in flight finish on the old version; its on_unload runs after the last one.
        self.inner.reaper.retire(old);
        Ok(Synced::Upgraded(upgraded))
    }

    #[cold]
    fn refuse_upgrade(&self, running: &Loaded, reason: Error) -> Error {
        let error = Error::UpgradeRefused {
            name: running.spec.name().to_owned(),
            running: running.spec.version().clone(),
            reason: Box::new(reason),
        };
        tracing::warn!(target: "gp", plugin = running.spec.name(), "{error}");
        error
    }

    /// Copies the library to its content-addressed path in the runtime directory, loads the
    /// copy through abi_stable's checks, and runs the plugin's `on_load` hook.
    fn open(&self, spec: Spec, library: &LibraryFile) -> Result<Loaded, Error> {
        let runtime = &self.inner.runtime_dir;
        std::fs::create_dir_all(runtime).map_err(|e| Error::io(runtime, e))?;
        let stem = library
            .path
            .file_stem()
            .map_or_else(|| "plugin".into(), |s| s.to_string_lossy());
        let extension = library
            .path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let copy = runtime.join(format!("{stem}-{}{extension}", &library.sha256[..16]));
        crate::build::write_atomically(&copy, |tmp| std::fs::write(tmp, &library.data))?;
        let module = library::load(&copy, &library.path, spec.name(), &spec.abi_version);
        // The loader keeps what it mapped; the copy is no longer needed either way.
        let _ = std::fs::remove_file(&copy);
        Loaded::activate(spec, module?)
    }

    /// Unloads plugin `name`, waiting up to the manager's drain timeout for its calls in
    /// flight. See [`unload_with_timeout`](Self::unload_with_timeout).
    pub fn unload(&self, name: &str) -> Result<UnloadReport, Error> {
        self.unload_with_timeout(name, self.inner.drain_timeout)
    }

    /// Unloads plugin `name`: it leaves the registry at once (new calls get
    /// [`Error::NotFound`]), its calls in flight are cancelled (the plugin sees
    /// `ctx.is_cancelled()`; a call that stops for it returns [`Error::Unloaded`]), the
    /// unload waits up to `timeout` for them to return, then runs the plugin's `on_unload`.
    ///
    /// Calls still running at the timeout are reported in
    /// [`UnloadReport::still_running`]; they run to completion, and `on_unload` runs after
    /// the last of them. The code stays mapped (see the type's documentation).
    pub fn unload_with_timeout(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<UnloadReport, Error> {
        let old = {
            let _changes = self.lock_changes();
            self.existing_slot(name)
                .and_then(|slot| {
                    let old = slot.current.swap(None)?;
                    slot.metrics.unloaded();
                    Some(old)
                })
                .ok_or_else(|| Error::NotFound {
                    name: name.to_owned(),
                })?
        };
        old.retiring
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let mut pause = Duration::from_micros(50);
        // Each call in flight holds a reference (arc-swap converts its guard into one when the
        // slot is emptied), so the count drops to 1 when the last call has returned.
        let still_running = loop {
            let running = Arc::strong_count(&old) - 1;
            if running == 0 || started.elapsed() >= timeout {
                break running;
            }
            std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
            pause = (pause * 2).min(Duration::from_millis(10));
        };
        // `strong_count` promises no ordering: make the last call's writes visible before the
        // hook runs (dropping an `Arc` would have fenced; reading the count does not).
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        let waited = started.elapsed();
        let spec = Spec::clone(&old.spec);
        let on_unload = if !spec.has_on_unload {
            UnloadHook::Absent
        } else if still_running > 0 {
            self.inner.reaper.retire(old);
            UnloadHook::Deferred
        } else {
            match old.run_unload_hook() {
                UnloadHookRun::Ran(Err(error)) => UnloadHook::Failed(error),
                UnloadHookRun::Ran(Ok(())) | UnloadHookRun::Nothing => UnloadHook::Succeeded,
                UnloadHookRun::Shared => UnloadHook::Shared,
            }
        };
        let report = UnloadReport {
            spec,
            waited,
            still_running,
            on_unload,
        };
        if still_running > 0 {
            tracing::warn!(target: "gp", plugin = name, "plugin unloaded with {still_running} call(s) still running after {timeout:?}; they run to completion");
        } else {
            tracing::info!(target: "gp", plugin = name, "plugin unloaded");
        }
        self.inner.hub.emit(&Event::Unloaded { report: &report });
        Ok(report)
    }

    /// The plugin called `name`: the spec of the version serving now and an executor to call
    /// it with.
    pub fn get_plugin(&self, name: &str) -> Result<(Spec, Executor), Error> {
        let slot = self.existing_slot(name);
        let spec = slot.as_ref().and_then(|s| s.spec());
        match (slot, spec) {
            (Some(slot), Some(spec)) => Ok((Spec::clone(&spec), Executor::new(slot))),
            _ => Err(Error::NotFound {
                name: name.to_owned(),
            }),
        }
    }

    /// The executor of the plugin called `name`.
    pub fn executor(&self, name: &str) -> Result<Executor, Error> {
        self.get_plugin(name).map(|(_, executor)| executor)
    }

    /// The specs of every loaded plugin, by name.
    pub fn list(&self) -> Vec<Spec> {
        let slots = self.inner.slots.read().expect("registry lock");
        slots
            .values()
            .filter_map(|slot| slot.spec())
            .map(|spec| Spec::clone(&spec))
            .collect()
    }

    /// Calls `handler` with every event: lifecycle events (loaded, load failed, upgraded,
    /// upgrade refused, unloaded) and, on every call of every plugin, [`Event::BeforeCall`]
    /// and [`Event::AfterCall`], in the calling thread. While any such subscription exists,
    /// calls take a slower path; [`subscribe_lifecycle`](Self::subscribe_lifecycle) does not.
    ///
    /// A handler that panics is logged and skipped.
    pub fn subscribe(
        &self,
        handler: impl Fn(&Event<'_>) + Send + Sync + 'static,
    ) -> SubscriptionId {
        self.inner.hub.subscribe(true, Arc::new(handler))
    }

    /// Calls `handler` with lifecycle events only (not call events): no cost on calls.
    pub fn subscribe_lifecycle(
        &self,
        handler: impl Fn(&Event<'_>) + Send + Sync + 'static,
    ) -> SubscriptionId {
        self.inner.hub.subscribe(false, Arc::new(handler))
    }

    /// Ends a subscription; `false` if it had ended already.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.inner.hub.unsubscribe(id)
    }

    /// A snapshot of every plugin's metrics (plugins unloaded included), by name.
    pub fn stats(&self) -> Vec<PluginStats> {
        let slots: Vec<Arc<Slot>> = self
            .inner
            .slots
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect();
        slots
            .iter()
            .map(|slot| {
                let version = slot.spec().map(|s| s.version().clone());
                slot.metrics.snapshot(&slot.name, version)
            })
            .collect()
    }

    /// Registers this manager's metrics in a `prometheus_client` registry, so that an
    /// application exposes them with its own. Names start with `gp_plugin_`; every series has
    /// a `plugin` label.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        let manager = Arc::downgrade(&self.inner);
        let stats = Arc::new(move || {
            manager
                .upgrade()
                .map(|inner| Manager { inner }.stats())
                .unwrap_or_default()
        });
        registry
            .sub_registry_with_prefix("gp_plugin")
            .register_collector(Box::new(ManagerCollector { stats }));
    }

    /// This manager's metrics in the Prometheus text exposition format (OpenMetrics).
    pub fn prometheus(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        self.register_metrics(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Watches the base directory and keeps the registry in line with it: a new plugin
    /// folder loads, a changed library or `plugin.json` upgrades (newer versions only), a
    /// removed folder unloads. See [`watch_with`](Self::watch_with).
    pub fn watch(&self) -> Result<Watcher, Error> {
        self.watch_with(WatchOptions::default())
    }

    /// [`watch`](Self::watch) with options.
    ///
    /// Changes are handled once the folder has been quiet for `options.settle`. A folder that
    /// fails (a library still being copied, a `plugin.json` written before its library) is
    /// tried again after each further `settle`, up to `options.attempts` times; the running
    /// version keeps serving meanwhile. Only the last failure is reported (logged, and sent
    /// as an event). Stops when the returned [`Watcher`] is dropped.
    pub fn watch_with(&self, options: WatchOptions) -> Result<Watcher, Error> {
        Watcher::start(self.clone(), options)
    }

    /// Logs a load or an upgrade and sends it to subscribers, once the change lock is released
    /// (so that a subscriber may change the registry itself).
    fn announce(&self, synced: &Synced) {
        match synced {
            Synced::Loaded(spec) => {
                tracing::info!(target: "gp", plugin = spec.name(), version = %spec.version(), dir = %spec.dir.display(), "plugin loaded");
                self.inner.hub.emit(&Event::Loaded { spec });
            }
            Synced::Upgraded(Upgraded { from, to }) => {
                tracing::info!(target: "gp", plugin = to.name(), from = %from.version(), to = %to.version(), "plugin upgraded");
                self.inner.hub.emit(&Event::Upgraded { from, to });
            }
            Synced::Unchanged(_) | Synced::Unloaded | Synced::Nothing => {}
        }
    }

    /// Logs a failure and sends it to subscribers.
    pub(crate) fn report_failure(&self, path: &Path, error: &Error) {
        match error {
            Error::UpgradeRefused { name, .. } => {
                self.inner.hub.emit(&Event::UpgradeRefused { name, error });
            }
            _ => {
                tracing::warn!(target: "gp", path = %path.display(), "plugin not loaded: {error}");
                self.inner.hub.emit(&Event::LoadFailed { path, error });
            }
        }
    }

    fn reported(&self, path: &Path, error: Error) -> Error {
        if matches!(error, Error::UpgradeRefused { .. }) {
            self.report_failure(path, &error);
        }
        error
    }

    /// The plugin loaded from the folder or package `origin`, if any.
    pub(crate) fn name_loaded_from(&self, origin: &Path) -> Option<String> {
        let slots = self.inner.slots.read().expect("registry lock");
        slots
            .values()
            .find(|slot| slot.spec().is_some_and(|s| s.origin == origin))
            .map(|slot| slot.name.clone())
    }

    fn existing_slot(&self, name: &str) -> Option<Arc<Slot>> {
        let slots = self.inner.slots.read().expect("registry lock");
        slots.get(name).cloned()
    }

    /// The slot for `name`, created empty if there is none yet.
    fn slot(&self, name: &str) -> Arc<Slot> {
        if let Some(slot) = self.existing_slot(name) {
            return slot;
        }
        let mut slots = self.inner.slots.write().expect("registry lock");
        Arc::clone(slots.entry(name.to_owned()).or_insert_with(|| {
            Arc::new(Slot::new(
                name.to_owned(),
                self.inner.record_calls,
                self.inner.latency_sampling,
                Arc::clone(&self.inner.hub),
            ))
        }))
    }

    fn lock_changes(&self) -> MutexGuard<'_, ()> {
        self.inner
            .changes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("base_dir", &self.inner.base_dir)
            .field("plugins", &self.list().len())
            .finish()
    }
}

/// `path` made absolute and free of symbolic links and `..`, so that one folder or package
/// has one spelling (for a path that no longer exists: its parent's, plus its name).
fn normalize(path: &Path) -> PathBuf {
    if let Ok(path) = path.canonicalize() {
        return path;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            parent
                .canonicalize()
                .map_or_else(|_| path.to_owned(), |p| p.join(name))
        }
        _ => path.to_owned(),
    }
}

/// Whether `path` names a package (`*.plg`).
pub(crate) fn is_package(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == crate::package::EXTENSION)
}

/// What a plugin folder holds, read and checked without loading anything.
pub(crate) struct CheckedFolder {
    pub(crate) manifest: Manifest,
    pub(crate) library: PathBuf,
    /// The library's contents, as checked.
    pub(crate) library_data: Vec<u8>,
    /// Their SHA-256, in hex.
    pub(crate) library_sha256: String,
}

/// Reads a plugin folder and checks that its library is a plugin agreeing with its
/// `plugin.json`, without loading it.
pub(crate) fn read_plugin_folder(dir: &Path) -> Result<CheckedFolder, Error> {
    let folder = read_folder(dir)?;
    let library = read_library(&folder.library)?;
    let spec = examine(
        Some(&folder),
        &library,
        folder.dir.clone(),
        folder.origin.clone(),
    )?;
    Ok(CheckedFolder {
        manifest: spec.manifest,
        library: folder.library,
        library_data: library.data,
        library_sha256: library.sha256,
    })
}

/// Reads `dir/plugin.json` and resolves the library it names; for a `remote_git` plugin,
/// builds it first (with the `git` feature) into `git_cache`.
fn read_folder_or_build(
    dir: &Path,
    git_cache: &Path,
    git_build: Option<&crate::build::BuildOptions>,
) -> Result<Folder, Error> {
    match (read_folder(dir), git_build) {
        #[cfg(feature = "git")]
        (
            Err(Error::NeedsBuild {
                repository, path, ..
            }),
            Some(git_build),
        ) => {
            let source = crate::git::GitSource::parse(&repository);
            let built = crate::git::build(&source, git_cache, git_build)?;
            let mut folder = read_folder(&built)?;
            // The plugin.json that asked for the build is the one its library must match.
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            folder.manifest =
                Manifest::from_plugin_json(&text).map_err(|source| Error::InvalidManifest {
                    path: path.clone(),
                    source,
                })?;
            folder.manifest_path = path;
            folder.origin = dir.to_owned();
            Ok(folder)
        }
        (other, _) => {
            let _ = git_cache;
            other
        }
    }
}

/// Reads `dir/plugin.json` and resolves the library it names.
fn read_folder(dir: &Path) -> Result<Folder, Error> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingManifest {
                dir: dir.to_owned(),
            })
        }
        Err(e) => return Err(Error::io(&manifest_path, e)),
    };
    let manifest = Manifest::from_plugin_json(&text).map_err(|source| Error::InvalidManifest {
        path: manifest_path.clone(),
        source,
    })?;
    let source = manifest
        .source
        .as_ref()
        .expect("validated plugin.json has a source");
    if source.mode == SourceMode::RemoteGit {
        return Err(Error::NeedsBuild {
            name: manifest.name.clone(),
            repository: source.path.clone(),
            path: manifest_path,
        });
    }
    let library = dir.join(&source.path);
    let library = match library.canonicalize() {
        Ok(path) => path,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::InvalidLibrary {
                path: library,
                reason: "the file does not exist (plugin.json's source.path names it)".into(),
            })
        }
        Err(e) => return Err(Error::io(&library, e)),
    };
    Ok(Folder {
        dir: dir.to_owned(),
        manifest_path,
        manifest,
        library,
        origin: dir.to_owned(),
    })
}

fn read_library(path: &Path) -> Result<LibraryFile, Error> {
    let data = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::InvalidLibrary {
                path: path.to_owned(),
                reason: "the file does not exist".into(),
            }
        } else {
            Error::io(path, e)
        }
    })?;
    let sha256 = crate::package::hex(&Sha256::digest(&data));
    Ok(LibraryFile {
        path: path.to_owned(),
        data,
        sha256,
    })
}

/// Checks a library as a file and against its folder's `plugin.json`; returns its spec.
fn examine(
    folder: Option<&Folder>,
    library: &LibraryFile,
    dir: PathBuf,
    origin: PathBuf,
) -> Result<Spec, Error> {
    let info = library::inspect_bytes(&library.path, &library.data)?;
    let manifest = match folder {
        Some(folder) => {
            if let Some((field, in_file, in_library)) =
                folder.manifest.first_difference(&info.manifest)
            {
                return Err(Error::ManifestMismatch {
                    path: folder.manifest_path.clone(),
                    library: library.path.clone(),
                    field,
                    in_file,
                    in_library,
                });
            }
            folder.manifest.clone()
        }
        None => info.plugin_json(),
    };
    Ok(Spec {
        manifest,
        dir,
        origin,
        library: library.path.clone(),
        sha256: library.sha256.clone(),
        abi_version: info.abi_version,
        has_on_load: false,
        has_on_unload: false,
    })
}

/// Holds versions that stopped serving until their last call returns, then drops them (which
/// runs their `on_unload` hook), on a thread of its own, so that no caller pays for a hook.
struct Reaper {
    retired: Mutex<mpsc::Sender<Arc<Loaded>>>,
}

impl Reaper {
    fn start() -> Reaper {
        let (sender, receiver) = mpsc::channel::<Arc<Loaded>>();
        let spawned = std::thread::Builder::new()
            .name("gp-reaper".into())
            .spawn(move || {
                let mut pending: Vec<Arc<Loaded>> = Vec::new();
                let mut open = true;
                while open || !pending.is_empty() {
                    let received = if pending.is_empty() {
                        receiver
                            .recv()
                            .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
                    } else {
                        receiver.recv_timeout(Duration::from_millis(2))
                    };
                    match received {
                        Ok(loaded) => pending.push(loaded),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            if open {
                                open = false;
                            } else {
                                std::thread::sleep(Duration::from_millis(2));
                            }
                        }
                    }
                    // Nobody else can gain a reference to a retired version, so a count of 1
                    // means its last call has returned.
                    pending.retain(|loaded| Arc::strong_count(loaded) > 1);
                }
            });
        if let Err(error) = spawned {
            tracing::error!(target: "gp", "cannot start the gp-reaper thread ({error}); retired plugin versions run on_unload in the thread of their last call");
        }
        Reaper {
            retired: Mutex::new(sender),
        }
    }

    fn retire(&self, loaded: Arc<Loaded>) {
        let sender = self.retired.lock().unwrap_or_else(|p| p.into_inner());
        // If the thread is gone, dropping here runs the hook when the last call returns.
        let _ = sender.send(loaded);
    }
}
