//! Replacing a plugin with a package that arrived by other means than the base directory (an
//! upload to the management API): verified completely, then written where the running
//! plugin came from, so that the change outlasts a restart, then synced. What it replaced is
//! kept beside it (`.<name>.plg.previous`, or `.plugin.json.previous` in a plugin folder), so
//! [`Manager::roll_back`] can put it back, on disk too.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::folder::MANIFEST_FILE;
use crate::manager::report::Synced;
use crate::manager::Manager;
use crate::source::package;

/// In a plugin folder, the `plugin.json` an upload replaced.
const PREVIOUS_MANIFEST: &str = ".plugin.json.previous";

impl Manager {
    /// Upgrades plugin `name` (or loads it, if it is not loaded) from the `.plg` package
    /// `file`, and keeps the change: the package is verified with this manager's trust and
    /// limits first (nothing changes if it is refused), then written where the plugin comes
    /// from (over its `.plg` in the base directory, or into its plugin folder: `plugin.json`
    /// and the library) and synced from there. If the sync refuses it, what was there is put
    /// back. Returns what the sync did.
    pub fn replace_with_package(&self, name: &str, file: &Path) -> Result<Synced, Error> {
        let base = self.base_dir().to_owned();
        let scratch = crate::util::scratch::folder(self.runtime_dir(), "verify")?;
        let unpacked = package::unpack(file, scratch.path(), self.trust(), &self.package_limits())?;
        if unpacked.manifest.name != name {
            return Err(Error::NameMismatch {
                plugin: name.to_owned(),
                found: unpacked.manifest.name.clone(),
                path: file.to_owned(),
            });
        }
        let origin = self.get_plugin(name).ok().map(|(spec, _)| spec.origin);
        match origin {
            Some(folder) if folder.is_dir() => {
                let library = unpacked
                    .manifest
                    .source
                    .as_ref()
                    .map(|s| s.path.clone())
                    .unwrap_or_default();
                self.replace_folder(&folder, &unpacked.dir, &library)
            }
            Some(plg) => self.replace_file(&plg, file),
            None => self.replace_file(&base.join(format!("{name}.{}", package::EXTENSION)), file),
        }
    }

    /// Puts `file` at `target` (keeping what was there until the sync succeeded) and syncs.
    fn replace_file(&self, target: &Path, file: &Path) -> Result<Synced, Error> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let backup = target.with_file_name(format!(".{name}.previous"));
        let replaced = target.exists();
        if replaced {
            std::fs::rename(target, &backup).map_err(|e| Error::io(target, e))?;
        }
        let restore = || {
            if replaced {
                let _ = std::fs::rename(&backup, target);
            } else {
                let _ = std::fs::remove_file(target);
            }
        };
        if let Err(e) =
            crate::util::write_atomically(target, |tmp| std::fs::copy(file, tmp).map(drop))
        {
            restore();
            return Err(e);
        }
        // The replaced package stays as the backup: what a roll-back goes back to.
        self.sync_or_restore(target, restore, || {})
    }

    /// Writes the unpacked plugin folder `from`'s `plugin.json` and `library` over plugin
    /// folder `folder` (nothing else in it is touched) and syncs.
    fn replace_folder(&self, folder: &Path, from: &Path, library: &str) -> Result<Synced, Error> {
        // The manifest goes last: a watcher that reads the folder mid-way sees the old
        // plugin.json (and a library it does not name) or the new pair.
        let files: Vec<PathBuf> = vec![from.join(library), from.join(MANIFEST_FILE)];
        let mut written: Vec<(PathBuf, Option<Vec<u8>>)> = Vec::new();
        let restore = |written: &[(PathBuf, Option<Vec<u8>>)]| {
            for (path, before) in written.iter().rev() {
                match before {
                    Some(bytes) => {
                        let _ =
                            crate::util::write_atomically(path, |tmp| std::fs::write(tmp, bytes));
                    }
                    None => {
                        let _ = std::fs::remove_file(path);
                    }
                }
            }
        };
        let manifest = folder.join(MANIFEST_FILE);
        let kept = folder.join(PREVIOUS_MANIFEST);
        let before_manifest = std::fs::read(&manifest).ok();
        for (source, name) in files
            .iter()
            .zip([Path::new(library), Path::new(MANIFEST_FILE)])
        {
            let target = folder.join(name);
            let before = std::fs::read(&target).ok();
            if let Err(e) =
                crate::util::write_atomically(&target, |tmp| std::fs::copy(source, tmp).map(drop))
            {
                restore(&written);
                return Err(e);
            }
            written.push((target, before));
        }
        self.sync_or_restore(
            folder,
            || restore(&written),
            || {
                // The replaced plugin.json: what a roll-back goes back to (its library is still
                // in the folder unless the new one had the same file name).
                if let Some(bytes) = &before_manifest {
                    let _ = crate::util::write_atomically(&kept, |tmp| std::fs::write(tmp, bytes));
                }
            },
        )
    }

    /// Puts back what the last [`replace_with_package`](Self::replace_with_package) of plugin
    /// `name` replaced, on disk and in the manager (a forced upgrade, verified like any
    /// other); what it swapped out becomes the one kept, so a second roll-back goes forward
    /// again. Fails with [`Error::NothingToRollBack`] when nothing was kept.
    pub fn roll_back(&self, name: &str) -> Result<crate::Upgrade, Error> {
        let (spec, _) = self.get_plugin(name)?;
        let (current, kept, target) = if spec.origin.is_dir() {
            let current = spec.origin.join(MANIFEST_FILE);
            (
                current,
                spec.origin.join(PREVIOUS_MANIFEST),
                spec.origin.clone(),
            )
        } else {
            let file = spec
                .origin
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let kept = spec.origin.with_file_name(format!(".{file}.previous"));
            (spec.origin.clone(), kept, spec.origin.clone())
        };
        if !kept.exists() {
            return Err(Error::NothingToRollBack {
                plugin: name.to_owned(),
            });
        }
        let swap = current.with_file_name(format!(
            ".{}.swap",
            current
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        std::fs::rename(&current, &swap).map_err(|e| Error::io(&current, e))?;
        if let Err(e) = std::fs::rename(&kept, &current) {
            let _ = std::fs::rename(&swap, &current);
            return Err(Error::io(&kept, e));
        }
        match self.upgrade_with(name, &target, crate::UpgradeOptions { force: true }) {
            Ok(upgrade) => {
                let _ = std::fs::rename(&swap, &kept);
                tracing::info!(target: "gp", plugin = name, "rolled back");
                Ok(upgrade)
            }
            Err(error) => {
                let _ = std::fs::rename(&current, &kept);
                let _ = std::fs::rename(&swap, &current);
                Err(error)
            }
        }
    }

    fn sync_or_restore(
        &self,
        target: &Path,
        restore: impl FnOnce(),
        done: impl FnOnce(),
    ) -> Result<Synced, Error> {
        match self.sync(target) {
            Ok(synced) => {
                done();
                Ok(synced)
            }
            Err(error) => {
                restore();
                Err(error)
            }
        }
    }
}
