//! `gp push`: a verified package published as an artifact, its blobs uploaded unless the
//! registry has them, its manifest put under the plugin's version (or the tag given).

use std::path::Path;

use ureq::http::Method;

use super::artifact;
use super::client::{answer, header, hub_error, status_failure, Client};
use super::reference::{self, tag_of, version_of, Namespace, Reference};
use crate::error::{Error, HubFailure};
use crate::source::package::{self, Trust};

/// What [`Client::push`] published.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Pushed {
    /// Where: the reference with its tag and the manifest's digest.
    pub reference: Reference,
    /// The plugin's manifest.
    pub plugin: gp_core::manifest::Manifest,
    /// The size of the package blob.
    pub size: u64,
    /// Whether the package is signed.
    pub signed: bool,
}

impl Client {
    /// Publishes the package `plg` at `to`: the repository must be named after the plugin,
    /// and without a tag the plugin's version is the tag. The package is verified first (as
    /// `gp verify` does, signature checked against `trust`); blobs the registry already has
    /// are not uploaded again.
    pub fn push(&self, plg: &Path, to: &Reference, trust: &Trust) -> Result<Pushed, Error> {
        let unpacked = package::verify(plg, trust, &self.limits)?;
        self.publish(plg, unpacked, to)
    }

    /// [`push`](Self::push) into `namespace`, in the repository named after the plugin the
    /// package holds, tagged with its version.
    pub fn push_into(
        &self,
        plg: &Path,
        namespace: &Namespace,
        trust: &Trust,
    ) -> Result<Pushed, Error> {
        let unpacked = package::verify(plg, trust, &self.limits)?;
        let to = namespace.reference(&unpacked.manifest.name);
        self.publish(plg, unpacked, &to)
    }

    /// Publishes the verified package `plg` at `to`.
    fn publish(
        &self,
        plg: &Path,
        unpacked: package::Unpacked,
        to: &Reference,
    ) -> Result<Pushed, Error> {
        let plugin = unpacked.manifest;
        if to.name() != plugin.name {
            return Err(answer(&to, format!(
                    "the repository's last component is `{}` but the package holds the plugin `{}`: push it to a repository named after the plugin (`gp install {}@…` looks for it there)",
                    to.name(),
                    plugin.name,
                    plugin.name
                )));
        }
        // A Namespace's reference is not checked when it is made: the plugin's name is.
        if let Err(reason) = reference::check_repository(&to.repository) {
            return Err(answer(
                &to,
                if plugin.name.chars().any(|c| c.is_ascii_uppercase()) {
                    format!(
                        "OCI repository names are lowercase, so the plugin `{}` cannot be published under its name; rename it in lowercase",
                        plugin.name
                    )
                } else {
                    reason.to_string()
                },
            ));
        }
        let mut to = to.clone();
        let tag = to.tag.clone().unwrap_or_else(|| tag_of(&plugin.version));
        if let Some(version) = version_of(&tag).filter(|v| *v != plugin.version) {
            return Err(answer(&to, format!(
                    "the tag `{tag}` names version {version}, but the package holds {} {}: a version tag must be the plugin's own version (gp install NAME@RANGE trusts it); tag it {} or give a tag that is not a version, such as `stable`",
                    plugin.name,
                    plugin.version,
                    tag_of(&plugin.version)
                )));
        }
        to.tag = Some(tag.clone());
        to.digest = None;
        let fail = |failure: HubFailure| hub_error(&to, failure);
        let data = std::fs::read(plg).map_err(|e| Error::io(plg, e))?;
        let config = plugin.to_json_pretty().into_bytes();
        let signed = unpacked.signed;
        let manifest = artifact::manifest_for(&plugin, &config, &data, signed);
        let scope = format!("repository:{}:pull,push", to.repository);
        for (blob, descriptor) in [
            (
                &config,
                manifest
                    .config
                    .as_ref()
                    .expect("pushed manifests have a config"),
            ),
            (&data, &manifest.layers[0]),
        ] {
            self.upload(&to, &scope, &descriptor.digest, blob)
                .map_err(fail)?;
        }
        let body = serde_json::to_vec(&manifest).expect("a manifest serialises");
        let digest = artifact::digest(&body);
        let url = self.url(&to, &format!("manifests/{tag}"));
        let response = self
            .transport
            .send(
                &to.registry,
                &scope,
                Method::PUT,
                &url,
                &[("content-type", artifact::OCI_MANIFEST)],
                &body,
            )
            .map_err(fail)?;
        if response.status().as_u16() != 201 {
            return Err(fail(status_failure(response)));
        }
        if let Some(theirs) = header(&response, "docker-content-digest") {
            if theirs != digest {
                return Err(fail(HubFailure::Status {
                    status: 201,
                    detail: format!(
                        "it stored the manifest as {theirs}, but the manifest sent is {digest}"
                    ),
                }));
            }
        }
        tracing::info!(target: "gp", reference = %to, digest, "plugin pushed");
        Ok(Pushed {
            reference: to.with_digest(&digest),
            plugin,
            size: data.len() as u64,
            signed,
        })
    }

    /// Uploads one blob unless the repository has it: `POST …/blobs/uploads/`, then one `PUT`
    /// with the digest (a monolithic upload).
    fn upload(
        &self,
        to: &Reference,
        scope: &str,
        digest: &str,
        blob: &[u8],
    ) -> Result<(), HubFailure> {
        let exists = self.transport.send(
            &to.registry,
            scope,
            Method::HEAD,
            &self.url(to, &format!("blobs/{digest}")),
            &[],
            &[],
        )?;
        if exists.status().as_u16() == 200 {
            return Ok(());
        }
        let started = self.transport.send(
            &to.registry,
            scope,
            Method::POST,
            &self.url(to, "blobs/uploads/"),
            &[("content-length", "0")],
            &[],
        )?;
        if started.status().as_u16() != 202 {
            return Err(status_failure(started));
        }
        let location = header(&started, "location").ok_or_else(|| HubFailure::Status {
            status: 202,
            detail: "it started an upload without saying where (no Location)".into(),
        })?;
        let location = if location.starts_with('/') {
            format!("{}{location}", self.transport.base(&to.registry))
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{separator}digest={}", digest.replace(':', "%3A"));
        let length = blob.len().to_string();
        let done = self.transport.send(
            &to.registry,
            scope,
            Method::PUT,
            &url,
            &[
                ("content-type", "application/octet-stream"),
                ("content-length", &length),
            ],
            blob,
        )?;
        if done.status().as_u16() != 201 {
            return Err(status_failure(done));
        }
        Ok(())
    }
}
