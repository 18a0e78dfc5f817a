//! [`Args`] and Cargo's `CARGO_PKG_*` variables → the plugin's [`Manifest`].
//!
//! Its own file because it is where the attribute meets gp-core: the manifest is checked with
//! the rules the host applies to `plugin.json`, and each error is pointed at the token (or the
//! `Cargo.toml` field) its value comes from.

use gp_core::manifest::{self, HttpDriver, HttpMethod, HttpServices, Manifest, Route};
use proc_macro2::Span;
use quote::quote;
use syn::LitStr;

use crate::args::Args;
use crate::errors::Errors;

/// Builds the manifest from `CARGO_PKG_*` and the arguments, and validates it with the rules
/// the host applies to `plugin.json`, pointing each error at the token it comes from.
pub(crate) fn build_manifest(args: Args, errors: &mut Errors) -> Manifest {
    let call_site = Span::call_site();
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());

    let name = match &args.name {
        Some(lit) => lit.value(),
        None => env("CARGO_PKG_NAME").unwrap_or_default(),
    };
    if let Err(e) = manifest::validate_name(&name) {
        let hint = if args.name.is_some() {
            ""
        } else {
            " (from the package name; set `name = \"...\"` to choose another)"
        };
        errors.at(
            args.name.as_ref().map_or(call_site, LitStr::span),
            format!("{e}{hint}"),
        );
    }

    let version_text = env("CARGO_PKG_VERSION").unwrap_or_default();
    let version = semver::Version::parse(&version_text).unwrap_or_else(|e| {
        errors.at(
            call_site,
            format!("package version {version_text:?} is not semver 2: {e}"),
        );
        semver::Version::new(0, 0, 0)
    });

    let description = match &args.description {
        Some(lit) => Some(lit.value()),
        None => env("CARGO_PKG_DESCRIPTION"),
    };
    if description.as_deref().is_some_and(|d| d.contains('\n')) {
        errors.at(
            args.description.as_ref().map_or(call_site, LitStr::span),
            "the description must be one line; set `description = \"...\"` to override the package's",
        );
    }

    let maintainers: Vec<(Span, String)> = match &args.maintainers {
        Some((_, list)) => list.iter().map(|l| (l.span(), l.value())).collect(),
        None => env("CARGO_PKG_AUTHORS")
            .map(|a| {
                a.split(':')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| (call_site, s.trim().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
    };
    for (span, maintainer) in &maintainers {
        if let Err(e) = manifest::validate_maintainer(maintainer) {
            let hint = if args.maintainers.is_some() {
                ""
            } else {
                " (from the package's authors; add an e-mail address there or set `maintainers = [...]`)"
            };
            errors.at(*span, format!("{e}{hint}"));
        }
    }

    let home = match &args.home {
        Some(lit) => Some(lit.value()),
        None => env("CARGO_PKG_HOMEPAGE").or_else(|| env("CARGO_PKG_REPOSITORY")),
    };

    let http_services = http_services(&args, errors);

    let manifest = Manifest {
        name,
        version,
        description,
        maintainers: maintainers.into_iter().map(|(_, m)| m).collect(),
        home,
        source: None,
        http_services,
    };
    // Whatever the checks above did not already point at (a bad home) is reported against the
    // token it comes from, or the attribute as a whole.
    if errors.0.is_none() {
        if let Err(e) = manifest.validate() {
            match &e {
                manifest::ManifestError::InvalidHome { .. } => match &args.home {
                    Some(lit) => errors.at(
                        lit.span(),
                        format!("{e}: write `home = \"https://...\"`"),
                    ),
                    None => errors.at(
                        call_site,
                        format!("{e} (from the package's homepage or repository; fix it there or set `home = \"https://...\"`)"),
                    ),
                },
                _ => errors.at(call_site, e),
            }
        }
    }
    manifest
}

/// `http_services` from the `driver` and `route(...)` arguments, `None` without routes: each
/// route checked with the grammar the host reads it with, each error at its token.
fn http_services(args: &Args, errors: &mut Errors) -> Option<HttpServices> {
    let driver = match &args.driver {
        None => HttpDriver::Axum,
        Some(lit) => match HttpDriver::parse(&lit.value()) {
            Ok(driver) => {
                if args.routes.is_empty() {
                    errors.at(
                        lit.span(),
                        "`driver` without routes serves nothing: add `route(GET, \"/path\", label = \"...\")`, or remove `driver`",
                    );
                }
                driver
            }
            Err(e) => {
                errors.at(lit.span(), e);
                HttpDriver::Axum
            }
        },
    };
    let mut routes: Vec<Route> = Vec::new();
    for route in &args.routes {
        let method = match HttpMethod::parse(&route.method.to_string()) {
            Ok(method) => method,
            Err(e) => {
                errors.at(route.method.span(), e);
                continue;
            }
        };
        let path = route.path.value();
        if let Err(e) = manifest::parse_route(&path, driver) {
            errors.at(route.path.span(), e);
        }
        if route.label.value().trim().is_empty() {
            errors.at(
                route.label.span(),
                format!("route {method} {path:?} has an empty label: write the label the plugin dispatches on, such as `label = \"items.get\"`"),
            );
        }
        if routes.iter().any(|r| r.method == method && r.route == path) {
            let (method_token, path_token) = (&route.method, &route.path);
            errors.over(
                quote!(#method_token, #path_token),
                format!("route {method} {path:?} is declared twice: remove one, or change its method or path"),
            );
        }
        routes.push(Route {
            route: path,
            method,
            label: route.label.value(),
        });
    }
    (!routes.is_empty()).then_some(HttpServices { driver, routes })
}
