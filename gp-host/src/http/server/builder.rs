//! [`PluginServerBuilder`]: a plugin server's limits and their defaults.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::access::AccessWriter;
use super::lane::{DEFAULT_INLINE_BUDGET, DEFAULT_QUEUE, DEFAULT_QUEUE_WAIT};
use super::{PluginServer, Shared};
use crate::http::routes::check::RouteCheck;
use crate::manager::Manager;
use crate::util::lock;

/// The largest request body a route accepts unless configured otherwise: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;
/// How long a client may take to send a request's body unless configured otherwise: past
/// it the request gets 408 (a body sent a byte at a time cannot hold a connection and its
/// memory for longer).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many bytes of request bodies the server holds at once, across all requests, unless
/// configured otherwise: 128 MiB. A body that would take it past gets 503.
pub const DEFAULT_BODY_BUDGET: usize = 128 << 20;
/// How long a call may take unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest timeout any route may be given.
pub const DEFAULT_MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// How many calls one plugin may run at once unless configured otherwise. tokio's blocking
/// pool has 512 threads: a plugin that hangs holds at most this many of them.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// Limits for one route, overriding the server's.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct RouteLimits {
    /// The call's timeout (capped by the server's maximum).
    pub timeout: Option<Duration>,
    /// The largest body the route accepts, in bytes.
    pub body_limit: Option<usize>,
}

impl RouteLimits {
    /// The same limits, with the call's timeout `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> RouteLimits {
        self.timeout = Some(timeout);
        self
    }

    /// The same limits, with the largest body `bytes`.
    #[must_use]
    pub fn with_body_limit(mut self, bytes: usize) -> RouteLimits {
        self.body_limit = Some(bytes);
        self
    }
}

/// Configures a [`PluginServer`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` makes the server"]
pub struct PluginServerBuilder {
    manager: Manager,
    pub(super) body_limit: usize,
    pub(super) body_timeout: Duration,
    pub(super) body_budget: usize,
    pub(super) timeout: Duration,
    pub(super) max_timeout: Duration,
    pub(super) concurrency: usize,
    pub(super) plugin_concurrency: HashMap<String, usize>,
    /// Per plugin, per label: looked up by a request's `&str`s, with no key built.
    pub(super) routes: HashMap<String, HashMap<String, RouteLimits>>,
    pub(super) queue: usize,
    pub(super) queue_wait: Duration,
    pub(super) inline_budget: Option<Duration>,
    pub(super) access_log: bool,
    pub(super) access_writer: Option<AccessWriter>,
}

impl PluginServerBuilder {
    pub(super) fn new(manager: Manager) -> PluginServerBuilder {
        PluginServerBuilder {
            manager,
            body_limit: DEFAULT_BODY_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            body_budget: DEFAULT_BODY_BUDGET,
            timeout: DEFAULT_TIMEOUT,
            max_timeout: DEFAULT_MAX_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
            plugin_concurrency: HashMap::new(),
            routes: HashMap::new(),
            queue: DEFAULT_QUEUE,
            queue_wait: DEFAULT_QUEUE_WAIT,
            inline_budget: Some(DEFAULT_INLINE_BUDGET),
            access_log: true,
            access_writer: None,
        }
    }

    /// The manager whose plugins it serves.
    pub(super) fn manager(&self) -> &Manager {
        &self.manager
    }

    /// The largest request body a route accepts (default [`DEFAULT_BODY_LIMIT`]); larger ones
    /// get 413 before the plugin runs.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long a client may take to send a request's body, from the end of its head
    /// (default [`DEFAULT_BODY_TIMEOUT`]); past it the request gets 408 and the plugin does
    /// not run.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How many bytes of request bodies the server may hold at once, across all requests
    /// (default [`DEFAULT_BODY_BUDGET`]). A body is counted from the moment it is read (its
    /// whole `Content-Length` at once, when it declares one) until its request is answered;
    /// one that would take the total past the budget gets 503 with `Retry-After`. A route
    /// whose body limit is over the budget can still take bodies up to the budget.
    pub fn body_budget(mut self, bytes: usize) -> Self {
        self.body_budget = bytes;
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
    /// request beyond it waits in the plugin's queue (see [`queue`](Self::queue)).
    pub fn concurrency(mut self, calls: usize) -> Self {
        self.concurrency = calls.max(1);
        self
    }

    /// How many requests may wait for one plugin's slots (default [`DEFAULT_QUEUE`]), and
    /// for how long each (default [`DEFAULT_QUEUE_WAIT`]; never past its deadline, which
    /// answers 504). A request that finds the queue full, or waits its time out, gets 503
    /// with `Retry-After`. A queue of 0 refuses at once.
    pub fn queue(mut self, requests: usize, wait: Duration) -> Self {
        self.queue = requests;
        self.queue_wait = wait;
        self
    }

    /// How fast a plugin's calls must be to run on the async workers rather than tokio's
    /// blocking pool (default [`DEFAULT_INLINE_BUDGET`]; `None`: always on the pool). A
    /// plugin moves there after a run of calls within it, and back at the first call over
    /// it; at most all workers but one run such calls at once (see the module
    /// documentation of `http::server`).
    pub fn inline_budget(mut self, budget: Option<Duration>) -> Self {
        self.inline_budget = budget;
        self
    }

    /// Whether every request is logged (target `gp::access`, level INFO; default on). The
    /// line is written by a thread of its own, off the request's path.
    pub fn access_log(mut self, on: bool) -> Self {
        self.access_log = on;
        self
    }

    /// Writes the access lines to `writer` rather than as `tracing` events (and whatever the
    /// subscriber's filter says): one line per request, `method=GET path=/items/7 status=200
    /// plugin=items label=items.get request_id=… micros=42`, a batch of lines a `write_all`,
    /// by the access log's thread. An event through a formatting subscriber costs several
    /// times the line itself; this is for a host whose log is text anyway (`gp serve` uses
    /// it). Values are written as they are: none can hold a space or a line break.
    pub fn access_log_to(self, writer: impl Write + Send + 'static) -> Self {
        self.access_log_to_prefixed(writer, "")
    }

    /// [`access_log_to`](Self::access_log_to), each line starting with `prefix` (`gp serve`
    /// gives its log's ` INFO gp::access: request `): written with the line, so that the
    /// writer need not look for where lines start.
    pub fn access_log_to_prefixed(
        mut self,
        writer: impl Write + Send + 'static,
        prefix: &str,
    ) -> Self {
        self.access_log = true;
        self.access_writer = Some(AccessWriter {
            out: Arc::new(Mutex::new(writer)),
            prefix: Arc::from(prefix),
        });
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
        self.routes
            .entry(plugin.into())
            .or_default()
            .insert(label.into(), limits);
        self
    }

    /// Starts following the manager: its plugins' routes are served from now on, and it
    /// refuses plugins whose routes conflict with those serving (plugins already loaded are
    /// checked now, as [`Manager::admit`] says).
    #[must_use = "a server that is dropped stops following its manager and serves nothing"]
    pub fn build(self) -> PluginServer {
        let manager = self.manager.clone();
        // The manager runs it under its change lock, so the lock on the check's own table is
        // never contended; the check follows what the manager gives it, not the served table.
        let check = Mutex::new(RouteCheck::default());
        let loading = manager.loading_probe();
        let admission = manager.admit_borrowing(move |candidate, serving| {
            lock(&check)
                .check(candidate, serving, &loading)
                .map_err(Into::into)
        });
        let shared = Arc::new(Shared::new(self, admission));
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        let subscription = manager.subscribe_lifecycle(move |event| {
            if let Some(shared) = weak.upgrade() {
                shared.follow_event(event);
            }
        });
        shared.follow(subscription);
        shared.rebuild();
        PluginServer { shared }
    }
}
