//! Serving plugins' routes: [`PluginServer`], the request path from socket to plugin call and
//! back.
//!
//! A request is matched against the live route table on the async side to find its plugin's
//! limits (body size, timeout, concurrency). The call itself runs in a task of its own (on
//! the async workers or tokio's blocking pool, as the plugin's `lane` says), or in the
//! request's own task where its connection can answer for it (`listen::rescue`); the route
//! is looked up again and the plugin version is pinned with it
//! ([`Executor::execute_if`](crate::Executor::execute_if)), so a request that waited never
//! runs a version that no longer declares its route.
//!
//! The server answers through an axum router ([`PluginServer::router`], for applications
//! that mount it) or on its own as a listener's [`App`](crate::http::App) (`gp serve`).
//!
//! - this file: the server, its state, and keeping its route table in step with the manager
//!   (one plugin's routes per change, from the manager's state when the change is applied);
//! - `builder`: its settings and their defaults;
//! - `handler`: a request, from its route to a call ready to run, done before any future
//!   when nothing needs waiting for;
//! - `call`: the call, in its request's own task, a task of its own or a batch, answered at
//!   its deadline;
//! - `request`: a request turned into a call's context;
//! - `response`: a call's context (or its error) turned into a response.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::http::routes::live::LiveTable;
use crate::http::routes::{PluginRoutes, RouteEntry};
use crate::http::stats::HttpMetrics;
use crate::manager::{AdmissionId, Manager};
use crate::runtime::events::{Event, SubscriptionId};
use crate::util::lock;
use lane::{InlineCalls, Lane};

mod access;
#[cfg(feature = "isolate")]
mod batch;
mod builder;
mod call;
mod handler;
mod id;
mod lane;
mod request;
mod response;
mod watchdog;

pub use builder::{
    PluginServerBuilder, RouteLimits, DEFAULT_BODY_BUDGET, DEFAULT_BODY_LIMIT,
    DEFAULT_BODY_TIMEOUT, DEFAULT_CONCURRENCY, DEFAULT_MAX_TIMEOUT, DEFAULT_TIMEOUT,
};
pub use lane::{DEFAULT_INLINE_BUDGET, DEFAULT_QUEUE, DEFAULT_QUEUE_WAIT, PROMOTE_AFTER};

/// Serves the HTTP routes that a manager's plugins declare (`http_services` in plugin.json).
///
/// Mount [`router`](Self::router) in an axum application, or serve it on its own (as `gp
/// serve` does). Routes follow the manager: a plugin loaded, upgraded or unloaded changes
/// them at once, atomically. A plugin whose routes conflict with those serving is refused at
/// load or upgrade ([`Error::Refused`](crate::Error::Refused)), naming both routes. Build the
/// server before or after loading plugins, as suits the application: plugins already loaded
/// when it is built are checked then, in name order, as a load would have checked them (see
/// [`Manager::admit`]).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use std::net::SocketAddr;
/// let manager = gp_host::Manager::new("plugins");
/// let server = gp_host::http::PluginServer::new(manager.clone());
/// print!("{}", manager.load_plugins());
/// let app = axum::Router::new().merge(server.router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
/// # }
/// ```
///
/// What a request becomes, and what comes back:
/// - the call's label is the route's label; the request is in the context under the keys of
///   [`gp_core::http`] (gp-sdk: `ctx.request()?`);
/// - the response is what the plugin set: status (default 200, or 204 without a body),
///   headers, body (a string as `text/plain`, bytes as `application/octet-stream`, anything
///   else as JSON, or as JSON whatever the plugin set a JSON content type for); hop-by-hop
///   headers and `content-length` are dropped;
/// - 404 no route (or its plugin is gone), 405 another method (with `Allow`), 400 malformed
///   JSON, 408 body not received within its timeout, 413 body over the limit, 500 plugin
///   error or panic (`{error, plugin, label, request_id}`, unless the plugin chose a 4xx or
///   5xx itself), 503 plugin at its concurrency limit (`Retry-After: 1`), request bodies in
///   flight at the server's budget (`Retry-After: 1`) or plugin unloaded mid-call, 504
///   timeout. Every response carries `x-request-id`. Error bodies never hold paths; the log
///   has the whole error.
#[derive(Clone)]
pub struct PluginServer {
    shared: Arc<Shared>,
}

/// A server's state, shared by its router, its handlers and its lifecycle subscription.
pub(super) struct Shared {
    pub(super) manager: Manager,
    pub(super) config: PluginServerBuilder,
    /// The routes served now, changed a plugin at a time as the manager's events arrive.
    pub(super) table: LiveTable,
    /// Held while the manager's state is read and put in the table, so that the last change
    /// applied read the newest state.
    changing: Mutex<()>,
    /// Each plugin's lane (slots, queue, where its calls run), kept across upgrades. Found
    /// per request: FxHash, since plugin names are not chosen by clients.
    lanes: Mutex<rustc_hash::FxHashMap<String, Arc<Lane>>>,
    /// The calls running on the async workers, across plugins.
    pub(super) inline: Arc<InlineCalls>,
    /// The access log's writer, if requests are logged.
    access: Option<access::AccessLog>,
    pub(super) metrics: HttpMetrics,
    /// The bytes of request bodies held now, across all requests.
    bodies: request::BodyBudget,
    pub(super) requests: AtomicU64,
    pub(super) id_prefix: u32,
    subscription: Mutex<Option<SubscriptionId>>,
    admission: AdmissionId,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(id) = lock(&self.subscription).take() {
            self.manager.unsubscribe(id);
        }
        self.manager.remove_admission(self.admission);
    }
}

/// A route being served, as [`PluginServer::routes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ServedRoute {
    /// The plugin.
    pub plugin: String,
    /// The method.
    pub method: String,
    /// The route as the plugin declared it.
    pub route: String,
    /// The label the plugin is called with.
    pub label: String,
}

impl PluginServer {
    /// A server over `manager` with default limits.
    pub fn new(manager: Manager) -> PluginServer {
        PluginServer::builder(manager).build()
    }

    /// A server over `manager`, configured.
    pub fn builder(manager: Manager) -> PluginServerBuilder {
        PluginServerBuilder::new(manager)
    }

    /// The router: every plugin route, `GET /-/healthz` (alive) and `GET /-/readyz` (ready:
    /// see [`Manager::readiness`](crate::Manager::readiness)). Serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` to give plugins the client's
    /// address.
    pub fn router(&self) -> axum::Router {
        let healthz = {
            let shared = Arc::clone(&self.shared);
            move || async move { healthz(&shared) }
        };
        let readyz = {
            let shared = Arc::clone(&self.shared);
            move || async move { readyz(&shared) }
        };
        axum::Router::new()
            .route("/-/healthz", axum::routing::get(healthz))
            .route("/-/readyz", axum::routing::get(readyz))
            .fallback(handler::handle)
            .with_state(Arc::clone(&self.shared))
    }

    /// Every route being served, plugins by name, each plugin's routes in the order it
    /// declares them.
    pub fn routes(&self) -> Vec<ServedRoute> {
        self.shared
            .table
            .load()
            .entries()
            .map(|e| ServedRoute {
                plugin: e.plugin.clone(),
                method: e.method.as_str().to_owned(),
                route: e.route.clone(),
                label: e.label.to_string(),
            })
            .collect()
    }

    /// Registers the HTTP metrics (`gp_http_requests_total`,
    /// `gp_http_request_duration_seconds`, by plugin, label and status) in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.shared.metrics.register(registry);
        self.shared.bodies.register(registry);
    }

    /// The bytes of request bodies the server holds now (see
    /// [`PluginServerBuilder::body_budget`]).
    pub fn body_bytes_in_flight(&self) -> u64 {
        self.shared.bodies.in_flight()
    }
}

/// `GET /-/healthz`: alive, and how many plugins are loaded (counted, not copied: `list`
/// would copy every plugin's spec, all its routes, for every probe).
fn healthz(shared: &Shared) -> axum::response::Response {
    let plugins = shared.manager.serving_specs().len();
    axum::response::IntoResponse::into_response(axum::Json(
        serde_json::json!({ "status": "ok", "plugins": plugins }),
    ))
}

/// The admin API's `/readyz` when the admin was given no plugin server: the manager's
/// readiness alone (a server's `/-/readyz` also waits for required plugins' routes).
#[cfg(feature = "admin")]
pub(crate) fn readiness_response(manager: &crate::Manager) -> axum::response::Response {
    readiness_of(manager.readiness())
}

#[cfg(feature = "admin")]
impl PluginServer {
    /// What the server's `/-/readyz` answers (the admin API's `/readyz` answers the same).
    pub(crate) fn readyz_response(&self) -> axum::response::Response {
        readyz(&self.shared)
    }
}

/// `GET /-/readyz`'s answer for `readiness`: 200 while the first load is done and every
/// required plugin serves, 503 otherwise (with `Retry-After`); the body is
/// [`Manager::readiness`](crate::Manager::readiness), refusals by followers included. No token:
/// what it says is for load balancers and orchestrators, and holds no secret.
fn readiness_of(readiness: crate::manager::Readiness) -> axum::response::Response {
    let status = if readiness.ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = serde_json::to_value(&readiness).expect("readiness is JSON");
    if let Some(reason) = readiness.reason() {
        body["reason"] = reason.into();
    }
    let mut response = axum::response::IntoResponse::into_response((status, axum::Json(body)));
    if !readiness.ready {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    response
}

/// The manager's readiness, and one thing more: a required plugin serves once its routes do.
/// The table follows the manager's events, which come a moment after a version goes into
/// its slot (after the load is logged, too): in between, the manager says the plugin serves
/// while its routes still answer 503 (loading) or 404.
fn readyz(shared: &Shared) -> axum::response::Response {
    let mut readiness = shared.manager.readiness();
    if readiness.ready {
        let table = shared.table.load();
        readiness.missing = readiness
            .required
            .iter()
            .filter(|name| {
                let declares = shared
                    .manager
                    .existing_slot(name)
                    .and_then(|slot| slot.spec())
                    .is_some_and(|spec| {
                        spec.manifest
                            .http_services
                            .as_ref()
                            .is_some_and(|http| !http.routes.is_empty())
                    });
                declares && !table.serves(name)
            })
            .cloned()
            .collect();
        readiness.ready = readiness.missing.is_empty();
    }
    readiness_of(readiness)
}

/// The server on a listener of its own (`gp serve`'s plugin listener), answering as
/// [`router`](PluginServer::router) does without a router's layers in front: `/-/healthz` and
/// `/-/readyz` (`GET` and `HEAD`, 405 otherwise), and every other path through the route table.
impl crate::http::App for PluginServer {
    fn answer(
        self,
        request: axum::extract::Request<hyper::body::Incoming>,
        peer: std::net::SocketAddr,
    ) -> impl std::future::Future<Output = axum::response::Response> + Send + 'static {
        self.answer_on(request, peer, crate::http::Rescue::none())
    }

    /// A promoted plugin's call runs in the request's own task, its 504 left to the
    /// connection (see `call::run_here`).
    fn answer_on(
        self,
        request: axum::extract::Request<hyper::body::Incoming>,
        peer: std::net::SocketAddr,
        rescue: crate::http::Rescue,
    ) -> impl std::future::Future<Output = axum::response::Response> + Send + 'static {
        use futures_util::future::Either;
        let path = request.uri().path();
        if path == "/-/healthz" || path == "/-/readyz" {
            let method = request.method();
            let response =
                if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
                    if path == "/-/healthz" {
                        healthz(&self.shared)
                    } else {
                        readyz(&self.shared)
                    }
                } else {
                    let mut refused = axum::response::IntoResponse::into_response(
                        axum::http::StatusCode::METHOD_NOT_ALLOWED,
                    );
                    refused.headers_mut().insert(
                        axum::http::header::ALLOW,
                        axum::http::HeaderValue::from_static("GET,HEAD"),
                    );
                    refused
                };
            return Either::Left(std::future::ready(response));
        }
        Either::Right(handler::answer(
            self.shared,
            request.map(axum::body::Body::new),
            Some(peer),
            rescue,
        ))
    }
}

impl Shared {
    fn new(config: PluginServerBuilder, admission: AdmissionId) -> Shared {
        let inline = Arc::new(InlineCalls::new(config.inline_budget));
        let access = config
            .access_log
            .then(|| access::AccessLog::start(config.access_writer.clone()));
        Shared {
            manager: config.manager().clone(),
            bodies: request::BodyBudget::new(config.body_budget),
            config,
            table: LiveTable::default(),
            changing: Mutex::new(()),
            lanes: Mutex::default(),
            inline,
            access,
            metrics: HttpMetrics::default(),
            requests: AtomicU64::new(0),
            id_prefix: id::id_prefix(),
            subscription: Mutex::new(None),
            admission,
        }
    }

    /// Keeps the lifecycle subscription that changes the table, to end it with the server.
    fn follow(&self, subscription: SubscriptionId) {
        *lock(&self.subscription) = Some(subscription);
    }

    /// Puts the routes of every plugin serving, disabled or loading now in the table, and
    /// takes out any others: when the server starts following the manager (the only change
    /// that costs every plugin's routes).
    pub(super) fn rebuild(&self) {
        let _one_at_a_time = lock(&self.changing);
        let mut changes: Vec<PluginRoutes> = self
            .manager
            .list()
            .iter()
            .map(|spec| {
                PluginRoutes::serving(&spec.manifest, self.manager.executor(spec.name()).ok())
            })
            .collect();
        changes.extend(
            self.manager
                .disabled()
                .iter()
                .map(|d| PluginRoutes::disabled(&d.manifest, &d.reason)),
        );
        changes.extend(
            self.manager
                .loading()
                .iter()
                .map(|spec| PluginRoutes::loading(&spec.manifest)),
        );
        let stale: Vec<PluginRoutes> = self
            .table
            .load()
            .plugin_names()
            .filter(|name| !changes.iter().any(|c| c.plugin == *name))
            .map(PluginRoutes::none)
            .collect();
        changes.extend(stale);
        self.change(changes);
    }

    /// Follows one of the manager's lifecycle events: the plugin it is about gets the routes
    /// the manager has for it now (so events applied late or out of order still leave the
    /// table as the manager is). Costs that plugin's routes.
    pub(super) fn follow_event(&self, event: &Event<'_>) {
        let plugin = match event {
            Event::Loaded { spec } | Event::Upgraded { to: spec, .. } => spec.name(),
            Event::Unloaded { report } => report.spec.name(),
            Event::Loading { spec } => spec.name(),
            Event::LoadAbandoned { plugin } => plugin,
            Event::LoadFailed { .. } => {
                // An enable whose load failed leaves a reservation whose marker is gone: look
                // again at the plugins the table reserves routes for (a few, if any).
                let _one_at_a_time = lock(&self.changing);
                let reserved = self.table.load().reserved_plugins();
                if !reserved.is_empty() {
                    let changes = reserved.iter().map(|name| self.routes_of(name)).collect();
                    self.change(changes);
                }
                return;
            }
            _ => return,
        };
        let _one_at_a_time = lock(&self.changing);
        let routes = self.routes_of(plugin);
        self.change(vec![routes]);
    }

    /// The routes the manager has for `plugin` now: its serving version's, its reservation
    /// if it is disabled or loading, or none. Reads the manager's specs where they are
    /// (`get_plugin` and `loading_plugin` copy them, manifest and all: twice per load).
    fn routes_of(&self, plugin: &str) -> PluginRoutes {
        if let Some(slot) = self.manager.existing_slot(plugin) {
            if let Some(spec) = slot.spec() {
                let executor = crate::runtime::executor::Executor::new(slot);
                return PluginRoutes::serving(&spec.manifest, Some(executor));
            }
        }
        if let Some(disabled) = self.manager.disabled_plugin(plugin) {
            return PluginRoutes::disabled(&disabled.manifest, &disabled.reason);
        }
        match self.manager.loading_spec(plugin) {
            Some(loading) => PluginRoutes::loading(&loading.manifest),
            None => PluginRoutes::none(plugin),
        }
    }

    fn change(&self, changes: Vec<PluginRoutes>) {
        for conflict in self.table.change(changes) {
            // Only a plugin that admission could not refuse gets here (a disabled plugin
            // whose reserved routes clash with one loaded meanwhile, say).
            tracing::warn!(target: "gp::http", plugin = conflict.refused.plugin, "route not served: {}", conflict.message());
        }
    }

    /// `plugin`'s lane.
    pub(super) fn lane(&self, plugin: &str) -> Arc<Lane> {
        let mut lanes = lock(&self.lanes);
        if let Some(lane) = lanes.get(plugin) {
            return Arc::clone(lane);
        }
        let limit = self
            .config
            .plugin_concurrency
            .get(plugin)
            .copied()
            .unwrap_or(self.config.concurrency);
        let lane = Arc::new(Lane::new(limit));
        lanes.insert(plugin.to_owned(), Arc::clone(&lane));
        lane
    }

    /// The timeout and body limit of `entry`'s route.
    pub(super) fn limits(&self, entry: &RouteEntry) -> (Duration, usize) {
        let routes = &self.config.routes;
        let route = if routes.is_empty() {
            RouteLimits::default()
        } else {
            routes
                .get(entry.plugin.as_str())
                .and_then(|labels| labels.get(&*entry.label))
                .copied()
                .unwrap_or_default()
        };
        let timeout = route
            .timeout
            .unwrap_or(self.config.timeout)
            .min(self.config.max_timeout);
        (timeout, route.body_limit.unwrap_or(self.config.body_limit))
    }
}
