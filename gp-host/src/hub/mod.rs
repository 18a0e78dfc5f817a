//! The hub: plugins published in, found in and installed from an OCI registry (feature `hub`).
//!
//! Any registry that speaks the OCI distribution specification stores gp plugins: Docker
//! Distribution, Harbor, Zot, GHCR, ECR, GAR, ACR… with their own storage, access control,
//! replication and garbage collection. A plugin is one artifact per version (see the layout
//! below) in a repository named after it, tagged with its version:
//!
//! ```text
//! oci://registry.example.com/team/sample:1.2.0
//!        registry            namespace name  tag = the plugin's version
//! ```
//!
//! [`Client::push`] publishes a `.plg`; [`Client::resolve`] turns `NAME@RANGE` into the
//! highest matching version and its digest; [`Client::pull`] downloads a package with every
//! check ([`Manager::install`](crate::Manager::install) takes `oci://` references and does the
//! same); [`Client::search`] lists what a registry's catalog holds; [`Client::delete`] removes
//! a version where the registry allows it.
//!
//! What is pulled is checked before anything is written where it counts: the manifest's
//! digest against the one asked for (and against the registry's `Docker-Content-Digest`), the
//! artifact type (a container image under the name is refused by name), the package's size
//! against the limit before and while downloading, and its digest; then the package itself is
//! verified as any `.plg` (checksums, signature per the trust in force, the plugin inside),
//! and last it must hold the plugin its repository names, at the version its tag and
//! annotation say ([`Pulled::check_holds`]). What a registry holds and is refused is an
//! [`Error::Artifact`]; a registry that failed to answer is an
//! [`Error::Hub`], worth asking again later.
//!
//! Credentials ([`Credentials`]) never appear in gp's errors or logs. One thing is the
//! embedder's to do: ureq's transport (`ureq_proto`) logs every byte it sends at `trace`
//! level through the `log` crate, `Authorization` headers included; a host that forwards
//! `log` records at `trace` should turn that target off (`gp` does: `ureq_proto=off`).
//!
//! The artifact:
//!
//! ```text
//! manifest  application/vnd.oci.image.manifest.v1+json, artifactType application/vnd.gp.plugin.v1
//!   config  application/vnd.gp.plugin.config.v1+json       the plugin's plugin.json
//!   layer   application/vnd.gp.plugin.package.v1.tar+gzip  the .plg, its signature inside
//! ```

mod artifact;
mod reference;
mod transport;

use std::path::Path;
use std::time::Duration;

use semver::{Version, VersionReq};
use ureq::http::Method;

pub use artifact::{ARTIFACT_TYPE, CONFIG_MEDIA_TYPE, PACKAGE_MEDIA_TYPE};
pub use reference::{tag_of, version_of, Namespace, Reference, SCHEME};
pub use transport::Credentials;

use crate::error::Error;
use crate::source::download::{copy_hashed, CopyFailure};
use crate::source::package::{self, Limits, Trust};
use transport::{error_detail, read_limited, Failure, Transport};

/// The largest manifest, tag list or catalog page read (4 MiB: a manifest is about 1 KiB).
const MAX_DOCUMENT: u64 = 4 << 20;
/// Pages of a tag list or catalog followed at most.
const MAX_PAGES: usize = 100;
/// Tags of one repository, or repositories of a catalog, read at most: a registry that keeps
/// sending more is cut off here rather than filling memory.
const MAX_ENTRIES: usize = 100_000;

/// How a [`Client`] talks to registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Who to say the user is (default: the Docker configuration's credentials).
    pub credentials: Credentials,
    /// Talk plain HTTP to every registry. Without it, only loopback registries (`localhost`,
    /// `127.0.0.1`, `[::1]`) are plain HTTP, as Docker does.
    pub plain_http: bool,
    /// The longest wait for a connection, an answer, a read or a write (default 60 s).
    pub timeout: Duration,
    /// The longest any one request may take, the transfer of a package included (default
    /// 10 min).
    pub deadline: Duration,
    /// The largest package accepted (its bytes as stored, compressed), and the limits applied
    /// to it unpacked (default: [`Limits::default`]).
    pub limits: Limits,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            credentials: Credentials::default(),
            plain_http: false,
            timeout: Duration::from_secs(60),
            deadline: Duration::from_secs(600),
            limits: Limits::default(),
        }
    }
}

/// A client of OCI registries for gp plugins. Clones are cheap and share what the client has
/// earned: tokens are reused by later requests on the same repository.
#[derive(Clone)]
pub struct Client {
    transport: std::sync::Arc<Transport>,
    limits: Limits,
}

/// What [`Client::push`] published.
#[derive(Debug, Clone)]
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

/// A plugin version found in a registry ([`Client::resolve`]).
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The reference, with its tag and the manifest's digest: pinning it (`…@sha256:…`)
    /// installs exactly these bytes again.
    pub reference: Reference,
    /// The version its tag names.
    pub version: Version,
}

/// What [`Client::pull`] downloaded.
#[derive(Debug, Clone)]
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
        let refused = |reason: String| Error::Artifact {
            reference: self.reference.to_string(),
            reason,
        };
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

/// A plugin in a registry's catalog ([`Client::search`]).
#[derive(Debug, Clone, serde::Serialize)]
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
}

/// What a search found: plugins, and repositories that matched but are something else.
#[derive(Debug, Clone, Default)]
pub struct SearchResult {
    /// The gp plugins, by name.
    pub plugins: Vec<Found>,
    /// Repositories in the namespace that matched but hold no gp plugin (a container image,
    /// another artifact), with what they are.
    pub skipped: Vec<(String, String)>,
}

impl Client {
    /// A client with `options`.
    pub fn new(options: ClientOptions) -> Client {
        Client {
            transport: std::sync::Arc::new(Transport::new(
                options.credentials,
                options.plain_http,
                options.timeout,
                options.deadline,
            )),
            limits: options.limits,
        }
    }

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
            return Err(Error::Hub {
                reference: to.to_string(),
                reason: format!(
                    "the repository's last component is `{}` but the package holds the plugin `{}`: push it to a repository named after the plugin (`gp install {}@…` looks for it there)",
                    to.name(),
                    plugin.name,
                    plugin.name
                ),
            });
        }
        // A Namespace's reference is not checked when it is made: the plugin's name is.
        if let Err(reason) = reference::check_repository(&to.repository) {
            return Err(Error::Hub {
                reference: to.to_string(),
                reason: if plugin.name.chars().any(|c| c.is_ascii_uppercase()) {
                    format!(
                        "OCI repository names are lowercase, so the plugin `{}` cannot be published under its name; rename it in lowercase",
                        plugin.name
                    )
                } else {
                    reason
                },
            });
        }
        let mut to = to.clone();
        let tag = to.tag.clone().unwrap_or_else(|| tag_of(&plugin.version));
        if let Some(version) = version_of(&tag).filter(|v| *v != plugin.version) {
            return Err(Error::Hub {
                reference: to.to_string(),
                reason: format!(
                    "the tag `{tag}` names version {version}, but the package holds {} {}: a version tag must be the plugin's own version (gp install NAME@RANGE trusts it); tag it {} or give a tag that is not a version, such as `stable`",
                    plugin.name,
                    plugin.version,
                    tag_of(&plugin.version)
                ),
            });
        }
        to.tag = Some(tag.clone());
        to.digest = None;
        let fail = |failure: Failure| hub_error(&to, failure);
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
                return Err(fail(Failure::Status {
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
    ) -> Result<(), Failure> {
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
        let location = header(&started, "location").ok_or_else(|| Failure::Status {
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
            return Err(Error::Hub {
                reference: reference.to_string(),
                reason: format!("no version matches `{range}` ({listed})"),
            });
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
            .ok_or_else(|| Error::Artifact {
                reference: pinned.to_string(),
                reason: "its manifest has no semver org.opencontainers.image.version annotation (gp push writes one)".into(),
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
                    return Err(Error::Hub {
                        reference: reference.to_string(),
                        reason: format!(
                            "the registry has no repository `{}` (no plugin of that name was pushed there)",
                            reference.repository
                        ),
                    })
                }
                _ => return Err(hub_error(reference, status_failure(response))),
            }
            let next = next_page(&response, &self.transport.base(&reference.registry));
            let body = read_limited(response, MAX_DOCUMENT).map_err(|f| hub_error(reference, f))?;
            let page: TagList = serde_json::from_slice(&body).map_err(|e| Error::Hub {
                reference: reference.to_string(),
                reason: format!("its tag list is not valid JSON: {e}"),
            })?;
            tags.extend(page.tags.unwrap_or_default());
            if tags.len() > MAX_ENTRIES {
                return Err(Error::Hub {
                    reference: reference.to_string(),
                    reason: format!(
                        "the repository lists more than {MAX_ENTRIES} tags; gp reads no further"
                    ),
                });
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
    fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(String, (artifact::ImageManifest, artifact::Descriptor)), Error> {
        let fail = |reason: String| Error::Hub {
            reference: reference.to_string(),
            reason,
        };
        let refused = |reason: String| Error::Artifact {
            reference: reference.to_string(),
            reason,
        };
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
                return Err(refused(format!(
                    "the manifest the registry sent has the digest {digest}, not the {asked} asked for; nothing was installed"
                )));
            }
        }
        if let Some(claimed) = claimed {
            if claimed != digest {
                return Err(refused(format!(
                    "the registry says the manifest's digest is {claimed}, but what it sent is {digest}; nothing was installed"
                )));
            }
        }
        // What is wrong with the artifact itself is said of its digest.
        let checked = artifact::check(&bytes, &content_type).map_err(|reason| Error::Artifact {
            reference: reference.with_digest(&digest).to_string(),
            reason,
        })?;
        Ok((digest, checked))
    }

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
        let fail = |reason: String| Error::Hub {
            reference: pinned.to_string(),
            reason,
        };
        let refused = |reason: String| Error::Artifact {
            reference: pinned.to_string(),
            reason,
        };
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
                return Err(refused(format!(
                    "the registry sent more than the {} bytes its manifest declares for the package; nothing was installed",
                    layer.size
                )))
            }
        };
        let got = format!("sha256:{sha256}");
        if received != layer.size || got != layer.digest {
            return Err(refused(format!(
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

    /// The plugins in `namespace` whose name or description contains `query` (any case; every
    /// plugin when it is empty): the registry's catalog (`GET /v2/_catalog`), each matching
    /// repository's tags, and the highest version's manifest and config. Registries without
    /// a catalog endpoint are named as such.
    pub fn search(&self, namespace: &Namespace, query: &str) -> Result<SearchResult, Error> {
        #[derive(serde::Deserialize)]
        struct Catalog {
            repositories: Option<Vec<String>>,
        }
        let fail = |reason: String| Error::Hub {
            reference: namespace.to_string(),
            reason,
        };
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
                .map_err(|f| fail(f.to_string()))?;
            match response.status().as_u16() {
                200 => {}
                404 | 405 | 501 => {
                    return Err(fail(format!(
                        "the registry has no catalog endpoint (GET /v2/_catalog answered {}), so it cannot be searched; install by name still works: gp install NAME@RANGE --registry {}",
                        response.status().as_u16(),
                        namespace.to_string().trim_start_matches(SCHEME)
                    )))
                }
                _ => return Err(fail(status_failure(response).to_string())),
            }
            let next = next_page(&response, &base);
            let body = read_limited(response, MAX_DOCUMENT).map_err(|f| fail(f.to_string()))?;
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
        let query = query.to_lowercase();
        let mut result = SearchResult::default();
        for repository in &repositories {
            let Some(name) = namespace.contains(repository) else {
                continue;
            };
            let reference = namespace.reference(name);
            let named = name.to_lowercase().contains(&query);
            // One repository that cannot be read is reported, not the end of the search.
            let mut skip = |error: Error| {
                if reason_of(&error).starts_with(transport::UNREACHABLE) {
                    return Err(error);
                }
                if named {
                    result.skipped.push((repository.clone(), reason_of(&error)));
                }
                Ok(())
            };
            let tags = match self.tags(&reference) {
                Ok(tags) => tags,
                Err(error) => {
                    skip(error)?;
                    continue;
                }
            };
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
                continue;
            };
            let tagged = Reference {
                tag: Some(newest),
                ..reference.clone()
            };
            let (description, newest) = match self.manifest(&tagged) {
                Ok((digest, (manifest, _))) => (
                    manifest
                        .annotations
                        .get("org.opencontainers.image.description")
                        .cloned(),
                    tagged.with_digest(&digest).to_string(),
                ),
                Err(error) => {
                    skip(error)?;
                    continue;
                }
            };
            let matches = named
                || description
                    .as_deref()
                    .is_some_and(|d| d.to_lowercase().contains(&query));
            if matches {
                result.plugins.push(Found {
                    name: name.to_owned(),
                    reference: reference.to_string(),
                    versions: versions.into_iter().map(|(v, _)| v.to_string()).collect(),
                    other_tags,
                    description,
                    newest_version,
                    newest,
                });
            }
        }
        result.plugins.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(result)
    }

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
            405 => Err(Error::Hub {
                reference: pinned.to_string(),
                reason: "the registry does not allow deleting (405); Docker Distribution needs storage.delete.enabled: true".into(),
            }),
            _ => Err(hub_error(&pinned, status_failure(response))),
        }
    }

    fn url(&self, reference: &Reference, tail: &str) -> String {
        format!(
            "{}/v2/{}/{tail}",
            self.transport.base(&reference.registry),
            reference.repository
        )
    }
}

/// Parses `NAME@RANGE` (or a bare `NAME`, any version): the form `gp install` resolves
/// against a registry. Returns `None` for anything else (a URL, a path, a reference).
pub fn parse_name_range(text: &str) -> Option<Result<(String, VersionReq), String>> {
    if text.contains("://") || text.contains('/') || text.ends_with(".plg") {
        return None;
    }
    let (name, range) = text.split_once('@').unwrap_or((text, "*"));
    if gp_core::manifest::validate_name(name).is_err() {
        return None;
    }
    Some(
        VersionReq::parse(range)
            .map(|req| (name.to_owned(), req))
            .map_err(|e| {
                format!("`{range}` is not a version range (examples: ^1.2, ~0.3, =1.0.0, *): {e}")
            }),
    )
}

/// The reason of a hub error, without the reference it names.
fn reason_of(error: &Error) -> String {
    match error {
        Error::Hub { reason, .. } | Error::Artifact { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

fn hub_error(reference: &Reference, failure: Failure) -> Error {
    Error::Hub {
        reference: reference.to_string(),
        reason: failure.to_string(),
    }
}

fn status_failure(response: transport::Response) -> Failure {
    let status = response.status().as_u16();
    Failure::Status {
        status,
        detail: error_detail(response),
    }
}

fn header(response: &transport::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The next page from a `Link: </v2/…?last=…&n=…>; rel="next"` header.
fn next_page(response: &transport::Response, base: &str) -> Option<String> {
    let link = header(response, "link")?;
    let target = link.split(';').next()?.trim();
    let target = target.strip_prefix('<')?.strip_suffix('>')?;
    Some(if target.starts_with('/') {
        format!("{base}{target}")
    } else {
        target.to_owned()
    })
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
        Error::Package { reason, .. } => Error::Artifact {
            reference: pulled.reference.to_string(),
            reason: format!("the package it holds is refused: {reason}"),
        },
        other => other,
    })?;
    pulled.check_holds(&unpacked.manifest)?;
    Ok((pulled, unpacked))
}
