//! The management plane (feature `admin`): a REST API under `/api/v1` and a web GUI under
//! `/ui/`, on the admin listener.
//!
//! Secure by default: every API request needs a bearer token (loopback included: other local
//! users, and any web page in the operator's browser, can reach loopback), a `Host` from an
//! allowlist (DNS rebinding), no foreign `Origin`, and JSON for every change, which is never a
//! `GET`. CORS stays off. The GUI's static files need no token; the page asks for it once and
//! keeps it in session storage.
//!
//! | method and path | what it does |
//! |---|---|
//! | `GET /api/v1/plugins` | every plugin (serving, disabled or unloaded) and every folder that failed to load |
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
//! | `GET /api/v1/events` | lifecycle events as server-sent events |
//! | `GET /api/v1/healthz`, `/readyz`, `/metrics`, `/openapi.json` | probes, Prometheus text, the API's description |

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::http::{PluginServer, OPENMETRICS_CONTENT_TYPE};
use crate::metrics::PluginSummary;
use crate::registry::report::Synced;
use crate::registry::Manager;
use crate::runtime::context::Context;
use crate::runtime::events::{Event, SubscriptionId};
use crate::runtime::reaper::{UnloadHook, UnloadReport};
use crate::runtime::spec::Spec;
use crate::Upgrade;

mod auth;
mod gui;

pub use auth::AdminToken;
use auth::{refuse, Caller};

/// The largest `.plg` the upgrade endpoint accepts unless configured otherwise: 256 MiB.
pub const DEFAULT_UPLOAD_LIMIT: usize = 256 << 20;
/// The largest JSON body any other endpoint accepts.
const JSON_LIMIT: usize = 1 << 20;
/// How many lifecycle events the API remembers for `GET /api/v1/events` newcomers.
const RECENT_EVENTS: usize = 100;

/// Configures an [`Admin`].
pub struct AdminBuilder {
    manager: Manager,
    server: Option<PluginServer>,
    token: AdminToken,
    read_only: Option<AdminToken>,
    hosts: Vec<String>,
    upload_limit: usize,
    hub: Option<Arc<Hub>>,
}

/// The registry the Hub page searches and installs from.
pub(crate) struct Hub {
    #[cfg(feature = "hub")]
    namespace: crate::hub::Namespace,
    #[cfg(feature = "hub")]
    client: crate::hub::Client,
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

    /// Starts following the manager's events. Build it before loading plugins, so that the
    /// failures of the first load are listed.
    pub fn build(self) -> Admin {
        let (events, _) = tokio::sync::broadcast::channel(256);
        let shared = Arc::new(AdminShared {
            manager: self.manager.clone(),
            server: self.server,
            token: self.token,
            read_only: self.read_only,
            allowed_hosts: self.hosts,
            upload_limit: self.upload_limit,
            hub: self.hub,
            failures: Mutex::new(BTreeMap::new()),
            previous: Mutex::new(HashMap::new()),
            unloaded_from: Mutex::new(HashMap::new()),
            refused: Mutex::new(BTreeMap::new()),
            recent: Mutex::new(VecDeque::new()),
            events,
            ready: AtomicBool::new(false),
            subscription: Mutex::new(None),
        });
        let weak = Arc::downgrade(&shared);
        let id = self.manager.subscribe_lifecycle(move |event| {
            if let Some(shared) = weak.upgrade() {
                shared.record(event);
            }
        });
        *shared.subscription.lock().expect("subscription") = Some(id);
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
/// manager.load_plugins();
/// admin.mark_ready();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9464").await?;
/// axum::serve(listener, admin.router()).await
/// # }
/// ```
#[derive(Clone)]
pub struct Admin {
    shared: Arc<AdminShared>,
}

pub(crate) struct AdminShared {
    manager: Manager,
    server: Option<PluginServer>,
    pub(crate) token: AdminToken,
    pub(crate) read_only: Option<AdminToken>,
    pub(crate) allowed_hosts: Vec<String>,
    upload_limit: usize,
    hub: Option<Arc<Hub>>,
    /// The last load failure of each folder or package that has no plugin loaded from it.
    failures: Mutex<BTreeMap<PathBuf, String>>,
    /// Each plugin's version before its last upgrade.
    previous: Mutex<HashMap<String, Spec>>,
    /// Where each unloaded plugin was loaded from, to load it again.
    unloaded_from: Mutex<HashMap<String, PathBuf>>,
    /// Plugins refused for their routes (an admission check), by origin, with why.
    refused: Mutex<BTreeMap<PathBuf, String>>,
    recent: Mutex<VecDeque<serde_json::Value>>,
    events: tokio::sync::broadcast::Sender<serde_json::Value>,
    ready: AtomicBool,
    subscription: Mutex<Option<SubscriptionId>>,
}

impl Drop for AdminShared {
    fn drop(&mut self) {
        if let Some(id) = self.subscription.lock().ok().and_then(|mut s| s.take()) {
            self.manager.unsubscribe(id);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl AdminShared {
    fn record(&self, event: &Event<'_>) {
        let json = match event {
            Event::Loaded { spec } => {
                lock(&self.failures).remove(&spec.origin);
                lock(&self.refused).remove(&spec.origin);
                lock(&self.unloaded_from).remove(spec.name());
                serde_json::json!({"event": "loaded", "plugin": spec.name(), "version": spec.version().to_string()})
            }
            Event::LoadFailed { path, error } => {
                lock(&self.failures).insert(path.to_path_buf(), error.to_string());
                if let Error::Refused { reason, .. } = error {
                    lock(&self.refused).insert(path.to_path_buf(), reason.clone());
                }
                serde_json::json!({"event": "load_failed", "origin": path, "error": error.to_string()})
            }
            Event::Upgraded { from, to } => {
                lock(&self.failures).remove(&to.origin);
                lock(&self.refused).remove(&to.origin);
                lock(&self.previous).insert(to.name().to_owned(), Spec::clone(from));
                serde_json::json!({"event": "upgraded", "plugin": to.name(), "from": from.version().to_string(), "to": to.version().to_string()})
            }
            Event::UpgradeRefused { name, error } => {
                if let Error::UpgradeRefused { reason, .. } = error {
                    if let Error::Refused { path, reason, .. } = &**reason {
                        lock(&self.refused).insert(path.clone(), reason.clone());
                    }
                }
                serde_json::json!({"event": "upgrade_refused", "plugin": name, "error": error.to_string()})
            }
            Event::Unloaded { report } => {
                lock(&self.unloaded_from)
                    .insert(report.spec.name().to_owned(), report.spec.origin.clone());
                serde_json::json!({"event": "unloaded", "plugin": report.spec.name(), "version": report.spec.version().to_string()})
            }
            _ => return,
        };
        let mut json = json;
        json["at_unix_ms"] = now_ms().into();
        {
            let mut recent = lock(&self.recent);
            if recent.len() == RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back(json.clone());
        }
        let _ = self.events.send(json);
    }
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
        }
    }

    /// Says the first load is done: `GET /api/v1/readyz` answers 200 from now on.
    pub fn mark_ready(&self) {
        self.shared.ready.store(true, Ordering::Release);
    }

    /// The router: `/api/v1/...` (token required), the GUI at `/ui/` (`/` redirects there),
    /// and, without a token, `/metrics` and `/stats` for scrapers and `gp stats`.
    pub fn router(&self) -> axum::Router {
        let shared = Arc::clone(&self.shared);
        let api = axum::Router::new()
            .route("/plugins", get(list_plugins))
            .route("/plugins", post(install))
            .route("/plugins/{name}", get(one_plugin))
            .route("/plugins/{name}", delete(unload))
            .route("/plugins/{name}/reload", post(reload))
            .route("/plugins/{name}/load", post(load))
            .route(
                "/plugins/{name}/upgrade",
                post(upgrade)
                    .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(
                        self.shared.upload_limit,
                    ))
                    .layer::<_, std::convert::Infallible>(axum::Extension(UploadLimit(
                        self.shared.upload_limit,
                    ))),
            )
            .route("/plugins/{name}/rollback", post(rollback))
            .route("/plugins/{name}/disable", post(disable))
            .route("/plugins/{name}/enable", post(enable))
            .route("/plugins/{name}/invoke", post(invoke))
            .route("/routes", get(routes))
            .route("/hub", get(hub_info))
            .route("/hub/search", get(hub_search))
            .route("/events", get(events))
            .route(
                "/healthz",
                get(|| async { Json(serde_json::json!({"status": "ok"})) }),
            )
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/openapi.json", get(openapi))
            .fallback(|| async {
                refuse(
                    StatusCode::NOT_FOUND,
                    "no such endpoint: see GET /api/v1/openapi.json",
                )
            })
            .layer(DefaultBodyLimit::max(JSON_LIMIT))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&shared),
                auth::guard,
            ))
            .with_state(Arc::clone(&shared));
        let open =
            crate::http::admin_router(self.shared.manager.clone(), self.shared.server.clone());
        axum::Router::new()
            .nest("/api/v1", api)
            .merge(gui::router(Arc::clone(&shared)))
            .merge(open)
    }
}

/// An error as the API answers it: the library's message, and the status its kind means.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        refuse(self.0, self.1)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let status = match (&error, error.kind()) {
            (Error::NotFound { .. }, _) => StatusCode::NOT_FOUND,
            (Error::Cancelled { .. } | Error::DeadlineExceeded { .. }, _) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            (Error::Download { .. } | Error::Hub { .. }, _) => StatusCode::BAD_GATEWAY,
            (_, ErrorKind::Registry) => StatusCode::CONFLICT,
            (
                _,
                ErrorKind::Source
                | ErrorKind::Verify
                | ErrorKind::Abi
                | ErrorKind::Build
                | ErrorKind::Hook,
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            (_, ErrorKind::Call) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, error.to_string())
    }
}

type ApiResult<T = Json<serde_json::Value>> = Result<T, ApiError>;

/// A request's body, refused (too large, unreadable) with a JSON error like every other one.
struct Body(Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Body, ApiError> {
        let limit = request
            .extensions()
            .get::<UploadLimit>()
            .map_or(JSON_LIMIT, |l| l.0);
        Bytes::from_request(request, state)
            .await
            .map(Body)
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body is larger than this endpoint accepts ({limit} bytes)"
                    ),
                ),
                status => ApiError(status, rejection.body_text()),
            })
    }
}

/// The body limit of the route a request is for, for [`Body`]'s message.
#[derive(Clone, Copy)]
struct UploadLimit(usize);

/// Runs a blocking registry change off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a registry change does not panic")
}

fn log_change(caller: &Caller, action: &str, plugin: &str) {
    tracing::info!(target: "gp::admin", token = caller.token_id, action, plugin, "management change");
}

/// One plugin as the API shows it.
#[derive(Serialize)]
struct PluginView {
    name: String,
    /// `serving`, `draining` (unloaded, calls still running), `unloaded` or `disabled`.
    state: &'static str,
    version: Option<String>,
    description: Option<String>,
    origin: Option<PathBuf>,
    sha256: Option<String>,
    abi_version: Option<String>,
    hooks: Hooks,
    routes: Vec<RouteView>,
    metrics: Option<PluginSummary>,
    /// The latency histogram: upper bound (ns) and count of each non-empty bucket.
    histogram: Vec<(u64, u64)>,
    disabled: Option<DisabledView>,
    rollback_to: Option<String>,
    /// Set when the plugin runs in a runner process of its own.
    #[cfg(feature = "isolate")]
    isolation: Option<crate::isolation::IsolationStatus>,
}

#[derive(Serialize)]
struct Hooks {
    on_load: bool,
    on_unload: bool,
}

#[derive(Serialize)]
struct RouteView {
    method: String,
    route: String,
    label: String,
}

#[derive(Serialize)]
struct DisabledView {
    reason: String,
    since_unix: u64,
}

fn routes_of(manifest: &gp_core::manifest::Manifest) -> Vec<RouteView> {
    manifest
        .http_services
        .as_ref()
        .map_or_else(Vec::new, |http| {
            http.routes
                .iter()
                .map(|r| RouteView {
                    method: r.method.as_str().to_owned(),
                    route: r.route.clone(),
                    label: r.label.clone(),
                })
                .collect()
        })
}

fn views(shared: &AdminShared) -> Vec<PluginView> {
    let manager = &shared.manager;
    let stats = manager.stats();
    let previous = lock(&shared.previous).clone();
    let mut views: BTreeMap<String, PluginView> = BTreeMap::new();
    for stat in &stats {
        let spec = manager.get_plugin(&stat.name).ok().map(|(s, _)| s);
        views.insert(
            stat.name.clone(),
            PluginView {
                name: stat.name.clone(),
                state: match (&spec, stat.in_flight) {
                    (Some(_), _) => "serving",
                    // Unloaded, its last calls still running on the old version.
                    (None, 1..) => "draining",
                    (None, 0) => "unloaded",
                },
                version: spec.as_ref().map(|s| s.version().to_string()),
                description: spec.as_ref().and_then(|s| s.manifest.description.clone()),
                origin: spec.as_ref().map(|s| s.origin.clone()),
                sha256: spec.as_ref().map(|s| s.sha256.clone()),
                abi_version: spec.as_ref().map(|s| s.abi_version.clone()),
                hooks: Hooks {
                    on_load: spec.as_ref().is_some_and(|s| s.has_on_load),
                    on_unload: spec.as_ref().is_some_and(|s| s.has_on_unload),
                },
                routes: spec
                    .as_ref()
                    .map_or_else(Vec::new, |s| routes_of(&s.manifest)),
                metrics: Some(stat.summary()),
                histogram: stat.latency.buckets().collect(),
                disabled: None,
                rollback_to: previous.get(&stat.name).map(|p| p.version().to_string()),
                #[cfg(feature = "isolate")]
                isolation: manager
                    .executor(&stat.name)
                    .ok()
                    .and_then(|e| e.isolation()),
            },
        );
    }
    for off in manager.disabled() {
        let view = views.entry(off.name.clone()).or_insert_with(|| PluginView {
            name: off.name.clone(),
            state: "disabled",
            version: None,
            description: None,
            origin: None,
            sha256: None,
            abi_version: None,
            hooks: Hooks {
                on_load: false,
                on_unload: false,
            },
            routes: Vec::new(),
            metrics: None,
            histogram: Vec::new(),
            disabled: None,
            rollback_to: None,
            #[cfg(feature = "isolate")]
            isolation: None,
        });
        view.state = "disabled";
        view.version = Some(off.manifest.version.to_string());
        view.description = off.manifest.description.clone();
        view.origin = Some(off.origin.clone());
        view.routes = routes_of(&off.manifest);
        view.disabled = Some(DisabledView {
            reason: off.reason,
            since_unix: off.since,
        });
    }
    views.into_values().collect()
}

async fn list_plugins(State(shared): State<Arc<AdminShared>>) -> ApiResult {
    let (plugins, failures) = blocking(move || {
        let failures: Vec<serde_json::Value> = lock(&shared.failures)
            .iter()
            .map(|(origin, error)| serde_json::json!({"origin": origin, "error": error}))
            .collect();
        (views(&shared), failures)
    })
    .await;
    Ok(Json(
        serde_json::json!({ "plugins": plugins, "failures": failures }),
    ))
}

async fn one_plugin(State(shared): State<Arc<AdminShared>>, Path(name): Path<String>) -> ApiResult {
    let view = blocking(move || {
        views(&shared)
            .into_iter()
            .find(|v| v.name == name)
            .ok_or(name)
    })
    .await;
    match view {
        Ok(view) => Ok(Json(serde_json::to_value(view).expect("a view serialises"))),
        Err(name) => Err(Error::NotFound { name }.into()),
    }
}

fn synced_json(synced: &Synced) -> serde_json::Value {
    match synced {
        Synced::Loaded(spec) => {
            serde_json::json!({"result": "loaded", "version": spec.version().to_string()})
        }
        Synced::Upgraded(u) => {
            serde_json::json!({"result": "upgraded", "from": u.from.version().to_string(), "to": u.to.version().to_string()})
        }
        Synced::Unchanged(spec) => {
            serde_json::json!({"result": "unchanged", "version": spec.version().to_string()})
        }
        Synced::Unloaded => serde_json::json!({"result": "unloaded"}),
        Synced::Nothing => serde_json::json!({"result": "nothing"}),
    }
}

fn upgrade_json(upgrade: &Upgrade) -> serde_json::Value {
    match upgrade {
        Upgrade::Upgraded(u) => {
            serde_json::json!({"result": "upgraded", "from": u.from.version().to_string(), "to": u.to.version().to_string()})
        }
        Upgrade::Unchanged(spec) => {
            serde_json::json!({"result": "unchanged", "version": spec.version().to_string()})
        }
    }
}

fn unload_json(report: &UnloadReport) -> serde_json::Value {
    let hook = match &report.on_unload {
        UnloadHook::Absent => "absent".to_owned(),
        UnloadHook::Succeeded => "succeeded".to_owned(),
        UnloadHook::Failed(e) => format!("failed: {e}"),
        UnloadHook::Deferred => "deferred".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    };
    serde_json::json!({
        "result": "unloaded",
        "version": report.spec.version().to_string(),
        "waited_ms": report.waited.as_millis() as u64,
        "still_running": report.still_running,
        "on_unload": hook,
    })
}

async fn reload(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    log_change(&caller, "reload", &name);
    let upgrade = blocking(move || shared.manager.reload(&name)).await?;
    Ok(Json(upgrade_json(&upgrade)))
}

async fn load(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    let origin = lock(&shared.unloaded_from).get(&name).cloned();
    let Some(origin) = origin else {
        let (status, message) = if shared.manager.get_plugin(&name).is_ok() {
            (
                StatusCode::CONFLICT,
                format!("plugin `{name}` is loaded already"),
            )
        } else {
            (
                StatusCode::NOT_FOUND,
                format!("plugin `{name}` was not unloaded by this server, so where it came from is not known: put it in the plugin directory"),
            )
        };
        return Err(ApiError(status, message));
    };
    log_change(&caller, "load", &name);
    let synced = blocking(move || shared.manager.sync(&origin)).await?;
    Ok(Json(synced_json(&synced)))
}

async fn upgrade(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Body(body): Body,
) -> ApiResult {
    log_change(&caller, "upgrade", &name);
    let synced = blocking(move || -> Result<Synced, Error> {
        let base = shared.manager.base_dir();
        std::fs::create_dir_all(base).map_err(|e| Error::io(base, e))?;
        let upload = tempfile::Builder::new()
            .prefix(".upload-")
            .suffix(".plg")
            .tempfile_in(base)
            .map_err(|e| Error::io(base, e))?;
        std::fs::write(upload.path(), &body).map_err(|e| Error::io(upload.path(), e))?;
        shared.manager.replace_with_package(&name, upload.path())
    })
    .await
    .map_err(|error| match error {
        // The upload's temporary name means nothing to the client.
        Error::Package { reason, .. } => ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("package refused: {reason}"),
        ),
        other => other.into(),
    })?;
    Ok(Json(synced_json(&synced)))
}

async fn rollback(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    log_change(&caller, "rollback", &name);
    let upgrade = blocking(move || shared.manager.roll_back(&name)).await?;
    Ok(Json(upgrade_json(&upgrade)))
}

async fn unload(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    log_change(&caller, "unload", &name);
    let report = blocking(move || shared.manager.unload(&name)).await?;
    Ok(Json(unload_json(&report)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DisableBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn disable(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Body(body): Body,
) -> ApiResult {
    let body: DisableBody = parse_json(&body)?;
    log_change(&caller, "disable", &name);
    let reason = body.reason.unwrap_or_else(|| {
        format!(
            "disabled through the management API (token {})",
            caller.token_id
        )
    });
    let report = blocking(move || shared.manager.disable(&name, &reason)).await?;
    Ok(Json(unload_json(&report)))
}

async fn enable(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult {
    log_change(&caller, "enable", &name);
    let synced = blocking(move || shared.manager.enable(&name)).await?;
    Ok(Json(synced_json(&synced)))
}

/// The body, parsed; an empty body reads as `{}`.
fn parse_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("the request body is not what this endpoint takes: {e}"),
        )
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct InvokeBody {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    values: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

async fn invoke(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Body(body): Body,
) -> ApiResult {
    let body: InvokeBody = parse_json(&body)?;
    log_change(&caller, "invoke", &name);
    let executor = shared.manager.executor(&name)?;
    let timeout = Duration::from_millis(body.timeout_ms.unwrap_or(10_000).min(60_000));
    let values = blocking(move || {
        let mut ctx = Context::new().with_timeout(timeout);
        ctx.set_label(body.label);
        for (key, value) in body.values {
            ctx.set(key, crate::Value::from(value));
        }
        executor.execute(&mut ctx).map(|()| ctx.to_json())
    })
    .await?;
    Ok(Json(serde_json::json!({ "values": values })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "install"), allow(dead_code))]
struct InstallBody {
    url: String,
    #[serde(default)]
    sha256: Option<String>,
}

async fn install(
    State(shared): State<Arc<AdminShared>>,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body: InstallBody = parse_json(&body)?;
    if body.url.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "send {\"url\": \"https://.../plugin.plg\", \"sha256\": \"...\"}".into(),
        ));
    }
    log_change(&caller, "install", &body.url);
    #[cfg(feature = "install")]
    {
        let spec = blocking(move || {
            shared.manager.install(
                &body.url,
                &crate::InstallOptions {
                    sha256: body.sha256,
                    #[cfg(feature = "hub")]
                    hub: shared.hub.as_ref().map(|hub| &hub.client),
                    ..Default::default()
                },
            )
        })
        .await?;
        Ok((
            StatusCode::CREATED,
            Json(
                serde_json::json!({"result": "installed", "plugin": spec.name(), "version": spec.version().to_string()}),
            ),
        ))
    }
    #[cfg(not(feature = "install"))]
    {
        let _ = shared;
        Err(ApiError(
            StatusCode::NOT_IMPLEMENTED,
            "this host was built without gp-host's `install` feature: it cannot download plugins"
                .into(),
        ))
    }
}

/// `GET /hub`: the registry namespace the Hub page searches, or `null`.
async fn hub_info(State(shared): State<Arc<AdminShared>>) -> ApiResult {
    #[cfg(feature = "hub")]
    let registry = shared.hub.as_ref().map(|hub| hub.namespace.to_string());
    #[cfg(not(feature = "hub"))]
    let registry: Option<String> = shared.hub.as_ref().map(|_| String::new());
    Ok(Json(serde_json::json!({ "registry": registry })))
}

#[derive(Deserialize)]
#[cfg_attr(not(feature = "hub"), allow(dead_code))]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /hub/search?q=`: the plugins in the configured registry namespace whose name or
/// description holds `q`, each with the reference (digest included) of its newest version.
async fn hub_search(
    State(shared): State<Arc<AdminShared>>,
    axum::extract::Query(query): axum::extract::Query<SearchQuery>,
) -> ApiResult {
    #[cfg(feature = "hub")]
    {
        let Some(hub) = shared.hub.clone() else {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                "no registry is configured: start gp serve with --registry HOST[:PORT]/NAMESPACE (or GP_REGISTRY)".into(),
            ));
        };
        let found = blocking(move || hub.client.search(&hub.namespace, &query.q)).await?;
        let skipped: Vec<serde_json::Value> = found
            .skipped
            .iter()
            .map(|(repository, reason)| serde_json::json!({"repository": repository, "reason": reason}))
            .collect();
        let registry = shared.hub.as_ref().map(|hub| hub.namespace.to_string());
        Ok(Json(serde_json::json!({
            "registry": registry,
            "plugins": found.plugins,
            "skipped": skipped,
        })))
    }
    #[cfg(not(feature = "hub"))]
    {
        let _ = (shared, query);
        Err(ApiError(
            StatusCode::NOT_IMPLEMENTED,
            "this host was built without gp-host's `hub` feature: it cannot search registries"
                .into(),
        ))
    }
}

async fn routes(State(shared): State<Arc<AdminShared>>) -> ApiResult {
    let routes = shared
        .server
        .as_ref()
        .map(PluginServer::routes)
        .unwrap_or_default();
    let refused: Vec<serde_json::Value> = lock(&shared.refused)
        .iter()
        .map(|(origin, reason)| serde_json::json!({"origin": origin, "reason": reason}))
        .collect();
    Ok(Json(
        serde_json::json!({ "routes": routes, "refused": refused }),
    ))
}

async fn readyz(State(shared): State<Arc<AdminShared>>) -> Response {
    if shared.ready.load(Ordering::Acquire) {
        Json(serde_json::json!({"ready": true, "plugins": shared.manager.list().len()}))
            .into_response()
    } else {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the first load of the plugin directory is not finished",
        )
    }
}

async fn metrics(State(shared): State<Arc<AdminShared>>) -> Response {
    let text = crate::http::metrics_text(&shared.manager, shared.server.as_ref());
    ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// Server-sent events: the recent events first, then each one as it happens. A browser's
/// `EventSource` cannot send a token, so the GUI reads this with a streaming `fetch`.
async fn events(State(shared): State<Arc<AdminShared>>) -> Response {
    use axum::response::sse::{Event as Sse, KeepAlive};
    let recent: Vec<serde_json::Value> = lock(&shared.recent).iter().cloned().collect();
    let receiver = shared.events.subscribe();
    let backlog = futures_util::stream::iter(recent);
    let live = futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    use futures_util::StreamExt;
    let stream = backlog
        .chain(live)
        .map(|event| Ok::<_, std::convert::Infallible>(Sse::default().data(event.to_string())));
    axum::response::sse::Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
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
