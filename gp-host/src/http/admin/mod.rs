//! The management plane (feature `admin`): a REST API under `/api/v1` and a web GUI under
//! `/ui/`, on the admin listener.
//!
//! Secure by default: every API request needs a bearer token (loopback included: other local
//! users, and any web page in the operator's browser, can reach loopback), a `Host` from an
//! allowlist (DNS rebinding), no foreign `Origin`, and JSON for every change, which is never a
//! `GET`. CORS stays off. The GUI's static files need no token; the page takes it from `gp serve`'s
//! sign-in link (`/ui/#token=…`, a fragment, which browsers never send) or asks for it, and
//! keeps it in the tab's session storage.
//!
//! | method and path | what it does |
//! |---|---|
//! | `GET /api/v1/plugins` | every plugin (serving, loading, disabled or unloaded) and every folder that failed to load |
//! | `GET /api/v1/plugins/{name}` | one plugin |
//! | `POST /api/v1/plugins/{name}/reload` | reload from its folder or package |
//! | `POST /api/v1/plugins/{name}/upgrade` | a `.plg` in the body: verified, written where the plugin comes from, swapped in |
//! | `POST /api/v1/plugins/{name}/rollback` | back to the version before the last upgrade |
//! | `POST /api/v1/plugins/{name}/disable`, `/enable` | unload and keep unloaded (across restarts), or load again |
//! | `DELETE /api/v1/plugins/{name}` | unload (until the next load or restart; `disable` to keep it off) |
//! | `POST /api/v1/plugins/{name}/load` | load an unloaded plugin again, from where it was loaded |
//! | `POST /api/v1/plugins/{name}/invoke` | a test call: `{"label", "values", "timeout_ms"}` → the values |
//! | `POST /api/v1/plugins` | install from `{"url", "sha256"}` (feature `install`; an `oci://` reference with feature `hub`) |
//! | `GET /api/v1/hub`, `/hub/search?q=` | the registry the Hub page searches, and a search there (feature `hub`) |
//! | `GET /api/v1/routes` | the route table and the routes refused, with why |
//! | `GET /api/v1/events` | lifecycle events as server-sent events (`?history=true`: and each new `/history` sample) |
//! | `GET /api/v1/history` | the last 15 minutes of each plugin's call rate, error rate and p99, a sample every 10 s |
//! | `GET /api/v1/healthz`, `/readyz`, `/metrics`, `/openapi.json` | probes, Prometheus text, the API's description |
//!
//! Inside: `token` (the bearer token), `auth` (the guard), `state` (what the plane remembers of the manager's events),
//! `error` (an [`Error`](crate::Error) as an HTTP answer, and request bodies), `views` (the
//! JSON bodies), `plugins` (the plugin endpoints), `hub`, `events` (the event stream), `history` (the charts' ring buffer),
//! `probes` (health, readiness, metrics, routes, the API's description), `gui` (the GUI's
//! static files).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};

use crate::http::PluginServer;
use crate::manager::Manager;

mod auth;
mod error;
mod events;
mod gui;
mod history;
mod hub;
mod plugins;
mod probes;
mod state;
mod token;
mod views;

use auth::refuse;
pub(crate) use state::AdminShared;
use state::Hub;
pub use token::{AdminToken, InvalidToken};

/// The largest `.plg` the upgrade endpoint accepts unless configured otherwise: 256 MiB.
pub const DEFAULT_UPLOAD_LIMIT: usize = 256 << 20;
/// The largest JSON body any other endpoint accepts.
const JSON_LIMIT: usize = 1 << 20;

/// Configures an [`Admin`].
#[must_use = "a builder does nothing until `build` makes the management plane"]
pub struct AdminBuilder {
    manager: Manager,
    server: Option<PluginServer>,
    token: AdminToken,
    read_only: Option<AdminToken>,
    hosts: Vec<String>,
    upload_limit: usize,
    hub: Option<Arc<Hub>>,
    history_interval: std::time::Duration,
}

impl AdminBuilder {
    /// The OCI registry namespace the GUI's Hub page searches (`GET /api/v1/hub/search`),
    /// and the client (its credentials) it and `POST /api/v1/plugins` use for `oci://`
    /// references. Installs go through the same verification as any other.
    #[cfg(feature = "hub")]
    pub fn hub(mut self, namespace: crate::hub::Namespace, client: crate::hub::Client) -> Self {
        self.hub = Some(Arc::new(Hub { namespace, client }));
        self
    }

    /// The plugin server whose routes `GET /api/v1/routes` lists and whose request metrics
    /// `/metrics` includes.
    pub fn server(mut self, server: PluginServer) -> Self {
        self.server = Some(server);
        self
    }

    /// A second token that may only read (`GET`).
    pub fn read_only_token(mut self, token: AdminToken) -> Self {
        self.read_only = Some(token);
        self
    }

    /// Another name the listener answers to in `Host` (besides `127.0.0.1`, `localhost`
    /// and `[::1]`), such as the name a proxy forwards.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.hosts.push(host.into().to_ascii_lowercase());
        self
    }

    /// The largest `.plg` the upgrade endpoint accepts (default [`DEFAULT_UPLOAD_LIMIT`]).
    pub fn upload_limit(mut self, bytes: usize) -> Self {
        self.upload_limit = bytes;
        self
    }

    /// How often the plugins' rates and p99 are sampled for `GET /api/v1/history` and the
    /// GUI's charts (default 10 s; 15 minutes are kept).
    pub fn history_interval(mut self, interval: std::time::Duration) -> Self {
        self.history_interval = interval;
        self
    }

    /// Starts following the manager's events. Build it before loading plugins, so that the
    /// failures of the first load are listed.
    #[must_use = "an Admin that is dropped stops following its manager"]
    pub fn build(self) -> Admin {
        let shared = Arc::new(AdminShared::new(self));
        AdminShared::follow(&shared);
        AdminShared::sample_history(&shared);
        Admin { shared }
    }
}

/// The management API and GUI over a [`Manager`]: mount [`router`](Self::router) on an admin
/// listener (loopback), as `gp serve --admin` does.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use gp_host::http::{Admin, AdminToken, PluginServer};
/// let manager = gp_host::Manager::new("plugins");
/// let server = PluginServer::new(manager.clone());
/// let token = AdminToken::generate();
/// token.write_to("admin-token".as_ref()).expect("token file");
/// let admin = Admin::builder(manager.clone(), token).server(server.clone()).build();
/// print!("{}", manager.load_plugins());
/// admin.mark_ready();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
/// axum::serve(listener, admin.router()).await
/// # }
/// ```
#[derive(Clone)]
pub struct Admin {
    shared: Arc<AdminShared>,
}

impl Admin {
    /// A management plane over `manager`, answering requests that carry `token`.
    pub fn builder(manager: Manager, token: AdminToken) -> AdminBuilder {
        AdminBuilder {
            manager,
            server: None,
            token,
            read_only: None,
            hosts: vec!["127.0.0.1".into(), "localhost".into(), "[::1]".into()],
            upload_limit: DEFAULT_UPLOAD_LIMIT,
            hub: None,
            history_interval: history::DEFAULT_HISTORY_INTERVAL,
        }
    }

    /// Says the first load is done: `GET /api/v1/readyz` answers 200 from now on.
    pub fn mark_ready(&self) {
        self.shared.mark_ready();
    }

    /// The router: `/api/v1/...` (token required), the GUI at `/ui/` (`/` redirects there),
    /// and, without a token, `/metrics` and `/stats` for scrapers and `gp stats`.
    pub fn router(&self) -> axum::Router {
        let shared = Arc::clone(&self.shared);
        let api = axum::Router::new()
            .route("/plugins", get(plugins::list))
            .route("/plugins", post(plugins::install))
            .route("/plugins/{name}", get(plugins::one))
            .route("/plugins/{name}", delete(plugins::unload))
            .route("/plugins/{name}/reload", post(plugins::reload))
            .route("/plugins/{name}/load", post(plugins::load))
            .route("/plugins/{name}/upgrade", post(plugins::upgrade))
            .route("/plugins/{name}/rollback", post(plugins::rollback))
            .route("/plugins/{name}/disable", post(plugins::disable))
            .route("/plugins/{name}/enable", post(plugins::enable))
            .route("/plugins/{name}/invoke", post(plugins::invoke))
            .route("/routes", get(probes::routes))
            .route("/hub", get(hub::info))
            .route("/hub/search", get(hub::search))
            .route("/events", get(events::stream))
            .route("/history", get(probes::history))
            .route("/healthz", get(probes::healthz))
            .route("/readyz", get(probes::readyz))
            .route("/metrics", get(probes::metrics))
            .route("/openapi.json", get(probes::openapi))
            .fallback(|| async {
                refuse(
                    StatusCode::NOT_FOUND,
                    "no such endpoint: see GET /api/v1/openapi.json",
                )
            })
            .layer(DefaultBodyLimit::max(JSON_LIMIT))
            .layer(axum::middleware::map_response_with_state(
                Arc::clone(&shared),
                error::without_paths,
            ))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&shared),
                auth::guard,
            ))
            .with_state(Arc::clone(&shared));
        let open =
            crate::http::metrics_router(self.shared.manager.clone(), self.shared.server.clone());
        axum::Router::new()
            .nest("/api/v1", api)
            .merge(gui::router(Arc::clone(&shared)))
            .merge(open)
    }
}

/// Where the admin listener is, for messages: the GUI's address.
pub fn gui_url(addr: SocketAddr) -> String {
    format!("http://{addr}/ui/")
}

#[cfg(test)]
mod tests {
    /// Every path the API routes is in the OpenAPI document, and nothing else is.
    #[test]
    fn the_openapi_document_lists_every_endpoint() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("openapi.json")).unwrap();
        let mut documented: Vec<String> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "parameters")
                    .map(move |method| format!("{} {path}", method.to_uppercase()))
            })
            .collect();
        documented.sort();
        // Each `.route("PATH", METHOD(...))` of the router above, however rustfmt wraps it.
        let source = include_str!("mod.rs");
        let routes_start = source.find("let api = axum::Router::new()").unwrap();
        let routes_end = source[routes_start..].find(".fallback(").unwrap() + routes_start;
        let mut routed: Vec<String> = source[routes_start..routes_end]
            .split(".route(")
            .skip(1)
            .filter_map(|rest| {
                let rest = rest.trim_start().strip_prefix('"')?;
                let (path, rest) = rest.split_once('"')?;
                let method = rest.trim_start().strip_prefix(',')?.trim_start();
                let method = method.split('(').next()?.trim().to_uppercase();
                Some(format!("{method} {path}"))
            })
            .collect();
        routed.sort();
        assert_eq!(documented, routed);
    }
}
