//! A request turned into a call's context: its body read within the route's limit, the body
//! timeout and the server's budget for bodies in flight, and the request under the context
//! keys of [`gp_core::http`].

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use gp_core::http as keys;
use gp_core::manifest::HttpMethod;
use gp_core::Value;
use http_body_util::BodyExt;
use prometheus_client::metrics::gauge::Gauge;

use super::id::RequestId;
use super::response::Answer;
use super::Shared;
use crate::http::media_type;
use crate::http::routes::{Params, RouteEntry};
use crate::runtime::context::Context;
use crate::runtime::values::Deferred;

/// The manifest's method for an HTTP method, if plugins can declare it.
pub(super) fn http_method(method: &Method) -> Option<HttpMethod> {
    HttpMethod::parse(method.as_str()).ok()
}

/// What the handler knows of a request once its route is found and its body read.
pub(super) struct Incoming {
    pub(super) parts: Parts,
    pub(super) method: HttpMethod,
    pub(super) entry: Arc<RouteEntry>,
    pub(super) params: Params,
    /// The client's address, when the server knows it.
    pub(super) peer: Option<SocketAddr>,
    pub(super) id: RequestId,
}

/// The bytes of request bodies a server holds, against its budget.
pub(super) struct BodyBudget {
    budget: u64,
    held: Gauge<u64, AtomicU64>,
}

impl BodyBudget {
    pub(super) fn new(budget: usize) -> BodyBudget {
        BodyBudget {
            budget: budget as u64,
            held: Gauge::default(),
        }
    }

    pub(super) fn in_flight(&self) -> u64 {
        self.held.get()
    }

    pub(super) fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry
            .sub_registry_with_prefix("gp_http")
            .register_with_unit(
                "request_body_in_flight",
                "Request bodies the plugin server holds now, read or being read",
                prometheus_client::registry::Unit::Bytes,
                self.held.clone(),
            );
    }
}

/// Bytes of a request's body counted against the budget; given back when dropped (once the
/// request is answered).
#[must_use = "the bytes are given back when this is dropped"]
pub(super) struct Reserved<'a> {
    budget: &'a BodyBudget,
    bytes: u64,
}

impl Reserved<'_> {
    /// Counts the body as `total` bytes, if the budget has room for the difference.
    fn grow_to(&mut self, total: u64) -> Result<(), OverBudget> {
        let more = total.saturating_sub(self.bytes);
        if more == 0 {
            return Ok(());
        }
        self.budget
            .held
            .inner()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more).filter(|n| *n <= self.budget.budget)
            })
            .map_err(|_| OverBudget)?;
        self.bytes = total;
        Ok(())
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.budget.held.dec_by(self.bytes);
    }
}

struct OverBudget;

/// Why a body was not read.
enum Unread {
    TooLarge,
    OverBudget,
    Failed(axum::Error),
}

impl Shared {
    /// The body, bounded by `limit`, the server's body timeout and its budget for bodies in
    /// flight: refused from its `Content-Length` when that says too much, else cut off while
    /// reading; parsed as JSON when its content type says JSON. The [`Reserved`] bytes are
    /// counted until it is dropped.
    pub(super) async fn read_body(
        &self,
        parts: &Parts,
        body: Body,
        limit: usize,
        entry: &Arc<RouteEntry>,
        id: &RequestId,
    ) -> Result<(Bytes, Option<Value>, Reserved<'_>), Box<Answer>> {
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let refuse =
            |status, message: String| Box::new(Answer::gp(status, message, Some(entry), id));
        let too_large = || {
            refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than this route's limit of {limit} bytes"),
            )
        };
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut reserved = Reserved {
            budget: &self.bodies,
            bytes: 0,
        };
        let timeout = self.config.body_timeout;
        if axum::body::HttpBody::is_end_stream(&body) {
            // No body (a GET, usually): nothing to read, time or count.
            return Ok((Bytes::new(), None, reserved));
        }
        // Boxed: its state would make every request's future larger, bodiless ones too.
        let read = Box::pin(tokio::time::timeout(
            timeout,
            read_within(body, limit, declared, &mut reserved),
        ));
        let body = match read.await {
            Ok(Ok(body)) => body,
            Ok(Err(Unread::TooLarge)) => return Err(too_large()),
            Ok(Err(Unread::OverBudget)) => {
                let mut answer = refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "the server holds as many request bodies as it may ({} bytes); retry shortly",
                        self.bodies.budget
                    ),
                );
                answer
                    .response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return Err(answer);
            }
            Ok(Err(Unread::Failed(error))) => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    format!("the request body could not be read: {error}"),
                ))
            }
            Err(_elapsed) => {
                return Err(refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body was not received within {} ms",
                        timeout.as_millis()
                    ),
                ))
            }
        };
        match parse_json(&parts.headers, &body) {
            Ok(json) => Ok((body, json, reserved)),
            Err(error) => Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("the request body is not valid JSON: {error}"),
            )),
        }
    }
}

/// Reads `body` up to `limit` bytes, counting it in `reserved` (its declared length at once,
/// else as it arrives).
async fn read_within(
    body: Body,
    limit: usize,
    declared: Option<u64>,
    reserved: &mut Reserved<'_>,
) -> Result<Bytes, Unread> {
    if let Some(declared) = declared {
        reserved
            .grow_to(declared)
            .map_err(|OverBudget| Unread::OverBudget)?;
    }
    let mut body = body;
    let mut read = Vec::with_capacity(declared.unwrap_or(0).min(limit as u64) as usize);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(Unread::Failed)?.into_data() else {
            continue;
        };
        if read.len() + data.len() > limit {
            return Err(Unread::TooLarge);
        }
        reserved
            .grow_to((read.len() + data.len()) as u64)
            .map_err(|OverBudget| Unread::OverBudget)?;
        read.extend_from_slice(&data);
    }
    Ok(Bytes::from(read))
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
/// [`gp_core::http`], each made into a value only when the call first reads it (a plugin
/// that reads a path parameter pays for no header map): see [`RequestValues`].
pub(super) fn context(
    request: Incoming,
    body: Bytes,
    json: Option<Value>,
    deadline: Instant,
) -> Box<Context> {
    // Room for the method, the parsed body and the response's three keys; boxed, since it
    // travels through the call's task and back.
    let mut ctx =
        Box::new(Context::with_capacity(5).with_shared_label(Arc::clone(&request.entry.label)));
    ctx.set_deadline(Some(deadline));
    // Set, not deferred: every call through gp-sdk reads it (`ctx.request()`), and a value in
    // the table is read by the plugin itself, without a call into the host (a few bytes
    // allocated here, against the call into the host and the deferred value's making).
    ctx.add(keys::METHOD, request.method.as_str());
    // Each path parameter under a key of its own, also set: a call that reads one (most do)
    // finds it in the table, where the map of them (deferred, for plugins built before)
    // costs building and hashing an `RHashMap` and a call into the host.
    for (name, value) in request
        .params
        .iter(&request.entry, request.parts.uri.path())
    {
        ctx.add(keys::param_key(name), value.as_ref());
    }
    if let Some(json) = json {
        // Parsed already (to answer 400 before the call): moved in, not deferred.
        ctx.add(keys::JSON, json);
    }
    // None of the keys above is one the request offers deferred.
    ctx.defer(RequestValues { request, body });
    ctx
}

/// The path of the request a call's context was made from (see [`context`]); made into its
/// value now if the call has not read it yet.
pub(super) fn path(ctx: &Context) -> Option<&str> {
    ctx.get(keys::PATH).and_then(Value::as_str)
}

/// A request as the deferred values of its call's context.
struct RequestValues {
    request: Incoming,
    body: Bytes,
}

/// The keys [`RequestValues`] offers, in the order `make` knows them.
const REQUEST_KEYS: &[&str] = &[
    keys::PATH,
    keys::ROUTE,
    keys::PARAMS,
    keys::QUERY,
    keys::HEADERS,
    keys::BODY,
    keys::REMOTE_ADDR,
    keys::REQUEST_ID,
];

impl Deferred for RequestValues {
    fn keys(&self) -> &'static [&'static str] {
        REQUEST_KEYS
    }

    fn make(&self, index: usize) -> Option<Value> {
        let request = &self.request;
        let parts = &request.parts;
        Some(match REQUEST_KEYS[index] {
            keys::PATH => parts.uri.path().into(),
            keys::ROUTE => request.entry.route.as_str().into(),
            keys::PARAMS => string_map(request.params.iter(&request.entry, parts.uri.path())),
            keys::QUERY => {
                let query = parts.uri.query().unwrap_or_default();
                list_map(form_urlencoded::parse(query.as_bytes()))
            }
            keys::HEADERS => list_map(parts.headers.iter().map(|(name, value)| {
                (
                    name.as_str().into(),
                    String::from_utf8_lossy(value.as_bytes()),
                )
            })),
            keys::BODY => Value::Bytes(self.body.to_vec().into()),
            keys::REMOTE_ADDR => request.peer.map(|p| address(&p)).unwrap_or_default().into(),
            keys::REQUEST_ID => request.id.as_str().into(),
            _ => return None,
        })
    }
}

/// `addr` as text, as `Display` writes it; an IPv4 one without the formatting machinery
/// (which cost more than the rest of the context).
fn address(addr: &SocketAddr) -> String {
    let SocketAddr::V4(v4) = addr else {
        return addr.to_string();
    };
    let mut digits = itoa::Buffer::new();
    let mut text = String::with_capacity(21);
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(digits.format(octet));
    }
    text.push(':');
    text.push_str(digits.format(v4.port()));
    text
}

fn string_map<'a>(pairs: impl Iterator<Item = (&'a str, Cow<'a, str>)>) -> Value {
    let mut map = abi_stable::std_types::RHashMap::new();
    for (k, v) in pairs {
        map.insert(k.into(), Value::from(v.as_ref()));
    }
    Value::Map(map)
}

fn list_map<'a>(pairs: impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)>) -> Value {
    let mut map: abi_stable::std_types::RHashMap<abi_stable::std_types::RString, Value> =
        abi_stable::std_types::RHashMap::new();
    for (k, v) in pairs {
        let key = abi_stable::std_types::RString::from(k.as_ref());
        let value = Value::from(v.as_ref());
        match map.get_mut(&key) {
            Some(Value::List(list)) => list.push(value),
            _ => {
                map.insert(key, Value::List(vec![value].into()));
            }
        }
    }
    Value::Map(map)
}

#[cfg(test)]
mod tests {
    use super::address;
    use std::net::SocketAddr;

    #[test]
    fn an_address_reads_as_display_writes_it() {
        for text in [
            "127.0.0.1:8080",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.0.12.3:9",
            "[::1]:443",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(address(&addr), addr.to_string());
        }
    }
}
