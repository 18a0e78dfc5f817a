//! The [`Client`], its options, and what every request to a registry shares: URLs, the
//! registry's status in words, headers, the next page of a list.

use std::fmt::Display;
use std::time::Duration;

use super::credentials::Credentials;
use super::reference::Reference;
use super::transport::{self, error_detail, Transport};
use crate::error::{Error, HubFailure};
use crate::source::package::Limits;

/// How a [`Client`] talks to registries.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    pub(super) transport: std::sync::Arc<Transport>,
    pub(super) limits: Limits,
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

    /// `…/v2/REPOSITORY/TAIL` at `reference`'s registry.
    pub(super) fn url(&self, reference: &Reference, tail: &str) -> String {
        format!(
            "{}/v2/{}/{tail}",
            self.transport.base(&reference.registry),
            reference.repository
        )
    }
}

/// An [`Error::Hub`] about `reference`.
pub(super) fn hub_error(reference: &impl Display, failure: HubFailure) -> Error {
    Error::Hub {
        reference: reference.to_string(),
        reason: failure,
    }
}

/// An [`Error::Hub`] about `reference`: the registry answered, but not with what gp needs.
pub(super) fn answer(reference: &impl Display, reason: impl Into<String>) -> Error {
    hub_error(reference, HubFailure::answer(reason))
}

/// An [`Error::Artifact`] about `reference`: what it holds or sent is refused (said of its
/// digest when the reference is pinned).
pub(super) fn refused(reference: &Reference, reason: impl Into<String>) -> Error {
    Error::Artifact {
        reference: reference.to_string(),
        digest: reference.digest.clone(),
        reason: reason.into(),
    }
}

/// An [`Error::Transfer`] about `reference`: what the registry sent is not the bytes its
/// digests or sizes name (said of the manifest's digest when the reference is pinned).
pub(super) fn garbled(reference: &Reference, reason: impl Into<String>) -> Error {
    Error::Transfer {
        reference: reference.to_string(),
        digest: reference.digest.clone(),
        reason: reason.into(),
    }
}

/// A status the request did not expect, with the registry's error codes.
pub(super) fn status_failure(response: transport::Response) -> HubFailure {
    let status = response.status().as_u16();
    HubFailure::Status {
        status,
        detail: error_detail(response),
    }
}

/// A response header's value, if it is text.
pub(super) fn header(response: &transport::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The next page from a `Link: </v2/…?last=…&n=…>; rel="next"` header.
pub(super) fn next_page(response: &transport::Response, base: &str) -> Option<String> {
    let link = header(response, "link")?;
    let target = link.split(';').next()?.trim();
    let target = target.strip_prefix('<')?.strip_suffix('>')?;
    Some(if target.starts_with('/') {
        format!("{base}{target}")
    } else {
        target.to_owned()
    })
}
