//! Bringing the manager in line with the base directory: discovery, and loading, upgrading or
//! unloading the plugin of one folder or package.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::folder::{self, LibraryFile};
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
    /// Folders are visited in name order; hidden folders (`.name`) are skipped. A folder
    /// that fails is reported and changes nothing: the others load, and plugins already
    /// loaded keep serving.
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
        for dir in dirs {
            match self.sync_with(&dir, &self.settings(), UpgradeOptions::default()) {
                Ok(Synced::Loaded(spec)) => report.loaded.push(spec),
                Ok(Synced::Unchanged(spec)) => report.unchanged.push(spec),
                Ok(Synced::Upgraded(upgraded)) => report.upgraded.push(upgraded),
                Ok(Synced::Unloaded | Synced::Nothing) => {}
                Err(error @ Error::Disabled { .. }) => {
                    report.disabled.push(LoadFailure { dir, error });
                }
                Err(error) => {
                    self.report_failure(&dir, &error);
                    report.failed.push(LoadFailure { dir, error });
                }
            }
        }
        self.gc_after(
            report
                .loaded
                .iter()
                .chain(report.upgraded.iter().map(|u| &u.to)),
        );
        report
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
        match self.sync_with(dir, settings, UpgradeOptions::default()) {
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
        let synced = self.sync_with(origin, settings, options)?;
        self.gc_after(synced.serving());
        Ok(synced)
    }

    fn sync_with(
        &self,
        origin: &Path,
        settings: &Settings<'_>,
        options: UpgradeOptions,
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
                return self.sync_with(origin, settings, options);
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
                self.run_admissions(&spec)?;
                let loaded = Arc::new(self.open(spec, &library)?);
                let spec = Spec::clone(&loaded.spec);
                let slot = self.slot(&name);
                if let Some(replaced) = slot.current.swap(Some(loaded)) {
                    // Not expected (the change lock is held and the slot was empty), but a
                    // version that was there must drain like any other.
                    self.inner.reaper.retire(replaced);
                }
                slot.metrics.loaded();
                Synced::Loaded(spec)
            }
        };
        drop(changes);
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
