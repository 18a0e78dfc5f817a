//! Serving HTTP routes: the request a route's call carries, and the response a plugin sets.
//!
//! A plugin that declares routes (`#[plugin_entry(route(GET, "/items/:id", label =
//! "items.get"))]`) is called once per request, with the route's label as the call's label:
//!
//! ```no_run
//! use gp_sdk::{plugin_entry, Context, Result};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize, Serialize)]
//! struct Item {
//!     name: String,
//! }
//!
//! #[plugin_entry(
//!     route(GET, "/items/:id", label = "items.get"),
//!     route(POST, "/items", label = "items.create"),
//! )]
//! fn execute(ctx: &mut Context) -> Result {
//!     match ctx.label() {
//!         Some("items.get") => {
//!             let id = ctx.request()?.param("id").unwrap_or_default().to_owned();
//!             ctx.respond_json(&serde_json::json!({ "id": id }))
//!         }
//!         Some("items.create") => {
//!             let item: Item = ctx.request_json()?; // 400 if the body does not fit
//!             ctx.respond(201)?;
//!             ctx.respond_json(&item)
//!         }
//!         _ => Err(ctx.reject(404, "no such route")),
//!     }
//! }
//! ```
//!
//! That is the low-level form. In the typed form, each route has its own handler in a
//! [`#[plugin] mod`](crate::plugin), which reads its arguments from the request with the
//! extractors here ([`Query`], [`Json`], [`Body`], [`HeaderMap`], path parameters by name) and
//! returns an [`IntoResponse`].
//!
//! The context keys behind these helpers are listed in [`gp_core::http`]; what the host does
//! with each response (content types, 204, error statuses) is in gp-host's `http` module.

mod extract;
mod respond;

pub(crate) use extract::{path_param, short_type_name};
pub use extract::{Body, FromRequest, Json, PathParam, Query};
pub use http::HeaderMap;
pub use respond::{IntoErrorResponse, IntoResponse, Response, StatusCode};

use gp_core::http as keys;
use gp_core::Value;
use serde::{de::DeserializeOwned, Serialize};

use crate::{Context, Error, Result};

type Map = abi_stable::std_types::RHashMap<abi_stable::std_types::RString, Value>;

/// The HTTP request a call serves, borrowed from the call's context (no copies).
///
/// Get it with [`Context::request`]. Each accessor reads its own key when called, so a
/// plugin pays only for the parts of the request it looks at.
pub struct Request<'c> {
    ctx: &'c (dyn Lookup + 'c),
    method: &'c str,
}

/// Reads a context value, for [`Request`] (which cannot name the context's own lifetime).
trait Lookup {
    fn value(&self, key: &str) -> Option<&Value>;

    /// Path parameter `name` under its own key, if the host set it.
    fn param(&self, name: &str) -> Option<&Value>;
}

impl Lookup for Context<'_> {
    fn value(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }

    fn param(&self, name: &str) -> Option<&Value> {
        self.own_param(name)
    }
}

impl<'c> Request<'c> {
    fn string(&self, key: &str) -> &'c str {
        self.ctx
            .value(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn map(&self, key: &str) -> Option<&'c Map> {
        match self.ctx.value(key) {
            Some(Value::Map(map)) => Some(map),
            _ => None,
        }
    }
}

fn list<'c>(map: Option<&'c Map>, name: &str) -> impl Iterator<Item = &'c str> {
    let values = map.and_then(|m| m.get(name)).and_then(|v| match v {
        Value::List(list) => Some(list.as_slice()),
        _ => None,
    });
    values.unwrap_or_default().iter().filter_map(Value::as_str)
}

impl<'c> Request<'c> {
    /// The method: `GET`, `POST`, ... (`HEAD` when a `GET` route answers a `HEAD` request).
    pub fn method(&self) -> &'c str {
        self.method
    }

    /// The path as requested (percent-encoded, without the query).
    pub fn path(&self) -> &'c str {
        self.string(keys::PATH)
    }

    /// The route that matched, as the plugin declared it (`/items/:id`).
    pub fn route(&self) -> &'c str {
        self.string(keys::ROUTE)
    }

    /// The path parameter `name` (percent-decoded), such as `id` for `/items/:id`.
    pub fn param(&self, name: &str) -> Option<&'c str> {
        if let Some(value) = self.ctx.param(name) {
            return value.as_str();
        }
        self.map(keys::PARAMS)?.get(name)?.as_str()
    }

    /// The first value of query parameter `name` (`?name=value`), decoded.
    pub fn query(&self, name: &str) -> Option<&'c str> {
        list(self.map(keys::QUERY), name).next()
    }

    /// Every value of query parameter `name`, in the order they were sent.
    pub fn query_all(&self, name: &str) -> Vec<&'c str> {
        list(self.map(keys::QUERY), name).collect()
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&'c str> {
        list(self.map(keys::HEADERS), &name.to_ascii_lowercase()).next()
    }

    /// Every value of header `name` (any case).
    pub fn header_all(&self, name: &str) -> Vec<&'c str> {
        list(self.map(keys::HEADERS), &name.to_ascii_lowercase()).collect()
    }

    /// The body's bytes (empty when there is none).
    pub fn body(&self) -> &'c [u8] {
        self.ctx
            .value(keys::BODY)
            .and_then(Value::as_bytes)
            .unwrap_or_default()
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&'c str> {
        std::str::from_utf8(self.body())
            .map_err(|e| Error::msg(format!("the request body is not UTF-8 text: {e}")))
    }

    /// The body, parsed as JSON into `T`. The host parsed it already when the content type
    /// is JSON (and answered 400 itself if it was malformed); otherwise the bytes are parsed.
    /// [`Context::request_json`] also answers 400 when the body does not fit `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let parsed = match self.ctx.value(keys::JSON) {
            Some(value) => serde_json::from_value(value.to_json()),
            None => match self.body() {
                [] => return Err(Error::msg("the request has no body: send a JSON document")),
                body => serde_json::from_slice(body),
            },
        };
        parsed.map_err(|e| {
            Error::msg(format!(
                "the request body does not fit {}: {e}",
                short_type_name::<T>()
            ))
        })
    }

    /// The client's address (`ip:port`) as the server's socket sees it.
    pub fn remote_addr(&self) -> &'c str {
        self.string(keys::REMOTE_ADDR)
    }

    /// The request id, which the host also sends back as `x-request-id`.
    pub fn id(&self) -> &'c str {
        self.string(keys::REQUEST_ID)
    }
}

impl<'a> Context<'a> {
    /// The HTTP request this call serves; an error if the call did not come from a route.
    pub fn request(&self) -> Result<Request<'_>> {
        let Some(method) = self.get_str(keys::METHOD) else {
            return Err(Error::msg(
                "this call did not come from an HTTP route (the context has no http.request.method)",
            ));
        };
        Ok(Request { ctx: self, method })
    }

    /// The request's JSON body as a `T`; when it does not fit, sets the response to 400 with
    /// the reason and returns the error, so `?` ends the call with a 400.
    pub fn request_json<T: DeserializeOwned>(&mut self) -> Result<T> {
        let parsed = self.request()?.json();
        parsed.map_err(|e| self.reject(400, e))
    }

    /// Sets the response's status (100–599; the default is 200, or 204 without a body).
    pub fn respond(&mut self, status: u16) -> Result<()> {
        if !(100..=599).contains(&status) {
            return Err(Error::msg(format!(
                "{status} is not an HTTP status: use 100 to 599"
            )));
        }
        self.set(keys::STATUS, i64::from(status));
        Ok(())
    }

    /// Sets the response's body to `body` as JSON (`content-type: application/json`).
    ///
    /// The body is serialised here, once, and handed to the host as bytes it sends as they
    /// are (rather than as a tree of values the host serialises again).
    pub fn respond_json<T: Serialize + ?Sized>(&mut self, body: &T) -> Result<()> {
        let json = serde_json::to_vec(body)
            .map_err(|e| Error::msg(format!("cannot send the response as JSON: {e}")))?;
        self.set_header("content-type", "application/json");
        self.set(keys::RESPONSE_BODY, Value::Bytes(json.into()));
        Ok(())
    }

    /// Sets the response's body to `body` (`content-type: text/plain; charset=utf-8` unless
    /// a content type was set).
    pub fn respond_text(&mut self, body: impl Into<String>) {
        self.set(keys::RESPONSE_BODY, body.into());
    }

    /// Sets the response's body to `body` (`content-type: application/octet-stream` unless a
    /// content type was set).
    pub fn respond_bytes(&mut self, body: impl Into<Vec<u8>>) {
        self.set(keys::RESPONSE_BODY, body.into());
    }

    /// Adds a response header; setting a name again adds another value (`content-type` is
    /// replaced instead). `content-length` and hop-by-hop headers are dropped by the host.
    ///
    /// Under a host built against gp-core 0.1.3 or later, `content-type` is stored as one
    /// string under `http.response.content_type` rather than in the map of headers, which
    /// costs a map built and hashed for one entry (most responses set no other header).
    pub fn set_header(&mut self, name: &str, value: &str) {
        if name.eq_ignore_ascii_case("content-type") && self.host_reads_0_1_3_keys() {
            self.set(keys::CONTENT_TYPE, value);
            return;
        }
        let name = name.to_ascii_lowercase();
        let mut headers = match self.remove(keys::RESPONSE_HEADERS) {
            Some(Value::Map(map)) => map,
            _ => Default::default(),
        };
        let key = abi_stable::std_types::RString::from(name.as_str());
        let value = Value::from(value);
        let entry = match headers.remove(&key).into_option() {
            Some(Value::List(mut list)) if name != "content-type" => {
                list.push(value);
                Value::List(list)
            }
            Some(Value::String(first)) if name != "content-type" => {
                Value::List(vec![Value::String(first), value].into())
            }
            _ => value,
        };
        headers.insert(key, entry);
        self.set(keys::RESPONSE_HEADERS, Value::Map(headers));
    }

    /// Answers with `status` and `{"error": message}`, and returns the error for the call to
    /// return: `return Err(ctx.reject(404, "no item 7"))`. The host sends the plugin's own
    /// 4xx or 5xx response rather than its generic 500.
    pub fn reject(&mut self, status: u16, message: impl std::fmt::Display) -> Error {
        let message = message.to_string();
        let status = if (400..=599).contains(&status) {
            status
        } else {
            500
        };
        // Cannot fail: 400–599 is a status and a JSON object always serialises.
        let _ = self.respond(status);
        let _ = self.respond_json(&serde_json::json!({ "error": message }));
        Error::with_status(status, message)
    }
}
