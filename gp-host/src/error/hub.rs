//! [`HubFailure`]: why talking to an OCI registry failed, as a type.
//!
//! `gp search` goes on past a repository it cannot read but stops at a registry it cannot
//! reach, and retries decide on the same difference: they read the variant, never the
//! message. Here, beside [`Error`](super::Error), because the error carries it whatever
//! features are on.

use super::Cause;

/// What went wrong talking to an OCI registry, carried by [`Error::Hub`](crate::Error::Hub).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubFailure {
    /// The registry could not be reached, or the exchange broke off.
    #[error("cannot reach the registry: {reason}")]
    Unreachable {
        /// What the connection said.
        reason: String,
        /// The HTTP client's or the system's error, where there is one.
        #[source]
        source: Option<Cause>,
    },
    /// 401 after the credentials (or without any).
    #[error("{}", match username {
        None => "the registry wants credentials (401): log in with `docker login HOST`, or pass --username and --password-stdin".to_owned(),
        Some(user) => format!("the registry refused the credentials of user `{user}` (401)"),
    })]
    Unauthorized {
        /// The user whose credentials were refused; `None` when none were sent.
        username: Option<String>,
    },
    /// A status the request did not expect, with the registry's own error codes.
    #[error("the registry answered HTTP {status}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Status {
        /// The HTTP status.
        status: u16,
        /// The registry's error codes and messages, if it sent any.
        detail: String,
    },
    /// The user's Docker configuration cannot be used: the file is not valid, or the
    /// credential helper it names (`credsStore`, `credHelpers`) cannot be run or failed. gp
    /// does not go on anonymously: the user meant to log in.
    #[error("{}: {reason}", path.display())]
    Credentials {
        /// The Docker configuration file (`$DOCKER_CONFIG/config.json`).
        path: std::path::PathBuf,
        /// What is wrong, naming the helper where there is one, and what to do.
        reason: String,
    },
    /// `gp push` of another package under a version tag that already names one: a version
    /// is immutable (a moving tag such as `stable` is not).
    #[error("the version tag `{tag}` already holds another package (manifest {existing}); this one's manifest is {pushed}: a published version is immutable, so publish this one as a new version, or replace it for everyone with --force (PushOptions::force)")]
    VersionExists {
        /// The tag.
        tag: String,
        /// The digest of the manifest the tag names now.
        existing: String,
        /// The digest of the manifest pushed.
        pushed: String,
    },
    /// `gp delete` of a tag whose manifest carries other tags too, on a registry that
    /// deletes manifests, not tags: every tag would go.
    #[error("its manifest {digest} carries the tags {}: deleting it removes all of them (the registry cannot delete one tag alone); pass --all-tags to delete them all", tags.join(", "))]
    SharedDigest {
        /// The manifest's digest.
        digest: String,
        /// Every tag on it, sorted.
        tags: Vec<String>,
    },
    /// The registry answered, but not with what gp needs: no such repository or tag, no
    /// catalog, deleting not allowed, a document that does not parse. Why, for people.
    #[error("{reason}")]
    Answer {
        /// Why, and what to do.
        reason: String,
    },
}

impl HubFailure {
    /// The registry could not be reached: `error` is the HTTP client's.
    #[cfg(feature = "hub")]
    pub(crate) fn unreachable(error: impl std::error::Error + Send + Sync + 'static) -> HubFailure {
        HubFailure::Unreachable {
            reason: error.to_string(),
            source: Some(Box::new(error)),
        }
    }

    /// An answer that is not what gp needs, for people.
    #[cfg(feature = "hub")]
    pub(crate) fn answer(reason: impl Into<String>) -> HubFailure {
        HubFailure::Answer {
            reason: reason.into(),
        }
    }
}
