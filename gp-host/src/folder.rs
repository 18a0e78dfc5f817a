//! A plugin folder on disk: `plugin.json` plus the library it names, read and checked against
//! each other without loading anything.
//!
//! Every source (a folder, a package once unpacked, a `remote_git` build) ends up as such a
//! folder; this module is the one place that knows its layout and verifies that the
//! `plugin.json` agrees with the manifest embedded in the library.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use gp_core::manifest::{Manifest, SourceMode};

use crate::error::Error;
use crate::library::{self, LibraryInfo};
use crate::util::{lock, sha256_hex};

/// The name of a plugin's manifest file inside its folder.
pub const MANIFEST_FILE: &str = "plugin.json";

/// A plugin folder, read: its manifest and the library it names.
#[derive(Debug)]
pub(crate) struct Folder {
    pub(crate) dir: PathBuf,
    pub(crate) manifest_path: PathBuf,
    pub(crate) manifest: Manifest,
    pub(crate) library: PathBuf,
    /// What it was read from: the folder itself, the package it was unpacked from, or the
    /// folder of a `remote_git` `plugin.json` it was built for.
    pub(crate) origin: PathBuf,
}

/// A library file: its SHA-256, and its contents once they have been read (at most once).
///
/// What is checked is what is loaded: the contents are hashed as read, and contents read later
/// (see [`data`](Self::data)) must hash the same.
#[derive(Debug)]
pub(crate) struct LibraryFile {
    pub(crate) path: PathBuf,
    /// The SHA-256 of the contents, in hex.
    pub(crate) sha256: String,
    /// The contents: read to hash them, or on first need if the file was known unchanged.
    data: OnceCell<Vec<u8>>,
}

impl LibraryFile {
    /// The contents: as read for hashing, or read now (once) and checked against the hash.
    pub(crate) fn data(&self) -> Result<&[u8], Error> {
        if let Some(data) = self.data.get() {
            return Ok(data);
        }
        let data = read_bytes(&self.path)?;
        if sha256_hex(&data) != self.sha256 {
            return Err(Error::InvalidLibrary {
                path: self.path.clone(),
                reason: "the file changed while it was being loaded; try again once it is written"
                    .into(),
            });
        }
        Ok(self.data.get_or_init(|| data))
    }
}

/// What [`check`] learnt: the manifest the plugin is known by and the gp-core it was built
/// against.
pub(crate) struct Checked {
    pub(crate) manifest: Manifest,
    pub(crate) abi_version: String,
    pub(crate) details: gp_core::manifest::Details,
}

/// What a plugin folder holds, read and checked without loading anything.
#[cfg(feature = "package")]
pub(crate) struct CheckedFolder {
    pub(crate) manifest: Manifest,
    pub(crate) library: LibraryFile,
}

/// Reads a plugin folder and checks that its library is a plugin agreeing with its
/// `plugin.json`, without loading it.
#[cfg(feature = "package")]
pub(crate) fn read_checked(dir: &Path) -> Result<CheckedFolder, Error> {
    let folder = read(dir)?;
    let library = read_library(&folder.library)?;
    let checked = check(Some(&folder), &library)?;
    Ok(CheckedFolder {
        manifest: checked.manifest,
        library,
    })
}

/// Reads `dir/plugin.json` and resolves the library it names. A `remote_git` plugin gives
/// [`Error::NeedsBuild`]: building it is the git source's business.
pub(crate) fn read(dir: &Path) -> Result<Folder, Error> {
    let manifest_path = dir.join(MANIFEST_FILE);
    // Refused by its size before it is read: a mutated plugin.json once held 37 MB.
    if let Ok(meta) = std::fs::metadata(&manifest_path) {
        let max = gp_core::manifest::MAX_MANIFEST_BYTES;
        if meta.len() > max {
            return Err(Error::InvalidManifest {
                path: manifest_path,
                source: gp_core::manifest::ManifestError::TooLarge {
                    size: meta.len(),
                    max,
                },
            });
        }
    }
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingManifest {
                path: dir.to_owned(),
            })
        }
        Err(e) => return Err(Error::io(&manifest_path, e)),
    };
    let manifest = read_manifest(&manifest_path, &text)?;
    let source = manifest
        .source
        .as_ref()
        .expect("validated plugin.json has a source");
    if source.mode == SourceMode::RemoteGit {
        return Err(Error::NeedsBuild {
            plugin: manifest.name.clone(),
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

/// Parses the text of the `plugin.json` at `path`.
pub(crate) fn read_manifest(path: &Path, text: &str) -> Result<Manifest, Error> {
    Manifest::from_plugin_json(text).map_err(|source| Error::InvalidManifest {
        path: path.to_owned(),
        source,
    })
}

/// Hashes a library file, reading it unless it is known unchanged since it was last hashed in
/// this process: same device, inode, size, modification *and* change time (the change time
/// cannot be set back by a user, unlike the modification time).
pub(crate) fn read_library(path: &Path) -> Result<LibraryFile, Error> {
    let key = std::fs::metadata(path).ok().and_then(|m| FileKey::of(&m));
    if let Some(sha256) = key
        .as_ref()
        .and_then(|key| cache().hashes.get(key).cloned())
    {
        return Ok(LibraryFile {
            path: path.to_owned(),
            sha256,
            data: OnceCell::new(),
        });
    }
    let data = read_bytes(path)?;
    let sha256 = sha256_hex(&data);
    if let Some(key) = key {
        cache().hashes.insert(key, sha256.clone());
    }
    Ok(LibraryFile {
        path: path.to_owned(),
        sha256,
        data: OnceCell::from(data),
    })
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::InvalidLibrary {
                path: path.to_owned(),
                reason: "the file does not exist".into(),
            }
        } else {
            Error::io(path, e)
        }
    })
}

/// What identifies a file's contents without reading them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileKey {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileKey {
    #[cfg(unix)]
    fn of(metadata: &std::fs::Metadata) -> Option<FileKey> {
        use std::os::unix::fs::MetadataExt;
        Some(FileKey {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    fn of(_: &std::fs::Metadata) -> Option<FileKey> {
        None
    }
}

/// What this process learnt about library files: their hashes by file identity, and what
/// [`library::inspect`] found in each build (by hash). Entries are small and never removed:
/// one per file version seen.
#[derive(Default)]
struct Cache {
    hashes: HashMap<FileKey, String>,
    inspected: HashMap<String, LibraryInfo>,
}

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    lock(CACHE.get_or_init(Default::default))
}

/// Checks a library as a file ([`library::inspect`]) and, given its folder, against the
/// folder's `plugin.json`. Without a folder (a bare library) the plugin is known by its
/// embedded manifest.
pub(crate) fn check(folder: Option<&Folder>, library: &LibraryFile) -> Result<Checked, Error> {
    let info = inspect(library)?;
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
    Ok(Checked {
        manifest,
        abi_version: info.abi_version,
        details: info.details,
    })
}

/// [`library::inspect`] of the library, or what it found in the same build before.
fn inspect(library: &LibraryFile) -> Result<LibraryInfo, Error> {
    let known = cache().inspected.get(&library.sha256).cloned();
    if let Some(info) = known {
        return Ok(LibraryInfo {
            path: library.path.clone(),
            ..info
        });
    }
    let info = library::inspect_bytes(&library.path, library.data()?)?;
    cache()
        .inspected
        .insert(library.sha256.clone(), info.clone());
    Ok(info)
}
