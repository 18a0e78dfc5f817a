//! Installing a package from a URL: download, verify, move into the base directory, load.

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::package::{Limits, Trust};
use crate::{Error, Manager, Spec};

/// How [`Manager::install`] checks what it downloads.
#[derive(Default)]
pub struct InstallOptions<'a> {
    /// The SHA-256 the package file must have, in hex (as `gp pack` prints it).
    pub sha256: Option<String>,
    /// Signatures to accept instead of the manager's own [`Trust`], for this package (its
    /// verification and its load).
    pub trust: Option<Trust>,
    /// Called as the download progresses with the bytes received and the total, if the server
    /// said it.
    pub progress: Option<&'a dyn Fn(u64, Option<u64>)>,
}

impl Manager {
    /// Downloads the package at `url` (HTTP or HTTPS) and installs it: the body is streamed to
    /// a hidden temporary file in the base directory (at most the manager's package size
    /// limit), its SHA-256 checked against `options.sha256` if given, the package checked
    /// completely (checksums, signature per the trust in force, contents), then moved into the
    /// base directory as `<plugin name>.plg` in one rename and loaded (or upgraded to, if that
    /// plugin is loaded from a package of the same name).
    ///
    /// If anything fails, nothing is left in the base directory (a package it replaced is put
    /// back) and the registry is as it was.
    pub fn install(&self, url: &str, options: &InstallOptions<'_>) -> Result<Spec, Error> {
        let limits = self.package_limits();
        let trust = options
            .trust
            .clone()
            .unwrap_or_else(|| self.trust().clone());
        let base = self.base_dir().to_owned();
        std::fs::create_dir_all(&base).map_err(|e| Error::io(&base, e))?;
        let download = tempfile::Builder::new()
            .prefix(".download-")
            .suffix(".plg")
            .tempfile_in(&base)
            .map_err(|e| Error::io(&base, e))?;
        let sha256 = fetch(
            url,
            download.path(),
            download.as_file(),
            &limits,
            options.progress,
        )?;
        if let Some(expected) = &options.sha256 {
            if !sha256.eq_ignore_ascii_case(expected.trim()) {
                return Err(Error::Download {
                    url: url.to_owned(),
                    reason: format!(
                        "its SHA-256 is {sha256}, not the {} expected; the file was not installed",
                        expected.trim()
                    ),
                });
            }
        }
        let scratch = tempfile::Builder::new()
            .prefix(".verify-")
            .tempdir_in(&base)
            .map_err(|e| Error::io(&base, e))?;
        let unpacked = crate::package::unpack(download.path(), scratch.path(), &trust, &limits)
            .map_err(|e| match e {
                Error::Package { reason, .. } => Error::Package {
                    path: url.into(),
                    reason,
                },
                other => other,
            })?;
        drop(scratch);

        let target = base.join(format!(
            "{}.{}",
            unpacked.manifest.name,
            crate::package::EXTENSION
        ));
        let backup = base.join(format!(".{}.previous", unpacked.manifest.name));
        let replaced = target.exists();
        if replaced {
            std::fs::rename(&target, &backup).map_err(|e| Error::io(&target, e))?;
        }
        // Put back what was there: one rename over the target (never a moment without it), or
        // remove the new file if there was nothing.
        let restore = || {
            if replaced {
                let _ = std::fs::rename(&backup, &target);
            } else {
                let _ = std::fs::remove_file(&target);
            }
        };
        // A temporary file is created readable by its owner only; an installed package is an
        // ordinary file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = download
                .as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644));
        }
        if let Err((_, e)) = download.persist(&target).map_err(|e| (e.file, e.error)) {
            restore();
            return Err(Error::io(&target, e));
        }
        match self.load_source(&target, &trust) {
            Ok(spec) => {
                if replaced {
                    let _ = std::fs::remove_file(&backup);
                }
                tracing::info!(target: "gp", plugin = spec.name(), version = %spec.version(), url, "plugin installed");
                Ok(spec)
            }
            Err(error) => {
                restore();
                Err(error)
            }
        }
    }
}

/// Streams the body of `url` into `file`; returns its SHA-256 in hex.
fn fetch(
    url: &str,
    path: &Path,
    mut file: &std::fs::File,
    limits: &Limits,
    progress: Option<&dyn Fn(u64, Option<u64>)>,
) -> Result<String, Error> {
    let fail = |reason: String| Error::Download {
        url: url.to_owned(),
        reason,
    };
    // Bounded waits: a server that stops answering fails the install instead of hanging it.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(60)))
        .timeout_per_read(Some(std::time::Duration::from_secs(60)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => fail(format!(
            "the server answered HTTP {code}{}",
            if code == 404 { " (not found)" } else { "" }
        )),
        other => fail(other.to_string()),
    })?;
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        fail(format!(
            "the package is larger than {} bytes (the limit); nothing was installed",
            limits.max_bytes
        ))
    };
    if total.is_some_and(|t| t > limits.max_bytes) {
        return Err(too_large());
    }
    let mut body = response.into_body().into_reader();
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = body
            .read(&mut buffer)
            .map_err(|e| fail(format!("the download broke off: {e}")))?;
        if n == 0 {
            break;
        }
        received += n as u64;
        if received > limits.max_bytes {
            return Err(too_large());
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n])
            .map_err(|e| Error::io(path, e))?;
        if let Some(progress) = progress {
            progress(received, total);
        }
    }
    file.flush().map_err(|e| Error::io(path, e))?;
    Ok(crate::package::hex(&hasher.finalize()))
}
