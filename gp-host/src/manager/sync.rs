//! Bringing the manager in line with the base directory: discovery, and loading, upgrading or
//! unloading the plugin of one folder or package.

use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};

use crate::error::Error;
use crate::folder::{self, LibraryFile};
use crate::manager::loading::{AdmissionOrder, Ticket};
use crate::manager::report::{LoadFailure, LoadReport, Synced, UpgradeOptions};
use crate::manager::serial::Turn;
use crate::manager::Manager;
use crate::runtime::loaded::Loaded;
use crate::runtime::spec::{examine, Spec};
use crate::source::{self, Settings};
use crate::util::normalize;

impl Manager {
    /// Loads every plugin folder in the base directory that is not loaded yet, and upgrades
    /// the plugins whose folder changed since they were loaded (newer versions only).
    ///
    /// Hidden folders (`.name`) are skipped. Up to 8 folders load at once, so that a plugin
    /// whose `on_load` is slow holds back no other: while one loads, its routes are reserved
    /// ([`loading`](Self::loading)). They are admitted (the checks of [`admit`](Self::admit),
    /// such as route conflicts) one at a time in name order, as if they loaded one after
    /// another: of two folders whose routes conflict, the later is refused on every start. A
    /// folder that fails is reported (as it fails) and changes nothing: the others load, and
    /// plugins already loaded keep serving. The report lists them all.
    pub fn load_plugins(&self) -> LoadReport {
        let mut report = LoadReport::default();
        let base = self.base_dir();
        let dirs = match plugin_folders(base) {
            Ok(dirs) => dirs,
            Err(error) => {
                self.report_failure(base, &error);
                report.failed.push(LoadFailure {
                    dir: base.to_owned(),
                    error,
                });
                return report;
            }
        };
        #[cfg(feature = "isolate")]
        self.preflight_ahead(&dirs);
        for (dir, synced) in self.sync_each(dirs) {
            match synced {
                Ok(Synced::Loaded(spec)) => report.loaded.push(spec),
                Ok(Synced::Unchanged(spec)) => report.unchanged.push(spec),
                Ok(Synced::Upgraded(upgraded)) => report.upgraded.push(upgraded),
                Ok(Synced::Unloaded | Synced::Nothing) => {}
                Err(error @ Error::Disabled { .. }) => {
                    report.disabled.push(LoadFailure { dir, error });
                }
                Err(error) => report.failed.push(LoadFailure { dir, error }),
            }
        }
        self.gc_after(
            report
                .loaded
                .iter()
                .chain(report.upgraded.iter().map(|u| &u.to)),
        );
        self.inner
            .first_load_done
            .store(true, std::sync::atomic::Ordering::Release);
        report
    }

    /// Syncs each of `dirs`, up to [`LOADERS`] at once, reporting each failure as it happens
    /// (a disabled plugin is not a failure); returns each folder with what its sync did, in
    /// the order of `dirs`, without those left untried after [`stop_loading`](Self::stop_loading).
    fn sync_each(&self, dirs: Vec<PathBuf>) -> Vec<(PathBuf, Result<Synced, Error>)> {
        let one = |dir: &Path, ticket: Option<&Ticket<'_>>| {
            let options = UpgradeOptions::default();
            let synced = self.sync_with(dir, &self.settings(), options, ticket);
            if let Err(error) = &synced {
                if !matches!(error, Error::Disabled { .. }) {
                    self.report_failure(dir, error);
                }
            }
            synced
        };
        let workers = LOADERS.min(dirs.len());
        if workers <= 1 {
            return dirs
                .into_iter()
                .take_while(|_| !self.loads_stopped())
                .map(|dir| {
                    let synced = one(&dir, None);
                    (dir, synced)
                })
                .collect();
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let order = AdmissionOrder::new(dirs.len());
        let done: Vec<std::sync::Mutex<Option<Result<Synced, Error>>>> =
            dirs.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for n in 0..workers {
                let work = || loop {
                    let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(dir) = dirs.get(at) else {
                        return;
                    };
                    let ticket = order.wait(at);
                    if self.loads_stopped() {
                        // Passes its turn to the next folder, which stops too.
                        continue;
                    }
                    let synced = one(dir, Some(&ticket));
                    drop(ticket);
                    *crate::util::lock(&done[at]) = Some(synced);
                };
                let spawned = std::thread::Builder::new()
                    .name(format!("gp-load-{n}"))
                    .stack_size(LOADER_STACK)
                    .spawn_scoped(scope, work);
                if spawned.is_err() {
                    // No thread to be had: this one works through the rest.
                    work();
                }
            }
        });
        // A folder left untried (loading stopped) has no result.
        dirs.into_iter()
            .zip(done)
            .filter_map(|(dir, synced)| {
                let synced = synced.into_inner().unwrap_or_else(|p| p.into_inner())?;
                Some((dir, synced))
            })
            .collect()
    }

    /// With pre-flight on, pre-flights the new builds of the plain folders among `dirs`
    /// concurrently (a few at a time), ahead of their loads, which then find their verdicts:
    /// a start with many new builds waits for the slowest runners rather than for each in
    /// turn. Packages and git sources are pre-flighted as they load. Failures wait for the
    /// load to report them.
    #[cfg(feature = "isolate")]
    fn preflight_ahead(&self, dirs: &[PathBuf]) {
        use crate::runtime::isolation::preflight;
        let config = &self.inner.config;
        if config.preflight != Some(true) {
            return;
        }
        let todo: Vec<&PathBuf> = dirs.iter().filter(|d| !source::is_package(d)).collect();
        if todo.len() < 2 {
            return; // one is as quick in its load
        }
        let workers = preflight::AHEAD.min(todo.len());
        let todo = std::sync::Mutex::new(todo);
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        let copies = std::sync::atomic::AtomicUsize::new(0);
        let runtime_dir = self.runtime_dir();
        let one = |dir: &Path| -> Option<()> {
            let folder = folder::read(dir).ok()?;
            let name = &folder.manifest.name;
            if config.isolated.contains_key(name)
                || config.isolation.covers(name)
                || self.disabled_plugin(name).is_some()
            {
                return None;
            }
            let library = folder::read_library(&folder.library).ok()?;
            if crate::runtime::loaded::is_mapped(&library.sha256)
                || !preflight::needed(&library.sha256, runtime_dir)
                || !crate::util::lock(&seen).insert(library.sha256.clone())
            {
                return None;
            }
            let spec = examine(Some(&folder), &library, &folder.dir, &folder.origin).ok()?;
            let n = copies.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let copy = crate::runtime::loaded::preflight_copy(&library, runtime_dir, n).ok()?;
            let _ = preflight::preflight(&spec, &copy, &config.isolation, runtime_dir);
            let _ = std::fs::remove_file(&copy);
            Some(())
        };
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let Some(dir) = crate::util::lock(&todo).pop() else {
                        return;
                    };
                    one(dir);
                });
            }
        });
    }

    /// Loads the plugin in one folder (`dir/plugin.json` and its library). If it is loaded
    /// already from this folder, returns its spec, upgrading it first if the folder changed.
    pub fn load_plugin(&self, dir: impl AsRef<Path>) -> Result<Spec, Error> {
        self.load_source(dir.as_ref(), &self.settings())
    }

    /// [`load_plugin`](Self::load_plugin) of a folder or package, resolved with `settings`.
    pub(crate) fn load_source(&self, dir: &Path, settings: &Settings<'_>) -> Result<Spec, Error> {
        if !dir.exists() {
            // Loading is not the place to unload what a vanished folder held.
            let error = Error::MissingManifest {
                path: dir.to_owned(),
            };
            self.report_failure(dir, &error);
            return Err(error);
        }
        match self.sync_with(dir, settings, UpgradeOptions::default(), None) {
            Ok(Synced::Loaded(spec)) => {
                self.gc_after([&spec]);
                Ok(spec)
            }
            Ok(Synced::Unchanged(spec)) => Ok(spec),
            Ok(Synced::Upgraded(upgraded)) => {
                self.gc_after([&upgraded.to]);
                Ok(upgraded.to)
            }
            Ok(Synced::Unloaded | Synced::Nothing) => Err(Error::MissingManifest {
                path: dir.to_owned(),
            }),
            Err(error) => {
                self.report_failure(dir, &error);
                Err(error)
            }
        }
    }

    /// Brings the manager in line with one plugin folder or package (`origin`): loads a new
    /// plugin, upgrades a changed one (newer versions only), leaves an unchanged one, unloads
    /// the plugin of a folder or package that is gone.
    ///
    /// Emits events for what it did, not for failures: the caller decides when a failure is
    /// final (the watcher, for one, tries a folder again while its files settle).
    pub fn sync(&self, origin: impl AsRef<Path>) -> Result<Synced, Error> {
        self.sync_source(origin.as_ref(), &self.settings(), UpgradeOptions::default())
    }

    /// [`sync`](Self::sync), resolving the source with `settings`, upgrading with `options`
    /// (a forced one may go back a version).
    pub(crate) fn sync_source(
        &self,
        origin: &Path,
        settings: &Settings<'_>,
        options: UpgradeOptions,
    ) -> Result<Synced, Error> {
        // A shutdown began (`stop_loading`): the watcher's next change, an install's load, an
        // upload's swap, none starts now.
        if self.loads_stopped() {
            let file = origin
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default();
            return Err(Error::Stopping {
                plugin: file.strip_suffix(".plg").unwrap_or(&file).to_owned(),
            });
        }
        let synced = self.sync_with(origin, settings, options, None)?;
        self.gc_after(synced.serving());
        Ok(synced)
    }

    /// [`sync_source`](Self::sync_source) without the collection after it; `ticket`, for a
    /// folder of `load_plugins`, is its place in the order of admissions.
    fn sync_with(
        &self,
        origin: &Path,
        settings: &Settings<'_>,
        options: UpgradeOptions,
        ticket: Option<&Ticket<'_>>,
    ) -> Result<Synced, Error> {
        let origin = &normalize(origin);
        if !origin.exists() {
            let Some(name) = self.name_loaded_from(origin) else {
                return Ok(Synced::Nothing);
            };
            let _turn = self.turn(&name);
            // Looked at again in the plugin's turn: a change that held it may have put it back.
            if origin.exists() || self.name_loaded_from(origin).as_deref() != Some(&name) {
                drop(_turn);
                return self.sync_with(origin, settings, options, ticket);
            }
            return self.unload(&name).map(|_| Synced::Unloaded);
        }
        let (folder, turn) = self.resolve_in_turn(origin, settings)?;
        let changes = self.lock_changes();
        let loaded_here = self.name_loaded_from(origin);
        let library = folder::read_library(&folder.library)?;
        let name = folder.manifest.name.clone();
        if let Some(disabled) = self.disabled_plugin(&name) {
            return Err(Error::Disabled {
                plugin: name,
                path: folder.origin,
                reason: disabled.reason,
            });
        }
        let existing = self.existing_slot(&name);
        let running = existing.as_ref().and_then(|slot| slot.current.load_full());
        let synced = match running {
            Some(running) if running.spec.origin == folder.origin => {
                let slot = existing.expect("a running plugin has a slot");
                let synced =
                    self.upgrade_locked(&slot, &running, Some(folder), library, options)?;
                drop(changes);
                self.announce(&synced);
                return Ok(synced);
            }
            Some(running) => {
                return Err(Error::Duplicate {
                    plugin: name,
                    path: folder.origin,
                    loaded_from: running.spec.origin.clone(),
                })
            }
            None => {
                let spec = examine(Some(&folder), &library, &folder.dir, &folder.origin)?;
                self.load_new(changes, spec, &library, ticket)?
            }
        };
        self.announce(&synced);
        drop(turn);
        // The folder now declares another plugin than the one loaded from it: that one goes.
        if let Some(old) = loaded_here.filter(|old| *old != name) {
            if let Err(error) = self.unload(&old) {
                tracing::warn!(target: "gp", plugin = old, "{error}");
            }
        }
        Ok(synced)
    }

    /// Loads `spec`, a plugin with no version serving, in its turn: admitted and reserved with
    /// the change lock held (`changes`), mapped and its `on_load` run without it (so that a
    /// slow hook holds back no other plugin's change), then put in its slot with the lock held
    /// again. Returns with the lock released.
    fn load_new(
        &self,
        changes: MutexGuard<'_, ()>,
        spec: Spec,
        library: &LibraryFile,
        ticket: Option<&Ticket<'_>>,
    ) -> Result<Synced, Error> {
        self.run_admissions(&spec)?;
        self.reserve(&spec, &changes);
        drop(changes);
        // Admitted: the next folder of `load_plugins` may be, while this one maps and hooks.
        if let Some(ticket) = ticket {
            ticket.pass();
        }
        self.announce_loading(&spec);
        let name = spec.name().to_owned();
        let opened = self.open(spec.clone(), library);
        let changes = self.lock_changes();
        // A check registered while it loaded has not seen it yet.
        let loaded = opened.and_then(|loaded| {
            self.run_admissions(&loaded.spec)?;
            Ok(Arc::new(loaded))
        });
        self.release(&name, &changes);
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                drop(changes);
                self.announce_abandoned(&spec);
                return Err(error);
            }
        };
        let spec = Spec::clone(&loaded.spec);
        let slot = self.slot(&name);
        if let Some(replaced) = slot.current.swap(Some(loaded)) {
            // Not expected (the plugin's turn is held and the slot was empty), but a version
            // that was there must drain like any other.
            self.inner.reaper.retire(replaced);
        }
        slot.metrics.loaded();
        drop(changes);
        Ok(Synced::Loaded(spec))
    }

    /// Resolves `origin` and takes the turn of the plugin it holds. Which plugin that is shows
    /// only once it is read, so it is read before the turn; if a change ended meanwhile (it
    /// may have written what was read), it is read again in the turn, where no change of
    /// gp's can write it.
    fn resolve_in_turn(
        &self,
        origin: &Path,
        settings: &Settings<'_>,
    ) -> Result<(folder::Folder, Turn<'_>), Error> {
        let seen = self.inner.turns.ended();
        let mut folder = source::resolve(origin, settings)?;
        for _ in 0..3 {
            let turn = self.turn(&folder.manifest.name);
            if self.inner.turns.ended() == seen {
                return Ok((folder, turn));
            }
            let again = source::resolve(origin, settings)?;
            if again.manifest.name == folder.manifest.name {
                return Ok((again, turn));
            }
            folder = again;
        }
        // The folder changed plugins three times while this waited: take the last reading.
        let turn = self.turn(&folder.manifest.name);
        Ok((folder, turn))
    }

    /// Opens a checked library as a version of this manager's (in its runtime directory).
    pub(crate) fn open(&self, spec: Spec, library: &LibraryFile) -> Result<Loaded, Error> {
        #[cfg(feature = "isolate")]
        {
            let config = &self.inner.config;
            let isolation = match config.isolated.get(spec.name()) {
                Some(own) => Some(own),
                None => config
                    .isolation
                    .covers(spec.name())
                    .then_some(&config.isolation),
            };
            if let Some(isolation) = isolation {
                return Loaded::open_isolated(
                    spec,
                    library,
                    self.runtime_dir(),
                    config.hook_timeout,
                    std::sync::Arc::clone(isolation),
                );
            }
        }
        #[cfg(feature = "isolate")]
        let preflight = |spec: &Spec, copy: &std::path::Path| {
            if self.inner.config.preflight == Some(true) {
                crate::runtime::isolation::preflight::preflight(
                    spec,
                    copy,
                    &self.inner.config.isolation,
                    self.runtime_dir(),
                )
                .map(|()| true)
            } else {
                Ok(false)
            }
        };
        #[cfg(not(feature = "isolate"))]
        let preflight = |_: &Spec, _: &std::path::Path| Ok(false);
        Loaded::open(
            spec,
            library,
            self.runtime_dir(),
            self.inner.config.hook_timeout,
            &preflight,
        )
    }
}

/// How many plugin folders [`Manager::load_plugins`] loads at once. A constant, not the
/// number of CPUs: what makes a load slow is mostly waiting (an `on_load` that sleeps or
/// calls out, a pre-flight runner's start), and a server with 2 CPUs needs to get past a few
/// slow hooks as much as one with 64. The CPU work does not scale past the CPUs anyway (the
/// dynamic loader maps one library at a time, under its own lock), and 8 threads cost little:
/// 8 slow hooks at once still hold the rest back, 7 do not.
pub(crate) const LOADERS: usize = 8;

/// The stack of each loading thread: what it runs (resolving a source, unpacking a package,
/// the checks) ran on the main thread (8 MiB, the usual limit) before loads were concurrent, so
/// it gets as much as before, not a spawned thread's 2 MiB. (A library's start-up code runs on
/// a thread of its own, `activity::on_a_thread_of_its_own`, and `on_load` on another.)
const LOADER_STACK: usize = 8 << 20;

/// The plugin folders and packages in `base`, in name order.
fn plugin_folders(base: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(base).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::MissingBaseDir {
                path: base.to_owned(),
            }
        } else {
            Error::io(base, e)
        }
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) || source::is_package(&e.path()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    Ok(dirs)
}
