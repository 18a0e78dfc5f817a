//! Replacing a plugin with a package that arrived by other means than the base directory (an
//! upload to the management API, an install): verified completely, then written where the
//! plugin lives, so that the change outlasts a restart, then synced. What it replaced is kept
//! beside it (`.<file>.previous` beside a package, `.gp-previous/` in a plugin folder: its
//! `plugin.json` and library), so [`Manager::roll_back`] can put it back, on disk too.
//!
//! Where a plugin lives is [`Manager::origin_of`]: the folder or package it serves from, the
//! one its disabled marker names, or the one it was last loaded from. A folder stays a folder
//! and a package a package, so that what serves, what the API shows and what a fresh manager
//! over the base directory loads agree.

use std::path::{Path, PathBuf};

use gp_core::manifest::Manifest;

use crate::error::Error;
use crate::folder::MANIFEST_FILE;
use crate::manager::report::{Synced, UpgradeOptions};
use crate::manager::Manager;
use crate::source::{package, Settings};
use crate::util::{lock, write_atomically};

/// In a plugin folder, what an upload replaced: its `plugin.json` and library.
pub(crate) const KEPT_DIR: &str = ".gp-previous";

impl Manager {
    /// Upgrades plugin `name` (or loads it, if it is not loaded) from the `.plg` package
    /// `file`, and keeps the change: the package is verified with this manager's trust and
    /// limits first (nothing changes if it is refused), then written where the plugin lives
    /// (over its `.plg`, or into its plugin folder: `plugin.json` and the library; a plugin
    /// never loaded becomes `BASE/<name>.plg`) and synced from there. If the sync refuses it,
    /// what was there is put back. Returns what the sync did.
    pub fn replace_with_package(&self, name: &str, file: &Path) -> Result<Synced, Error> {
        self.replace_verified(name, file, &self.settings(), UpgradeOptions::default())
    }

    /// [`replace_with_package`](Self::replace_with_package), verified with `settings`.
    pub(crate) fn replace_verified(
        &self,
        name: &str,
        file: &Path,
        settings: &Settings<'_>,
        options: UpgradeOptions,
    ) -> Result<Synced, Error> {
        let _turn = self.turn(name);
        let scratch = crate::util::scratch::folder(self.runtime_dir(), "verify")?;
        let unpacked = package::unpack(file, scratch.path(), settings.trust, settings.limits)?;
        if unpacked.manifest.name != name {
            return Err(Error::NameMismatch {
                plugin: name.to_owned(),
                found: unpacked.manifest.name.clone(),
                path: file.to_owned(),
            });
        }
        let target = self.place_of(name);
        if unchanged(&target, file, &unpacked.dir) {
            // The same files again: synced as they are, and what is kept stays kept.
            return self.sync_source(&target, settings, options);
        }
        if target.is_dir() {
            self.replace_folder(
                &target,
                &unpacked.dir,
                &unpacked.manifest,
                settings,
                options,
            )
        } else {
            self.replace_file(&target, file, settings, options)
        }
    }

    /// Where a change to plugin `name` writes: where it lives, or, for a plugin never loaded,
    /// `BASE/<name>` if that is a folder, else `BASE/<name>.plg`.
    pub(crate) fn place_of(&self, name: &str) -> PathBuf {
        self.origin_of(name).unwrap_or_else(|| {
            let folder = self.base_dir().join(name);
            if folder.is_dir() {
                folder
            } else {
                self.base_dir()
                    .join(format!("{name}.{}", package::EXTENSION))
            }
        })
    }

    /// Puts `file` at `target` (keeping what was there until the sync succeeded) and syncs.
    fn replace_file(
        &self,
        target: &Path,
        file: &Path,
        settings: &Settings<'_>,
        options: UpgradeOptions,
    ) -> Result<Synced, Error> {
        let backup = kept_package(target);
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
        if let Err(e) = write_atomically(target, |tmp| {
            std::fs::copy(file, tmp)?;
            // A copy keeps the source's mode; a temporary file is its owner's only.
            set_readable(tmp)
        }) {
            restore();
            return Err(e);
        }
        // The replaced package stays as the backup: what a roll-back goes back to.
        self.sync_or_restore(target, settings, options, restore, || {})
    }

    /// Writes the unpacked plugin folder `from`'s `plugin.json` and library over plugin folder
    /// `folder` (nothing else in it is touched) and syncs; on success the replaced pair is
    /// kept in `folder/.gp-previous/`.
    fn replace_folder(
        &self,
        folder: &Path,
        from: &Path,
        manifest: &Manifest,
        settings: &Settings<'_>,
        options: UpgradeOptions,
    ) -> Result<Synced, Error> {
        let before = FolderPair::read(folder);
        let new = FolderPair::read(from).ok_or_else(|| Error::MissingManifest {
            path: from.to_owned(),
        })?;
        debug_assert_eq!(new.manifest.name, manifest.name);
        let written = new.write_over(folder)?;
        self.sync_or_restore(
            folder,
            settings,
            options,
            || written.restore(),
            || {
                if let Some(before) = &before {
                    if let Err(error) = before.keep_in(folder) {
                        tracing::warn!(target: "gp", folder = %folder.display(), "the replaced version could not be kept for a roll-back: {error}");
                    }
                }
            },
        )
    }

    /// Puts back what the last [`replace_with_package`](Self::replace_with_package) of plugin
    /// `name` replaced, on disk and in the manager (a forced upgrade, verified like any
    /// other); what it swapped out becomes the one kept, so a second roll-back goes forward
    /// again. Fails with [`Error::NothingToRollBack`] when nothing was kept.
    pub fn roll_back(&self, name: &str) -> Result<crate::Upgrade, Error> {
        let _turn = self.turn(name);
        let (spec, _) = self.get_plugin(name)?;
        let nothing = || Error::NothingToRollBack {
            plugin: name.to_owned(),
        };
        let origin = spec.origin.clone();
        if origin.is_dir() {
            let kept = FolderPair::read(&origin.join(KEPT_DIR)).ok_or_else(nothing)?;
            let current = FolderPair::read(&origin);
            let written = kept.write_over(&origin)?;
            return match self.upgrade_with(name, &origin, crate::UpgradeOptions { force: true }) {
                Ok(upgrade) => {
                    if let Some(current) = &current {
                        if let Err(error) = current.keep_in(&origin) {
                            tracing::warn!(target: "gp", plugin = name, "the version rolled back from could not be kept: {error}");
                        }
                    }
                    tracing::info!(target: "gp", plugin = name, "rolled back");
                    Ok(upgrade)
                }
                Err(error) => {
                    written.restore();
                    Err(error)
                }
            };
        }
        let kept = kept_package(&origin);
        if !kept.exists() {
            return Err(nothing());
        }
        let swap = origin.with_file_name(format!(".{}.swap", file_name(&origin)));
        std::fs::rename(&origin, &swap).map_err(|e| Error::io(&origin, e))?;
        if let Err(e) = std::fs::rename(&kept, &origin) {
            let _ = std::fs::rename(&swap, &origin);
            return Err(Error::io(&kept, e));
        }
        match self.upgrade_with(name, &origin, crate::UpgradeOptions { force: true }) {
            Ok(upgrade) => {
                let _ = std::fs::rename(&swap, &kept);
                tracing::info!(target: "gp", plugin = name, "rolled back");
                Ok(upgrade)
            }
            Err(error) => {
                let _ = std::fs::rename(&origin, &kept);
                let _ = std::fs::rename(&swap, &origin);
                Err(error)
            }
        }
    }

    /// The version a [`roll_back`](Self::roll_back) of plugin `name` would go back to: what
    /// is kept for it, checked as a load would check it (the package verified with this
    /// manager's trust; the folder's `plugin.json` and library present). `None` when nothing
    /// is kept, or what is kept is the version serving.
    pub fn rollback_version(&self, name: &str) -> Option<semver::Version> {
        let (spec, _) = self.get_plugin(name).ok()?;
        self.kept_version(name, &spec)
            .filter(|kept| kept != spec.version())
    }

    fn kept_version(&self, name: &str, spec: &crate::Spec) -> Option<semver::Version> {
        if spec.origin.is_dir() {
            let kept = FolderPair::read(&spec.origin.join(KEPT_DIR))?;
            return (kept.manifest.name == name).then_some(kept.manifest.version);
        }
        let kept = kept_package(&spec.origin);
        let meta = std::fs::metadata(&kept).ok()?;
        let stamp = (meta.len(), meta.modified().ok());
        if let Some((seen, version)) = lock(&self.inner.kept_versions).get(&kept) {
            if *seen == stamp {
                return version.clone();
            }
        }
        let version = package::verify(&kept, self.trust(), &self.package_limits())
            .ok()
            .filter(|unpacked| unpacked.manifest.name == name)
            .map(|unpacked| unpacked.manifest.version);
        lock(&self.inner.kept_versions).insert(kept, (stamp, version.clone()));
        version
    }

    fn sync_or_restore(
        &self,
        target: &Path,
        settings: &Settings<'_>,
        options: UpgradeOptions,
        restore: impl FnOnce(),
        done: impl FnOnce(),
    ) -> Result<Synced, Error> {
        match self.sync_source(target, settings, options) {
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

/// Whether `target` holds what `file` (unpacked in `unpacked`) would write: the same package
/// bytes, or a folder with the same `plugin.json` and library.
fn unchanged(target: &Path, file: &Path, unpacked: &Path) -> bool {
    if target.is_dir() {
        let (Some(now), Some(new)) = (FolderPair::read(target), FolderPair::read(unpacked)) else {
            return false;
        };
        return now.manifest_bytes == new.manifest_bytes && now.library == new.library;
    }
    let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).ok();
    if size(target).is_none() || size(target) != size(file) {
        return false;
    }
    match (std::fs::read(target), std::fs::read(file)) {
        (Ok(now), Ok(new)) => now == new,
        _ => false,
    }
}

/// Where the package a replacement of `package` replaced is kept: `.<file name>.previous`.
fn kept_package(package: &Path) -> PathBuf {
    package.with_file_name(format!(".{}.previous", file_name(package)))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(unix)]
fn set_readable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_readable(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// A plugin folder's `plugin.json` and the library it names, in memory.
struct FolderPair {
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    /// The library's path relative to the folder (`source.path`), and its bytes.
    library: Option<(PathBuf, Vec<u8>)>,
}

/// Files written over a folder, with what each held before (`None`: it did not exist).
struct Written(Vec<(PathBuf, Option<Vec<u8>>)>);

impl FolderPair {
    /// The pair in `dir`, or `None` if it has no readable `plugin.json`.
    fn read(dir: &Path) -> Option<FolderPair> {
        let manifest_bytes = std::fs::read(dir.join(MANIFEST_FILE)).ok()?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes).ok()?;
        let library = manifest
            .source
            .as_ref()
            .map(|s| PathBuf::from(&s.path))
            .filter(|path| path.is_relative() && !path.as_os_str().is_empty())
            .and_then(|path| std::fs::read(dir.join(&path)).ok().map(|b| (path, b)));
        Some(FolderPair {
            manifest,
            manifest_bytes,
            library,
        })
    }

    /// Writes the library, then `plugin.json`, into `folder`. The manifest goes last: a
    /// watcher that reads the folder mid-way sees the old `plugin.json` (and a library it
    /// does not name) or the new pair. On a failure what was written is put back.
    fn write_over(&self, folder: &Path) -> Result<Written, Error> {
        let files = self
            .library
            .iter()
            .map(|(path, bytes)| (folder.join(path), bytes))
            .chain([(folder.join(MANIFEST_FILE), &self.manifest_bytes)]);
        let mut written = Written(Vec::new());
        for (target, bytes) in files {
            let before = std::fs::read(&target).ok();
            if let Some(parent) = target.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if let Err(e) = write_atomically(&target, |tmp| std::fs::write(tmp, bytes)) {
                written.restore();
                return Err(e);
            }
            written.0.push((target, before));
        }
        Ok(written)
    }

    /// Keeps this pair in `folder/.gp-previous/` (replacing what was kept there).
    fn keep_in(&self, folder: &Path) -> Result<(), Error> {
        let kept = folder.join(KEPT_DIR);
        if kept.exists() {
            std::fs::remove_dir_all(&kept).map_err(|e| Error::io(&kept, e))?;
        }
        std::fs::create_dir_all(&kept).map_err(|e| Error::io(&kept, e))?;
        self.write_over(&kept).map(drop)
    }
}

impl Written {
    /// Puts back what each file held, last written first.
    fn restore(&self) {
        for (path, before) in self.0.iter().rev() {
            match before {
                Some(bytes) => {
                    let _ = write_atomically(path, |tmp| std::fs::write(tmp, bytes));
                }
                None => {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}
