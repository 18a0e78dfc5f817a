//! What a typed route handler's arguments are made from: path parameters, the query, a JSON
//! body, the headers, the raw body.
//!
//! `#[plugin] mod` reads each argument before the handler runs; one that cannot be read answers
//! 400 with the reason, and the handler is not called.

use std::fmt::Display;
use std::str::FromStr;

use gp_core::http as keys;
use gp_core::Value;
use serde::de::DeserializeOwned;

use crate::{Context, Error, Result};

/// The query string, deserialised into `T`, with the rules of axum-extra's `Query`
/// (serde_html_form): a field missing from the query is `None` for an `Option`, numbers and
/// booleans parse from their text, and a repeated name (`?tag=a&tag=b`) fills a `Vec`.
///
/// ```no_run
/// # use gp_sdk::http::{Json, Query};
/// #[derive(serde::Deserialize)]
/// struct Page {
///     limit: Option<u32>,
/// }
/// // In a `#[plugin] mod`: `/items?limit=10`
/// // #[route(GET, "/items")]
/// fn list(Query(page): Query<Page>) -> Json<Vec<u32>> {
///     Json((0..page.limit.unwrap_or(3)).collect())
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<T>(pub T);

/// A JSON body: as an argument, the request's body deserialised into `T` (400 when it does not
/// fit); as a return value, the response's body serialised from `T`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

/// The request's body as it came, bytes (empty when there is none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body(pub Vec<u8>);

impl Body {
    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.0).map_err(|e| {
            Error::with_status(400, format!("the request body is not UTF-8 text: {e}"))
        })
    }
}

/// An argument of a typed route handler that is read from the request: [`Query`], [`Json`],
/// [`Body`], [`HeaderMap`](http::HeaderMap).
///
/// The error it returns is the call's: set the response (`ctx.reject(400, ...)`) before
/// returning it, as the implementations here do.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read from the request",
    label = "a route handler's argument",
    note = "a route handler takes path parameters by name (`id: u64` for `:id`), and Query<T>, Json<T>, Body, HeaderMap, Request or `&mut Context`"
)]
pub trait FromRequest: Sized {
    /// Reads the argument from the call's request.
    fn from_request(ctx: &mut Context<'_>) -> Result<Self>;
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    fn from_request(ctx: &mut Context<'_>) -> Result<Self> {
        // A call that did not come from a route has no query to read.
        ctx.request()?;
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(Value::Map(query)) = ctx.get(keys::QUERY) {
            for entry in query.iter() {
                for value in strings(entry.1) {
                    pairs.push((entry.0.as_str(), value));
                }
            }
        }
        // The host keeps the query decoded, by name; serde_html_form reads it as text, which
        // is what gives a handler the rules axum-extra's `Query` has.
        let parsed = serde_html_form::to_string(&pairs)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_html_form::from_str::<T>(&text).map_err(|e| e.to_string()));
        parsed.map(Query).map_err(|e| {
            ctx.reject(
                400,
                format!("the query does not fit {}: {e}", short_type_name::<T>()),
            )
        })
    }
}

impl<T: DeserializeOwned> FromRequest for Json<T> {
    fn from_request(ctx: &mut Context<'_>) -> Result<Self> {
        ctx.request_json().map(Json)
    }
}

impl FromRequest for Body {
    fn from_request(ctx: &mut Context<'_>) -> Result<Self> {
        Ok(Body(ctx.request()?.body().to_vec()))
    }
}

impl FromRequest for http::HeaderMap {
    /// Every header the request carried; one whose name or value `http` refuses is left out.
    fn from_request(ctx: &mut Context<'_>) -> Result<Self> {
        ctx.request()?;
        let mut headers = http::HeaderMap::new();
        if let Some(Value::Map(map)) = ctx.get(keys::HEADERS) {
            for entry in map.iter() {
                let Ok(name) = http::HeaderName::from_bytes(entry.0.as_bytes()) else {
                    continue;
                };
                for value in strings(entry.1) {
                    if let Ok(value) = http::HeaderValue::from_str(value) {
                        headers.append(name.clone(), value);
                    }
                }
            }
        }
        Ok(headers)
    }
}

/// The strings in a request map's entry: one string, or a list of them.
fn strings(value: &Value) -> impl Iterator<Item = &str> {
    let list = match value {
        Value::List(list) => list.as_slice(),
        single => std::slice::from_ref(single),
    };
    list.iter().filter_map(Value::as_str)
}

/// The type of a path parameter: anything that parses from text ([`FromStr`]), such as
/// `String`, `u64`, `i32` or `bool`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a path parameter: it does not parse from text",
    label = "read from the route's parameter of this name",
    note = "a path parameter's type implements FromStr (String, u64, i32, ...); if this argument is not a path parameter, take Query<T>, Json<T>, Body, HeaderMap, Request or `&mut Context`"
)]
pub trait PathParam: Sized {
    /// Parses the parameter's text (already percent-decoded).
    fn parse_param(text: &str) -> std::result::Result<Self, String>;
}

impl<T: FromStr> PathParam for T
where
    T::Err: Display,
{
    fn parse_param(text: &str) -> std::result::Result<Self, String> {
        text.parse().map_err(|e: T::Err| e.to_string())
    }
}

/// Path parameter `name` as a `T`; a 400 naming the parameter when it does not parse.
pub(crate) fn path_param<T: PathParam>(ctx: &mut Context<'_>, name: &str) -> Result<T> {
    let text = ctx.request()?.param(name);
    let Some(text) = text else {
        return Err(ctx.reject(400, format!("the request has no path parameter `{name}`")));
    };
    match T::parse_param(text) {
        Ok(value) => Ok(value),
        Err(reason) => {
            let message = format!(
                "path parameter `{name}` is not a valid {}: {text:?}: {reason}",
                short_type_name::<T>()
            );
            Err(ctx.reject(400, message))
        }
    }
}

/// `T`'s name without its module path (`u64`, `Filter`, `Vec<String>`), for messages.
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut short = String::with_capacity(full.len());
    for (i, part) in full.split("::").enumerate() {
        // Keep what follows the last `::` of each path: after a `<` or `, ` a new path starts.
        if i > 0 {
            let start = short.rfind(['<', ' ', '(', '[']).map_or(0, |at| at + 1);
            short.truncate(start);
        }
        short.push_str(part);
    }
    short
}

#[cfg(test)]
mod tests {
    use super::short_type_name;
    use crate::testing::TestContext;

    /// A route's request as `ctx` holds it: the method, and the parameters as the map every
    /// host sets and, when `own_keys`, each under its own key as well (gp-host 0.2.1 on).
    fn request(params: &[(&str, &str)], own_keys: bool) -> TestContext {
        let mut ctx = TestContext::new();
        ctx.set(gp_core::http::METHOD, "GET");
        let mut map = abi_stable::std_types::RHashMap::new();
        for (name, value) in params {
            map.insert((*name).into(), gp_core::Value::from(*value));
            if own_keys {
                ctx.set(gp_core::http::param_key(name), *value);
            }
        }
        ctx.set(gp_core::http::PARAMS, gp_core::Value::Map(map));
        ctx
    }

    #[test]
    fn a_parameter_is_read_from_its_own_key_or_else_from_the_map() {
        for own_keys in [true, false] {
            let mut ctx = request(&[("id", "7"), ("name", "a b")], own_keys);
            ctx.call(|ctx| -> crate::Result {
                let request = ctx.request()?;
                assert_eq!(request.param("id"), Some("7"), "own keys: {own_keys}");
                assert_eq!(request.param("name"), Some("a b"));
                assert_eq!(request.param("other"), None);
                Ok(())
            })
            .unwrap();
        }
    }

    #[test]
    fn a_parameter_under_its_own_key_wins_over_the_map() {
        // A host that sets both always sets the same values; a test that sets them apart
        // shows which one `param` reads.
        let mut ctx = request(&[("id", "7")], false);
        ctx.set(gp_core::http::param_key("id"), "own");
        ctx.call(|ctx| -> crate::Result {
            assert_eq!(ctx.request()?.param("id"), Some("own"));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(short_type_name::<u64>(), "u64");
        assert_eq!(short_type_name::<String>(), "String");
        assert_eq!(
            short_type_name::<Vec<std::collections::HashMap<String, u8>>>(),
            "Vec<HashMap<String, u8>>"
        );
        assert_eq!(short_type_name::<(String, u8)>(), "(String, u8)");
    }
}
