//! Who may use the management API: a bearer token (always, loopback included), a `Host` the
//! operator expects (against DNS rebinding), no foreign `Origin` (against a web page in the
//! operator's own browser), JSON for every write.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AdminShared;
use crate::error::Error;

/// Text that cannot be an [`AdminToken`]: too short, or with spaces or control characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an admin token is at least 16 characters, without spaces")]
pub struct InvalidToken;

/// A bearer token for the management API.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminToken({})", self.id())
    }
}

impl AdminToken {
    /// A new random token: 32 bytes from the operating system, in hex.
    pub fn generate() -> AdminToken {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source");
        AdminToken(crate::util::hex(&bytes))
    }

    /// A token given as text (from a file or an environment variable); surrounding
    /// whitespace is dropped. At least 16 characters.
    pub fn new(text: &str) -> Result<AdminToken, InvalidToken> {
        let text = text.trim();
        if text.len() < 16 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidToken);
        }
        Ok(AdminToken(text.to_owned()))
    }

    /// Reads a token from the file `path` (the whole file, trimmed).
    pub fn from_file(path: &Path) -> Result<AdminToken, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        AdminToken::new(&text).map_err(|invalid| Error::io(path, std::io::Error::other(invalid)))
    }

    /// Writes the token to `path`, readable and writable by its owner only (mode 0600).
    pub fn write_to(&self, path: &Path) -> Result<(), Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        crate::util::write_atomically(path, |tmp| {
            std::fs::write(tmp, format!("{}\n", self.0))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(())
        })
    }

    /// The token's text, to send as `Authorization: Bearer <token>`.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// A name for the token in logs: the first 8 hex digits of its SHA-256 (never the token).
    pub fn id(&self) -> String {
        crate::util::sha256_hex(self.0.as_bytes())[..8].to_owned()
    }

    fn matches(&self, offered: &str) -> bool {
        self.0.as_bytes().ct_eq(offered.as_bytes()).into()
    }
}

/// What a request's token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Everything.
    Admin,
    /// Reading only.
    ReadOnly,
}

/// Who made a request: the scope and the token's id, for the change log.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) scope: Scope,
    pub(crate) token_id: String,
}

pub(crate) fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let mut response = (
        status,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"gp\""),
        );
    }
    response
}

/// The host part of a `Host` header value: `127.0.0.1:9464` → `127.0.0.1`, `[::1]:80` → `[::1]`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// Checks `Host` and `Origin`. Applies to every path of the admin listener, the GUI included.
pub(crate) fn check_host_and_origin(
    allowed: &[String],
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = host_name(host).to_ascii_lowercase();
    if !allowed.contains(&name) {
        return Err(Box::new(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "host {host:?} is not one this admin listener answers to ({}): use one of them, or add the name with --admin-host",
                allowed.join(", ")
            ),
        )));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
        if !same {
            return Err(Box::new(refuse(
                StatusCode::FORBIDDEN,
                format!("origin {origin:?} may not use the management API: only pages it serves itself may"),
            )));
        }
    }
    Ok(())
}

/// The middleware in front of `/api/v1`: host and origin, token, scope, JSON for writes.
pub(crate) async fn guard(
    State(shared): State<std::sync::Arc<AdminShared>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Err(refused) = check_host_and_origin(&shared.allowed_hosts, request.headers()) {
        return *refused;
    }
    let offered = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(offered) = offered else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the management API needs a token: send `Authorization: Bearer <token>` (gp serve prints where its token file is)",
        );
    };
    let caller = if shared.token.matches(offered) {
        Caller {
            scope: Scope::Admin,
            token_id: shared.token.id(),
        }
    } else if let Some(read_only) = shared.read_only.as_ref().filter(|t| t.matches(offered)) {
        Caller {
            scope: Scope::ReadOnly,
            token_id: read_only.id(),
        }
    } else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the token is not valid for this server",
        );
    };
    let writes = request.method() != Method::GET && request.method() != Method::HEAD;
    if writes && caller.scope == Scope::ReadOnly {
        return refuse(
            StatusCode::FORBIDDEN,
            "this token may only read: changes need the admin token",
        );
    }
    // A POST must say JSON (or, for an upload, octet-stream): a cross-site form can send a
    // simple POST without asking, never one of these. A DELETE carries no body and cannot be
    // sent cross-site without a preflight, which CORS (off) never grants.
    if request.method() == Method::POST {
        let content_type = crate::http::media_type(request.headers()).unwrap_or_default();
        let upload = request.uri().path().ends_with("/upgrade");
        let fits = if upload {
            content_type == "application/octet-stream"
        } else {
            content_type == "application/json"
        };
        if !fits {
            let wanted = if upload {
                "application/octet-stream (the .plg file)"
            } else {
                "application/json"
            };
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("a change is sent as {wanted}, not {content_type:?}"),
            );
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_compared_without_their_port() {
        assert_eq!(host_name("127.0.0.1:9464"), "127.0.0.1");
        assert_eq!(host_name("[::1]:9464"), "[::1]");
        assert_eq!(host_name("localhost"), "localhost");
    }

    #[test]
    fn tokens_are_long_and_their_id_is_not_the_token() {
        assert!(AdminToken::new("short").is_err());
        let token = AdminToken::generate();
        assert_eq!(token.secret().len(), 64);
        assert!(!token.secret().starts_with(&token.id()));
        assert!(token.matches(token.secret()) && !token.matches("x"));
    }
}
