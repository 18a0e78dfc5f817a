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
//!
//! This file holds the model (the types `plugin.json` is read into) and its reading and
//! writing ([`Manifest::from_plugin_json`], [`Manifest::to_json_pretty`]); the pieces these
//! use each have their own file: the errors (`error`), the rules of the table above and
//! [`Manifest::validate`], which applies them (`rules`), the route grammar (`route`), the
//! embedded document (`embedded`) and the handlers' details beside it (`details`). Everything is re-exported here, so every item keeps its path
//! `gp_core::manifest::…`.

mod details;
mod embedded;
mod error;
#[cfg(test)]
mod fixture;
mod route;
mod rules;

use std::fmt;

use semver::Version;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use details::Details;
pub use embedded::Embedded;
pub use error::ManifestError;
pub use route::{parse_route, ParamType, Segment, RESERVED_PREFIX};
pub use rules::{validate_maintainer, validate_name};

use error::shown;

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

fn de_driver<'de, D: Deserializer<'de>>(d: D) -> Result<HttpDriver, D::Error> {
    let text = String::deserialize(d)?;
    HttpDriver::parse(&text).map_err(serde::de::Error::custom)
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
    use super::fixture::{err, with, GOOD};
    use super::*;

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
}
