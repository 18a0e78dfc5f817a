//! Per-plugin call metrics: counters and a latency histogram cheap enough to record on every
//! call, read as [`PluginStats`] snapshots or as Prometheus text.
//!
//! - [`histogram`]: the bucket arithmetic;
//! - [`recorder`]: what a call writes. Recording is per thread: each calling thread (up to
//!   [`recorder::THREAD_SHARDS`] per plugin) counts into a cache-line-aligned shard of its own
//!   with plain loads and stores (it is the only writer, so no locked instruction and no cache
//!   line shared with another caller); threads beyond that share one shard with atomic adds.
//!   Calls are timed with two reads of the CPU's time-stamp counter, one call in 64 by default
//!   plus the first of each thread in each second
//!   ([`ManagerBuilder::latency_sampling`](crate::ManagerBuilder::latency_sampling));
//! - [`stats`]: snapshots ([`PluginStats`]) and their JSON form;
//! - `prometheus` (feature `metrics`): the text exposition.
//!
//! Below the runtime, which records into it, and knowing nothing of plugins but their names.
//!
//! Why not a metrics crate for recording: the ones that expose Prometheus histograms
//! (`prometheus-client`, `prometheus`, `metrics-exporter-prometheus`) record each observation
//! behind a lock or into one shared set of atomics, which costs more than a whole plugin call
//! and contends across threads. Exposition does go through `prometheus-client`, so the text
//! format is the crate's, not ours.

pub(crate) mod histogram;
#[cfg(feature = "metrics")]
pub(crate) mod prometheus;
pub(crate) mod recorder;
pub(crate) mod stats;

pub(crate) use recorder::PluginMetrics;
pub use stats::{LastError, LastErrorSummary, Latency, LatencySummary, PluginStats, PluginSummary};
