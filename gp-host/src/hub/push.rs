//! `gp push`: a verified package published as an artifact, its blobs uploaded unless the
//! registry has them, its manifest put under the plugin's version (or the tag given).
//!
//! A version tag is immutable: `gp install NAME@RANGE` and every lock pinned by a version
//! trust it to name one package forever. Pushing the same package again is a no-op (the
//! artifact has nothing time-dependent in it, so its digest is the same); another package
//! under an existing version tag is refused, naming both manifests' digests, unless
//! [`PushOptions::force`] says to replace it. A tag that is not a version (`stable`,
//! `canary`) moves freely. (Two pushes racing to one new version tag are not told apart: the
//! registry has no compare-and-swap on tags.)

use std::path::Path;

use ureq::http::Method;

use super::artifact;
use super::client::{answer, header, hub_error, status_failure, Client};
use super::reference::{self, tag_of, version_of, Namespace, Reference};
use super::transport::read_limited;
use super::MAX_DOCUMENT;
use crate::error::{Error, HubFailure};
use crate::source::package::{self, Trust};

/// How [`Client::push`] publishes.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PushOptions {
    /// The signatures the package is verified against before anything is sent (as `gp
    /// verify` does).
    pub trust: Trust,
    /// Replace the package a version tag names already, if it is another one. Without it
    /// such a push is refused ([`HubFailure::VersionExists`]).
    pub force: bool,
}

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
    /// The digest of the manifest the tag named before, when it named another one: a
    /// moving tag moved, or a version replaced with [`PushOptions::force`].
    pub replaced: Option<String>,
}

impl Client {
    /// Publishes the package `plg` at `to`: the repository must be named after the plugin,
    /// and without a tag the plugin's version is the tag. The package is verified first (as
    /// `gp verify` does, signature checked against `options.trust`); blobs the registry
    /// already has are not uploaded again. Another package under a version tag that exists
    /// is refused unless `options.force` (see the module's documentation).
    pub fn push(&self, plg: &Path, to: &Reference, options: &PushOptions) -> Result<Pushed, Error> {
        let unpacked = package::verify(plg, &options.trust, &self.limits)?;
        self.publish(plg, unpacked, to, options.force)
    }

    /// [`push`](Self::push) into `namespace`, in the repository named after the plugin the
    /// package holds, tagged with its version.
    pub fn push_into(
        &self,
        plg: &Path,
        namespace: &Namespace,
        options: &PushOptions,
    ) -> Result<Pushed, Error> {
        let unpacked = package::verify(plg, &options.trust, &self.limits)?;
        let to = namespace.reference(&unpacked.manifest.name);
        self.publish(plg, unpacked, &to, options.force)
    }

    /// Publishes the verified package `plg` at `to`, replacing another package under a
    /// version tag only if `force`.
    fn publish(
        &self,
        plg: &Path,
        unpacked: package::Unpacked,
        to: &Reference,
        force: bool,
    ) -> Result<Pushed, Error> {
        let plugin = unpacked.manifest;
        let to = place(to, &plugin)?;
        let tag = to.tag.clone().expect("place gives a tag");
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
        let before = self.tagged(&to, &scope).map_err(fail)?;
        let replaced = before.filter(|before| *before != digest);
        if let Some(existing) = &replaced {
            if version_of(&tag).is_some() && !force {
                return Err(fail(HubFailure::VersionExists {
                    tag,
                    existing: existing.clone(),
                    pushed: digest,
                }));
            }
        }
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
        match &replaced {
            Some(before) => {
                tracing::info!(target: "gp", reference = %to, digest, replaced = before, "plugin pushed, replacing what the tag named")
            }
            None => tracing::info!(target: "gp", reference = %to, digest, "plugin pushed"),
        }
        Ok(Pushed {
            reference: to.with_digest(&digest),
            plugin,
            size: data.len() as u64,
            signed,
            replaced,
        })
    }

    /// The digest of the manifest `to`'s tag names now, if it names one: a `HEAD` for the
    /// `Docker-Content-Digest`, or the manifest itself, hashed, from a registry that does
    /// not send one.
    fn tagged(&self, to: &Reference, scope: &str) -> Result<Option<String>, HubFailure> {
        let url = self.url(
            to,
            &format!("manifests/{}", to.tag.as_deref().unwrap_or("")),
        );
        let accept = [("accept", artifact::ACCEPT)];
        let head = self
            .transport
            .send(&to.registry, scope, Method::HEAD, &url, &accept, &[])?;
        match head.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(status_failure(head)),
        }
        if let Some(digest) =
            header(&head, "docker-content-digest").filter(|d| reference::check_digest(d).is_ok())
        {
            return Ok(Some(digest));
        }
        let got = self
            .transport
            .send(&to.registry, scope, Method::GET, &url, &accept, &[])?;
        if got.status().as_u16() != 200 {
            return Err(status_failure(got));
        }
        let body = read_limited(got, MAX_DOCUMENT)?;
        Ok(Some(artifact::digest(&body)))
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

/// Where `plugin` is published when `to` is asked for: `to` with its tag (the version by
/// default), after checking the repository is named after the plugin and a version tag is
/// the plugin's own version.
fn place(to: &Reference, plugin: &gp_core::manifest::Manifest) -> Result<Reference, Error> {
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
    to.tag = Some(tag);
    to.digest = None;
    Ok(to)
}
