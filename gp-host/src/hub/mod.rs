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
//! Inside, one file per step: `client` (the [`Client`] and what every request shares),
//! `push`, `resolve` (tags, versions, manifests), `pull`, `search`, `delete`, with
//! `reference` (names and references), `transport` (HTTP and authentication) and `artifact`
//! (the artifact's documents) below them.
//!
//! What is pulled is checked before anything is written where it counts: the manifest's
//! digest against the one asked for (and against the registry's `Docker-Content-Digest`), the
//! artifact type (a container image under the name is refused by name), the package's size
//! against the limit before and while downloading, and its digest; then the package itself is
//! verified as any `.plg` (checksums, signature per the trust in force, the plugin inside),
//! and last it must hold the plugin its repository names, at the version its tag and
//! annotation say ([`Pulled::check_holds`]). What a registry holds and is refused is an
//! [`Error::Artifact`](crate::Error::Artifact); bytes that are not what their digest or size
//! names are an [`Error::Transfer`](crate::Error::Transfer), and a registry that failed to
//! answer is an [`Error::Hub`](crate::Error::Hub): both worth asking again later.
//!
//! A version tag is immutable ([`Client::push`] refuses another package under one unless
//! [`PushOptions::force`]); [`Client::delete`] names every tag a delete takes along, and
//! refuses to take tags other than the one named unless told to.
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
mod client;
mod credentials;
mod delete;
mod pull;
mod push;
mod reference;
mod resolve;
mod search;
mod transport;

pub use artifact::{ARTIFACT_TYPE, CONFIG_MEDIA_TYPE, PACKAGE_MEDIA_TYPE};
pub use client::{Client, ClientOptions};
pub use credentials::Credentials;
pub use delete::Deleted;
pub use pull::{pull_verified, Pulled};
pub use push::{PushOptions, Pushed};
pub use reference::{
    parse_name_range, tag_of, version_of, InvalidRange, InvalidReference, Namespace, Reference,
    SCHEME,
};
pub use resolve::Resolved;
pub use search::{Found, SearchResult};

/// The largest manifest, tag list or catalog page read (4 MiB: a manifest is about 1 KiB).
const MAX_DOCUMENT: u64 = 4 << 20;
/// Pages of a tag list or catalog followed at most.
const MAX_PAGES: usize = 100;
/// Tags of one repository, or repositories of a catalog, read at most: a registry that keeps
/// sending more is cut off here rather than filling memory.
const MAX_ENTRIES: usize = 100_000;
