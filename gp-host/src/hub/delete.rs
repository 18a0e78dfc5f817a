//! `gp delete`: a version's manifest removed by digest, where the registry allows it.

use ureq::http::Method;

use super::client::{answer, hub_error, status_failure, Client};
use super::reference::Reference;
use crate::error::Error;

impl Client {
    /// Deletes the version `reference` names (its manifest, by digest: every tag on the same
    /// digest goes with it), after checking it is a gp plugin. Returns the digest deleted.
    pub fn delete(&self, reference: &Reference) -> Result<String, Error> {
        let (digest, _) = self.manifest(reference)?;
        let pinned = reference.with_digest(&digest);
        let scope = format!("repository:{}:pull,push,delete", reference.repository);
        let response = self
            .transport
            .send(
                &reference.registry,
                &scope,
                Method::DELETE,
                &self.url(reference, &format!("manifests/{digest}")),
                &[],
                &[],
            )
            .map_err(|f| hub_error(&pinned, f))?;
        match response.status().as_u16() {
            200 | 202 => {
                tracing::info!(target: "gp", reference = %pinned, "plugin deleted");
                Ok(digest)
            }
            405 => Err(answer(&pinned, "the registry does not allow deleting (405); Docker Distribution needs storage.delete.enabled: true")),
            _ => Err(hub_error(&pinned, status_failure(response))),
        }
    }
}
