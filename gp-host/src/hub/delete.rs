//! `gp delete`: a version removed, naming every tag that goes with it.
//!
//! The distribution API deletes a manifest by digest, and every tag on that digest goes with
//! it: `gp delete …:stable` would take `0.2.0` along when both name one manifest. So the tags
//! sharing the digest are listed first. When the tag named is the only one, the manifest is
//! deleted. When others share it, the tag alone is deleted where the registry supports that
//! (`DELETE …/manifests/TAG`, OCI distribution 1.1); Docker Distribution 2.8 does not (it
//! answers 400 `DIGEST_INVALID`), and then the delete is refused, naming the tags, unless
//! every one of them is to go ([`Client::delete`]'s `all_tags`).

use ureq::http::Method;

use super::client::{answer, hub_error, status_failure, Client};
use super::reference::Reference;
use crate::error::{Error, HubFailure};

/// What [`Client::delete`] removed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Deleted {
    /// The reference deleted, pinned to its manifest's digest.
    pub reference: Reference,
    /// Every tag removed, sorted (none when a digest without tags was deleted).
    pub tags: Vec<String>,
    /// Whether only the tag was deleted, the manifest staying under its other tags.
    pub tag_only: bool,
}

impl Client {
    /// Deletes the version `reference` names, after checking it is a gp plugin: its manifest
    /// by digest when no other tag names it, or when `all_tags` says every tag on it may go;
    /// else only its tag, where the registry can delete a tag alone, or nothing (an
    /// [`Error::Hub`] with [`HubFailure::SharedDigest`], naming the tags).
    pub fn delete(&self, reference: &Reference, all_tags: bool) -> Result<Deleted, Error> {
        let (digest, _) = self.manifest(reference)?;
        let pinned = reference.with_digest(&digest);
        let scope = format!("repository:{}:pull,push,delete", reference.repository);
        let mut sharing = Vec::new();
        for tag in self.tags(reference)? {
            let tagged = Reference {
                tag: Some(tag.clone()),
                digest: None,
                ..reference.clone()
            };
            if self.digest(&tagged)?.as_deref() == Some(digest.as_str()) {
                sharing.push(tag);
            }
        }
        sharing.sort();
        let others = sharing
            .iter()
            .any(|t| Some(t.as_str()) != reference.tag.as_deref());
        let delete = |target: &str| {
            self.transport
                .send(
                    &reference.registry,
                    &scope,
                    Method::DELETE,
                    &self.url(reference, &format!("manifests/{target}")),
                    &[],
                    &[],
                )
                .map_err(|f| hub_error(&pinned, f))
        };
        if others && !all_tags {
            if let Some(tag) = &reference.tag {
                let response = delete(tag)?;
                match response.status().as_u16() {
                    200 | 202 => {
                        tracing::info!(target: "gp", reference = %pinned, "tag deleted");
                        return Ok(Deleted {
                            reference: pinned,
                            tags: vec![tag.clone()],
                            tag_only: true,
                        });
                    }
                    // Tags cannot be deleted alone here (Docker Distribution answers 400).
                    400 | 405 | 501 => {}
                    _ => return Err(hub_error(&pinned, status_failure(response))),
                }
            }
            return Err(hub_error(
                &pinned,
                HubFailure::SharedDigest {
                    digest,
                    tags: sharing,
                },
            ));
        }
        let response = delete(&digest)?;
        match response.status().as_u16() {
            200 | 202 => {
                tracing::info!(target: "gp", reference = %pinned, tags = ?sharing, "plugin deleted");
                Ok(Deleted {
                    reference: pinned,
                    tags: sharing,
                    tag_only: false,
                })
            }
            405 => Err(answer(&pinned, "the registry does not allow deleting (405); Docker Distribution needs storage.delete.enabled: true")),
            _ => Err(hub_error(&pinned, status_failure(response))),
        }
    }
}
