//! `.plg` packages: a plugin folder as one verifiable file.
//!
//! A package is a gzip-compressed tar archive with, at its root and nothing else:
//!
//! | file | what |
//! |---|---|
//! | `plugin.json` | the plugin's manifest |
//! | the library | the file `plugin.json`'s `source.path` names |
//! | `CHECKSUMS` | one line per other file, `<sha256 hex>  <file name>` (the format of `sha256sum`, so `sha256sum -c CHECKSUMS` checks an extracted package) |
//! | `CHECKSUMS.sig` | optional: the ed25519 signature of `CHECKSUMS`, in base64 |
//!
//! Unpacking never trusts the archive: every entry must be a regular file at the root with a
//! plain name, at most once, within [`Limits`] (entries, and bytes *after* decompression, so a
//! gzip bomb stops at the limit); every file must be listed in `CHECKSUMS` with the right
//! hash, the signature must verify with a trusted key when [`Trust`] asks for one, and
//! `plugin.json` and its library must be there. Files are written into a fresh temporary
//! folder that is removed if anything is refused, so a refused package leaves nothing behind.
//!
//! Inside: `keys` (signing and trusted keys), `archive` (reading the archive without trusting
//! it), `checks` (checksums, signature, the plugin inside); this file packs, verifies and
//! unpacks.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use gp_core::manifest::Manifest;

use crate::error::{Cause, Error};
use crate::folder::{self, MANIFEST_FILE};
use crate::util::{sha256_hex, write_atomically};

pub use crate::util::scratch::ScratchFile;

/// `Refusal::new(format!(…))`, or with `source =>` first, `Refusal::because(format!(…), source)`.
macro_rules! refused {
    ($source:ident => $($format:tt)*) => {
        $crate::source::package::Refusal::because(format!($($format)*), $source)
    };
    ($($format:tt)*) => {
        $crate::source::package::Refusal::new(format!($($format)*))
    };
}

mod archive;
mod checks;
mod keys;

pub use keys::{PublicKey, SecretKey};

/// The checksum list's file name inside a package.
pub const CHECKSUMS: &str = "CHECKSUMS";
/// The signature's file name inside a package.
pub const SIGNATURE: &str = "CHECKSUMS.sig";
/// The file extension of packages.
pub const EXTENSION: &str = super::PACKAGE_EXTENSION;

/// How much a package may hold once unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries in the archive (default 16; a package needs 3 or 4).
    pub max_entries: usize,
    /// Bytes, counted after decompression, of the whole archive (default 256 MiB; a
    /// release-built plugin is about 1 MB, a debug one about 20 MB). Also the largest
    /// package file (compressed) accepted.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_entries: 16,
            max_bytes: 256 << 20,
        }
    }
}

/// Which signatures a host accepts.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Public keys whose signatures are accepted.
    pub keys: Vec<PublicKey>,
    /// Refuse packages that are not signed by one of `keys`. When false, a signed package
    /// must still verify with one of `keys` if any are given (an unknown signer is refused);
    /// an unsigned one is accepted.
    pub require_signature: bool,
}

impl Trust {
    /// Accepts only packages signed by one of `keys`.
    pub fn signed_by(keys: impl IntoIterator<Item = PublicKey>) -> Trust {
        Trust {
            keys: keys.into_iter().collect(),
            require_signature: true,
        }
    }
}

/// Why a package (or a key) is refused, before the error names the file: what is wrong, and
/// the decoder's or the system's error behind it, if there is one.
#[derive(Debug)]
pub(crate) struct Refusal {
    reason: String,
    source: Option<Cause>,
}

impl Refusal {
    pub(crate) fn new(reason: impl Into<String>) -> Refusal {
        Refusal {
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn because(
        reason: String,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Refusal {
        Refusal {
            reason,
            source: Some(Box::new(source)),
        }
    }

    /// The [`Error::Package`] of the package at `path`.
    pub(crate) fn of_package(self, path: &Path) -> Error {
        Error::Package {
            path: path.to_owned(),
            reason: self.reason,
            source: self.source,
        }
    }

    /// The [`Error::Key`] of the key `key` (a file, or the key's text).
    pub(crate) fn of_key(self, key: impl Into<String>) -> Error {
        Error::Key {
            key: key.into(),
            reason: self.reason,
            source: self.source,
        }
    }
}

/// A package written by [`pack`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Packed {
    /// The package file.
    pub path: PathBuf,
    /// The plugin's manifest.
    pub manifest: Manifest,
    /// The SHA-256 of the package file, in hex (what `gp install --sha256` expects).
    pub sha256: String,
    /// The public key it was signed with, if it was.
    pub signed_by: Option<PublicKey>,
}

/// Packs the plugin folder `dir` (`plugin.json` and its library, which must agree) into the
/// package `output`, signed with `key` if given. The file is written atomically.
pub fn pack(dir: &Path, output: &Path, key: Option<&SecretKey>) -> Result<Packed, Error> {
    // Checked as a manager checks it, and read once: what is checked is what is packed.
    let checked = folder::read_checked(dir)?;
    let manifest_text = std::fs::read(dir.join(MANIFEST_FILE))
        .map_err(|e| Error::io(dir.join(MANIFEST_FILE), e))?;
    let library_name = checked
        .library
        .path
        .file_name()
        .expect("a library path names a file")
        .to_string_lossy()
        .into_owned();
    let library_data = checked.library.data()?;
    let files: [(&str, &[u8]); 2] = [
        (MANIFEST_FILE, &manifest_text),
        (&library_name, library_data),
    ];
    let checksums = format!(
        "{}  {MANIFEST_FILE}\n{}  {library_name}\n",
        sha256_hex(&manifest_text),
        checked.library.sha256
    );
    let signature = key.map(|key| {
        let signature = key.sign(checksums.as_bytes());
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(signature.to_bytes())
        )
    });

    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    fn add<W: Write>(archive: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        archive.append_data(&mut header, name, data)
    }
    let written = (|| {
        for (name, data) in files {
            add(&mut archive, name, data)?;
        }
        add(&mut archive, CHECKSUMS, checksums.as_bytes())?;
        if let Some(signature) = &signature {
            add(&mut archive, SIGNATURE, signature.as_bytes())?;
        }
        archive.into_inner()?.finish()
    })()
    .map_err(|e| Error::io(output, e))?;
    write_atomically(output, |tmp| std::fs::write(tmp, &written))?;
    Ok(Packed {
        path: output.to_owned(),
        manifest: checked.manifest,
        sha256: sha256_hex(&written),
        signed_by: key.map(SecretKey::public_key),
    })
}

/// A package that passed every check, unpacked.
#[derive(Debug)]
#[non_exhaustive]
pub struct Unpacked {
    /// The package file.
    pub package: PathBuf,
    /// The folder it was unpacked into: a plugin folder.
    pub dir: PathBuf,
    /// The plugin's manifest (from its `plugin.json`).
    pub manifest: Manifest,
    /// The SHA-256 of the package file, in hex.
    pub sha256: String,
    /// The trusted key that signed it, if it was signed by one.
    pub signed_by: Option<PublicKey>,
    /// Whether it carries a signature (`CHECKSUMS.sig`) at all: checked against the trusted
    /// keys when there are any, so with none a signed package is `signed` without `signed_by`.
    pub signed: bool,
}

/// Checks the package `package` completely (see the module documentation) by unpacking it
/// into a temporary folder, which is removed afterwards. Does not load the plugin.
pub fn verify(package: &Path, trust: &Trust, limits: &Limits) -> Result<Unpacked, Error> {
    let scratch = tempfile::Builder::new()
        .prefix("gp-verify-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let mut unpacked = unpack(package, scratch.path(), trust, limits)?;
    // The library must be a plugin that agrees with plugin.json (read, not loaded).
    folder::read_checked(&unpacked.dir).map_err(|error| {
        refused!(error => "its plugin does not check out: {error}").of_package(package)
    })?;
    // The folder goes with `scratch`; say so rather than return a path about to vanish.
    unpacked.dir = PathBuf::new();
    Ok(unpacked)
}

/// Puts the checked, unpacked `scratch` at `dir`. A folder already there is the same package
/// unpacked before (by this process or another, perhaps at this moment, perhaps being loaded
/// from): kept if its files are the ones just checked, so that nothing reading it ever finds
/// it gone; otherwise (tampered with, half removed) moved aside and replaced.
fn place(scratch: tempfile::TempDir, dir: &Path, files: &[String]) -> Result<(), Error> {
    let same = |a: &Path, b: &Path| {
        files
            .iter()
            .all(|f| matches!((std::fs::read(a.join(f)), std::fs::read(b.join(f))), (Ok(x), Ok(y)) if x == y))
    };
    for _ in 0..3 {
        if dir.exists() {
            if same(scratch.path(), dir) {
                return Ok(());
            }
            let aside = dir.with_extension(format!("stale-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&aside);
            if std::fs::rename(dir, &aside).is_ok() {
                let _ = std::fs::remove_dir_all(&aside);
            }
        }
        match std::fs::rename(scratch.path(), dir) {
            Ok(()) => {
                let _ = scratch.keep();
                return Ok(());
            }
            // Another unpack placed it first: look again.
            Err(_) if dir.exists() => continue,
            Err(e) => return Err(Error::io(dir, e)),
        }
    }
    Err(Error::io(
        dir,
        std::io::Error::other("other processes kept replacing it"),
    ))
}

/// Unpacks `package` into `cache/<first 16 hex digits of its SHA-256>/` after checking it
/// completely. On any refusal nothing is left in `cache`.
pub fn unpack(
    package: &Path,
    cache: &Path,
    trust: &Trust,
    limits: &Limits,
) -> Result<Unpacked, Error> {
    let refuse = |refusal: Refusal| refusal.of_package(package);
    let size = std::fs::metadata(package)
        .map_err(|e| Error::io(package, e))?
        .len();
    if size > limits.max_bytes {
        return Err(refuse(refused!(
            "the file is {size} bytes, more than the limit of {} bytes",
            limits.max_bytes
        )));
    }
    let data = std::fs::read(package).map_err(|e| Error::io(package, e))?;
    let sha256 = sha256_hex(&data);
    std::fs::create_dir_all(cache).map_err(|e| Error::io(cache, e))?;
    let scratch = tempfile::Builder::new()
        .prefix(".unpacking-")
        .tempdir_in(cache)
        .map_err(|e| Error::io(cache, e))?;

    let files = archive::extract(&data, scratch.path(), limits).map_err(refuse)?;
    let signed_by = checks::check(scratch.path(), &files, trust).map_err(refuse)?;
    let signed = files.iter().any(|f| f == SIGNATURE);
    let manifest = checks::plugin_in(scratch.path(), &files).map_err(refuse)?;

    let dir = super::unpacked_dir(cache, &sha256);
    place(scratch, &dir, &files)?;
    Ok(Unpacked {
        package: package.to_owned(),
        dir,
        manifest,
        sha256,
        signed_by,
        signed,
    })
}
