//! Per-route request metrics: how many requests each route answered with each status, and
//! how long they took.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    plugin: String,
    label: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    plugin: String,
    label: String,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to ~100 s, doubling.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_05, 2.0, 22,
    ))
}

/// The HTTP layer's metrics. Requests that matched no route count under empty `plugin` and
/// `label`.
pub(crate) struct HttpMetrics {
    requests: Family<StatusLabels, Counter>,
    latency: Latency,
    /// Calls run on the async workers, and on the blocking pool.
    pub(crate) inline: Counter,
    pub(crate) pool: Counter,
    /// Of the calls on the async workers, those run in their request's own task.
    pub(crate) in_request_task: Counter,
    /// Calls of isolated plugins sent to their runners in batches, and the batches.
    pub(crate) batched: Counter,
    pub(crate) batches: Counter,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            inline: Counter::default(),
            pool: Counter::default(),
            in_request_task: Counter::default(),
            batched: Counter::default(),
            batches: Counter::default(),
        }
    }
}

/// A route's own handles on its metrics, taken from the families at its first request and
/// kept with the route: a request then counts itself with no label strings built, hashed or
/// looked up (which was two allocations and two lookups a request).
#[derive(Default, Debug)]
pub(crate) struct RouteStats {
    latency: OnceLock<Histogram>,
    /// The counters of the first statuses the route answered; the rare others are looked up.
    statuses: [OnceLock<(u16, Counter)>; 4],
}

impl HttpMetrics {
    /// Counts a request of a route (`plugin`, `label`, and the route's `stats`).
    pub(crate) fn observe_route(
        &self,
        plugin: &str,
        label: &str,
        stats: &RouteStats,
        status: u16,
        elapsed: Duration,
    ) {
        stats
            .latency
            .get_or_init(|| self.histogram(plugin, label))
            .observe(elapsed.as_secs_f64());
        for slot in &stats.statuses {
            let (answered, counter) =
                slot.get_or_init(|| (status, self.counter(plugin, label, status)));
            if *answered == status {
                counter.inc();
                return;
            }
        }
        self.counter(plugin, label, status).inc();
    }

    fn counter(&self, plugin: &str, label: &str, status: u16) -> Counter {
        self.requests
            .get_or_create(&StatusLabels {
                plugin: plugin.to_owned(),
                label: label.to_owned(),
                status,
            })
            .clone()
    }

    fn histogram(&self, plugin: &str, label: &str) -> Histogram {
        self.latency
            .get_or_create(&RouteLabels {
                plugin: plugin.to_owned(),
                label: label.to_owned(),
            })
            .clone()
    }

    /// Counts a request that reached no route (under empty `plugin` and `label`).
    pub(crate) fn observe_unrouted(&self, status: u16, elapsed: Duration) {
        self.counter("", "", status).inc();
        self.histogram("", "").observe(elapsed.as_secs_f64());
    }

    pub(crate) fn register(&self, registry: &mut Registry) {
        let http = registry.sub_registry_with_prefix("gp_http");
        http.register(
            "requests",
            "HTTP requests answered, by plugin, route label and status",
            self.requests.clone(),
        );
        http.register_with_unit(
            "request_duration",
            "Time from receiving a request to its response, by plugin and route label",
            prometheus_client::registry::Unit::Seconds,
            self.latency.clone(),
        );
        http.register(
            "calls_inline",
            "Plugin calls run on the async workers (plugins whose recent calls were all fast)",
            self.inline.clone(),
        );
        http.register(
            "calls_in_request_task",
            "Of the calls on the async workers, those run in their request's own task (plain HTTP/1 connections that answer a stuck call's 504 themselves)",
            self.in_request_task.clone(),
        );
        http.register(
            "calls_pool",
            "Plugin calls run on tokio's blocking pool",
            self.pool.clone(),
        );
        http.register(
            "calls_batched",
            "Calls of isolated plugins sent to their runners in batches",
            self.batched.clone(),
        );
        http.register(
            "call_batches",
            "Batches of calls sent to isolated plugins' runners",
            self.batches.clone(),
        );
    }
}
