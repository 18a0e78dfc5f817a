//! What an unpacked package must hold: every file in `CHECKSUMS` with the right hash, a
//! signature that verifies with a trusted key when the host asks for one, and `plugin.json`
//! with the library it names.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use gp_core::manifest::{Manifest, SourceMode};

use super::{PublicKey, Refusal, Trust, CHECKSUMS, SIGNATURE};
use crate::folder::MANIFEST_FILE;
use crate::util::sha256_hex;

/// Checks `CHECKSUMS` against the files, and its signature against `trust`.
pub(super) fn check(
    dir: &Path,
    files: &[String],
    trust: &Trust,
) -> Result<Option<PublicKey>, Refusal> {
    if !files.iter().any(|f| f == CHECKSUMS) {
        return Err(refused!(
            "it has no {CHECKSUMS} file; make packages with `gp pack`"
        ));
    }
    let checksums = std::fs::read_to_string(dir.join(CHECKSUMS))
        .map_err(|e| refused!(e => "{CHECKSUMS} is not text ({e})"))?;
    let mut listed: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, line) in checksums.lines().enumerate() {
        let parsed = line.split_once("  ").filter(|(hash, name)| {
            hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) && !name.is_empty()
        });
        let Some((hash, name)) = parsed else {
            return Err(refused!(
                "{CHECKSUMS} line {} is not `<sha256 in hex>  <file name>`",
                i + 1
            ));
        };
        if listed.insert(name, hash).is_some() {
            return Err(refused!("{CHECKSUMS} lists `{name}` twice"));
        }
    }
    for file in files {
        if file == CHECKSUMS || file == SIGNATURE {
            continue;
        }
        let Some(expected) = listed.get(file.as_str()) else {
            return Err(refused!("entry `{file}` is not in the checksum list"));
        };
        let data = std::fs::read(dir.join(file)).map_err(|e| refused!(e => "`{file}`: {e}"))?;
        let actual = sha256_hex(&data);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(refused!(
                "checksum mismatch for `{file}`: {CHECKSUMS} says {expected}, the file has {actual}"
            ));
        }
    }
    if let Some(missing) = listed.keys().find(|name| !files.iter().any(|f| f == *name)) {
        return Err(refused!(
            "`{missing}` is in the checksum list but not in the package"
        ));
    }

    if !files.iter().any(|f| f == SIGNATURE) {
        return if trust.require_signature {
            Err(Refusal::new(
                "it is not signed, and this host accepts signed packages only",
            ))
        } else {
            Ok(None)
        };
    }
    let text = std::fs::read_to_string(dir.join(SIGNATURE))
        .map_err(|e| refused!(e => "{SIGNATURE} is not text ({e})"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| refused!("{SIGNATURE} is not a base64 signature"))?;
    let signature = ed25519_dalek::Signature::from_slice(&bytes)
        .map_err(|_| refused!("{SIGNATURE} is not an ed25519 signature"))?;
    if trust.keys.is_empty() {
        return if trust.require_signature {
            Err(Refusal::new(
                "it is signed, but this host trusts no key: give it the signer's public key",
            ))
        } else {
            Ok(None)
        };
    }
    trust
        .keys
        .iter()
        .find(|key| key.verifies(checksums.as_bytes(), &signature))
        .cloned()
        .map(Some)
        .ok_or_else(|| {
            Refusal::new("its signature does not verify with any trusted key: it was signed by another key, or changed after signing")
        })
}

/// The plugin in the unpacked files: `plugin.json`, and the library it names.
pub(super) fn plugin_in(dir: &Path, files: &[String]) -> Result<Manifest, Refusal> {
    if !files.iter().any(|f| f == MANIFEST_FILE) {
        return Err(refused!("it has no {MANIFEST_FILE}"));
    }
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .map_err(|e| refused!(e => "its {MANIFEST_FILE} is not text ({e})"))?;
    let manifest = Manifest::from_plugin_json(&text)
        .map_err(|source| refused!(source => "its {MANIFEST_FILE} is invalid: {source}"))?;
    let source = manifest
        .source
        .as_ref()
        .expect("validated plugin.json has a source");
    if source.mode != SourceMode::LocalSo {
        return Err(refused!(
            "its {MANIFEST_FILE} has source.mode {}, a package carries a built library (local_so)",
            source.mode
        ));
    }
    if !files.contains(&source.path) {
        return Err(refused!(
            "the library `{}` that its {MANIFEST_FILE} names is not in the package",
            source.path
        ));
    }
    Ok(manifest)
}
