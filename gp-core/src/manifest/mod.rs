//! The `plugin.json` model and its validation.
//!
//! A plugin's manifest exists twice: embedded in its library by `#[plugin_entry]` (built from
//! `Cargo.toml` and the attribute's arguments, checked at compile time by this module), and on
//! disk as `plugin.json` beside the library (generated from the embedded one by `gp manifest`).
//! A host accepts a plugin only when both pass [`Manifest::validate`] and agree
//! ([`Manifest::first_difference`]), so the two cannot drift.
//!
//! Every field of the original `plugin.json` spec is here and checked:
//!
//! | field | rule |
//! |---|---|
//! | `name` | required; 1 to 64 ASCII letters, digits, `-` or `_`, starting with a letter |
//! | `version` | required; semver 2 (`1.2.3`, `1.0.0-rc.1+build.5`) |
//! | `description` | optional; one line |
//! | `maintainers` | optional; e-mail addresses, bare or as `Name <mail>` |
//! | `home` | optional; an `http` or `https` URL |
//! | `source.mode` | required in `plugin.json`; `local_so` or `remote_git` |
//! | `source.path` | required in `plugin.json`; for `local_so` a path relative to the plugin's folder that stays inside it |
//! | `http_services.driver` | required when `http_services` is present; `axum` or `beego` (see [`HttpDriver`]) |
//! | `http_services.routes` | required when `http_services` is present; 1 to [`MAX_ROUTES`] routes |
//! | `routes[].route` | required; starts with `/`; not under `/-/` (reserved for gp); see [`parse_route`] for parameters |
//! | `routes[].method` | required; `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD` or `OPTIONS` |
//! | `routes[].label` | required; non-empty; given to the plugin as the call's label |
//!
//! Unknown fields anywhere are an error naming the field, so a typo such as `verison` never
//! passes silently.

use std::fmt;
use std::path::{Component, Path};

use semver::Version;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A plugin's metadata: the `plugin.json` file, or the manifest embedded in its library.
///
/// Fields are in the order `plugin.json` writes them. The embedded manifest has no `source`
/// (a library does not know where it will be installed); `plugin.json` must have one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name, unique in a host.
    pub name: String,
    /// The plugin's version.
    #[serde(serialize_with = "ser_version", deserialize_with = "de_version")]
    pub version: Version,
    /// One sentence that says what the plugin does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// E-mail addresses of the maintainers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<String>,
    /// The plugin's home page or repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// Where the plugin's code comes from; required in `plugin.json`, absent when embedded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// The HTTP routes the plugin serves, each mapped to a call label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_services: Option<HttpServices>,
}

/// Where a plugin's code comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// How to get the library.
    pub mode: SourceMode,
    /// The library's path relative to the plugin's folder (`local_so`), or the repository
    /// (`remote_git`).
    pub path: String,
}

/// The `source.mode` of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceMode {
    /// A built library beside `plugin.json`.
    LocalSo,
    /// A git repository holding the plugin's crate, to be built before loading.
    RemoteGit,
}

impl fmt::Display for SourceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceMode::LocalSo => "local_so",
            SourceMode::RemoteGit => "remote_git",
        })
    }
}

/// The HTTP services a plugin offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServices {
    /// The HTTP service driver.
    #[serde(deserialize_with = "de_driver")]
    pub driver: HttpDriver,
    /// The routes, each mapped to a call label.
    pub routes: Vec<Route>,
}

/// The HTTP service driver that serves a plugin's routes: which route syntax the plugin speaks.
///
/// gp serves both with one engine (a matchit router, as axum uses); the driver decides how a
/// route is read. It is part of the manifest like any other field, so `plugin.json` and the
/// library must name the same one (`#[plugin_entry(driver = "beego", ...)]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpDriver {
    /// axum's syntax, `{id}` and `{*rest}`; the seed's `:id` and `*rest` are read too.
    Axum,
    /// beego's syntax, the seed's driver: `:id`, `:id:int`, `:id:string`, and `*` (a catch-all
    /// named `splat`) or `*rest`. Regular-expression parameters are refused.
    Beego,
}

impl HttpDriver {
    /// Every driver, in the order error messages list them.
    pub const ALL: [HttpDriver; 2] = [HttpDriver::Axum, HttpDriver::Beego];

    /// The driver's name in `plugin.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpDriver::Axum => "axum",
            HttpDriver::Beego => "beego",
        }
    }

    /// Parses a driver name, refusing unknown ones with a message that lists the known ones.
    pub fn parse(s: &str) -> Result<HttpDriver, ManifestError> {
        HttpDriver::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| ManifestError::UnknownDriver {
                driver: s.to_owned(),
            })
    }
}

impl fmt::Display for HttpDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The largest `plugin.json` gp reads: 1 MiB, far above what 1024 routes take.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// The most routes one plugin may declare.
pub const MAX_ROUTES: usize = 1024;

/// The path prefix reserved for gp's own endpoints on the listener that serves plugin routes.
pub const RESERVED_PREFIX: &str = "/-/";

/// One HTTP route: a request to `method route` calls the plugin with `label`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The endpoint, such as `/api/plugin/sample/:id`.
    pub route: String,
    /// The HTTP method.
    pub method: HttpMethod,
    /// The label the plugin is called with.
    pub label: String,
}

/// An HTTP method a route may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[allow(missing_docs)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl HttpMethod {
    /// Every method, in the order error messages list them.
    pub const ALL: [HttpMethod; 7] = [
        HttpMethod::Get,
        HttpMethod::Post,
        HttpMethod::Put,
        HttpMethod::Patch,
        HttpMethod::Delete,
        HttpMethod::Head,
        HttpMethod::Options,
    ];

    /// The method as HTTP spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
            HttpMethod::Options => "OPTIONS",
        }
    }

    /// Parses an upper-case method name.
    pub fn parse(s: &str) -> Result<HttpMethod, ManifestError> {
        HttpMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| ManifestError::InvalidMethod {
                method: s.to_owned(),
            })
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a manifest was refused. Each message names the offending value and says what is allowed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON, or not the shape of a manifest (unknown or missing field, wrong type).
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// The document is a JSON array, not an object.
    #[error("a manifest is a JSON object ({{\"name\": ..., \"version\": ...}}), not an array")]
    NotAnObject,
    /// The name breaks the naming rule.
    #[error("invalid plugin name {}: use 1 to 64 ASCII letters, digits, '-' or '_', starting with a letter", shown(name))]
    InvalidName {
        /// The refused name.
        name: String,
    },
    /// The description spans several lines.
    #[error("description must be one line")]
    MultiLineDescription,
    /// A maintainer is not an e-mail address.
    #[error("maintainer {} is not an e-mail address: write \"mail@example.com\" or \"Name <mail@example.com>\"", shown(value))]
    InvalidMaintainer {
        /// The refused entry.
        value: String,
    },
    /// `home` is not an http(s) URL.
    #[error("home {} is not an http or https URL", shown(value))]
    InvalidHome {
        /// The refused value.
        value: String,
    },
    /// `plugin.json` has no `source`.
    #[error("missing field `source`: add \"source\": {{\"mode\": \"local_so\", \"path\": \"<library file>\"}}")]
    MissingSource,
    /// `source.path` is empty.
    #[error(
        "source.path is empty: name the library file (local_so) or the repository (remote_git)"
    )]
    EmptySourcePath,
    /// A `local_so` path is absolute or leaves the plugin's folder.
    #[error("source.path {} must be a relative path inside the plugin's folder (no leading '/', no '..')", shown(path))]
    SourcePathEscapes {
        /// The refused path.
        path: String,
    },
    /// `http_services.routes` is empty.
    #[error("http_services.routes is empty: declare at least one route or remove http_services")]
    NoRoutes,
    /// A route's path is malformed.
    #[error("invalid route {}: {}", shown(route), shown_reason(reason))]
    InvalidRoute {
        /// The refused route.
        route: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A route's method is not one gp serves.
    #[error(
        "invalid HTTP method {}: use one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
        shown(method)
    )]
    InvalidMethod {
        /// The refused method.
        method: String,
    },
    /// A route has an empty label.
    #[error(
        "route {method} {} has an empty label: give the label the plugin dispatches on",
        shown(route)
    )]
    EmptyLabel {
        /// The route's method.
        method: HttpMethod,
        /// The route.
        route: String,
    },
    /// Two routes share a method and a path.
    #[error("route {method} {} is declared twice", shown(route))]
    DuplicateRoute {
        /// The method.
        method: HttpMethod,
        /// The route.
        route: String,
    },
    /// `http_services.driver` names a driver gp does not have.
    #[error(
        "unknown http_services.driver {}: use \"axum\" or \"beego\"",
        shown(driver)
    )]
    UnknownDriver {
        /// The refused name.
        driver: String,
    },
    /// More routes than [`MAX_ROUTES`].
    #[error("http_services declares {count} routes; a plugin may declare at most {max}")]
    TooManyRoutes {
        /// How many routes were declared.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The document is larger than [`MAX_MANIFEST_BYTES`].
    #[error("the manifest is {size} bytes; gp reads at most {max}: a plugin.json this large is not one gp wrote")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// An embedded document is not what this version of gp writes.
    #[error("embedded manifest is malformed: {0}")]
    Embedded(String),
}

impl Manifest {
    /// Parses and validates the text of a `plugin.json` file (which must have a `source`).
    pub fn from_plugin_json(text: &str) -> Result<Manifest, ManifestError> {
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                size: text.len() as u64,
                max: MAX_MANIFEST_BYTES,
            });
        }
        // serde would also accept a struct written as an array of its fields.
        if text.trim_start().starts_with('[') {
            return Err(ManifestError::NotAnObject);
        }
        let manifest: Manifest = serde_json::from_str(text)?;
        manifest.validate()?;
        if manifest.source.is_none() {
            return Err(ManifestError::MissingSource);
        }
        Ok(manifest)
    }

    /// Checks every field against the rules in the [module documentation](self).
    pub fn validate(&self) -> Result<(), ManifestError> {
        validate_name(&self.name)?;
        if let Some(description) = &self.description {
            if description.contains('\n') {
                return Err(ManifestError::MultiLineDescription);
            }
        }
        for maintainer in &self.maintainers {
            validate_maintainer(maintainer)?;
        }
        if let Some(home) = &self.home {
            validate_home(home)?;
        }
        if let Some(source) = &self.source {
            validate_source(source)?;
        }
        if let Some(http) = &self.http_services {
            if http.routes.is_empty() {
                return Err(ManifestError::NoRoutes);
            }
            if http.routes.len() > MAX_ROUTES {
                return Err(ManifestError::TooManyRoutes {
                    count: http.routes.len(),
                    max: MAX_ROUTES,
                });
            }
            let mut seen = std::collections::HashSet::with_capacity(http.routes.len());
            for route in &http.routes {
                parse_route(&route.route, http.driver)?;
                if route.label.trim().is_empty() {
                    return Err(ManifestError::EmptyLabel {
                        method: route.method,
                        route: route.route.clone(),
                    });
                }
                if !seen.insert((route.method, route.route.as_str())) {
                    return Err(ManifestError::DuplicateRoute {
                        method: route.method,
                        route: route.route.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The first field, in file order, whose value differs between `self` and `other`,
    /// ignoring `source` (which only `plugin.json` has). Returns the field's name and both
    /// values as JSON.
    pub fn first_difference(&self, other: &Manifest) -> Option<(&'static str, String, String)> {
        fn json<T: Serialize>(value: &T) -> String {
            serde_json::to_string(value).unwrap_or_default()
        }
        macro_rules! compare {
            ($($field:ident),*) => {$(
                if self.$field != other.$field {
                    return Some((stringify!($field), json(&self.$field), json(&other.$field)));
                }
            )*};
        }
        if self.version != other.version {
            return Some((
                "version",
                json(&self.version.to_string()),
                json(&other.version.to_string()),
            ));
        }
        compare!(name, description, maintainers, home, http_services);
        None
    }

    /// The manifest as pretty-printed JSON, the way `plugin.json` files are written.
    pub fn to_json_pretty(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(self).expect("a manifest always serialises to JSON");
        text.push('\n');
        text
    }
}

/// The document `#[plugin_entry]` embeds in a library: the ABI version it was built against
/// and its manifest (without `source`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedded {
    /// The `gp-core` version the plugin was built against.
    pub gp_core: String,
    /// The plugin's manifest.
    pub manifest: Manifest,
}

impl Embedded {
    /// Parses and validates an embedded document.
    pub fn parse(bytes: &[u8]) -> Result<Embedded, ManifestError> {
        if bytes.trim_ascii_start().starts_with(b"[") {
            return Err(ManifestError::NotAnObject);
        }
        let embedded: Embedded = serde_json::from_slice(bytes)?;
        if embedded.manifest.source.is_some() {
            return Err(ManifestError::Embedded(
                "an embedded manifest has no source".into(),
            ));
        }
        embedded.manifest.validate()?;
        Ok(embedded)
    }

    /// The document as compact JSON, the form embedded in libraries.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a manifest always serialises to JSON")
    }
}

/// Checks a plugin name: 1 to 64 ASCII letters, digits, `-` or `_`, starting with a letter.
///
/// The rule is conservative on purpose: a name is also a folder name, a URL path segment and
/// a metrics label, and must be all three on every platform.
pub fn validate_name(name: &str) -> Result<(), ManifestError> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ManifestError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// Checks a maintainer entry: `mail@example.com` or `Name <mail@example.com>`.
pub fn validate_maintainer(value: &str) -> Result<(), ManifestError> {
    let mail = match (value.find('<'), value.strip_suffix('>')) {
        (Some(open), Some(rest)) => &rest[open + 1..],
        (None, None) => value,
        _ => "",
    };
    let valid = mail.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty())
            && !mail.contains(|c: char| c.is_whitespace() || c == '<' || c == '>')
    });
    if valid {
        Ok(())
    } else {
        Err(ManifestError::InvalidMaintainer {
            value: value.to_owned(),
        })
    }
}

fn validate_home(value: &str) -> Result<(), ManifestError> {
    // An absolute IRI (RFC 3987: a URI that may also hold non-ASCII characters, such as an
    // internationalised host name) with an http or https scheme and a host. fluent-uri
    // parses it without the Unicode tables a WHATWG parser carries, which every plugin build
    // would compile: gp-macros checks the manifest at compile time.
    let valid = fluent_uri::Iri::parse(value).is_ok_and(|iri| {
        let scheme = iri.scheme().as_str();
        (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
            && iri
                .authority()
                .is_some_and(|authority| !authority.host().is_empty())
    });
    if valid {
        Ok(())
    } else {
        Err(ManifestError::InvalidHome {
            value: value.to_owned(),
        })
    }
}

fn validate_source(source: &Source) -> Result<(), ManifestError> {
    if source.path.trim().is_empty() {
        return Err(ManifestError::EmptySourcePath);
    }
    if source.mode == SourceMode::LocalSo {
        let path = Path::new(&source.path);
        let escapes = path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        if escapes || source.path.starts_with(['/', '\\']) {
            return Err(ManifestError::SourcePathEscapes {
                path: source.path.clone(),
            });
        }
    }
    Ok(())
}

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

fn de_driver<'de, D: Deserializer<'de>>(d: D) -> Result<HttpDriver, D::Error> {
    let text = String::deserialize(d)?;
    HttpDriver::parse(&text).map_err(serde::de::Error::custom)
}

/// The longest value a manifest error echoes: a mutated plugin.json once put a 37 MB name in
/// one error line.
const MAX_SHOWN: usize = 120;

/// `value` quoted, as errors show it, cut to [`MAX_SHOWN`] characters.
fn shown(value: &str) -> String {
    match value.char_indices().nth(MAX_SHOWN) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}… ({} more bytes)", &value[..end], value.len() - end),
    }
}

/// A route refusal's reason, which may quote a segment: cut like a value.
fn shown_reason(reason: &str) -> String {
    match reason.char_indices().nth(4 * MAX_SHOWN) {
        None => reason.to_owned(),
        Some((end, _)) => format!("{}… ({} more bytes)", &reason[..end], reason.len() - end),
    }
}

fn ser_version<S: Serializer>(version: &Version, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(version)
}

fn de_version<'de, D: Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
    let text = String::deserialize(d)?;
    Version::parse(&text).map_err(|e| {
        serde::de::Error::custom(format_args!(
            "version {} is not semver 2 ({e}); write MAJOR.MINOR.PATCH, e.g. \"1.2.3\"",
            shown(&text)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "name": "go-plugin",
        "version": "0.1.0",
        "description": "A go plugin management tool",
        "maintainers": ["loneghost1982@gmail.com"],
        "home": "https://github.com/szlabs/go-plugin.git",
        "source": { "mode": "local_so", "path": "sample.so" },
        "http_services": {
            "driver": "axum",
            "routes": [
                { "route": "/api/plugin/sample/:id", "method": "GET", "label": "plugin.get" },
                { "route": "/api/plugin/samples", "method": "POST", "label": "plugin.post" }
            ]
        }
    }"#;

    fn err(text: &str) -> String {
        Manifest::from_plugin_json(text).unwrap_err().to_string()
    }

    /// `GOOD` with the value at JSON pointer `field` replaced by `value`.
    fn with(field: &str, value: &str) -> String {
        let mut json: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        *json.pointer_mut(field).unwrap() = serde_json::from_str(value).unwrap();
        json.to_string()
    }

    #[test]
    fn accepts_the_seed_example_with_the_axum_driver() {
        let m = Manifest::from_plugin_json(GOOD).unwrap();
        assert_eq!(m.name, "go-plugin");
        assert_eq!(m.version, Version::new(0, 1, 0));
        assert_eq!(m.source.unwrap().mode, SourceMode::LocalSo);
        let routes = &m.http_services.as_ref().unwrap().routes;
        assert_eq!(
            parse_route(&routes[0].route, HttpDriver::Axum).unwrap(),
            [
                Segment::Literal("api"),
                Segment::Literal("plugin"),
                Segment::Literal("sample"),
                Segment::Param("id"),
            ]
        );
    }

    #[test]
    fn rejects_unknown_field_naming_it() {
        let text = GOOD.replace("\"version\"", "\"verison\"");
        assert!(
            err(&text).starts_with("unknown field `verison`, expected one of `name`, `version`"),
            "{}",
            err(&text)
        );
    }

    #[test]
    fn rejects_missing_required_fields() {
        let no_name = r#"{"version": "1.0.0", "source": {"mode": "local_so", "path": "a.so"}}"#;
        assert_eq!(err(no_name), "missing field `name` at line 1 column 68");
        let no_source = r#"{"name": "a", "version": "1.0.0"}"#;
        assert_eq!(
            err(no_source),
            "missing field `source`: add \"source\": {\"mode\": \"local_so\", \"path\": \"<library file>\"}"
        );
        let no_driver = r#"{"name": "a", "version": "1.0.0", "source": {"mode": "local_so", "path": "a.so"},
            "http_services": {"routes": [{"route": "/a", "method": "GET", "label": "a"}]}}"#;
        assert!(
            err(no_driver).starts_with("missing field `driver`"),
            "{}",
            err(no_driver)
        );
    }

    #[test]
    fn rejects_a_manifest_written_as_an_array() {
        assert_eq!(
            err(r#"["a", "1.0.0", null, [], null, {"mode": "local_so", "path": "a.so"}, null]"#),
            "a manifest is a JSON object ({\"name\": ..., \"version\": ...}), not an array"
        );
    }

    #[test]
    fn rejects_bad_semver() {
        assert_eq!(
            err(&with("/version", "\"1.0\"")),
            "version \"1.0\" is not semver 2 (unexpected end of input while parsing minor version number); write MAJOR.MINOR.PATCH, e.g. \"1.2.3\" at line 1 column 405"
        );
    }

    #[test]
    fn rejects_bad_source_mode() {
        assert!(err(&with("/source/mode", "\"local_dll\""))
            .starts_with("unknown variant `local_dll`, expected `local_so` or `remote_git`"));
    }

    #[test]
    fn rejects_bad_route_method() {
        assert!(err(&with("/http_services/routes/0/method", "\"FETCH\"")).starts_with(
            "unknown variant `FETCH`, expected one of `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`, `OPTIONS`"
        ));
    }

    #[test]
    fn home_is_an_absolute_http_or_https_iri_with_a_host() {
        for home in [
            "https://example.com/sample",
            "http://localhost:8080",
            "HTTPS://Example.com",
            "https://example.com/a?b=c#d",
            "https://bücher.example/é",
            "https://[::1]:9000/",
        ] {
            assert!(validate_home(home).is_ok(), "{home}");
        }
        for home in [
            "ftp://example.com",
            "https://",
            "https:///path",
            "example.com",
            "/sample",
            "https://exa mple.com",
            "mailto:ann@example.com",
            "",
        ] {
            assert!(
                matches!(validate_home(home), Err(ManifestError::InvalidHome { value }) if value == home),
                "{home}"
            );
        }
    }

    #[test]
    fn rejects_bad_names_maintainers_home_and_paths() {
        assert_eq!(
            err(&with("/name", "\"my plugin\"")),
            "invalid plugin name \"my plugin\": use 1 to 64 ASCII letters, digits, '-' or '_', starting with a letter"
        );
        assert_eq!(
            err(&with("/maintainers", "[\"steven\"]")),
            "maintainer \"steven\" is not an e-mail address: write \"mail@example.com\" or \"Name <mail@example.com>\""
        );
        assert_eq!(
            err(&with("/home", "\"ftp://example.com\"")),
            "home \"ftp://example.com\" is not an http or https URL"
        );
        assert_eq!(
            err(&with("/source/path", "\"../other/x.so\"")),
            "source.path \"../other/x.so\" must be a relative path inside the plugin's folder (no leading '/', no '..')"
        );
        assert_eq!(
            err(&with("/source/path", "\"/usr/lib/x.so\"")),
            "source.path \"/usr/lib/x.so\" must be a relative path inside the plugin's folder (no leading '/', no '..')"
        );
    }

    #[test]
    fn accepts_maintainers_in_cargo_authors_form() {
        validate_maintainer("Steven Zou <loneghost1982@gmail.com>").unwrap();
        validate_maintainer("a@b.co").unwrap();
        assert!(validate_maintainer("Steven <nope>").is_err());
        assert!(validate_maintainer("a@b").is_err());
    }

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

    #[test]
    fn knows_the_seed_driver_and_refuses_others_listing_the_known_ones() {
        let seed = Manifest::from_plugin_json(&with("/http_services/driver", "\"beego\"")).unwrap();
        assert_eq!(seed.http_services.unwrap().driver, HttpDriver::Beego);
        assert!(
            err(&with("/http_services/driver", "\"gin\""))
                .starts_with("unknown http_services.driver \"gin\": use \"axum\" or \"beego\""),
            "{}",
            err(&with("/http_services/driver", "\"gin\""))
        );
    }

    #[test]
    fn bounds_the_route_count_and_finds_duplicates_in_linear_time() {
        let routes: Vec<String> = (0..=MAX_ROUTES)
            .map(|i| format!(r#"{{"route": "/r/{i}", "method": "GET", "label": "l"}}"#))
            .collect();
        assert_eq!(
            err(&with(
                "/http_services/routes",
                &format!("[{}]", routes.join(","))
            )),
            "http_services declares 1025 routes; a plugin may declare at most 1024"
        );
        let mut routes = routes[..MAX_ROUTES - 1].to_vec();
        routes.push(routes[0].clone());
        assert_eq!(
            err(&with(
                "/http_services/routes",
                &format!("[{}]", routes.join(","))
            )),
            "route GET \"/r/0\" is declared twice"
        );
    }

    #[test]
    fn errors_echo_at_most_a_bounded_part_of_a_bad_value() {
        let name = "x y".repeat(100_000);
        let message = err(&with("/name", &serde_json::to_string(&name).unwrap()));
        assert_eq!(
            message,
            format!(
                "invalid plugin name {:?}… (299880 more bytes): use 1 to 64 ASCII letters, digits, '-' or '_', starting with a letter",
                &name[..120]
            )
        );
    }

    #[test]
    fn reports_the_first_difference() {
        let a = Manifest::from_plugin_json(GOOD).unwrap();
        let mut b = a.clone();
        b.version = Version::new(0, 2, 0);
        b.description = None;
        assert_eq!(
            a.first_difference(&b),
            Some(("version", "\"0.1.0\"".into(), "\"0.2.0\"".into()))
        );
        b.version = a.version.clone();
        assert_eq!(
            a.first_difference(&b),
            Some((
                "description",
                "\"A go plugin management tool\"".into(),
                "null".into()
            ))
        );
        b.source = None;
        b.description = a.description.clone();
        assert_eq!(a.first_difference(&b), None);
    }

    #[test]
    fn embedded_round_trip() {
        let mut m = Manifest::from_plugin_json(GOOD).unwrap();
        m.source = None;
        let e = Embedded {
            gp_core: "0.1.0".into(),
            manifest: m,
        };
        assert_eq!(Embedded::parse(e.to_json().as_bytes()).unwrap(), e);
    }
}
