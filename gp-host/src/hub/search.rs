//! `gp search`: a registry's catalog, each matching repository's tags, and the newest
//! version's manifest and description. A repository that cannot be read is reported and
//! skipped; a registry that cannot be reached ends the search.

use semver::Version;
use ureq::http::Method;

use gp_core::manifest::Manifest;

use super::artifact;
use super::client::{answer, garbled, hub_error, next_page, status_failure, Client};
use super::reference::{version_of, Namespace, Reference, SCHEME};
use super::transport::read_limited;
use super::{MAX_DOCUMENT, MAX_ENTRIES, MAX_PAGES};
use crate::error::{Error, HubFailure};

/// A plugin in a registry's catalog ([`Client::search`]).
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct Found {
    /// The plugin's name (the repository's last component).
    pub name: String,
    /// The repository.
    pub reference: String,
    /// Its versions (tags that are versions), highest first.
    pub versions: Vec<String>,
    /// Its other tags.
    pub other_tags: Vec<String>,
    /// The description of the highest version.
    pub description: Option<String>,
    /// The newest version (the highest release; the highest pre-release when there is no
    /// release), as `gp install NAME` picks it; `None` when no tag is a version.
    pub newest_version: Option<String>,
    /// The newest version's reference (or the first other tag's), pinned to its manifest's
    /// digest: what installing it from this search gets.
    pub newest: String,
    /// Why `gp install` would refuse the newest version, if it would: its manifest or its
    /// config (the plugin.json) names another plugin or version than its repository and
    /// tag, or its package is larger than the limit. Left out of the JSON when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// What a search found: plugins, and repositories that matched but are something else.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SearchResult {
    /// The gp plugins, by name.
    pub plugins: Vec<Found>,
    /// Repositories in the namespace that matched but hold no gp plugin (a container image,
    /// another artifact), with what they are.
    pub skipped: Vec<(String, String)>,
}

impl Client {
    /// The plugins in `namespace` whose name or description contains `query` (any case; every
    /// plugin when it is empty): the registry's catalog (`GET /v2/_catalog`), each matching
    /// repository's tags, and the highest version's manifest and config. Registries without
    /// a catalog endpoint are named as such.
    pub fn search(&self, namespace: &Namespace, query: &str) -> Result<SearchResult, Error> {
        let repositories = self.catalog(namespace)?;
        let query = query.to_lowercase();
        let mut result = SearchResult::default();
        for repository in &repositories {
            let Some(name) = namespace.contains(repository) else {
                continue;
            };
            let named = name.to_lowercase().contains(&query);
            match self.found(namespace, name, named, &query) {
                Ok(Some(found)) => result.plugins.push(found),
                Ok(None) => {}
                // One repository that cannot be read is reported, not the end of the search;
                // a registry that cannot be reached is.
                Err(
                    error @ Error::Hub {
                        reason: HubFailure::Unreachable { .. },
                        ..
                    },
                ) => return Err(error),
                Err(error) if named => result.skipped.push((repository.clone(), reason_of(&error))),
                Err(_) => {}
            }
        }
        result.plugins.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(result)
    }

    /// Every repository the registry's catalog lists (every page, within the limits).
    fn catalog(&self, namespace: &Namespace) -> Result<Vec<String>, Error> {
        #[derive(serde::Deserialize)]
        struct Catalog {
            repositories: Option<Vec<String>>,
        }
        let fail = |reason: String| answer(&namespace, reason);
        let base = self.transport.base(&namespace.registry);
        let mut url = format!("{base}/v2/_catalog?n=1000");
        let mut repositories = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self
                .transport
                .send(
                    &namespace.registry,
                    "registry:catalog:*",
                    Method::GET,
                    &url,
                    &[],
                    &[],
                )
                .map_err(|f| hub_error(namespace, f))?;
            match response.status().as_u16() {
                200 => {}
                404 | 405 | 501 => {
                    return Err(fail(format!(
                        "the registry has no catalog endpoint (GET /v2/_catalog answered {}), so it cannot be searched; install by name still works: gp install NAME@RANGE --registry {}",
                        response.status().as_u16(),
                        namespace.to_string().trim_start_matches(SCHEME)
                    )))
                }
                _ => return Err(hub_error(namespace, status_failure(response))),
            }
            let next = next_page(&response, &base);
            let body = read_limited(response, MAX_DOCUMENT).map_err(|f| hub_error(namespace, f))?;
            let page: Catalog = serde_json::from_slice(&body)
                .map_err(|e| fail(format!("its catalog is not valid JSON: {e}")))?;
            repositories.extend(page.repositories.unwrap_or_default());
            if repositories.len() > MAX_ENTRIES {
                return Err(fail(format!(
                    "the catalog lists more than {MAX_ENTRIES} repositories; gp reads no further"
                )));
            }
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(repositories)
    }

    /// The plugin `name` in `namespace`, if its name holds the query (`named`) or its newest
    /// version's description holds `query` (lower case): its versions and other tags, and its
    /// newest version pinned to its digest. `None` when it does not match, or has no tag.
    fn found(
        &self,
        namespace: &Namespace,
        name: &str,
        named: bool,
        query: &str,
    ) -> Result<Option<Found>, Error> {
        let reference = namespace.reference(name);
        let tags = self.tags(&reference)?;
        let mut versions: Vec<(Version, String)> = tags
            .iter()
            .filter_map(|t| version_of(t).map(|v| (v, t.clone())))
            .collect();
        versions.sort_by(|a, b| b.0.cmp(&a.0));
        let other_tags: Vec<String> = tags
            .iter()
            .filter(|t| version_of(t).is_none())
            .cloned()
            .collect();
        // The newest release, as `gp install NAME` picks it; a pre-release only when there
        // is nothing else.
        let release = versions
            .iter()
            .find(|(v, _)| v.pre.is_empty())
            .or(versions.first());
        let newest_version = release.map(|(v, _)| v.to_string());
        let Some(newest) = release
            .map(|(_, t)| t.clone())
            .or_else(|| other_tags.first().cloned())
        else {
            return Ok(None);
        };
        let tagged = Reference {
            tag: Some(newest),
            ..reference.clone()
        };
        let (digest, (manifest, layer)) = self.manifest(&tagged)?;
        let refused = self.vet(&tagged, &manifest, &layer)?;
        let description = manifest
            .annotations
            .get("org.opencontainers.image.description")
            .cloned();
        let matches = named
            || description
                .as_deref()
                .is_some_and(|d| d.to_lowercase().contains(query));
        Ok(matches.then(|| Found {
            name: name.to_owned(),
            reference: reference.to_string(),
            versions: versions.into_iter().map(|(v, _)| v.to_string()).collect(),
            other_tags,
            description,
            newest_version,
            newest: tagged.with_digest(&digest).to_string(),
            refused,
        }))
    }

    /// Why `gp install` would refuse what `tagged` names (its checked manifest and package
    /// layer), as far as the manifest and the config blob (the plugin.json, a few hundred
    /// bytes) tell without downloading the package: the checks of
    /// [`Pulled::check_holds`](super::Pulled::check_holds) and the size limit.
    fn vet(
        &self,
        tagged: &Reference,
        manifest: &artifact::ImageManifest,
        layer: &artifact::Descriptor,
    ) -> Result<Option<String>, Error> {
        if layer.size > self.limits.max_bytes {
            return Ok(Some(format!(
                "its package is {} bytes, more than the limit of {} bytes",
                layer.size, self.limits.max_bytes
            )));
        }
        let tag = tagged.tag.as_deref().unwrap_or_default();
        let tag_version = version_of(tag);
        let annotated = manifest.annotations.get("org.opencontainers.image.version");
        if let (Some(annotated), Some(version)) = (annotated, &tag_version) {
            if *annotated != version.to_string() {
                return Ok(Some(format!(
                    "its tag says {version}, but its manifest's version annotation says {annotated}"
                )));
            }
        }
        let Some(config) = manifest
            .config
            .as_ref()
            .filter(|c| c.media_type == artifact::CONFIG_MEDIA_TYPE)
        else {
            return Ok(None);
        };
        let bytes = self.blob(tagged, &config.digest)?;
        if artifact::digest(&bytes) != config.digest {
            return Err(garbled(
                tagged,
                format!(
                    "the config the registry sent is not the {} its manifest declares",
                    config.digest
                ),
            ));
        }
        let plugin = match std::str::from_utf8(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|text| Manifest::from_plugin_json(text).map_err(|e| e.to_string()))
        {
            Ok(plugin) => plugin,
            Err(e) => {
                return Ok(Some(format!(
                    "its config is not a plugin.json gp reads: {e}"
                )))
            }
        };
        if plugin.name != tagged.name() {
            return Ok(Some(format!(
                "it holds the plugin `{}`, not `{}` as the repository's name says",
                plugin.name,
                tagged.name()
            )));
        }
        if let Some(version) = tag_version.filter(|v| *v != plugin.version) {
            return Ok(Some(format!(
                "it holds {} {}, but its tag says {version}",
                plugin.name, plugin.version
            )));
        }
        Ok(None)
    }

    /// A small blob of `reference`'s repository (at most a manifest's size).
    fn blob(&self, reference: &Reference, digest: &str) -> Result<Vec<u8>, Error> {
        let scope = format!("repository:{}:pull", reference.repository);
        let url = self.url(reference, &format!("blobs/{digest}"));
        let response = self
            .transport
            .send(&reference.registry, &scope, Method::GET, &url, &[], &[])
            .map_err(|f| hub_error(reference, f))?;
        if response.status().as_u16() != 200 {
            return Err(hub_error(reference, status_failure(response)));
        }
        read_limited(response, MAX_DOCUMENT).map_err(|f| hub_error(reference, f))
    }
}

/// The reason of a hub error, without the reference it names.
fn reason_of(error: &Error) -> String {
    match error {
        Error::Hub { reason, .. } => reason.to_string(),
        Error::Artifact { reason, .. } | Error::Transfer { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}
