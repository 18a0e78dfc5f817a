//! Reading a package's archive without trusting it: regular files at the root with plain
//! names, at most once each, within [`Limits`], counted after decompression so that a gzip
//! bomb stops at the limit.

use std::io::{self, Read, Write};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Limits, Refusal};

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
///
/// Once the entries are written, the gzip stream is read to its end, so that its CRC-32 is
/// checked: the tar reader stops at the first all-zero block, and a corrupted stream can
/// decompress into one, which would make the entries after it vanish (and the package be
/// refused for a missing file rather than as corrupt). An archive already refused is not
/// read further.
pub(super) fn extract(data: &[u8], dir: &Path, limits: &Limits) -> Result<Vec<String>, Refusal> {
    let hit = Arc::new(AtomicBool::new(false));
    let reader = Limited {
        inner: flate2::read::GzDecoder::new(data),
        left: limits.max_bytes,
        hit: Arc::clone(&hit),
    };
    let mut archive = tar::Archive::new(reader);
    let written = write_entries(&mut archive, dir, limits, &hit)?;
    let mut rest = archive.into_inner();
    match std::io::copy(&mut rest, &mut std::io::sink()) {
        Ok(_) => Ok(written),
        Err(e) => Err(corrupt(e, &hit, limits)),
    }
}

/// The refusal for a read error of the decompressed stream: the limit, or corruption.
fn corrupt(e: io::Error, hit: &AtomicBool, limits: &Limits) -> Refusal {
    if hit.load(Ordering::Relaxed) {
        too_big(limits)
    } else {
        refused!(e => "not a gzip-compressed tar archive, or a corrupt one ({e})")
    }
}

fn too_big(limits: &Limits) -> Refusal {
    refused!(
        "it holds more than {} bytes once decompressed (the limit)",
        limits.max_bytes
    )
}

/// Checks and writes the archive's entries one by one.
fn write_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    dir: &Path,
    limits: &Limits,
    hit: &AtomicBool,
) -> Result<Vec<String>, Refusal> {
    let mut names: Vec<String> = Vec::new();
    // Raw: GNU long-name and PAX records come through as entries of their own (and are
    // refused below) instead of being buffered whole, up to the byte limit, by the tar crate.
    // `gp pack` writes plain ustar headers.
    let entries = archive
        .entries()
        .map_err(|e| corrupt(e, hit, limits))?
        .raw(true);
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(e, hit, limits))?;
        let path = entry
            .path()
            .map_err(|e| refused!(e => "an entry has an unreadable name ({e})"))?
            .into_owned();
        let shown = path.display().to_string();
        let kind = entry.header().entry_type();
        let name = entry_name(&path, &shown)?;
        if kind.is_dir() && name.is_none() {
            continue; // `./`, as `tar -C dir .` writes
        }
        if names.len() == limits.max_entries {
            return Err(refused!(
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
            return Err(refused!(
                "entry `{shown}` is {what}; a package holds regular files only"
            ));
        }
        let name = name.ok_or_else(|| refused!("entry `{shown}` has no file name"))?;
        if names.contains(&name) {
            return Err(refused!("entry `{shown}` appears twice"));
        }
        if entry.size() > limits.max_bytes {
            return Err(too_big(limits));
        }
        let target = dir.join(&name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| refused!(e => "cannot write entry `{shown}` ({e})"))?;
        let mut buffer = [0u8; 64 * 1024];
        loop {
            let n = entry
                .read(&mut buffer)
                .map_err(|e| corrupt(e, hit, limits))?;
            if n == 0 {
                break;
            }
            file.write_all(&buffer[..n])
                .map_err(|e| refused!(e => "cannot write entry `{shown}` ({e})"))?;
        }
        names.push(name);
    }
    Ok(names)
}

/// The file name an entry may have: one plain component (`./name` allowed). `None` for the
/// archive's root (`.`, `./`).
fn entry_name(path: &Path, shown: &str) -> Result<Option<String>, Refusal> {
    let mut normal = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => normal.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(refused!(
                    "entry `{shown}` climbs out of the package with `..`"
                ))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(refused!("entry `{shown}` is an absolute path"))
            }
        }
    }
    match normal.as_slice() {
        [] => Ok(None),
        [name] => match name.to_str() {
            Some(name) => Ok(Some(name.to_owned())),
            None => Err(refused!("entry `{shown}` has a name that is not UTF-8")),
        },
        _ => Err(refused!(
            "entry `{shown}` is in a subfolder; a package holds files at its root only"
        )),
    }
}
