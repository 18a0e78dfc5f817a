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

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use ed25519_dalek::{Signer, Verifier};
use gp_core::manifest::{Manifest, SourceMode};

use crate::error::Error;
use crate::folder::{self, MANIFEST_FILE};
use crate::util::{sha256_hex, write_atomically};

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

/// An ed25519 public key, written as 44 characters of base64.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Reads a key from its text (base64), or from a file that holds that text.
    pub fn from_text_or_file(text_or_path: &str) -> Result<PublicKey, Error> {
        let path = Path::new(text_or_path);
        let text = if path.is_file() {
            std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?
        } else {
            text_or_path.to_owned()
        };
        PublicKey::parse(text.trim()).map_err(|reason| Error::Key {
            key: text_or_path.to_owned(),
            reason,
        })
    }

    fn parse(text: &str) -> Result<PublicKey, String> {
        let bytes = decode_32(text)?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| format!("not an ed25519 public key ({e})"))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// An ed25519 signing key. Its file holds the 32-byte seed in base64; keep it private.
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// A new random key, from the operating system's generator.
    pub fn generate() -> Result<SecretKey, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Key {
            key: "the operating system's random generator".into(),
            reason: e.to_string(),
        })?;
        Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Reads a key file written by [`write`](Self::write) (`gp keygen`).
    pub fn read(path: &Path) -> Result<SecretKey, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let seed = decode_32(text.trim()).map_err(|reason| Error::Key {
            key: path.display().to_string(),
            reason,
        })?;
        Ok(SecretKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Writes the key to `path` (readable by its owner only, on Unix), refusing to overwrite.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| Error::io(path, e))?;
        let text = base64::engine::general_purpose::STANDARD.encode(self.0.to_bytes());
        writeln!(file, "{text}").map_err(|e| Error::io(path, e))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
}

fn decode_32(text: &str) -> Result<[u8; 32], String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("not base64 ({e})"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{} bytes, expected 32", bytes.len()))
}

/// A package written by [`pack`].
#[derive(Debug, Clone)]
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
        let signature = key.0.sign(checksums.as_bytes());
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
    folder::read_checked(&unpacked.dir).map_err(|error| Error::Package {
        path: package.to_owned(),
        reason: format!("its plugin does not check out: {error}"),
    })?;
    // The folder goes with `scratch`; say so rather than return a path about to vanish.
    unpacked.dir = PathBuf::new();
    Ok(unpacked)
}

/// Unpacks `package` into `cache/<first 16 hex digits of its SHA-256>/` after checking it
/// completely. On any refusal nothing is left in `cache`.
pub fn unpack(
    package: &Path,
    cache: &Path,
    trust: &Trust,
    limits: &Limits,
) -> Result<Unpacked, Error> {
    let refuse = |reason: String| Error::Package {
        path: package.to_owned(),
        reason,
    };
    let size = std::fs::metadata(package)
        .map_err(|e| Error::io(package, e))?
        .len();
    if size > limits.max_bytes {
        return Err(refuse(format!(
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

    let files = extract(&data, scratch.path(), limits).map_err(refuse)?;
    let signed_by = check(scratch.path(), &files, trust).map_err(refuse)?;
    let signed = files.iter().any(|f| f == SIGNATURE);
    let manifest = plugin_in(scratch.path(), &files).map_err(refuse)?;

    let dir = super::unpacked_dir(cache, &sha256);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    let kept = scratch.keep();
    std::fs::rename(&kept, &dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        Error::io(&dir, e)
    })?;
    Ok(Unpacked {
        package: package.to_owned(),
        dir,
        manifest,
        sha256,
        signed_by,
        signed,
    })
}

/// A reader that fails once more than `limit` bytes have been read through it, and says so.
struct Limited<R> {
    inner: R,
    left: u64,
    hit: Arc<AtomicBool>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.hit.store(true, Ordering::Relaxed);
            return Err(io::Error::other("decompression limit reached"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes every entry of the archive `data` into `dir`; returns the file names written.
fn extract(data: &[u8], dir: &Path, limits: &Limits) -> Result<Vec<String>, String> {
    let hit = Arc::new(AtomicBool::new(false));
    let reader = Limited {
        inner: flate2::read::GzDecoder::new(data),
        left: limits.max_bytes,
        hit: Arc::clone(&hit),
    };
    let too_big = || {
        format!(
            "it holds more than {} bytes once decompressed (the limit)",
            limits.max_bytes
        )
    };
    let corrupt = |e: io::Error, hit: &AtomicBool| {
        if hit.load(Ordering::Relaxed) {
            too_big()
        } else {
            format!("not a gzip-compressed tar archive, or a corrupt one ({e})")
        }
    };
    let mut archive = tar::Archive::new(reader);
    let mut names: Vec<String> = Vec::new();
    // Raw: GNU long-name and PAX records come through as entries of their own (and are
    // refused below) instead of being buffered whole, up to the byte limit, by the tar crate.
    // `gp pack` writes plain ustar headers.
    let entries = archive.entries().map_err(|e| corrupt(e, &hit))?.raw(true);
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(e, &hit))?;
        let path = entry
            .path()
            .map_err(|e| format!("an entry has an unreadable name ({e})"))?
            .into_owned();
        let shown = path.display().to_string();
        let kind = entry.header().entry_type();
        let name = entry_name(&path, &shown)?;
        if kind.is_dir() && name.is_none() {
            continue; // `./`, as `tar -C dir .` writes
        }
        if names.len() == limits.max_entries {
            return Err(format!(
                "it has more than {} entries (the limit)",
                limits.max_entries
            ));
        }
        let refused_kind = match kind {
            tar::EntryType::Regular => None,
            tar::EntryType::Symlink => Some("a symbolic link"),
            tar::EntryType::Link => Some("a hard link"),
            tar::EntryType::Char => Some("a character device"),
            tar::EntryType::Block => Some("a block device"),
            tar::EntryType::Fifo => Some("a named pipe"),
            tar::EntryType::Directory => Some("a directory"),
            _ => Some("an entry of an unsupported type"),
        };
        if let Some(what) = refused_kind {
            return Err(format!(
                "entry `{shown}` is {what}; a package holds regular files only"
            ));
        }
        let name = name.ok_or_else(|| format!("entry `{shown}` has no file name"))?;
        if names.contains(&name) {
            return Err(format!("entry `{shown}` appears twice"));
        }
        if entry.size() > limits.max_bytes {
            return Err(too_big());
        }
        let target = dir.join(&name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| format!("cannot write entry `{shown}` ({e})"))?;
        let mut buffer = [0u8; 64 * 1024];
        loop {
            let n = entry.read(&mut buffer).map_err(|e| corrupt(e, &hit))?;
            if n == 0 {
                break;
            }
            file.write_all(&buffer[..n])
                .map_err(|e| format!("cannot write entry `{shown}` ({e})"))?;
        }
        names.push(name);
    }
    Ok(names)
}

/// The file name an entry may have: one plain component (`./name` allowed). `None` for the
/// archive's root (`.`, `./`).
fn entry_name(path: &Path, shown: &str) -> Result<Option<String>, String> {
    let mut normal = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => normal.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "entry `{shown}` climbs out of the package with `..`"
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("entry `{shown}` is an absolute path"))
            }
        }
    }
    match normal.as_slice() {
        [] => Ok(None),
        [name] => match name.to_str() {
            Some(name) => Ok(Some(name.to_owned())),
            None => Err(format!("entry `{shown}` has a name that is not UTF-8")),
        },
        _ => Err(format!(
            "entry `{shown}` is in a subfolder; a package holds files at its root only"
        )),
    }
}

/// Checks `CHECKSUMS` against the files, and its signature against `trust`.
fn check(dir: &Path, files: &[String], trust: &Trust) -> Result<Option<PublicKey>, String> {
    if !files.iter().any(|f| f == CHECKSUMS) {
        return Err(format!(
            "it has no {CHECKSUMS} file; make packages with `gp pack`"
        ));
    }
    let checksums = std::fs::read_to_string(dir.join(CHECKSUMS))
        .map_err(|e| format!("{CHECKSUMS} is not text ({e})"))?;
    let mut listed: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, line) in checksums.lines().enumerate() {
        let parsed = line.split_once("  ").filter(|(hash, name)| {
            hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && !name.is_empty()
        });
        let Some((hash, name)) = parsed else {
            return Err(format!(
                "{CHECKSUMS} line {} is not `<sha256 in hex>  <file name>`",
                i + 1
            ));
        };
        if listed.insert(name, hash).is_some() {
            return Err(format!("{CHECKSUMS} lists `{name}` twice"));
        }
    }
    for file in files {
        if file == CHECKSUMS || file == SIGNATURE {
            continue;
        }
        let Some(expected) = listed.get(file.as_str()) else {
            return Err(format!("entry `{file}` is not in the checksum list"));
        };
        let data = std::fs::read(dir.join(file)).map_err(|e| format!("`{file}`: {e}"))?;
        let actual = sha256_hex(&data);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(format!(
                "checksum mismatch for `{file}`: {CHECKSUMS} says {expected}, the file has {actual}"
            ));
        }
    }
    if let Some(missing) = listed.keys().find(|name| !files.iter().any(|f| f == *name)) {
        return Err(format!(
            "`{missing}` is in the checksum list but not in the package"
        ));
    }

    if !files.iter().any(|f| f == SIGNATURE) {
        return if trust.require_signature {
            Err("it is not signed, and this host accepts signed packages only".into())
        } else {
            Ok(None)
        };
    }
    let text = std::fs::read_to_string(dir.join(SIGNATURE))
        .map_err(|e| format!("{SIGNATURE} is not text ({e})"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| format!("{SIGNATURE} is not a base64 signature"))?;
    let signature = ed25519_dalek::Signature::from_slice(&bytes)
        .map_err(|_| format!("{SIGNATURE} is not an ed25519 signature"))?;
    if trust.keys.is_empty() {
        return if trust.require_signature {
            Err("it is signed, but this host trusts no key: give it the signer's public key".into())
        } else {
            Ok(None)
        };
    }
    trust
        .keys
        .iter()
        .find(|key| key.0.verify(checksums.as_bytes(), &signature).is_ok())
        .cloned()
        .map(Some)
        .ok_or_else(|| {
            "its signature does not verify with any trusted key: it was signed by another key, or changed after signing".into()
        })
}

/// The plugin in the unpacked files: `plugin.json`, and the library it names.
fn plugin_in(dir: &Path, files: &[String]) -> Result<Manifest, String> {
    if !files.iter().any(|f| f == MANIFEST_FILE) {
        return Err(format!("it has no {MANIFEST_FILE}"));
    }
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .map_err(|e| format!("its {MANIFEST_FILE} is not text ({e})"))?;
    let manifest = Manifest::from_plugin_json(&text)
        .map_err(|source| format!("its {MANIFEST_FILE} is invalid: {source}"))?;
    let source = manifest
        .source
        .as_ref()
        .expect("validated plugin.json has a source");
    if source.mode != SourceMode::LocalSo {
        return Err(format!(
            "its {MANIFEST_FILE} has source.mode {}, a package carries a built library (local_so)",
            source.mode
        ));
    }
    if !files.contains(&source.path) {
        return Err(format!(
            "the library `{}` that its {MANIFEST_FILE} names is not in the package",
            source.path
        ));
    }
    Ok(manifest)
}
