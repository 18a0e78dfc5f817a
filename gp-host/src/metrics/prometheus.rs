//! Prometheus exposition of [`PluginStats`] through `prometheus-client` (feature `metrics`).

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;

use crate::metrics::histogram::upper_bound;
use crate::metrics::stats::{Latency, PluginStats};
use crate::util::short_hash;

/// Exposes a manager's metrics to a `prometheus_client` registry at each scrape.
pub(crate) struct ManagerCollector {
    pub(crate) stats: Arc<dyn Fn() -> Vec<PluginStats> + Send + Sync>,
}

impl fmt::Debug for ManagerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ManagerCollector")
    }
}

struct Counter(u64);
impl EncodeMetric for Counter {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), fmt::Error> {
        encoder.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&self.0, None)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

struct Gauge(i64);
impl EncodeMetric for Gauge {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), fmt::Error> {
        encoder.encode_gauge(&self.0)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

struct Histogram<'a>(&'a Latency);
impl EncodeMetric for Histogram<'_> {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.0.sum.as_secs_f64(),
            self.0.count(),
            &prometheus_buckets(self.0),
            None,
        )
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl Collector for ManagerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let stats = (self.stats)();
        type Field = fn(&PluginStats) -> u64;
        let counters: [(&str, &str, Field); 6] = [
            ("calls", "Calls that returned", |s| s.calls),
            ("errors", "Calls that returned an error", |s| s.errors),
            ("panics", "Calls that panicked", |s| s.panics),
            ("loads", "Versions loaded into an empty slot", |s| s.loads),
            ("upgrades", "Upgrades from one version to another", |s| {
                s.upgrades
            }),
            ("unloads", "Unloads", |s| s.unloads),
        ];
        for (name, help, field) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for s in &stats {
                let labels = [("plugin", s.name.as_str())];
                Counter(field(s)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family =
            encoder.encode_descriptor("in_flight", "Calls running now", None, MetricType::Gauge)?;
        for s in &stats {
            let labels = [("plugin", s.name.as_str())];
            Gauge(s.in_flight as i64).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "loaded",
            "1 with the serving version as a label, 0 if unloaded",
            None,
            MetricType::Gauge,
        )?;
        for s in &stats {
            let version = s
                .version
                .as_ref()
                .map(|v| v.to_string())
                .unwrap_or_default();
            let labels = [("plugin", s.name.as_str()), ("version", version.as_str())];
            Gauge(i64::from(s.version.is_some())).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "build_info",
            "1 for the build serving, its library's SHA-256 (16 hex digits) as a label",
            None,
            MetricType::Gauge,
        )?;
        for s in &stats {
            if let Some(build) = &s.build {
                let labels = [("plugin", s.name.as_str()), ("build", short_hash(build))];
                Gauge(1).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "call_duration_seconds",
            "Call latency",
            None,
            MetricType::Histogram,
        )?;
        for s in &stats {
            let labels = [("plugin", s.name.as_str())];
            Histogram(&s.latency).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Buckets for Prometheus: (upper bound in seconds, count), at powers of two of
/// nanoseconds from 256 ns (the sub-buckets merged), the last one `+Inf`.
fn prometheus_buckets(latency: &Latency) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = Vec::new();
    let mut pending = 0;
    for (i, n) in latency.buckets.iter().enumerate() {
        pending += n;
        let bound = upper_bound(i);
        let at_power = bound == u64::MAX || (bound >= 255 && (bound + 1).is_power_of_two());
        if at_power {
            let le = if bound == u64::MAX {
                f64::MAX
            } else {
                (bound + 1) as f64 / 1e9
            };
            out.push((le, pending));
            pending = 0;
        }
    }
    out
}
