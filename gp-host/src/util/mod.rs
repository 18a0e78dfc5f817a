//! Small helpers every layer may use: atomic file writes, hex, path normalisation.
//!
//! Nothing here knows what a plugin is. A helper that needs to is in the wrong place.
//! [`sync`] holds the lock helpers and the crate's one policy on poisoned locks; [`scratch`]
//! the temporary files an interrupted process may leave, named so that a later one can tell.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;

pub(crate) mod scratch;
mod sync;

#[cfg(any(feature = "hub", feature = "watch"))]
pub(crate) use sync::join_until;
#[cfg(feature = "hub")]
pub(crate) use sync::wait_timeout_while;
pub(crate) use sync::{lock, read, write};
#[cfg(feature = "isolate")]
pub(crate) use sync::{wait, wait_timeout};

/// Writes `path` by writing a sibling temporary file with `write` and renaming it over `path`,
/// so that a host reading the directory never sees a half-written file.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), Error> {
    // Unique per write, not only per process: two threads may write one path at once.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    write(&tmp)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(path, e)
        })
}

/// The longest message a plugin can hand the host in one error: a plugin that returns 10 MB
/// of text would otherwise be logged, printed and sent as one 10 MB line.
pub(crate) const MAX_PLUGIN_MESSAGE: usize = 16 * 1024;

/// `message`, cut to at most `max` bytes (at a character boundary), saying how much was cut.
pub(crate) fn bounded(mut message: String, max: usize) -> String {
    if message.len() <= max {
        return message;
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let cut = message.len() - end;
    message.truncate(end);
    message.push_str(&format!("… ({cut} more bytes cut)"));
    message
}

/// `text` cut to at most `max` bytes (at a character boundary), ending in `…` if it was cut.
pub(crate) fn truncated(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Whether `path` is inside the folder `base` (or is it), once both are normalised (see
/// [`normalize`]): no `..` or symbolic link leads out of it.
pub(crate) fn inside(base: &Path, path: &Path) -> bool {
    let path = normalize(path);
    !path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
        && path.starts_with(normalize(base))
}

/// `bytes` in lowercase hex: how gp writes every SHA-256.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `data`, in lowercase hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// The first 16 hex digits of a SHA-256 in hex: how gp names a build where the whole hash is
/// too long (private copies, unpacked packages, logs, metrics). Shorter input is returned whole.
pub(crate) fn short_hash(sha256: &str) -> &str {
    &sha256[..sha256.len().min(16)]
}

/// `path` made absolute and free of symbolic links and `..`, so that one folder or package
/// has one spelling (for a path that no longer exists: its parent's, plus its name).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    if let Ok(path) = path.canonicalize() {
        return path;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            parent
                .canonicalize()
                .map_or_else(|_| path.to_owned(), |p| p.join(name))
        }
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_and_two_digits_a_byte() {
        assert_eq!(super::hex(&[0, 0xab, 0x0f]), "00ab0f");
        assert_eq!(
            super::sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

#[cfg(test)]
mod bounded_tests {
    #[test]
    fn long_messages_keep_their_start_and_say_how_much_was_cut() {
        assert_eq!(super::bounded("short".into(), 10), "short");
        assert_eq!(
            super::bounded("abcdef".into(), 4),
            "abcd… (2 more bytes cut)"
        );
        // Never inside a character: 'é' is two bytes.
        assert_eq!(super::bounded("aé".into(), 2), "a… (2 more bytes cut)");
    }
}
