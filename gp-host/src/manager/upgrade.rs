//! Upgrading a plugin: verify the new version completely, then swap it in atomically; the old
//! one retires once its calls in flight have returned.

use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::folder::{self, Folder, LibraryFile};
use crate::manager::report::{Synced, Upgrade, UpgradeOptions, Upgraded};
use crate::manager::Manager;
use crate::runtime::loaded::Loaded;
use crate::runtime::slot::Slot;
use crate::runtime::spec::{examine, Spec};
use crate::source;
use crate::util::normalize;

impl Manager {
    /// Re-reads the folder (or package) plugin `name` was loaded from and upgrades to what it
    /// holds now (newer versions only), or returns [`Upgrade::Unchanged`].
    ///
    /// The same build with a changed `config.json` is reconfigured: a new instance of the
    /// running version opens with the new configuration (its `#[on_load]` runs with it) and
    /// replaces the old one as an upgrade does, so no call fails; calls in flight finish on
    /// the old instance, whose state is dropped after the last. A configuration the plugin
    /// refuses leaves the old one serving ([`Error::UpgradeRefused`] with the
    /// [`Error::Config`]). The watcher does the same when the file changes.
    pub fn reload(&self, name: &str) -> Result<Upgrade, Error> {
        let _turn = self.turn(name);
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
        let _turn = self.turn(name);
        let changes = self.lock_changes();
        let slot = self.existing_slot(name);
        let Some(running) = slot.as_ref().and_then(|s| s.current.load_full()) else {
            return Err(Error::NotFound {
                plugin: name.to_owned(),
            });
        };
        let slot = slot.expect("a running plugin has a slot");
        let refuse = |reason: Error| self.refuse_upgrade(&running, reason);
        let (folder, library) = if path.is_dir() || source::is_package(path) {
            let folder = source::resolve(&normalize(path), &self.settings()).map_err(refuse)?;
            let library = folder::read_library(&folder.library).map_err(refuse)?;
            (Some(folder), library)
        } else {
            (None, folder::read_library(path).map_err(refuse)?)
        };
        let synced = self.upgrade_locked(&slot, &running, folder, library, options)?;
        drop(changes);
        self.announce(&synced);
        self.gc_after(synced.serving());
        Ok(match synced {
            Synced::Upgraded(upgraded) => Upgrade::Upgraded(upgraded),
            Synced::Unchanged(spec) => Upgrade::Unchanged(spec),
            _ => unreachable!("an upgrade upgrades or changes nothing"),
        })
    }

    /// The upgrade itself, with the change lock held.
    pub(crate) fn upgrade_locked(
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
        // A bare library keeps the plugin's folder and origin; a folder or package brings its own.
        let (dir, origin) = folder.as_ref().map_or_else(
            || (&running.spec.dir, &running.spec.origin),
            |f| (&f.dir, &f.origin),
        );
        // The same build and manifest with another configuration is a new instance of the
        // running version (no version rule applies): its `#[on_load]` builds a state from the
        // new configuration, and it replaces the old one as an upgrade does.
        let same_build = library.sha256 == running.spec.sha256 && same_manifest;
        if same_build {
            let configured = running.spec.details.configured;
            let config = crate::runtime::config::sha256(&slot.name, dir, origin, configured)
                .map_err(refuse)?;
            if config == running.spec.config_sha256 {
                return Ok(Synced::Unchanged(Spec::clone(&running.spec)));
            }
            tracing::info!(target: "gp", plugin = slot.name, "its configuration changed: opening a new instance with it");
        }
        let spec = examine(folder.as_ref(), &library, dir, origin).map_err(refuse)?;
        if spec.name() != slot.name {
            return Err(refuse(Error::NameMismatch {
                plugin: slot.name.clone(),
                found: spec.name().to_owned(),
                path: folder.map_or(library.path, |f| f.origin),
            }));
        }
        if !same_build && !options.force && spec.version() < running.spec.version() {
            return Err(refuse(Error::NotNewer {
                plugin: slot.name.clone(),
                running: running.spec.version().clone(),
                offered: spec.version().clone(),
            }));
        }
        if !same_build
            && !options.force
            && spec.version() == running.spec.version()
            && !self.inner.config.reload_same_version
        {
            return Err(refuse(Error::SameVersion {
                plugin: slot.name.clone(),
                version: spec.version().clone(),
            }));
        }
        self.run_admissions(&spec).map_err(refuse)?;
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
            plugin: running.spec.name().to_owned(),
            running: running.spec.version().clone(),
            source: Box::new(reason),
        };
        tracing::warn!(target: "gp", plugin = running.spec.name(), "{error}");
        error
    }
}
