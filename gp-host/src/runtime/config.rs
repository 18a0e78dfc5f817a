//! An instance's configuration: `config.json` beside the plugin's `plugin.json` (or
//! `<name>.config.json` beside its package: [`location`]), read when
//! the instance opens, its secrets resolved, handed to the plugin's `open` as JSON text; and
//! the secret values kept, to be scrubbed from what the plugin says (`runtime::redact`): the
//! errors it returns (of its `#[on_load]`, its calls and its state's drop) and its log lines.
//!
//! A secret is a reference, never a value in the file: `{"secret": "env:NAME"}` (an
//! environment variable of the process that opens the instance: the host, or an isolated
//! plugin's runner, which only has the variables `Isolation::env` passes on) or
//! `{"secret": "file:PATH"}` (a file's contents, without a trailing newline; `PATH` relative
//! to the configuration file's folder). gp writes neither anywhere. A secret shorter than
//! [`MIN_SECRET_BYTES`] is refused: scrubbing it would garble messages and give it away.

use std::path::{Path, PathBuf};

use crate::error::Error;
pub(crate) use crate::runtime::redact::Scrub;

/// The configuration's file name, in the plugin's folder.
pub(crate) const CONFIG_FILE: &str = "config.json";

/// The largest configuration gp reads: 1 MiB.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The shortest secret gp accepts.
pub(crate) const MIN_SECRET_BYTES: usize = 4;

/// One instance's configuration, ready for the plugin.
#[derive(Default)]
pub(crate) struct Config {
    /// The JSON text handed to the plugin's `open`: `null` without a file.
    pub(crate) text: String,
    /// What scrubs the secrets from messages.
    pub(crate) scrub: Scrub,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("text", &self.scrub.apply(&self.text))
            .finish_non_exhaustive()
    }
}

/// Where plugin `plugin`'s configuration is, for a plugin read from `dir` and followed at
/// `origin` (see [`Spec`](crate::Spec)): `config.json` in the plugin's folder (`origin`, which
/// for a `remote_git` plugin is the folder of its `plugin.json`); for a plugin loaded from a
/// package or a bare library, `<name>.config.json` beside that file, since the folder a package
/// is unpacked to is gp's, not the deployment's, and a package is not edited in place.
pub(crate) fn location(plugin: &str, dir: &Path, origin: &Path) -> PathBuf {
    if origin.is_dir() {
        origin.join(CONFIG_FILE)
    } else {
        match origin.parent() {
            Some(beside) if !origin.as_os_str().is_empty() => {
                beside.join(format!("{plugin}.{CONFIG_FILE}"))
            }
            _ => dir.join(CONFIG_FILE),
        }
    }
}

impl Config {
    /// No configuration: `null`, with no secrets.
    pub(crate) fn none() -> Config {
        Config {
            text: "null".to_owned(),
            ..Config::default()
        }
    }

    /// Reads the configuration file at `path` (see [`location`]) for plugin `plugin`; `null`
    /// when there is no such file. A secret's `file:` path is relative to `path`'s folder.
    pub(crate) fn read(plugin: &str, path: &Path) -> Result<Config, Error> {
        let path = path.to_owned();
        let dir = path.parent().unwrap_or(Path::new("."));
        let refused = |reason: String| Error::Config {
            plugin: plugin.to_owned(),
            path: path.clone(),
            reason,
        };
        match unfit(&path) {
            Some(Unfit::NotRegular { .. }) => {
                return Err(refused("it is not a regular file".to_owned()))
            }
            Some(Unfit::TooLarge { len }) => {
                return Err(refused(format!(
                    "it is {len} bytes, more than the {MAX_CONFIG_BYTES} gp reads"
                )))
            }
            None => {}
        }
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::none()),
            Err(e) => return Err(Error::io(&path, e)),
            Ok(text) => text,
        };
        let mut json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| refused(format!("it is not JSON: {e}")))?;
        let mut secrets = Vec::new();
        resolve(&mut json, &mut Vec::new(), dir, &mut secrets).map_err(refused)?;
        Ok(Config {
            text: json.to_string(),
            scrub: Scrub::new(&secrets),
        })
    }
}

/// Why a file gp reads whole (the configuration, a secret's file) is refused before reading.
enum Unfit {
    /// Not a regular file: a FIFO or a device would block the read, or never end it.
    NotRegular { len: u64 },
    /// Larger than [`MAX_CONFIG_BYTES`].
    TooLarge { len: u64 },
}

/// Whether `path` is unfit to be read whole; `None` when it is fit, or when it cannot be told
/// (no such file, no permission: reading it then says so).
fn unfit(path: &Path) -> Option<Unfit> {
    let meta = std::fs::metadata(path).ok()?;
    let len = meta.len();
    if !meta.is_file() {
        Some(Unfit::NotRegular { len })
    } else if len > MAX_CONFIG_BYTES {
        Some(Unfit::TooLarge { len })
    } else {
        None
    }
}

/// The SHA-256 (hex) of plugin `plugin`'s configuration file (see [`location`]), `None`
/// without one, or when the plugin takes none (`configured`, from its details), whatever file
/// lies there: what says whether a loaded instance's configuration is still the deployment's.
pub(crate) fn sha256(
    plugin: &str,
    dir: &Path,
    origin: &Path,
    configured: Option<bool>,
) -> Result<Option<String>, Error> {
    match configured {
        Some(false) => Ok(None),
        _ => file_sha256(&location(plugin, dir, origin)),
    }
}

fn file_sha256(path: &Path) -> Result<Option<String>, Error> {
    if let Some(Unfit::NotRegular { len } | Unfit::TooLarge { len }) = unfit(path) {
        // Not read: `Config::read` refuses it, with the reason, when the instance opens.
        return Ok(Some(format!("unreadable:{len}")));
    }
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(crate::util::sha256_hex(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Replaces each secret reference in `value` (at `at`, a path of field names) by the secret's
/// value, noting the values in `secrets`.
fn resolve(
    value: &mut serde_json::Value,
    at: &mut Vec<String>,
    dir: &Path,
    secrets: &mut Vec<String>,
) -> Result<(), String> {
    use serde_json::Value as J;
    match value {
        J::Object(map) if map.len() == 1 && map.contains_key("secret") => {
            let field = if at.is_empty() {
                "the configuration".to_owned()
            } else {
                format!("`{}`", at.join("."))
            };
            let Some(J::String(reference)) = map.get("secret") else {
                return Err(format!("{field}: a secret is {{\"secret\": \"env:NAME\"}} or {{\"secret\": \"file:PATH\"}}"));
            };
            let secret = read_secret(reference, dir)
                .map_err(|why| format!("{field}: secret {reference}: {why}"))?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!("{field}: secret {reference} is {} bytes: gp scrubs secrets from messages and cannot tell one under {MIN_SECRET_BYTES} bytes from ordinary text; use a longer one", secret.len()));
            }
            secrets.push(secret.clone());
            *value = J::String(secret);
        }
        J::Object(map) => {
            for (key, field) in map.iter_mut() {
                at.push(key.clone());
                resolve(field, at, dir, secrets)?;
                at.pop();
            }
        }
        J::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                at.push(i.to_string());
                resolve(item, at, dir, secrets)?;
                at.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// The value `reference` (`env:NAME` or `file:PATH`) names.
fn read_secret(reference: &str, dir: &Path) -> Result<String, String> {
    if let Some(name) = reference.strip_prefix("env:") {
        return std::env::var(name).map_err(|e| match e {
            std::env::VarError::NotPresent => {
                "the environment variable is not set (an isolated plugin's runner has only those `Isolation::env` passes on)".to_owned()
            }
            std::env::VarError::NotUnicode(_) => "the environment variable is not UTF-8".to_owned(),
        });
    }
    if let Some(file) = reference.strip_prefix("file:") {
        let path = dir.join(file);
        match unfit(&path) {
            Some(Unfit::NotRegular { .. }) => {
                return Err(format!("{} is not a regular file", path.display()))
            }
            Some(Unfit::TooLarge { .. }) => {
                return Err(format!(
                    "{} is more than {MAX_CONFIG_BYTES} bytes",
                    path.display()
                ))
            }
            None => {}
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        return Ok(text.strip_suffix('\r').unwrap_or(text).to_owned());
    }
    Err("a secret reference is env:NAME or file:PATH".to_owned())
}
