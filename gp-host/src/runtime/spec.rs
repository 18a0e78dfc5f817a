//! What a host knows about one loaded plugin version.

use std::path::{Path, PathBuf};

use gp_core::manifest::Manifest;

use crate::error::Error;
use crate::folder::{self, Folder, LibraryFile};
use crate::runtime::config;

/// What a host knows about a loaded plugin version: its manifest and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Spec {
    /// The plugin's `plugin.json`, verified against the manifest embedded in its library.
    pub manifest: Manifest,
    /// The folder its `plugin.json` and library were read from (for a package, where it was
    /// unpacked; for a `remote_git` plugin, where it was built).
    pub dir: PathBuf,
    /// What the plugin was loaded from and a watching manager follows: its plugin folder, or
    /// its `.plg` package (for a `remote_git` plugin, the folder of its `plugin.json`).
    pub origin: PathBuf,
    /// The library it was loaded from (the host runs a private copy of it; see
    /// [`Manager`](crate::Manager)).
    pub library: PathBuf,
    /// The SHA-256 of the library, in hex.
    pub sha256: String,
    /// The `gp-core` version the plugin was built against.
    pub abi_version: String,
    /// Whether the plugin has an `#[on_load]` hook.
    pub has_on_load: bool,
    /// Whether the plugin has an `#[on_unload]` hook.
    pub has_on_unload: bool,
    /// The SHA-256 of the `config.json` beside its `plugin.json` when it was loaded, in hex;
    /// `None` without one. A change of it alone is a new instance of the same build with the
    /// new configuration (see [`Manager::reload`](crate::Manager::reload)).
    pub config_sha256: Option<String>,
    /// What `#[plugin]` recorded about its handlers beside the manifest: which are `async`
    /// (a server never runs their calls on its connections' threads).
    pub details: gp_core::manifest::Details,
}

impl Spec {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The plugin's version.
    pub fn version(&self) -> &semver::Version {
        &self.manifest.version
    }

    /// Where its configuration is read from: `config.json` in its folder, or
    /// `<name>.config.json` beside its package (or bare library).
    pub fn config_path(&self) -> PathBuf {
        config::location(self.name(), &self.dir, &self.origin)
    }
}

/// Checks a library as a file and against its folder's `plugin.json` (if it came with one);
/// returns the spec it will be known by, read from `dir` and followed at `origin`.
pub(crate) fn examine(
    folder: Option<&Folder>,
    library: &LibraryFile,
    dir: &Path,
    origin: &Path,
) -> Result<Spec, Error> {
    let checked = folder::check(folder, library)?;
    let configured = checked.details.configured;
    let config_sha256 = config::sha256(&checked.manifest.name, dir, origin, configured)?;
    Ok(Spec {
        manifest: checked.manifest,
        dir: dir.to_owned(),
        origin: origin.to_owned(),
        library: library.path.clone(),
        sha256: library.sha256.clone(),
        abi_version: checked.abi_version,
        has_on_load: false,
        has_on_unload: false,
        config_sha256,
        details: checked.details,
    })
}
