//! The rules every field must follow, and [`Manifest::validate`], which applies them all.
//!
//! Separate from the model because the rules are a concern of their own, and some are used
//! on their own: `#[plugin_entry]` checks a name or a maintainer as it reads it from
//! `Cargo.toml`, and `gp new` checks a name before there is a manifest.

use std::path::{Component, Path};

use super::error::ManifestError;
use super::route::parse_route;
use super::{Manifest, Source, SourceMode, MAX_ROUTES};

impl Manifest {
    /// Checks every field against the rules in the [module documentation](super).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::fixture::{err, with};

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
}
