//! Serving plugins' routes: [`PluginServer`], the request path from socket to plugin call and
//! back.
//!
//! A request is matched against the live [`RouteTable`] on the async side only to find its
//! plugin's limits (body size, timeout, concurrency). The call itself runs on tokio's
//! blocking pool, where the route is looked up again and the plugin version is pinned with
//! it ([`Executor::execute_if`]), so a request that waited never runs a version that no
//! longer declares its route.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use gp_core::http as keys;
use gp_core::manifest::HttpMethod;
use gp_core::Value;
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::http::media_type;
use crate::http::routes::{self, Lookup, RouteEntry, RouteTable};
use crate::http::stats::HttpMetrics;
use crate::registry::{AdmissionId, Manager};
use crate::runtime::context::{CancelToken, Context};
use crate::runtime::events::{Event, SubscriptionId};
use crate::util::bounded;

/// The largest request body a route accepts unless configured otherwise: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// How long a call may take unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest timeout any route may be given.
pub const DEFAULT_MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// How many calls one plugin may run at once unless configured otherwise. tokio's blocking
/// pool has 512 threads: a plugin that hangs holds at most this many of them.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// The longest error message a client is sent; the log has the whole one.
const MAX_CLIENT_MESSAGE: usize = 1024;

/// Limits for one route, overriding the server's.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteLimits {
    /// The call's timeout (capped by the server's maximum).
    pub timeout: Option<Duration>,
    /// The largest body the route accepts, in bytes.
    pub body_limit: Option<usize>,
}

/// Configures a [`PluginServer`].
#[derive(Debug, Clone)]
pub struct PluginServerBuilder {
    manager: Manager,
    body_limit: usize,
    timeout: Duration,
    max_timeout: Duration,
    concurrency: usize,
    plugin_concurrency: HashMap<String, usize>,
    routes: HashMap<(String, String), RouteLimits>,
}

impl PluginServerBuilder {
    /// The largest request body a route accepts (default [`DEFAULT_BODY_LIMIT`]); larger ones
    /// get 413 before the plugin runs.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long a call may take (default [`DEFAULT_TIMEOUT`]): its context's deadline. Past
    /// it the client gets 504 at once; the plugin sees itself cancelled.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest timeout any route may have (default [`DEFAULT_MAX_TIMEOUT`]).
    pub fn max_timeout(mut self, timeout: Duration) -> Self {
        self.max_timeout = timeout;
        self
    }

    /// How many calls each plugin may run at once (default [`DEFAULT_CONCURRENCY`]); a
    /// request beyond it gets 503 with `Retry-After`.
    pub fn concurrency(mut self, calls: usize) -> Self {
        self.concurrency = calls.max(1);
        self
    }

    /// [`concurrency`](Self::concurrency) for plugin `plugin` alone.
    pub fn plugin_concurrency(mut self, plugin: impl Into<String>, calls: usize) -> Self {
        self.plugin_concurrency.insert(plugin.into(), calls.max(1));
        self
    }

    /// Limits for the route of plugin `plugin` with label `label`.
    pub fn route(
        mut self,
        plugin: impl Into<String>,
        label: impl Into<String>,
        limits: RouteLimits,
    ) -> Self {
        self.routes.insert((plugin.into(), label.into()), limits);
        self
    }

    /// Starts following the manager: its plugins' routes are served from now on, and it
    /// refuses plugins whose routes conflict with those serving.
    pub fn build(self) -> PluginServer {
        let manager = self.manager.clone();
        let admission = manager.admit(routes::admit);
        let shared = Arc::new(Shared {
            manager: manager.clone(),
            config: self,
            table: ArcSwap::from_pointee(RouteTable::default()),
            rebuilding: Mutex::new(()),
            slots: Mutex::new(HashMap::new()),
            metrics: HttpMetrics::default(),
            requests: AtomicU64::new(0),
            id_prefix: id_prefix(),
            subscription: Mutex::new(None),
            admission,
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        let subscription = manager.subscribe_lifecycle(move |event| {
            if matches!(
                event,
                Event::Loaded { .. } | Event::Upgraded { .. } | Event::Unloaded { .. }
            ) {
                if let Some(shared) = weak.upgrade() {
                    shared.rebuild();
                }
            }
        });
        *shared.subscription.lock().expect("subscription") = Some(subscription);
        shared.rebuild();
        PluginServer { shared }
    }
}

/// Serves the HTTP routes that a manager's plugins declare (`http_services` in plugin.json).
///
/// Mount [`router`](Self::router) in an axum application, or serve it on its own (as `gp
/// serve` does). Routes follow the manager: a plugin loaded, upgraded or unloaded changes
/// them at once, atomically. A plugin whose routes conflict with those serving is refused at
/// load or upgrade ([`Error::Refused`]), naming both routes; build the server before loading
/// plugins so that every plugin is checked.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use std::net::SocketAddr;
/// let manager = gp_host::Manager::new("plugins");
/// let server = gp_host::http::PluginServer::new(manager.clone());
/// manager.load_plugins();
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
///   JSON, 413 body over the limit, 500 plugin error or panic (`{error, plugin, label,
///   request_id}`, unless the plugin chose a 4xx or 5xx itself), 503 plugin at its concurrency
///   limit (`Retry-After: 1`) or unloaded mid-call, 504 timeout. Every response carries
///   `x-request-id`. Error bodies never hold paths; the log has the whole error.
#[derive(Clone)]
pub struct PluginServer {
    shared: Arc<Shared>,
}

struct Shared {
    manager: Manager,
    config: PluginServerBuilder,
    table: ArcSwap<RouteTable>,
    rebuilding: Mutex<()>,
    /// Each plugin's concurrency slots, kept across upgrades.
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    metrics: HttpMetrics,
    requests: AtomicU64,
    id_prefix: u32,
    subscription: Mutex<Option<SubscriptionId>>,
    admission: AdmissionId,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(id) = self.subscription.lock().ok().and_then(|mut s| s.take()) {
            self.manager.unsubscribe(id);
        }
        self.manager.remove_admission(self.admission);
    }
}

/// A route being served, as [`PluginServer::routes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
        PluginServerBuilder {
            manager,
            body_limit: DEFAULT_BODY_LIMIT,
            timeout: DEFAULT_TIMEOUT,
            max_timeout: DEFAULT_MAX_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            plugin_concurrency: HashMap::new(),
            routes: HashMap::new(),
        }
    }

    /// The router: every plugin route, and `GET /-/healthz`. Serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` to give plugins the client's
    /// address.
    pub fn router(&self) -> axum::Router {
        let healthz = {
            let shared = Arc::clone(&self.shared);
            move || async move {
                let plugins = shared.manager.list().len();
                axum::Json(serde_json::json!({ "status": "ok", "plugins": plugins }))
            }
        };
        axum::Router::new()
            .route("/-/healthz", axum::routing::get(healthz))
            .fallback(handle)
            .with_state(Arc::clone(&self.shared))
    }

    /// Every route being served, in the order they were added (plugins by name).
    pub fn routes(&self) -> Vec<ServedRoute> {
        self.shared
            .table
            .load()
            .entries()
            .iter()
            .map(|e| ServedRoute {
                plugin: e.plugin.clone(),
                method: e.method.as_str().to_owned(),
                route: e.route.clone(),
                label: e.label.clone(),
            })
            .collect()
    }

    /// Registers the HTTP metrics (`gp_http_requests_total`,
    /// `gp_http_request_duration_seconds`, by plugin, label and status) in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.shared.metrics.register(registry);
    }
}

impl Shared {
    /// Rebuilds the route table from the plugins serving now. Serialised, and always reading
    /// the registry afresh, so the last rebuild after a burst of changes sees all of them.
    fn rebuild(&self) {
        let _one_at_a_time = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
        let specs = self.manager.list();
        let (mut table, mut conflicts) =
            RouteTable::build(&specs, |name| self.manager.executor(name).ok());
        for disabled in self.manager.disabled() {
            if let Err(mut found) = table.insert_disabled(&disabled.manifest, &disabled.reason) {
                conflicts.append(&mut found);
            }
        }
        for conflict in conflicts {
            // Only plugins loaded before the server existed can get here: later ones are
            // refused at admission.
            tracing::warn!(target: "gp::http", plugin = conflict.refused.plugin, "route not served: {}", conflict.message());
        }
        self.table.store(Arc::new(table));
    }

    fn slots(&self, plugin: &str) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let limit = self
            .config
            .plugin_concurrency
            .get(plugin)
            .copied()
            .unwrap_or(self.config.concurrency);
        Arc::clone(
            slots
                .entry(plugin.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(limit))),
        )
    }

    fn limits(&self, entry: &RouteEntry) -> (Duration, usize) {
        let route = self
            .config
            .routes
            .get(&(entry.plugin.clone(), entry.label.clone()))
            .copied()
            .unwrap_or_default();
        let timeout = route
            .timeout
            .unwrap_or(self.config.timeout)
            .min(self.config.max_timeout);
        (timeout, route.body_limit.unwrap_or(self.config.body_limit))
    }

    fn request_id(&self, headers: &HeaderMap) -> String {
        let given = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                (1..=128).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            });
        match given {
            Some(id) => id.to_owned(),
            None => {
                let n = self.requests.fetch_add(1, Ordering::Relaxed);
                format!("{:08x}-{:08x}", self.id_prefix, n)
            }
        }
    }
}

/// Distinguishes this process's request ids from another's (or a restart's).
fn id_prefix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    (nanos as u32) ^ std::process::id().rotate_left(16)
}

/// What a request is answered with, before the request id and metrics are added.
struct Answer {
    response: Response,
    plugin: String,
    label: String,
}

impl Answer {
    fn gp(status: StatusCode, error: String, entry: Option<&RouteEntry>, id: &str) -> Answer {
        let (plugin, label) = entry.map_or((String::new(), String::new()), |e| {
            (e.plugin.clone(), e.label.clone())
        });
        let mut body = serde_json::json!({ "error": error, "request_id": id });
        if entry.is_some() {
            body["plugin"] = plugin.clone().into();
            body["label"] = label.clone().into();
        }
        Answer {
            response: (status, axum::Json(body)).into_response(),
            plugin,
            label,
        }
    }
}

/// The fallback handler: every request that is not one of gp's own.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let id = shared.request_id(request.headers());
    let method_text = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let answer = answer(&shared, request, &id).await;
    let Answer {
        mut response,
        plugin,
        label,
    } = answer;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    shared.metrics.observe(&plugin, &label, status, elapsed);
    tracing::info!(target: "gp::access", method = method_text, path, status, plugin, label, request_id = id, micros = elapsed.as_micros() as u64, "request");
    response
}

async fn answer(shared: &Arc<Shared>, request: Request, id: &str) -> Answer {
    let Some(method) = http_method(request.method()) else {
        return Answer::gp(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {} is not served", request.method()),
            None,
            id,
        );
    };
    let path = request.uri().path().to_owned();
    let table = shared.table.load_full();
    let (entry, params) = match table.lookup(method, &path) {
        Lookup::Found { entry, params } => (Arc::clone(entry), params),
        Lookup::WrongMethod { allow } => {
            let mut answer = Answer::gp(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "method {method} is not allowed on {path}; allowed: {}",
                    allow.join(", ")
                ),
                None,
                id,
            );
            if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                answer.response.headers_mut().insert(header::ALLOW, value);
            }
            return answer;
        }
        Lookup::NotFound => {
            return Answer::gp(
                StatusCode::NOT_FOUND,
                format!("no route for {method} {path}"),
                None,
                id,
            )
        }
    };
    drop(table);
    if let Some(reason) = &entry.disabled {
        return Answer::gp(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("plugin `{}` is disabled: {reason}", entry.plugin),
            Some(&entry),
            id,
        );
    }
    let (timeout, body_limit) = shared.limits(&entry);
    let deadline = Instant::now() + timeout;

    // The body, bounded: refused from its Content-Length when that says too much, else cut
    // off while reading.
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        Answer::gp(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than this route's limit of {body_limit} bytes"),
            Some(&entry),
            id,
        )
    };
    if declared.is_some_and(|n| n > body_limit as u64) {
        return too_large();
    }
    let body = match axum::body::to_bytes(body, body_limit).await {
        Ok(body) => body,
        Err(error) => {
            let over = std::error::Error::source(&error)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                return too_large();
            }
            return Answer::gp(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {error}"),
                Some(&entry),
                id,
            );
        }
    };
    let json = match parse_json(&parts.headers, &body) {
        Ok(json) => json,
        Err(error) => {
            return Answer::gp(
                StatusCode::BAD_REQUEST,
                format!("the request body is not valid JSON: {error}"),
                Some(&entry),
                id,
            )
        }
    };

    let Ok(permit) = shared.slots(&entry.plugin).try_acquire_owned() else {
        let mut answer = Answer::gp(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "plugin `{}` is running as many calls as it may; retry shortly",
                entry.plugin
            ),
            Some(&entry),
            id,
        );
        answer
            .response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return answer;
    };

    let remote = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let mut ctx = Context::new().with_label(entry.label.clone());
    ctx.set_deadline(Some(deadline));
    fill_request(
        &mut ctx, &parts, method, &path, &entry, params, body, json, &remote, id,
    );

    // Cancels the call if this future is dropped before it finishes: the client went away.
    let cancel = CancelOnDrop(Some(ctx.cancel_token()));
    let worker = {
        let shared = Arc::clone(shared);
        let (path, entry) = (path.clone(), Arc::clone(&entry));
        tokio::task::spawn_blocking(move || {
            // The slot is held until the call returns, even after a 504.
            let _permit = permit;
            let outcome = call(&shared, method, &path, &entry, &mut ctx);
            (ctx, outcome)
        })
    };
    let outcome = tokio::time::timeout_at(deadline.into(), worker).await;
    let mut cancel = cancel;
    let answer = match outcome {
        Err(_elapsed) => {
            // The plugin sees its deadline passed too; the cancel makes it certain.
            cancel.fire();
            timed_out(&entry, id, timeout)
        }
        Ok(Err(join)) => {
            tracing::error!(target: "gp::http", plugin = entry.plugin, "call task failed: {join}");
            Answer::gp(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the call failed in the host".into(),
                Some(&entry),
                id,
            )
        }
        Ok(Ok((mut ctx, outcome))) => respond(&mut ctx, outcome, &entry, id, timeout),
    };
    cancel.disarm();
    answer
}

/// Runs on the blocking pool: resolves the route again and pins the version that declares
/// it. `None` when the route is gone (unloaded or upgraded away meanwhile).
fn call(
    shared: &Shared,
    method: HttpMethod,
    path: &str,
    first: &RouteEntry,
    ctx: &mut Context,
) -> Option<Result<(), Error>> {
    if ctx.is_cancelled() || ctx.is_past_deadline() {
        // Waited for a pool thread past the deadline (the client has its 504), or the
        // client left: the call would only burn a thread.
        return Some(Err(Error::DeadlineExceeded {
            plugin: first.plugin.clone(),
        }));
    }
    let table = shared.table.load();
    let entry = match table.lookup(method, path) {
        Lookup::Found { entry, .. } if entry.plugin == first.plugin => entry,
        _ => return None,
    };
    let executor = entry.executor.as_ref()?;
    executor.execute_if(ctx, |spec| entry.declared_by(spec))
}

struct CancelOnDrop(Option<CancelToken>);

impl CancelOnDrop {
    fn fire(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.fire();
    }
}

fn http_method(method: &Method) -> Option<HttpMethod> {
    HttpMethod::parse(method.as_str()).ok()
}

fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|t| {
        t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
    })
}

fn parse_json(headers: &HeaderMap, body: &Bytes) -> Result<Option<Value>, serde_json::Error> {
    if body.is_empty() || !is_json(headers) {
        return Ok(None);
    }
    serde_json::from_slice::<serde_json::Value>(body).map(|j| Some(Value::from(j)))
}

fn string_map(pairs: impl Iterator<Item = (String, String)>) -> Value {
    let mut map = abi_stable::std_types::RHashMap::new();
    for (k, v) in pairs {
        map.insert(k.into(), Value::from(v));
    }
    Value::Map(map)
}

fn list_map(pairs: impl Iterator<Item = (String, String)>) -> Value {
    let mut map: abi_stable::std_types::RHashMap<abi_stable::std_types::RString, Value> =
        abi_stable::std_types::RHashMap::new();
    for (k, v) in pairs {
        let key = abi_stable::std_types::RString::from(k);
        match map.get_mut(&key) {
            Some(Value::List(list)) => list.push(Value::from(v)),
            _ => {
                map.insert(key, Value::List(vec![Value::from(v)].into()));
            }
        }
    }
    Value::Map(map)
}

#[allow(clippy::too_many_arguments)]
fn fill_request(
    ctx: &mut Context,
    parts: &axum::http::request::Parts,
    method: HttpMethod,
    path: &str,
    entry: &RouteEntry,
    params: Vec<(String, String)>,
    body: Bytes,
    json: Option<Value>,
    remote: &str,
    id: &str,
) {
    ctx.set(keys::METHOD, method.as_str());
    ctx.set(keys::PATH, path);
    ctx.set(keys::ROUTE, entry.route.as_str());
    ctx.set(keys::PARAMS, string_map(params.into_iter()));
    let query = parts.uri.query().unwrap_or_default();
    ctx.set(
        keys::QUERY,
        list_map(
            form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        ),
    );
    ctx.set(
        keys::HEADERS,
        list_map(parts.headers.iter().map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })),
    );
    ctx.set(keys::BODY, Value::Bytes(body.to_vec().into()));
    if let Some(json) = json {
        ctx.set(keys::JSON, json);
    }
    ctx.set(keys::REMOTE_ADDR, remote);
    ctx.set(keys::REQUEST_ID, id);
}

/// Headers a plugin may not set: hop-by-hop ones (RFC 9110 §7.6.1) and the length, which
/// the server computes.
fn dropped_header(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

fn timed_out(entry: &RouteEntry, id: &str, timeout: Duration) -> Answer {
    Answer::gp(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "plugin `{}` did not answer within {} ms",
            entry.plugin,
            timeout.as_millis()
        ),
        Some(entry),
        id,
    )
}

/// The response for a call that ran (or found its route gone).
fn respond(
    ctx: &mut Context,
    outcome: Option<Result<(), Error>>,
    entry: &RouteEntry,
    id: &str,
    timeout: Duration,
) -> Answer {
    let chosen_status = ctx.get(keys::STATUS).and_then(Value::as_i64);
    let error = match outcome {
        None => {
            return Answer::gp(
                StatusCode::NOT_FOUND,
                format!(
                    "no route for {} {}: its plugin is no longer serving it",
                    entry.method, entry.route
                ),
                None,
                id,
            )
        }
        Some(Ok(())) => None,
        Some(Err(error)) => Some(error),
    };
    if let Some(error) = error {
        tracing::warn!(target: "gp::http", plugin = entry.plugin, label = entry.label, request_id = id, "{error}");
        if matches!(error, Error::DeadlineExceeded { .. }) {
            // The plugin noticed its deadline before the timer did: the same answer.
            return timed_out(entry, id, timeout);
        }
        let plugin_chose = chosen_status.is_some_and(|s| (400..=599).contains(&s));
        if !plugin_chose || !matches!(error, Error::Failed { .. }) {
            let (status, message) = match &error {
                Error::Failed { message, .. } => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    bounded(message.clone(), MAX_CLIENT_MESSAGE),
                ),
                Error::Panicked { .. } => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the plugin panicked; the host log has the message".to_owned(),
                ),
                Error::Cancelled { .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the call was cancelled".to_owned(),
                ),
                Error::Crashed { .. } => (
                    StatusCode::BAD_GATEWAY,
                    "the plugin crashed (it runs isolated: the next request starts it again); the host log has the cause".to_owned(),
                ),
                Error::CircuitOpen { .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the plugin crashed too often and is failed until it is loaded again".to_owned(),
                ),
                Error::Unloaded { .. } | Error::NotFound { .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the plugin was unloaded while answering; retry".to_owned(),
                ),
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the call failed in the host".to_owned(),
                ),
            };
            return Answer::gp(status, message, Some(entry), id);
        }
    }
    match build_response(ctx, chosen_status) {
        Ok(response) => Answer {
            response,
            plugin: entry.plugin.clone(),
            label: entry.label.clone(),
        },
        Err(problem) => {
            tracing::warn!(target: "gp::http", plugin = entry.plugin, label = entry.label, request_id = id, "invalid response: {problem}");
            Answer::gp(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the plugin's response is invalid: {problem}"),
                Some(entry),
                id,
            )
        }
    }
}

/// The response the plugin set in `ctx`.
fn build_response(ctx: &mut Context, status: Option<i64>) -> Result<Response, String> {
    let body = ctx.remove(keys::RESPONSE_BODY);
    let status = match status {
        Some(s) => u16::try_from(s)
            .ok()
            .filter(|s| (100..=599).contains(s))
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| format!("status {s} is not 100 to 599"))?,
        None if body.is_none() => StatusCode::NO_CONTENT,
        None => StatusCode::OK,
    };
    let mut headers = HeaderMap::new();
    match ctx.remove(keys::RESPONSE_HEADERS) {
        None | Some(Value::Null) => {}
        Some(Value::Map(map)) => {
            for entry in map.iter() {
                let (name, value) = (entry.0.as_str(), entry.1);
                let lower = name.to_ascii_lowercase();
                if dropped_header(&lower) {
                    continue;
                }
                let header_name = HeaderName::from_bytes(lower.as_bytes())
                    .map_err(|_| format!("{name:?} is not a header name"))?;
                let values: Vec<&Value> = match value {
                    Value::List(list) => list.iter().collect(),
                    other => vec![other],
                };
                for value in values {
                    let text = match value {
                        Value::String(s) => s.to_string(),
                        Value::Int(i) => i.to_string(),
                        other => {
                            return Err(format!(
                                "header {name:?} is a {}, not a string",
                                other.kind()
                            ))
                        }
                    };
                    let value = HeaderValue::from_str(&text).map_err(|_| {
                        format!("header {name:?} has a value that is not allowed in a header")
                    })?;
                    headers.append(header_name.clone(), value);
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "{} is a {}, not a map of header names to values",
                keys::RESPONSE_HEADERS,
                other.kind()
            ))
        }
    }
    let json_type =
        media_type(&headers).is_some_and(|t| t == "application/json" || t.ends_with("+json"));
    let (default_type, bytes): (&str, Vec<u8>) = match body {
        None | Some(Value::Null) if !json_type => ("", Vec::new()),
        Some(Value::String(s)) if !json_type => {
            ("text/plain; charset=utf-8", s.into_bytes().into_vec())
        }
        Some(Value::Bytes(b)) => ("application/octet-stream", b.into_vec()),
        Some(value) => (
            "application/json",
            serde_json::to_vec(&value.to_json()).unwrap_or_default(),
        ),
        None => ("application/json", b"null".to_vec()),
    };
    if !default_type.is_empty() && !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(default_type));
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}
