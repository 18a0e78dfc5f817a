//! The route grammar: a route path read into [`Segment`]s, in the syntax of its [`HttpDriver`].
//!
//! Separate from the model because the host's router reads routes with it too ([`parse_route`]
//! is how a route becomes a matchit path), and because the grammar is the largest single rule.

use super::error::ManifestError;
use super::HttpDriver;

/// The path prefix reserved for gp's own endpoints on the listener that serves plugin routes.
pub const RESERVED_PREFIX: &str = "/-/";

/// One segment of a route path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    /// A literal segment.
    Literal(&'a str),
    /// A parameter (`:id` or `{id}`).
    Param(&'a str),
    /// A parameter whose value must have a type (beego's `:id:int`, `:id:string`).
    Typed(&'a str, ParamType),
    /// A catch-all parameter, last only (`*rest` or `{*rest}`; beego's bare `*` is `splat`).
    CatchAll(&'a str),
}

/// The type a beego-style typed parameter requires of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    /// `:id:int`: ASCII digits, at least one.
    Int,
    /// `:id:string`: letters, digits and `_`, at least one (beego's `[\w]+`).
    Word,
}

impl ParamType {
    /// Whether `value` (percent-decoded) fits the type.
    pub fn accepts(self, value: &str) -> bool {
        !value.is_empty()
            && match self {
                ParamType::Int => value.bytes().all(|b| b.is_ascii_digit()),
                ParamType::Word => value.chars().all(|c| c.is_alphanumeric() || c == '_'),
            }
    }
}

/// Parses a route path into its segments, in the syntax of `driver`.
///
/// Both drivers read `:id` and `{id}` parameters and `*rest` and `{*rest}` catch-alls (last
/// segment only). [`HttpDriver::Beego`] also reads `:id:int` and `:id:string`, and a bare `*`
/// as a catch-all named `splat`, as beego does; beego's regular-expression parameters
/// (`:id([0-9]+)`) and `*.*` are refused with a message saying what to write instead. Routes
/// under [`RESERVED_PREFIX`] are refused.
// Long: about 100 lines on purpose: the `if` chain is the grammar, one branch per form a segment may
// take, and the order they are tried in decides between them (`{*x}` before `{x}`, `*` and
// `*.*` before `*rest`); split over several functions, that order would be hard to see.
pub fn parse_route(route: &str, driver: HttpDriver) -> Result<Vec<Segment<'_>>, ManifestError> {
    let fail = |reason: &str| ManifestError::InvalidRoute {
        route: route.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(rest) = route.strip_prefix('/') else {
        return Err(fail("a route starts with '/'"));
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    if route == "/-" || route.starts_with(RESERVED_PREFIX) {
        return Err(fail(
            "paths under /-/ are reserved for gp's own endpoints (such as /-/healthz): choose another path",
        ));
    }
    let beego = driver == HttpDriver::Beego;
    let parts: Vec<&str> = rest.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let braced = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
        let segment = if let Some(name) = braced.and_then(|p| p.strip_prefix('*')) {
            Segment::CatchAll(name)
        } else if let Some(name) = braced {
            Segment::Param(name)
        } else if let Some(param) = part.strip_prefix(':') {
            if let Some(at) = param.find('(') {
                return Err(fail(&format!(
                    "regular-expression parameters ({part:?}) are not supported: write `:{}:int` or `:{}:string`, or `:{}` and check the value in the plugin",
                    &param[..at], &param[..at], &param[..at]
                )));
            }
            match param.split_once(':') {
                None => Segment::Param(param),
                Some((name, kind)) => {
                    let kind = match kind {
                        "int" => ParamType::Int,
                        "string" => ParamType::Word,
                        other => {
                            return Err(fail(&format!(
                                "parameter type {other:?} is not one gp knows: use `:{name}:int` or `:{name}:string`"
                            )))
                        }
                    };
                    if !beego {
                        return Err(fail(&format!(
                            "typed parameter {part:?} is beego syntax: set http_services.driver to \"beego\", or write `:{name}` and check the value in the plugin"
                        )));
                    }
                    Segment::Typed(name, kind)
                }
            }
        } else if *part == "*" && beego {
            Segment::CatchAll("splat")
        } else if *part == "*.*" {
            return Err(fail(
                "beego's `*.*` (path and extension) is not supported: use `*` and split the extension in the plugin",
            ));
        } else if let Some(name) = part.strip_prefix('*') {
            Segment::CatchAll(name)
        } else if part.is_empty() {
            if last {
                return Err(fail("remove the trailing '/'"));
            }
            return Err(fail("empty segment ('//')"));
        } else if let Some(c) = part
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~!$&'()+,;=@".contains(*c)))
        {
            return Err(fail(&format!(
                "character {c:?} is not allowed in a path segment"
            )));
        } else {
            Segment::Literal(part)
        };
        match segment {
            Segment::Param(name) | Segment::Typed(name, _) | Segment::CatchAll(name) => {
                let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(fail(&format!(
                        "parameter {part:?} needs a name of letters, digits and '_'"
                    )));
                }
                let taken = segments.iter().any(|s| {
                    matches!(s, Segment::Param(n) | Segment::Typed(n, _) | Segment::CatchAll(n) if *n == name)
                });
                if taken {
                    return Err(fail(&format!("parameter {name:?} appears twice")));
                }
                if matches!(segment, Segment::CatchAll(_)) && !last {
                    return Err(fail(&format!(
                        "catch-all parameter {part:?} must be the last segment"
                    )));
                }
            }
            Segment::Literal(_) => {}
        }
        segments.push(segment);
    }
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::fixture::{err, with};

    #[test]
    fn checks_routes() {
        let bad = |r: &str| parse_route(r, HttpDriver::Axum).unwrap_err().to_string();
        assert_eq!(
            bad("api/x"),
            "invalid route \"api/x\": a route starts with '/'"
        );
        assert_eq!(
            bad("/a//b"),
            "invalid route \"/a//b\": empty segment ('//')"
        );
        assert_eq!(
            bad("/a/:id/:id"),
            "invalid route \"/a/:id/:id\": parameter \"id\" appears twice"
        );
        assert_eq!(
            bad("/a/*rest/b"),
            "invalid route \"/a/*rest/b\": catch-all parameter \"*rest\" must be the last segment"
        );
        assert_eq!(
            bad("/a b"),
            "invalid route \"/a b\": character ' ' is not allowed in a path segment"
        );
        assert_eq!(
            parse_route("/a/{id}/*rest", HttpDriver::Axum).unwrap(),
            vec![
                Segment::Literal("a"),
                Segment::Param("id"),
                Segment::CatchAll("rest")
            ]
        );
        assert_eq!(
            err(&with("/http_services/routes", "[]")),
            "http_services.routes is empty: declare at least one route or remove http_services"
        );
        let dup = with(
            "/http_services/routes/1",
            r#"{"route": "/api/plugin/sample/:id", "method": "GET", "label": "x"}"#,
        );
        assert_eq!(
            err(&dup),
            "route GET \"/api/plugin/sample/:id\" is declared twice"
        );
    }

    #[test]
    fn reads_beego_routes_and_refuses_what_it_does_not_support() {
        assert_eq!(
            parse_route("/a/:id:int/:name:string/*", HttpDriver::Beego).unwrap(),
            vec![
                Segment::Literal("a"),
                Segment::Typed("id", ParamType::Int),
                Segment::Typed("name", ParamType::Word),
                Segment::CatchAll("splat"),
            ]
        );
        let bad = |r: &str, driver| parse_route(r, driver).unwrap_err().to_string();
        assert_eq!(
            bad("/a/:id([0-9]+)", HttpDriver::Beego),
            "invalid route \"/a/:id([0-9]+)\": regular-expression parameters (\":id([0-9]+)\") are not supported: write `:id:int` or `:id:string`, or `:id` and check the value in the plugin"
        );
        assert_eq!(
            bad("/a/:id:int", HttpDriver::Axum),
            "invalid route \"/a/:id:int\": typed parameter \":id:int\" is beego syntax: set http_services.driver to \"beego\", or write `:id` and check the value in the plugin"
        );
        assert_eq!(
            bad("/a/:id:float", HttpDriver::Beego),
            "invalid route \"/a/:id:float\": parameter type \"float\" is not one gp knows: use `:id:int` or `:id:string`"
        );
        assert_eq!(
            bad("/static/*.*", HttpDriver::Beego),
            "invalid route \"/static/*.*\": beego's `*.*` (path and extension) is not supported: use `*` and split the extension in the plugin"
        );
        assert_eq!(
            bad("/-/healthz", HttpDriver::Axum),
            "invalid route \"/-/healthz\": paths under /-/ are reserved for gp's own endpoints (such as /-/healthz): choose another path"
        );
        assert!(ParamType::Int.accepts("42") && !ParamType::Int.accepts("4x"));
        assert!(ParamType::Word.accepts("a_1") && !ParamType::Word.accepts("a-1"));
    }
}
