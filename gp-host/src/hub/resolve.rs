//! What a registry holds under a name: its tags, the version a range resolves to, the
//! version a tag names now, and a manifest fetched and checked.

use semver::{Version, VersionReq};
use ureq::http::Method;

use super::artifact;
use super::client::{
    answer, garbled, header, hub_error, next_page, refused, status_failure, Client,
};
use super::reference::{self, version_of, Namespace, Reference};
use super::transport::read_limited;
use super::{MAX_DOCUMENT, MAX_ENTRIES, MAX_PAGES};
use crate::error::Error;

/// A plugin version found in a registry ([`Client::resolve`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Resolved {
    /// The reference, with its tag and the manifest's digest: pinning it (`…@sha256:…`)
    /// installs exactly these bytes again.
    pub reference: Reference,
    /// The version its tag names.
    pub version: Version,
}

impl Client {
    /// The highest version of the plugin `name` in `namespace` that `range` accepts (a semver
    /// requirement: `^1.2`, `~0.3`, `*`, `=1.0.0`), with its digest. Pre-releases match only
    /// a range that names one, as in Cargo.
    pub fn resolve(
        &self,
        namespace: &Namespace,
        name: &str,
        range: &VersionReq,
    ) -> Result<Resolved, Error> {
        let reference = namespace.reference(name);
        let tags = self.tags(&reference)?;
        let best = tags
            .iter()
            .filter_map(|tag| version_of(tag).map(|v| (v, tag)))
            .filter(|(v, _)| range.matches(v))
            .max_by(|a, b| a.0.cmp(&b.0));
        let Some((version, tag)) = best else {
            let mut versions: Vec<Version> = tags.iter().filter_map(|t| version_of(t)).collect();
            versions.sort();
            let listed = if versions.is_empty() {
                "it has no version tags".to_owned()
            } else {
                format!(
                    "its versions: {}",
                    versions
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(answer(
                &reference,
                format!("no version matches `{range}` ({listed})"),
            ));
        };
        let tagged = Reference {
            tag: Some(tag.clone()),
            ..reference
        };
        let (digest, _) = self.manifest(&tagged)?;
        Ok(Resolved {
            reference: tagged.with_digest(&digest),
            version,
        })
    }

    /// The version `reference` names now (a tag can move): its manifest fetched and checked,
    /// the version read from its `org.opencontainers.image.version` annotation, the digest
    /// pinned.
    pub fn inspect(&self, reference: &Reference) -> Result<Resolved, Error> {
        let (digest, (manifest, _)) = self.manifest(reference)?;
        let pinned = reference.with_digest(&digest);
        let version = manifest
            .annotations
            .get("org.opencontainers.image.version")
            .and_then(|v| Version::parse(v).ok())
            .ok_or_else(|| {
                refused(&pinned, "its manifest has no semver org.opencontainers.image.version annotation (gp push writes one)")
            })?;
        Ok(Resolved {
            reference: pinned,
            version,
        })
    }

    /// The digest `reference`'s tag points at now, from a `HEAD` of its manifest (which
    /// registries such as Docker Hub do not count as a pull); `None` when the registry does
    /// not say (no `Docker-Content-Digest`).
    pub fn digest(&self, reference: &Reference) -> Result<Option<String>, Error> {
        let Some(wanted) = reference.manifest_reference() else {
            return Ok(None);
        };
        let scope = format!("repository:{}:pull", reference.repository);
        let response = self
            .transport
            .send(
                &reference.registry,
                &scope,
                Method::HEAD,
                &self.url(reference, &format!("manifests/{wanted}")),
                &[("accept", artifact::ACCEPT)],
                &[],
            )
            .map_err(|f| hub_error(reference, f))?;
        if response.status().as_u16() != 200 {
            return Ok(None);
        }
        Ok(header(&response, "docker-content-digest")
            .filter(|d| reference::check_digest(d).is_ok()))
    }

    /// The repository's tags (every page).
    pub fn tags(&self, reference: &Reference) -> Result<Vec<String>, Error> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let scope = format!("repository:{}:pull", reference.repository);
        let mut tags = Vec::new();
        let mut url = self.url(reference, "tags/list?n=1000");
        for _ in 0..MAX_PAGES {
            let response = self
                .transport
                .send(&reference.registry, &scope, Method::GET, &url, &[], &[])
                .map_err(|f| hub_error(reference, f))?;
            match response.status().as_u16() {
                200 => {}
                404 => {
                    return Err(answer(&reference, format!(
                            "the registry has no repository `{}` (no plugin of that name was pushed there)",
                            reference.repository
                        )))
                }
                _ => return Err(hub_error(reference, status_failure(response))),
            }
            let next = next_page(&response, &self.transport.base(&reference.registry));
            let body = read_limited(response, MAX_DOCUMENT).map_err(|f| hub_error(reference, f))?;
            let page: TagList = serde_json::from_slice(&body)
                .map_err(|e| answer(&reference, format!("its tag list is not valid JSON: {e}")))?;
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() > MAX_ENTRIES {
                return Err(answer(
                    &reference,
                    format!(
                        "the repository lists more than {MAX_ENTRIES} tags; gp reads no further"
                    ),
                ));
            }
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(tags)
    }

    /// Fetches and checks the manifest `reference` names: returns its digest and the manifest
    /// with its package layer.
    pub(super) fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(String, (artifact::ImageManifest, artifact::Descriptor)), Error> {
        let fail = |reason: String| answer(&reference, reason);
        let garbled = |reason: String| garbled(reference, reason);
        let Some(wanted) = reference.manifest_reference() else {
            return Err(fail(
                "it names no tag and no digest: add :TAG (a version) or @sha256:…".into(),
            ));
        };
        let scope = format!("repository:{}:pull", reference.repository);
        let url = self.url(reference, &format!("manifests/{wanted}"));
        let response = self
            .transport
            .send(
                &reference.registry,
                &scope,
                Method::GET,
                &url,
                &[("accept", artifact::ACCEPT)],
                &[],
            )
            .map_err(|f| hub_error(reference, f))?;
        match response.status().as_u16() {
            200 => {}
            404 => {
                return Err(fail(match (&reference.digest, &reference.tag) {
                    (Some(_), _) => "the registry has no manifest with that digest".to_owned(),
                    (None, Some(tag)) => format!(
                        "the registry has no tag `{tag}` in `{}` (see `gp search`)",
                        reference.repository
                    ),
                    (None, None) => unreachable!("checked above"),
                }))
            }
            _ => return Err(hub_error(reference, status_failure(response))),
        }
        let content_type = header(&response, "content-type").unwrap_or_default();
        let claimed = header(&response, "docker-content-digest");
        let bytes = read_limited(response, MAX_DOCUMENT).map_err(|f| hub_error(reference, f))?;
        let digest = artifact::digest(&bytes);
        if let Some(asked) = &reference.digest {
            if *asked != digest {
                return Err(garbled(format!(
                    "the manifest the registry sent has the digest {digest}, not the {asked} asked for; nothing was installed"
                )));
            }
        }
        if let Some(claimed) = claimed {
            if claimed != digest {
                return Err(garbled(format!(
                    "the registry says the manifest's digest is {claimed}, but what it sent is {digest}; nothing was installed"
                )));
            }
        }
        // What is wrong with the artifact itself is said of its digest.
        let checked = artifact::check(&bytes, &content_type)
            .map_err(|refusal| refused(&reference.with_digest(&digest), refusal.to_string()))?;
        Ok((digest, checked))
    }
}
