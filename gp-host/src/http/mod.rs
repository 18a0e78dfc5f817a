//! Serving over HTTP with axum (feature `http`): what `gp serve` runs, as a library an
//! application mounts in its own server.
//!
//! - [`PluginServer`]: the routes plugins declare in `http_services`, live as plugins load,
//!   upgrade and unload; plus `GET /-/healthz`. For plugin traffic.
//! - [`metrics_router`]: `GET /metrics` (Prometheus text, with the HTTP metrics when given a
//!   server) and `GET /stats` (JSON, one [`PluginSummary`] per plugin). For operators and
//!   scrapers; no token.
//! - `Admin` (feature `admin`): the management API and GUI, behind a token.
//! - [`ServeConfig`]: every setting of `gp serve` (`gp.toml`), and the builders it configures.
//! - [`serve_listener`]: serving any of them on a listener with the limits `axum::serve`
//!   leaves out (`serve_listener_tls` over TLS, feature `tls`).
//!
//! The top layer of the crate: it uses the manager's public face, and registers its route
//! check with the manager ([`Manager::admit`]) rather than being imported by it.
//!
//! Inside: `server/` (the plugin server and its request path), `routes` (the route table),
//! `stats` (per-route request metrics), `listen`, and `admin/`.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let manager = gp_host::Manager::new("plugins");
//! print!("{}", manager.load_plugins());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
//! axum::serve(listener, gp_host::http::router(manager)).await
//! # }
//! ```

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use gp_core::manifest::{parse_route, ManifestError, Route};

use crate::manager::Manager;
use crate::metrics::PluginSummary;

#[cfg(feature = "admin")]
mod admin;
mod config;
mod listen;
pub(crate) mod routes;
mod server;
mod stats;

pub use config::{
    LogFormat, ServeConfig, DEFAULT_ADMIN, DEFAULT_FOLLOW_EVERY, DEFAULT_FOLLOW_JITTER,
    DEFAULT_LISTEN,
};
#[cfg(feature = "tls")]
pub use listen::serve_tls as serve_listener_tls;
pub use listen::{
    default_max_connections, serve as serve_listener, App, ListenLimits, Rescue, DEFAULT_GRACE,
    DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
};

#[cfg(feature = "admin")]
pub use admin::{gui_url, Admin, AdminBuilder, AdminToken, InvalidToken, DEFAULT_UPLOAD_LIMIT};

pub use server::{
    PluginServer, PluginServerBuilder, RouteLimits, ServedRoute, DEFAULT_BODY_BUDGET,
    DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_CONCURRENCY, DEFAULT_INLINE_BUDGET,
    DEFAULT_MAX_TIMEOUT, DEFAULT_QUEUE, DEFAULT_QUEUE_WAIT, DEFAULT_TIMEOUT, PROMOTE_AFTER,
};

/// A request's or response's media type: its `Content-Type` without parameters, lower-cased
/// (`Application/JSON; charset=utf-8` → `application/json`).
pub(crate) fn media_type(headers: &axum::http::HeaderMap) -> Option<std::borrow::Cow<'_, str>> {
    let value = headers.get(CONTENT_TYPE)?;
    if value.as_bytes() == b"application/json" {
        // What nearly every JSON response and request says, exactly.
        return Some(std::borrow::Cow::Borrowed("application/json"));
    }
    let media = value
        .to_str()
        .ok()?
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    // Borrowed as it usually comes: already lower-case.
    Some(if media.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(media.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(media)
    })
}

/// `manager`'s metrics and, given a `server`, its per-route request metrics, in the
/// Prometheus text format: one registry, so one `# EOF`.
pub(crate) fn metrics_text(manager: &Manager, server: Option<&PluginServer>) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    manager.register_metrics(&mut registry);
    listen::register_metrics(&mut registry);
    if let Some(server) = server {
        server.register_metrics(&mut registry);
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

/// The content type of [`Manager::prometheus`]'s text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A router serving `manager`'s metrics: `GET /metrics` and `GET /stats`. Merge or nest it
/// into an application's own router as it likes. [`metrics_router`] adds a server's HTTP
/// metrics.
pub fn router(manager: Manager) -> axum::Router {
    metrics_router(manager, None)
}

/// The operators' router, open to scrapers (no token): `GET /metrics` with `manager`'s
/// metrics and, given a `server`, its per-route request metrics; `GET /stats`. (Called
/// `admin_router` before 0.2.0; the authenticated management API is `Admin`, feature
/// `admin`.)
pub fn metrics_router(manager: Manager, server: Option<PluginServer>) -> axum::Router {
    let metrics = {
        let manager = manager.clone();
        move || async move {
            let text = metrics_text(&manager, server.as_ref());
            ([(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text)
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

/// A router for scrapers outside the host (`gp serve --metrics`): `GET /metrics` only, with
/// `manager`'s metrics and, given a `server`, its per-route request metrics. No `/stats`: its
/// last errors carry what plugins said, which may hold request data. Nothing on it changes
/// anything, and it needs no token.
pub fn scrape_router(manager: Manager, server: Option<PluginServer>) -> axum::Router {
    let metrics = move || async move {
        let text = metrics_text(&manager, server.as_ref());
        ([(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text)
    };
    axum::Router::new().route("/metrics", get(metrics))
}

/// A plugin route in axum's path syntax (`/items/{id}`, `/files/{*rest}`), translating the
/// seed's `:id` and `*rest` parameters.
pub fn axum_path(route: &Route) -> Result<String, ManifestError> {
    let segments = parse_route(&route.route, gp_core::manifest::HttpDriver::Beego)?;
    Ok(routes::matchit_path(&segments))
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

    #[test]
    fn a_media_type_is_lower_case_without_parameters() {
        use axum::http::{header::CONTENT_TYPE, HeaderMap, HeaderValue};
        let of = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
            super::media_type(&headers).map(|t| t.into_owned())
        };
        assert_eq!(of("application/json").as_deref(), Some("application/json"));
        assert_eq!(
            of("Application/JSON; charset=utf-8").as_deref(),
            Some("application/json")
        );
        assert_eq!(of(" text/plain ;q=1").as_deref(), Some("text/plain"));
        assert_eq!(super::media_type(&HeaderMap::new()), None);
    }
}
