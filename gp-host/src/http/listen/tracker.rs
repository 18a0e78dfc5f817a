//! The connections a listener has open, its limit on them, and what it did at the limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;

use super::connection::{Connection, Told};
use crate::util::lock;

/// The connections a listener has open.
pub(super) struct Tracker {
    /// The listener's address, for the log and the metrics.
    name: String,
    max: usize,
    epoch: Instant,
    open: Mutex<Open>,
    /// When a refusal was last logged: at most one line a minute.
    logged: Mutex<Option<Instant>>,
    /// What a refused connection is sent: an HTTP/1.1 503.
    pub(super) refusal: String,
    /// Told when the last open connection is released.
    drained: Notify,
}

#[derive(Default)]
struct Open {
    next: u64,
    connections: HashMap<u64, Arc<Connection>>,
}

impl Tracker {
    pub(super) fn new(name: String, max: usize) -> Tracker {
        let max = max.max(1);
        let body = serde_json::json!({
            "error": format!("the server has as many connections open as it may ({max}), each with a request in flight; retry shortly")
        })
        .to_string();
        let refusal = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        Tracker {
            refusal,
            name,
            max,
            epoch: Instant::now(),
            open: Mutex::new(Open::default()),
            logged: Mutex::new(None),
            drained: Notify::new(),
        }
    }

    /// A place for a new connection: closes the one idle the longest when all places are
    /// taken; `None` (refused) when none is idle.
    pub(super) fn admit(&self) -> Option<(u64, Arc<Connection>)> {
        let mut open = lock(&self.open);
        if open.connections.len() >= self.max {
            let oldest = open
                .connections
                .iter()
                .filter_map(|(id, c)| Some((*id, c.idle_since()?)))
                .min_by_key(|(_, since)| *since)
                .map(|(id, _)| id);
            match oldest.and_then(|id| open.connections.remove(&id)) {
                Some(idle) => {
                    idle.tell(Told::Close);
                    metrics().evicted.get_or_create(&self.label()).inc();
                }
                None => {
                    drop(open);
                    self.refused();
                    return None;
                }
            }
        }
        let conn = Arc::new(Connection::new(self.epoch));
        let id = open.next;
        open.next += 1;
        open.connections.insert(id, Arc::clone(&conn));
        Some((id, conn))
    }

    /// Forgets connection `id`, which has closed (or answered its client for a call stuck in
    /// its task: see `connection::Watch::Answered`). Forgetting one twice is harmless.
    pub(super) fn release(&self, id: u64) {
        let mut open = lock(&self.open);
        open.connections.remove(&id);
        if open.connections.is_empty() {
            self.drained.notify_waiters();
        }
    }

    /// Tells every open connection to finish its requests in flight and close, and returns
    /// when all have closed.
    pub(super) async fn drain(&self) {
        let drained = self.drained.notified();
        tokio::pin!(drained);
        // Registered before the look below: a release after it tells this wait.
        drained.as_mut().enable();
        if self.tell_all(Told::Drain) {
            drained.await;
        }
    }

    /// Tells every open connection `what`; whether any was open.
    pub(super) fn tell_all(&self, what: Told) -> bool {
        let open = lock(&self.open);
        for conn in open.connections.values() {
            conn.tell(what);
        }
        !open.connections.is_empty()
    }

    fn refused(&self) {
        metrics().refused.get_or_create(&self.label()).inc();
        let mut logged = lock(&self.logged);
        if logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
            *logged = Some(Instant::now());
            tracing::warn!(target: "gp::http", listener = self.name, "{} connections are open on {}, each with a request in flight: refusing new ones (counted in gp_http_connections_refused_total; logged at most once a minute; raise the limit with --max-connections)", self.max, self.name);
        }
    }

    fn label(&self) -> ListenerLabels {
        ListenerLabels {
            listener: self.name.clone(),
        }
    }
}

/// What a connection's task leaves behind, undone when the task ends however it ends (a
/// panic in a request's future unwinds through the task): its place in the tracker, and its
/// watcher.
pub(super) struct Ended {
    tracker: Arc<Tracker>,
    id: u64,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl Ended {
    /// For connection `id` of `tracker`.
    pub(super) fn new(tracker: Arc<Tracker>, id: u64) -> Ended {
        Ended {
            tracker,
            id,
            watcher: None,
        }
    }

    /// `watcher`, the task of [`connection::watch`](super::connection::watch), is aborted
    /// when the connection ends.
    pub(super) fn watch(&mut self, watcher: tokio::task::JoinHandle<()>) {
        self.watcher = Some(watcher);
    }
}

impl Drop for Ended {
    fn drop(&mut self) {
        if let Some(watcher) = self.watcher.take() {
            watcher.abort();
        }
        self.tracker.release(self.id);
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: String,
}

/// What the listeners of this process did at their connection limit. Process-wide: a
/// listener is served by a function, with no server to hold its counters.
struct ConnectionMetrics {
    refused: Family<ListenerLabels, Counter>,
    evicted: Family<ListenerLabels, Counter>,
}

fn metrics() -> &'static ConnectionMetrics {
    static METRICS: OnceLock<ConnectionMetrics> = OnceLock::new();
    METRICS.get_or_init(|| ConnectionMetrics {
        refused: Family::default(),
        evicted: Family::default(),
    })
}

/// Registers `gp_http_connections_refused_total` and `gp_http_connections_evicted_total`,
/// by listener, in `registry`.
pub(crate) fn register_metrics(registry: &mut Registry) {
    let http = registry.sub_registry_with_prefix("gp_http");
    http.register(
        "connections_refused",
        "Connections closed at accept: the listener had as many open as it may, none idle",
        metrics().refused.clone(),
    );
    http.register(
        "connections_evicted",
        "Idle connections closed to make room for a new one at the listener's limit",
        metrics().evicted.clone(),
    );
}
