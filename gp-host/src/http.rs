//! Serving a manager over HTTP with axum (feature `http`): what `gp serve` runs, as a library
//! an application can mount in its own server.
//!
//! Today: `GET /metrics` (Prometheus text) and `GET /stats` (JSON, one
//! [`PluginSummary`] per plugin). The top layer of the crate: it uses
//! the registry's public face only.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let manager = gp_host::Manager::new("plugins");
//! manager.load_plugins();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
//! axum::serve(listener, gp_host::http::router(manager)).await
//! # }
//! ```

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use gp_core::manifest::{parse_route, ManifestError, Route, Segment};

use crate::metrics::PluginSummary;
use crate::registry::Manager;

/// The content type of [`Manager::prometheus`]'s text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A router serving `manager`'s metrics: `GET /metrics` and `GET /stats`. Merge or nest it
/// into an application's own router as it likes.
pub fn router(manager: Manager) -> axum::Router {
    let metrics = {
        let manager = manager.clone();
        move || async move {
            (
                [(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
                manager.prometheus(),
            )
        }
    };
    let stats = move || async move {
        let stats: Vec<PluginSummary> = manager.stats().iter().map(|s| s.summary()).collect();
        axum::Json(stats)
    };
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/stats", get(stats))
}

/// A plugin route in axum's path syntax (`/items/{id}`, `/files/{*rest}`), translating the
/// seed's `:id` and `*rest` parameters.
pub fn axum_path(route: &Route) -> Result<String, ManifestError> {
    let segments = parse_route(&route.route)?;
    if segments.is_empty() {
        return Ok("/".into());
    }
    Ok(segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => format!("/{l}"),
            Segment::Param(p) => format!("/{{{p}}}"),
            Segment::CatchAll(p) => format!("/{{*{p}}}"),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use gp_core::manifest::Manifest;

    #[test]
    fn seed_routes_translate_to_axum_paths() {
        let manifest = Manifest::from_plugin_json(
            r#"{"name": "sample", "version": "1.0.0",
                "source": {"mode": "local_so", "path": "libsample.so"},
                "http_services": {"driver": "axum", "routes": [
                    {"method": "GET", "route": "/api/plugin/sample/:id", "label": "get"},
                    {"method": "GET", "route": "/files/*rest", "label": "files"},
                    {"method": "GET", "route": "/", "label": "root"}]}}"#,
        )
        .unwrap();
        let paths: Vec<String> = manifest
            .http_services
            .unwrap()
            .routes
            .iter()
            .map(|r| super::axum_path(r).unwrap())
            .collect();
        assert_eq!(
            paths,
            ["/api/plugin/sample/{id}", "/files/{*rest}", "/"].map(String::from)
        );
    }
}
