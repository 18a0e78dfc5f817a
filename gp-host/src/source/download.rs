//! Downloading a package over HTTP(S): streamed to a file, bounded, hashed as it arrives.
//!
//! Only the transfer: checking what arrived is the package source's business, and putting it
//! in a base directory the manager's.

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Cause, Error};
use crate::source::package::Limits;
use crate::util::hex;

/// Why [`copy_hashed`] stopped.
pub(crate) enum CopyFailure {
    /// Reading the source failed (the download broke off).
    Read(std::io::Error),
    /// Writing the file failed.
    Write(std::io::Error),
    /// The source held more than the limit.
    TooLarge,
}

/// Copies `reader` into `file`, at most `max` bytes, hashing as it goes and telling
/// `progress` the bytes copied so far; returns the bytes copied and their SHA-256 in hex.
pub(crate) fn copy_hashed(
    mut reader: impl Read,
    mut file: &std::fs::File,
    max: u64,
    mut progress: impl FnMut(u64),
) -> Result<(u64, String), CopyFailure> {
    let mut hasher = Sha256::new();
    let mut copied = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buffer).map_err(CopyFailure::Read)?;
        if n == 0 {
            break;
        }
        copied += n as u64;
        if copied > max {
            return Err(CopyFailure::TooLarge);
        }
        hasher.update(&buffer[..n]);
        file.write_all(&buffer[..n]).map_err(CopyFailure::Write)?;
        progress(copied);
    }
    file.flush().map_err(CopyFailure::Write)?;
    Ok((copied, hex(&hasher.finalize())))
}

/// Streams the body of `url` into `file`; returns its SHA-256 in hex.
pub(crate) fn fetch(
    url: &str,
    path: &Path,
    file: &std::fs::File,
    limits: &Limits,
    progress: Option<&dyn Fn(u64, Option<u64>)>,
) -> Result<String, Error> {
    let fail = |reason: String| Error::Download {
        url: url.to_owned(),
        reason,
        source: None,
    };
    let failed = |reason: String, source: Cause| Error::Download {
        url: url.to_owned(),
        reason,
        source: Some(source),
    };
    // Bounded waits: a server that stops answering fails the install instead of hanging it.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_recv_response(Some(std::time::Duration::from_secs(60)))
        .timeout_per_read(Some(std::time::Duration::from_secs(60)))
        // A server trickling a byte a minute is cut off here: an install holds the manager's
        // install lock while it downloads.
        .timeout_global(Some(std::time::Duration::from_secs(600)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => fail(format!(
            "the server answered HTTP {code}{}",
            if code == 404 { " (not found)" } else { "" }
        )),
        other => failed(other.to_string(), Box::new(other)),
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
    let body = response.into_body().into_reader();
    let copied = copy_hashed(body, file, limits.max_bytes, |received| {
        if let Some(progress) = progress {
            progress(received, total);
        }
    });
    match copied {
        Ok((_, sha256)) => Ok(sha256),
        Err(CopyFailure::Read(e)) => {
            Err(failed(format!("the download broke off: {e}"), Box::new(e)))
        }
        Err(CopyFailure::Write(e)) => Err(Error::io(path, e)),
        Err(CopyFailure::TooLarge) => Err(too_large()),
    }
}
