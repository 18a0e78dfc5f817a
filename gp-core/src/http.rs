//! The context keys of an HTTP call: how a request reaches a plugin and how its response
//! comes back.
//!
//! When a host serves a plugin's `http_services` routes, each request becomes one call whose
//! label is the route's label and whose context holds the request under the keys below. The
//! plugin answers by setting the response keys. Plugin authors use gp-sdk's typed helpers
//! (`ctx.request()?`, `ctx.respond_json(..)`) rather than these strings; they are here so the
//! host and the SDK agree on them, and for plugins that read the context directly.
//!
//! | key | value | |
//! |---|---|---|
//! | `http.request.method` | string | `GET`, `POST`, ... (`HEAD` when a `GET` route answers a `HEAD`) |
//! | `http.request.path` | string | the path as requested, percent-encoded |
//! | `http.request.route` | string | the matched route as declared, such as `/api/items/:id` |
//! | `http.request.params` | map: name → string | path parameters, percent-decoded |
//! | `http.request.param.` + name | string | each path parameter under a key of its own, as in `http.request.params` (set by gp-host 0.2.1 and later, in the table a plugin reads itself: gp-sdk's `param(name)` reads it first, with no map built or hashed) |
//! | `http.request.query` | map: name → list of strings | query parameters, decoded; repeated keys keep every value in order |
//! | `http.request.headers` | map: lower-case name → list of strings | request headers |
//! | `http.request.body` | bytes | the body (empty when there is none) |
//! | `http.request.json` | any | the body parsed, when the content type is JSON (`application/json`, `*+json`) and the body is not empty |
//! | `http.request.remote_addr` | string | the client's address, `ip:port`, as the socket sees it |
//! | `http.request.id` | string | the request id, also sent back as `x-request-id` |
//! | `http.response.status` | int | 100–599; default 200, or 204 without a body |
//! | `http.response.headers` | map: name → string or list of strings | response headers |
//! | `http.response.content_type` | string | the response's content type, in place of a `content-type` in `http.response.headers` (read by hosts built against gp-core 0.1.3 or later; gp-sdk's `set_header("content-type", ..)` and `respond_json` store it here under them) |
//! | `http.response.body` | any | a string is sent as `text/plain`, bytes as `application/octet-stream`, anything else as JSON |

/// The request's method.
pub const METHOD: &str = "http.request.method";
/// The requested path, percent-encoded, without the query.
pub const PATH: &str = "http.request.path";
/// The matched route, as the plugin declared it.
pub const ROUTE: &str = "http.request.route";
/// The path parameters: a map from name to (percent-decoded) string.
pub const PARAMS: &str = "http.request.params";
/// What the key of each path parameter starts with: `http.request.param.id` holds the
/// parameter `id`, percent-decoded (see [`param_key_is`]). A host that sets these keys
/// (gp-host 0.2.1 and later) sets them before the call, never made on first read: a table
/// that holds values but not this key says the host set none (gp-sdk then reads
/// [`PARAMS`]).
pub const PARAM: &str = "http.request.param.";

/// The key of path parameter `name`: [`PARAM`] followed by `name`.
pub fn param_key(name: &str) -> String {
    let mut key = String::with_capacity(PARAM.len() + name.len());
    key.push_str(PARAM);
    key.push_str(name);
    key
}

/// Whether `key` is the key of path parameter `name` ([`PARAM`] followed by `name`), without
/// building the key.
#[inline]
pub fn param_key_is(key: &str, name: &str) -> bool {
    key.len() == PARAM.len() + name.len()
        && key.as_bytes()[PARAM.len()..] == *name.as_bytes()
        && key.as_bytes()[..PARAM.len()] == *PARAM.as_bytes()
}

/// The query parameters: a map from name to a list of strings.
pub const QUERY: &str = "http.request.query";
/// The request headers: a map from lower-case name to a list of strings.
pub const HEADERS: &str = "http.request.headers";
/// The request body, as bytes.
pub const BODY: &str = "http.request.body";
/// The request body parsed as JSON, when its content type is JSON.
pub const JSON: &str = "http.request.json";
/// The client's address.
pub const REMOTE_ADDR: &str = "http.request.remote_addr";
/// The request id.
pub const REQUEST_ID: &str = "http.request.id";
/// The response status the plugin chose.
pub const STATUS: &str = "http.response.status";
/// The response headers the plugin chose.
pub const RESPONSE_HEADERS: &str = "http.response.headers";
/// The response body the plugin chose.
pub const RESPONSE_BODY: &str = "http.response.body";
/// The response's content type the plugin chose, one string: what `set_header("content-type",
/// ..)` and `respond_json` store under a host built against gp-core 0.1.3 or later (which
/// reads it), rather than a map of headers built for one entry.
pub const CONTENT_TYPE: &str = "http.response.content_type";

#[cfg(test)]
mod tests {
    use super::{param_key, param_key_is};

    #[test]
    fn a_parameter_key_is_the_prefix_and_the_name_exactly() {
        assert!(param_key_is("http.request.param.id", "id"));
        assert!(!param_key_is("http.request.param.id", "i"));
        assert!(!param_key_is("http.request.param.id2", "id"));
        assert!(!param_key_is("http.request.params", "s"));
        assert!(!param_key_is("http.response.param.id", "id"));
        assert!(param_key_is("http.request.param.", ""));
        assert_eq!(param_key("id"), "http.request.param.id");
        assert!(param_key_is(&param_key("id"), "id"));
    }
}
