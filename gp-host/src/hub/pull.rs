//! `gp pull` and installs from a registry: the package streamed with its size and digest
//! checked, then verified as any `.plg`, and last checked to hold the plugin and version its
//! place names.

use std::path::Path;

use ureq::http::Method;

use super::client::{answer, garbled, hub_error, refused, status_failure, Client};
use super::reference::{version_of, Reference};
use crate::error::Error;
use crate::source::download::{copy_hashed, CopyFailure};
use crate::source::package::{self, Trust};

/// What [`Client::pull`] downloaded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pulled {
    /// The reference, with the manifest's digest.
    pub reference: Reference,
    /// The package's SHA-256, in hex (as `gp pack` prints it).
    pub sha256: String,
    /// The package's size.
    pub size: u64,
    /// The version the manifest's annotations give, if they give one.
    pub version: Option<String>,
}

impl Pulled {
    /// Checks that the package pulled holds what its place says: the plugin the repository
    /// is named after, at the version of its manifest's annotation and of its tag when that
    /// is a version. (A registry is written by more than `gp push`: an artifact under
    /// `team/counter` holding plugin `dispatch` would otherwise replace `dispatch`.)
    pub fn check_holds(&self, plugin: &gp_core::manifest::Manifest) -> Result<(), Error> {
        let refused = |reason: String| refused(&self.reference, reason);
        if plugin.name != self.reference.name() {
            return Err(refused(format!(
                "the package holds the plugin `{}`, not `{}` as the repository's name says; nothing was installed",
                plugin.name,
                self.reference.name()
            )));
        }
        let claims = [
            ("its manifest's version annotation", self.version.clone()),
            (
                "its tag",
                self.reference
                    .tag
                    .as_deref()
                    .and_then(version_of)
                    .map(|v| v.to_string()),
            ),
        ];
        for (what, claimed) in claims {
            if let Some(claimed) = claimed.filter(|v| *v != plugin.version.to_string()) {
                return Err(refused(format!(
                    "the package holds {} {}, but {what} says {claimed}; nothing was installed",
                    plugin.name, plugin.version
                )));
            }
        }
        Ok(())
    }
}

impl Client {
    /// Downloads the package `reference` names into `file` after checking the manifest (its
    /// digest, its type, the package's size), streaming with the size limit and checking the
    /// package's digest. `file` is written from where it stands; on error it holds a partial
    /// download, which the caller discards. Verifying the package itself is the caller's
    /// part ([`Manager::install`](crate::Manager::install), `gp pull`).
    pub fn pull(
        &self,
        reference: &Reference,
        file: &std::fs::File,
        progress: Option<&dyn Fn(u64, Option<u64>)>,
    ) -> Result<Pulled, Error> {
        let (digest, (manifest, layer)) = self.manifest(reference)?;
        let pinned = reference.with_digest(&digest);
        let fail = |reason: String| answer(&pinned, reason);
        let refused = |reason: String| refused(&pinned, reason);
        let garbled = |reason: String| garbled(&pinned, reason);
        if layer.size > self.limits.max_bytes {
            return Err(refused(format!(
                "its package is {} bytes, more than the limit of {} bytes; nothing was installed",
                layer.size, self.limits.max_bytes
            )));
        }
        let scope = format!("repository:{}:pull", reference.repository);
        let url = self.url(reference, &format!("blobs/{}", layer.digest));
        let response = self
            .transport
            .send(&reference.registry, &scope, Method::GET, &url, &[], &[])
            .map_err(|f| hub_error(&pinned, f))?;
        if response.status().as_u16() != 200 {
            return Err(hub_error(&pinned, status_failure(response)));
        }
        let body = response.into_body().into_reader();
        let copied = copy_hashed(body, file, layer.size, |received| {
            if let Some(progress) = progress {
                progress(received, Some(layer.size));
            }
        });
        let (received, sha256) = match copied {
            Ok(copied) => copied,
            Err(CopyFailure::Read(e)) => return Err(fail(format!("the download broke off: {e}"))),
            Err(CopyFailure::Write(e)) => {
                return Err(fail(format!("cannot write the download: {e}")))
            }
            Err(CopyFailure::TooLarge) => {
                return Err(garbled(format!(
                    "the registry sent more than the {} bytes its manifest declares for the package; nothing was installed",
                    layer.size
                )))
            }
        };
        let got = format!("sha256:{sha256}");
        if received != layer.size || got != layer.digest {
            return Err(garbled(format!(
                "the package the registry sent ({received} bytes, {got}) is not the one its manifest declares ({} bytes, {}); nothing was installed",
                layer.size, layer.digest
            )));
        }
        Ok(Pulled {
            reference: pinned,
            sha256,
            size: received,
            version: manifest
                .annotations
                .get("org.opencontainers.image.version")
                .cloned(),
        })
    }
}

/// Downloads `reference` with `client` into `file` (at `path`) and checks the package
/// completely, signature per `trust`, without loading it: what `gp pull` does.
pub fn pull_verified(
    client: &Client,
    reference: &Reference,
    file: &std::fs::File,
    path: &Path,
    trust: &Trust,
    progress: Option<&dyn Fn(u64, Option<u64>)>,
) -> Result<(Pulled, package::Unpacked), Error> {
    let pulled = client.pull(reference, file, progress)?;
    let unpacked = package::verify(path, trust, &client.limits).map_err(|e| match e {
        Error::Package { reason, .. } => refused(
            &pulled.reference,
            format!("the package it holds is refused: {reason}"),
        ),
        other => other,
    })?;
    pulled.check_holds(&unpacked.manifest)?;
    Ok((pulled, unpacked))
}
