//! What the manager's changes report: loads, upgrades, syncs, and the load report table.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::runtime::spec::Spec;

/// What [`Manager::load_plugins`](crate::Manager::load_plugins) did: every plugin folder, loaded or not.
#[derive(Debug, Default)]
#[non_exhaustive]
#[must_use = "the report lists every folder that failed to load, and why"]
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
    /// Folders whose plugin is disabled ([`Manager::disable`](crate::Manager::disable)),
    /// each with its [`Error::Disabled`](crate::Error::Disabled); not loaded, not failures.
    pub disabled: Vec<LoadFailure>,
}

/// A plugin folder that could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoadFailure {
    /// The plugin folder (or the base directory, if it could not be read).
    pub dir: PathBuf,
    /// Why.
    pub error: Error,
}

/// An upgrade that happened: `from` stopped serving, `to` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Upgraded {
    /// The version that served before.
    pub from: Spec,
    /// The version serving now.
    pub to: Spec,
}

/// What [`Manager::upgrade`](crate::Manager::upgrade) did.
// One per upgrade, never on a call path: boxing would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Upgrade {
    /// The new version serves.
    Upgraded(Upgraded),
    /// The library, manifest and configuration offered are those already serving: nothing
    /// changed.
    Unchanged(Spec),
}

/// How an upgrade may proceed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpgradeOptions {
    /// Allow a version that is not newer than the running one (a downgrade or a rebuild of
    /// the same version).
    pub force: bool,
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
        for off in &self.disabled {
            let detail = match &off.error {
                crate::error::Error::Disabled { plugin, reason, .. } => {
                    format!("{plugin} ({reason})")
                }
                other => other.to_string(),
            };
            rows.push((folder(&off.dir), "disabled".to_owned(), detail));
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

/// What [`Manager::sync`](crate::Manager::sync) did with one plugin folder or package.
#[allow(clippy::large_enum_variant)] // as for `Upgrade`
#[derive(Debug)]
#[non_exhaustive]
pub enum Synced {
    /// A plugin that was not loaded is now.
    Loaded(Spec),
    /// The plugin loaded from it is the same build with the same `plugin.json`.
    Unchanged(Spec),
    /// The plugin loaded from it was upgraded to what it holds now.
    Upgraded(Upgraded),
    /// It is gone, and so is the plugin that was loaded from it.
    Unloaded,
    /// It is gone, and no plugin was loaded from it.
    Nothing,
}

impl Synced {
    /// The version that serves because of this sync, if it loaded or upgraded one.
    pub(crate) fn serving(&self) -> Option<&Spec> {
        match self {
            Synced::Loaded(spec) => Some(spec),
            Synced::Upgraded(upgraded) => Some(&upgraded.to),
            Synced::Unchanged(_) | Synced::Unloaded | Synced::Nothing => None,
        }
    }
}
