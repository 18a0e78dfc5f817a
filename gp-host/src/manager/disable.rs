//! Disabling a plugin: it is unloaded and kept from loading again (by `load_plugins`, `sync`,
//! a watcher, a restart) until it is enabled. A marker file records it:
//! `BASE/.gp-disabled/<name>.json`, with the plugin's origin, the reason, when, and its
//! manifest (so that a server can keep its routes reserved while it is off).

use std::path::{Path, PathBuf};

use gp_core::manifest::Manifest;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::manager::report::Synced;
use crate::manager::Manager;
use crate::name::PluginName;
use crate::runtime::reaper::UnloadReport;
use crate::util::{inside, truncated, write_atomically};

/// The folder, inside the base directory, that holds the disabled plugins' markers. Hidden,
/// so it is never taken for a plugin folder.
pub const DISABLED_DIR: &str = ".gp-disabled";

/// A disabled plugin, as its marker records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Disabled {
    /// The plugin's name.
    pub name: String,
    /// The folder or package it was loaded from, and is loaded from again when enabled.
    pub origin: PathBuf,
    /// Why it was disabled, as given.
    pub reason: String,
    /// When, in seconds since the Unix epoch.
    pub since: u64,
    /// Its manifest when it was disabled.
    pub manifest: Manifest,
}

/// The longest disable reason kept, in bytes: a reason is a line an operator reads, and it
/// is sent with every refused request; a longer one is cut (at a character boundary).
pub const MAX_REASON: usize = 1024;

impl Manager {
    /// The marker of plugin `name`, inside the base directory's [`DISABLED_DIR`]: only for a
    /// valid plugin name, so that no name reaches outside that folder.
    fn marker(&self, name: &str) -> Result<PathBuf, Error> {
        let name = PluginName::new(name)?;
        Ok(self
            .base_dir()
            .join(DISABLED_DIR)
            .join(format!("{name}.json")))
    }

    /// Disables plugin `name`: records it as disabled (in the base directory, so it lasts
    /// across restarts), then unloads it as [`unload`](Self::unload) does. Until
    /// [`enable`](Self::enable), loading its folder or package fails with
    /// [`Error::Disabled`], and [`load_plugins`](Self::load_plugins) lists it as disabled.
    /// A reason longer than [`MAX_REASON`] bytes is cut.
    pub fn disable(&self, name: &str, reason: &str) -> Result<UnloadReport, Error> {
        let marker = self.marker(name)?;
        let _turn = self.turn(name);
        let (spec, _) = self.get_plugin(name)?;
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let reason = truncated(reason, MAX_REASON);
        let disabled = Disabled {
            name: name.to_owned(),
            origin: spec.origin.clone(),
            reason,
            since,
            manifest: spec.manifest.clone(),
        };
        let dir = marker.parent().expect("a marker is in a folder");
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let json = serde_json::to_vec_pretty(&disabled).expect("a marker serialises");
        // Written first: a watcher that sees the unload cannot load the plugin back.
        write_atomically(&marker, |tmp| std::fs::write(tmp, &json))?;
        tracing::info!(target: "gp", plugin = name, reason = disabled.reason, "plugin disabled");
        self.unload(name)
    }

    /// Enables a disabled plugin: removes its marker and loads it from where it was loaded
    /// before. A marker that names an origin outside the base directory is ignored (see
    /// [`disabled`](Self::disabled)), so this never loads from, nor deletes, anything outside it.
    pub fn enable(&self, name: &str) -> Result<Synced, Error> {
        let marker = self.marker(name)?;
        let _turn = self.turn(name);
        let Some(disabled) = self.disabled_plugin(name) else {
            return Err(Error::NotDisabled {
                plugin: name.to_owned(),
            });
        };
        std::fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
        tracing::info!(target: "gp", plugin = name, "plugin enabled");
        self.sync(&disabled.origin)
    }

    /// The disabled plugins, by name: every marker in `BASE/.gp-disabled/` that is named after
    /// the plugin it records (`<name>.json`) and whose origin is inside the base directory.
    /// Any other marker is ignored, with a warning.
    pub fn disabled(&self) -> Vec<Disabled> {
        let dir = self.base_dir().join(DISABLED_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut all: Vec<Disabled> = entries
            .filter_map(Result::ok)
            .filter_map(|e| self.read_marker(&e.path()))
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Plugin `name`'s marker, if it is disabled (and the marker is one
    /// [`disabled`](Self::disabled) lists).
    pub fn disabled_plugin(&self, name: &str) -> Option<Disabled> {
        self.read_marker(&self.marker(name).ok()?)
    }

    fn read_marker(&self, path: &Path) -> Option<Disabled> {
        if path.extension().is_none_or(|e| e != "json") {
            return None;
        }
        let text = std::fs::read_to_string(path).ok()?;
        let disabled: Disabled = match serde_json::from_str(&text) {
            Ok(disabled) => disabled,
            Err(e) => {
                tracing::warn!(target: "gp", marker = %path.display(), "unreadable disabled marker, ignored: {e}");
                return None;
            }
        };
        let stem = path.file_stem().map(|s| s.to_string_lossy());
        if PluginName::new(disabled.name.as_str()).is_err()
            || stem.as_deref() != Some(disabled.name.as_str())
        {
            tracing::warn!(target: "gp", marker = %path.display(), name = disabled.name, "disabled marker ignored: it must be named after the plugin it is for (<name>.json)");
            return None;
        }
        if !inside(self.base_dir(), &disabled.origin) {
            tracing::warn!(target: "gp", marker = %path.display(), origin = %disabled.origin.display(), "disabled marker ignored: its origin is outside the base directory");
            return None;
        }
        Some(disabled)
    }
}
