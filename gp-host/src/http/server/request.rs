//! A request turned into a call's context: its id, its body read within the route's limit,
//! and the request under the context keys of [`gp_core::http`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use gp_core::http as keys;
use gp_core::manifest::HttpMethod;
use gp_core::Value;

use super::response::Answer;
use super::Shared;
use crate::http::media_type;
use crate::http::routes::RouteEntry;
use crate::runtime::context::Context;

impl Shared {
    /// The request's id: the client's `x-request-id` if it is a sensible one, else one of
    /// this process's.
    pub(super) fn request_id(&self, headers: &HeaderMap) -> String {
        let given = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                (1..=128).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            });
        match given {
            Some(id) => id.to_owned(),
            None => {
                let n = self.requests.fetch_add(1, Ordering::Relaxed);
                format!("{:08x}-{:08x}", self.id_prefix, n)
            }
        }
    }
}

/// Distinguishes this process's request ids from another's (or a restart's).
pub(super) fn id_prefix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    (nanos as u32) ^ std::process::id().rotate_left(16)
}

/// The manifest's method for an HTTP method, if plugins can declare it.
pub(super) fn http_method(method: &Method) -> Option<HttpMethod> {
    HttpMethod::parse(method.as_str()).ok()
}

/// What the handler knows of a request once its route is found and its body read.
pub(super) struct Incoming<'a> {
    pub(super) parts: &'a Parts,
    pub(super) method: HttpMethod,
    pub(super) path: &'a str,
    pub(super) entry: &'a RouteEntry,
    pub(super) params: Vec<(String, String)>,
    pub(super) id: &'a str,
}

/// The body, bounded by `limit`: refused from its `Content-Length` when that says too much,
/// else cut off while reading; parsed as JSON when its content type says JSON.
pub(super) async fn read_body(
    parts: &Parts,
    body: Body,
    limit: usize,
    entry: &RouteEntry,
    id: &str,
) -> Result<(Bytes, Option<Value>), Box<Answer>> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        Box::new(Answer::gp(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than this route's limit of {limit} bytes"),
            Some(entry),
            id,
        ))
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(error) => {
            let over = std::error::Error::source(&error)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                return Err(too_large());
            }
            return Err(Box::new(Answer::gp(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {error}"),
                Some(entry),
                id,
            )));
        }
    };
    match parse_json(&parts.headers, &body) {
        Ok(json) => Ok((body, json)),
        Err(error) => Err(Box::new(Answer::gp(
            StatusCode::BAD_REQUEST,
            format!("the request body is not valid JSON: {error}"),
            Some(entry),
            id,
        ))),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|t| {
        t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
    })
}

fn parse_json(headers: &HeaderMap, body: &Bytes) -> Result<Option<Value>, serde_json::Error> {
    if body.is_empty() || !is_json(headers) {
        return Ok(None);
    }
    serde_json::from_slice::<serde_json::Value>(body).map(|j| Some(Value::from(j)))
}

/// The call's context: the route's label, the deadline, and the request under the keys of
/// [`gp_core::http`].
pub(super) fn context(
    request: Incoming<'_>,
    body: Bytes,
    json: Option<Value>,
    deadline: Instant,
) -> Context {
    let Incoming {
        parts,
        method,
        path,
        entry,
        params,
        id,
    } = request;
    let remote = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let mut ctx = Context::new().with_label(entry.label.clone());
    ctx.set_deadline(Some(deadline));
    ctx.set(keys::METHOD, method.as_str());
    ctx.set(keys::PATH, path);
    ctx.set(keys::ROUTE, entry.route.as_str());
    ctx.set(keys::PARAMS, string_map(params.into_iter()));
    let query = parts.uri.query().unwrap_or_default();
    ctx.set(
        keys::QUERY,
        list_map(
            form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        ),
    );
    ctx.set(
        keys::HEADERS,
        list_map(parts.headers.iter().map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })),
    );
    ctx.set(keys::BODY, Value::Bytes(body.to_vec().into()));
    if let Some(json) = json {
        ctx.set(keys::JSON, json);
    }
    ctx.set(keys::REMOTE_ADDR, remote);
    ctx.set(keys::REQUEST_ID, id);
    ctx
}

fn string_map(pairs: impl Iterator<Item = (String, String)>) -> Value {
    let mut map = abi_stable::std_types::RHashMap::new();
    for (k, v) in pairs {
        map.insert(k.into(), Value::from(v));
    }
    Value::Map(map)
}

fn list_map(pairs: impl Iterator<Item = (String, String)>) -> Value {
    let mut map: abi_stable::std_types::RHashMap<abi_stable::std_types::RString, Value> =
        abi_stable::std_types::RHashMap::new();
    for (k, v) in pairs {
        let key = abi_stable::std_types::RString::from(k);
        match map.get_mut(&key) {
            Some(Value::List(list)) => list.push(Value::from(v)),
            _ => {
                map.insert(key, Value::List(vec![Value::from(v)].into()));
            }
        }
    }
    Value::Map(map)
}
