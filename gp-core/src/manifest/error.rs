//! Why a manifest was refused: [`ManifestError`], and how its messages quote a value.
//!
//! Separate from the model because every check (the rules, the route grammar, the embedded
//! form) reports through it, and what a message may echo (a bounded part of the value) is one
//! rule for all of them.

use super::HttpMethod;

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
    /// More routes than [`MAX_ROUTES`](super::MAX_ROUTES).
    #[error("http_services declares {count} routes; a plugin may declare at most {max}")]
    TooManyRoutes {
        /// How many routes were declared.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The document is larger than [`MAX_MANIFEST_BYTES`](super::MAX_MANIFEST_BYTES).
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

/// The longest value a manifest error echoes: a mutated plugin.json once put a 37 MB name in
/// one error line.
const MAX_SHOWN: usize = 120;

/// `value` quoted, as errors show it, cut to [`MAX_SHOWN`] characters.
pub(super) fn shown(value: &str) -> String {
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

#[cfg(test)]
mod tests {
    use crate::manifest::fixture::{err, with};

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
}
