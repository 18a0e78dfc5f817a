//! Where a plugin comes from, resolved to a plugin folder: a folder as it is, a `.plg`
//! package unpacked and verified ([`package`], feature `package`), a `remote_git` repository
//! built ([`git`], feature `git`), a package downloaded ([`download`], feature `install`).
//!
//! A source never names the manager: it turns a path into a [`Folder`] and leaves what to do
//! with it to the caller.

use std::path::{Path, PathBuf};

use crate::build::BuildOptions;
use crate::error::Error;
use crate::folder::{self, Folder};
use crate::util::short_hash;

#[cfg(feature = "install")]
pub(crate) mod download;
#[cfg(feature = "git")]
mod git;
#[cfg(feature = "package")]
pub mod package;

/// The file extension of packages (`name-1.0.0.plg`).
pub(crate) const PACKAGE_EXTENSION: &str = "plg";

/// Where, in a runtime directory, packages are unpacked (`<short hash>/` each).
pub(crate) fn packages_dir(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("packages")
}

/// Where, in a runtime directory, `remote_git` plugins are cloned and built.
pub(crate) fn git_dir(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("git")
}

/// The folder a package whose file hashes to `sha256` is unpacked into, in `cache`.
pub(crate) fn unpacked_dir(cache: &Path, sha256: &str) -> PathBuf {
    cache.join(short_hash(sha256))
}

/// Whether `path` names a package (`*.plg`).
pub(crate) fn is_package(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == PACKAGE_EXTENSION)
}

/// What resolving a source needs from the manager that asks.
pub(crate) struct Settings<'a> {
    /// Where unpacked packages (`packages/`) and git builds (`git/`) go.
    #[cfg_attr(not(any(feature = "package", feature = "git")), allow(dead_code))]
    pub(crate) runtime_dir: &'a Path,
    /// Which package signatures to accept.
    #[cfg(feature = "package")]
    pub(crate) trust: &'a package::Trust,
    /// How large a package may be.
    #[cfg(feature = "package")]
    pub(crate) limits: &'a package::Limits,
    /// How to build `remote_git` plugins; `None` when the host does not build them.
    pub(crate) git_build: Option<&'a BuildOptions>,
}

/// Reads the plugin folder at `path`, or unpacks and checks the package at `path` into the
/// runtime directory's `packages/` and reads the folder it gives. A `remote_git`
/// `plugin.json` is built first when `settings` allows it.
pub(crate) fn resolve(path: &Path, settings: &Settings<'_>) -> Result<Folder, Error> {
    if is_package(path) {
        return unpack(path, settings);
    }
    match (folder::read(path), settings.git_build) {
        #[cfg(feature = "git")]
        (
            Err(Error::NeedsBuild {
                repository,
                path: manifest_path,
                ..
            }),
            Some(options),
        ) => git::read_built(
            path,
            &repository,
            &manifest_path,
            &git_dir(settings.runtime_dir),
            options,
        ),
        (read, _) => read,
    }
}

#[cfg(feature = "package")]
fn unpack(path: &Path, settings: &Settings<'_>) -> Result<Folder, Error> {
    let unpacked = package::unpack(
        path,
        &packages_dir(settings.runtime_dir),
        settings.trust,
        settings.limits,
    )?;
    if let Some(key) = &unpacked.signed_by {
        tracing::debug!(target: "gp", package = %path.display(), "package signed by {key}");
    }
    Ok(Folder {
        origin: path.to_owned(),
        ..folder::read(&unpacked.dir)?
    })
}

#[cfg(not(feature = "package"))]
fn unpack(path: &Path, _: &Settings<'_>) -> Result<Folder, Error> {
    Err(Error::Package {
        path: path.to_owned(),
        reason: "this host was built without gp-host's `package` feature; enable it to load .plg packages, or unpack the package into a plugin folder".into(),
        source: None,
    })
}
