//! A call's outcome turned into a response: the status, headers and body the plugin set, or
//! the JSON error gp answers for it (never a host path; the log has the whole error).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use gp_core::http as keys;
use gp_core::Value;

use super::id::RequestId;
use crate::error::Error;
use crate::http::media_type;
use crate::http::routes::RouteEntry;
use crate::runtime::context::Context;
use crate::util::bounded;

/// The longest error message a client is sent; the log has the whole one.
const MAX_CLIENT_MESSAGE: usize = 1024;

/// A call's context back from where it ran, with its outcome (`None`: its route was gone).
/// Both boxed: they travel through the call's task and its output, copied at each step.
pub(super) type Ran = (Box<Context>, Option<Result<(), Box<Error>>>);

/// What a request is answered with, before the request id and metrics are added.
pub(super) struct Answer {
    pub(super) response: Response,
    /// The route the request reached, if it reached one.
    pub(super) route: Option<Arc<RouteEntry>>,
    /// The request was answered already, and counted and logged (by its connection, at its
    /// deadline, while its call ran in its task): this answer is never sent.
    pub(super) sent: bool,
}

impl Answer {
    /// gp's own answer: `{"error", "request_id"}`, with `plugin` and `label` when the request
    /// reached a route.
    pub(super) fn gp(
        status: StatusCode,
        error: String,
        entry: Option<&Arc<RouteEntry>>,
        id: &RequestId,
    ) -> Answer {
        let mut body = serde_json::json!({ "error": error, "request_id": id.as_str() });
        if let Some(entry) = entry {
            body["plugin"] = entry.plugin.as_str().into();
            body["label"] = (*entry.label).into();
        }
        Answer {
            response: (status, axum::Json(body)).into_response(),
            route: entry.cloned(),
            sent: false,
        }
    }

    /// The answer of a request answered already (see `sent`).
    pub(super) fn sent() -> Answer {
        Answer {
            response: Response::default(),
            route: None,
            sent: true,
        }
    }

    /// 504: the route's timeout passed.
    pub(super) fn timed_out(entry: &Arc<RouteEntry>, id: &RequestId, timeout: Duration) -> Answer {
        Answer::gp(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "plugin `{}` did not answer within {} ms",
                entry.plugin,
                timeout.as_millis()
            ),
            Some(entry),
            id,
        )
    }
}

/// `response` as HTTP/1.1 bytes, closing the connection: what a connection writes itself for
/// a request whose call is stuck in the connection's task (gp's own answers only: their body
/// is whole).
pub(super) fn http1(response: Response) -> Vec<u8> {
    let (parts, body) = response.into_parts();
    let body = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(body))
        .and_then(Result::ok)
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let status = parts.status;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH || name == header::CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    out
}

/// What is wrong with the response a plugin set.
#[derive(Debug, thiserror::Error)]
enum InvalidResponse {
    #[error("status {0} is not 100 to 599")]
    Status(i64),
    #[error("{0:?} is not a header name")]
    HeaderName(String),
    #[error("header {name:?} is a {kind}, not a string")]
    HeaderType { name: String, kind: &'static str },
    #[error("header {0:?} has a value that is not allowed in a header")]
    HeaderValue(String),
    #[error(
        "{} is a {kind}, not a map of header names to values",
        keys::RESPONSE_HEADERS
    )]
    Headers { kind: &'static str },
    #[error("{} is a {kind}, not a string", keys::CONTENT_TYPE)]
    ContentType { kind: &'static str },
    #[error("{} holds a value that is not allowed in a header", keys::CONTENT_TYPE)]
    ContentTypeValue,
}

/// The response for a call that ran (or found its route gone).
pub(super) fn respond(
    ctx: &mut Context,
    outcome: Option<Result<(), Box<Error>>>,
    entry: &Arc<RouteEntry>,
    id: &RequestId,
    timeout: Duration,
) -> Answer {
    let chosen_status = ctx.get_own(keys::STATUS).and_then(Value::as_i64);
    let error = match outcome {
        None => {
            return Answer::gp(
                StatusCode::NOT_FOUND,
                format!(
                    "no route for {} {}: its plugin is no longer serving it",
                    entry.method, entry.route
                ),
                None,
                id,
            )
        }
        Some(Ok(())) => None,
        Some(Err(error)) => Some(*error),
    };
    if let Some(error) = error {
        tracing::warn!(target: "gp::http", plugin = entry.plugin, label = &*entry.label, request_id = id.as_str(), "{error}");
        if matches!(error, Error::DeadlineExceeded { .. }) {
            // The plugin noticed its deadline before the timer did: the same answer.
            return Answer::timed_out(entry, id, timeout);
        }
        let plugin_chose = chosen_status.is_some_and(|s| (400..=599).contains(&s));
        if !plugin_chose || !matches!(error, Error::Failed { .. }) {
            let (status, message) = failure(&error);
            return Answer::gp(status, message, Some(entry), id);
        }
    }
    match build_response(ctx, chosen_status) {
        Ok(response) => Answer {
            response,
            route: Some(Arc::clone(entry)),
            sent: false,
        },
        Err(problem) => {
            tracing::warn!(target: "gp::http", plugin = entry.plugin, label = &*entry.label, request_id = id.as_str(), "invalid response: {problem}");
            Answer::gp(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the plugin's response is invalid: {problem}"),
                Some(entry),
                id,
            )
        }
    }
}

/// The status and the message a client gets for a call that failed.
fn failure(error: &Error) -> (StatusCode, String) {
    match error {
        Error::Failed { message, .. } => (
            StatusCode::INTERNAL_SERVER_ERROR,
            bounded(message.clone(), MAX_CLIENT_MESSAGE),
        ),
        Error::Panicked { .. } => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the plugin panicked; the host log has the message".to_owned(),
        ),
        Error::Cancelled { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the call was cancelled".to_owned(),
        ),
        Error::Crashed { .. } => (
            StatusCode::BAD_GATEWAY,
            "the plugin crashed (it runs isolated: the next request starts it again); the host log has the cause".to_owned(),
        ),
        Error::CircuitOpen { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the plugin crashed too often and is failed until it is loaded again".to_owned(),
        ),
        Error::Unloaded { .. } | Error::NotFound { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the plugin was unloaded while answering; retry".to_owned(),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the call failed in the host".to_owned(),
        ),
    }
}

/// The response the plugin set in `ctx`.
fn build_response(ctx: &mut Context, status: Option<i64>) -> Result<Response, InvalidResponse> {
    let body = ctx.remove_own(keys::RESPONSE_BODY);
    let status = match status {
        Some(s) => u16::try_from(s)
            .ok()
            .filter(|s| (100..=599).contains(s))
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or(InvalidResponse::Status(s))?,
        None if body.is_none() => StatusCode::NO_CONTENT,
        None => StatusCode::OK,
    };
    let mut headers = match ctx.remove_own(keys::RESPONSE_HEADERS) {
        None | Some(Value::Null) => HeaderMap::new(),
        Some(Value::Map(map)) => headers(map.iter().map(|entry| (entry.0.as_str(), entry.1)))?,
        Some(other) => return Err(InvalidResponse::Headers { kind: other.kind() }),
    };
    // Whether the body is JSON, when the plugin set the content type as its own key (else
    // `body_response` reads the headers).
    let json_type = match ctx.remove_own(keys::CONTENT_TYPE) {
        None | Some(Value::Null) => None,
        Some(Value::String(value)) => {
            let value = value.as_str();
            if value == JSON {
                // What `respond_json` sets: no copy, no check.
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
                Some(true)
            } else {
                let header =
                    HeaderValue::from_str(value).map_err(|_| InvalidResponse::ContentTypeValue)?;
                headers.insert(header::CONTENT_TYPE, header);
                Some(is_json(media_type(&headers).as_deref()))
            }
        }
        Some(other) => return Err(InvalidResponse::ContentType { kind: other.kind() }),
    };
    let mut response = body_response(body, headers, json_type);
    *response.status_mut() = status;
    Ok(response)
}

/// The headers a plugin set (a map of names to a value or a list of values), without the
/// ones it may not set.
fn headers<'v>(
    set: impl Iterator<Item = (&'v str, &'v Value)>,
) -> Result<HeaderMap, InvalidResponse> {
    let mut headers = HeaderMap::new();
    for (name, value) in set {
        // `from_bytes` lowercases the name as it checks it.
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| InvalidResponse::HeaderName(name.to_owned()))?;
        if dropped_header(header_name.as_str()) {
            continue;
        }
        let values: &[Value] = match value {
            Value::List(list) => list.as_slice(),
            other => std::slice::from_ref(other),
        };
        for value in values {
            let value = match value {
                Value::String(s) => HeaderValue::from_str(s.as_str()),
                Value::Int(i) => HeaderValue::from_str(&i.to_string()),
                other => {
                    return Err(InvalidResponse::HeaderType {
                        name: name.to_owned(),
                        kind: other.kind(),
                    })
                }
            }
            .map_err(|_| InvalidResponse::HeaderValue(name.to_owned()))?;
            headers.append(header_name.clone(), value);
        }
    }
    Ok(headers)
}

/// The body the plugin set, with the content type it implies unless the plugin gave one: a
/// string as `text/plain`, bytes as `application/octet-stream`, anything else as JSON (and
/// anything at all as JSON under a JSON content type).
///
/// `json_type`: whether the content type the plugin set is JSON, if the caller knows it has
/// one (else read from `headers`).
fn body_response(body: Option<Value>, mut headers: HeaderMap, json_type: Option<bool>) -> Response {
    let typed = json_type.is_some();
    let json_type = json_type.unwrap_or_else(|| is_json(media_type(&headers).as_deref()));
    let (default_type, bytes): (&str, Vec<u8>) = match body {
        None | Some(Value::Null) if !json_type => ("", Vec::new()),
        Some(Value::String(s)) if !json_type => {
            ("text/plain; charset=utf-8", s.into_bytes().into_vec())
        }
        Some(Value::Bytes(b)) => ("application/octet-stream", b.into_vec()),
        Some(value) => (
            JSON,
            serde_json::to_vec(&value.to_json()).unwrap_or_default(),
        ),
        None => (JSON, b"null".to_vec()),
    };
    if !default_type.is_empty() && !typed && !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(default_type));
    }
    let mut response = Response::new(Body::from(bytes));
    *response.headers_mut() = headers;
    response
}

/// The media type gp and `respond_json` set.
const JSON: &str = "application/json";

/// Whether `media_type` (lower-case, no parameters) is JSON.
fn is_json(media_type: Option<&str>) -> bool {
    media_type.is_some_and(|t| t == JSON || t.ends_with("+json"))
}

/// Headers a plugin may not set: hop-by-hop ones (RFC 9110 §7.6.1) and the length, which
/// the server computes.
fn dropped_header(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}
