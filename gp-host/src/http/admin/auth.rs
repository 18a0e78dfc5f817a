//! Who may use the management API: a bearer token (always, loopback included), a `Host` the
//! operator expects (against DNS rebinding), no foreign `Origin` (against a web page in the
//! operator's own browser), JSON for every write. The token itself is in `token`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AdminShared;

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
}
