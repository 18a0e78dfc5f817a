//! Snapshots of a plugin's metrics: what [`Manager::stats`](crate::Manager::stats) returns,
//! and the JSON form `gp serve` serves and `gp stats` reads.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::metrics::histogram::upper_bound;
use crate::util::short_hash;

/// The last failed call of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastError {
    /// When it returned.
    pub at: SystemTime,
    /// The error, as [`Error`](crate::Error) displays it.
    pub message: String,
}

/// A snapshot of one plugin's metrics, from [`Manager::stats`](crate::Manager::stats).
///
/// Counters cover every version of the plugin since the manager first loaded it, and survive
/// upgrades and unloads.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PluginStats {
    /// The plugin's name.
    pub name: String,
    /// The version serving now, or `None` if the plugin is unloaded.
    pub version: Option<semver::Version>,
    /// The SHA-256 of the serving version's library, in hex: tells two builds of one version
    /// apart (see [`ManagerBuilder::reload_same_version`](crate::ManagerBuilder::reload_same_version)).
    pub build: Option<String>,
    /// Calls that returned (successfully or not).
    pub calls: u64,
    /// Calls that returned an error (the plugin's own, a cancellation or a deadline).
    pub errors: u64,
    /// Calls that panicked (not counted in `errors`).
    pub panics: u64,
    /// Calls running now.
    pub in_flight: u64,
    /// Times a version was loaded into an empty slot (the first load, and loads after unloads).
    pub loads: u64,
    /// Upgrades (one version swapped for another).
    pub upgrades: u64,
    /// Unloads.
    pub unloads: u64,
    /// The last failed call, if any.
    pub last_error: Option<LastError>,
    /// The latency distribution of the calls that returned and were timed: all of them, or
    /// one in N per thread with [`ManagerBuilder::latency_sampling`](crate::ManagerBuilder::latency_sampling).
    pub latency: Latency,
}

impl PluginStats {
    /// The snapshot as JSON: the counters, `last_error` (`at` in milliseconds since the Unix
    /// epoch) and `latency` (`count`, and `mean`, `p50`, `p90`, `p99` in nanoseconds): the
    /// [`PluginSummary`] of this snapshot.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.summary()).expect("a summary serialises")
    }

    /// The snapshot in the form `gp serve` serves it (`GET /stats`) and `gp stats` reads it.
    pub fn summary(&self) -> PluginSummary {
        let ns = |d: Duration| d.as_nanos().min(u64::MAX as u128) as u64;
        PluginSummary {
            name: self.name.clone(),
            version: self.version.as_ref().map(|v| v.to_string()),
            build: self.build.as_deref().map(|b| short_hash(b).to_owned()),
            calls: self.calls,
            errors: self.errors,
            panics: self.panics,
            in_flight: self.in_flight,
            loads: self.loads,
            upgrades: self.upgrades,
            unloads: self.unloads,
            last_error: self.last_error.as_ref().map(|e| LastErrorSummary {
                at_unix_ms: e
                    .at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                message: e.message.clone(),
            }),
            latency: LatencySummary {
                count: self.latency.count(),
                mean_ns: ns(self.latency.mean()),
                p50_ns: ns(self.latency.p50()),
                p90_ns: ns(self.latency.p90()),
                p99_ns: ns(self.latency.p99()),
            },
        }
    }
}

/// One plugin's metrics as JSON: the wire form of [`PluginStats`] (latency as a few quantiles
/// instead of the whole histogram).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PluginSummary {
    /// The plugin's name.
    pub name: String,
    /// The version serving now, or `None` if the plugin is unloaded.
    pub version: Option<String>,
    /// The first 16 hex digits of the serving library's SHA-256, if loaded.
    #[serde(default)]
    pub build: Option<String>,
    /// Calls that returned.
    pub calls: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Calls that panicked.
    pub panics: u64,
    /// Calls running now.
    pub in_flight: u64,
    /// Versions loaded into an empty slot.
    pub loads: u64,
    /// Upgrades.
    pub upgrades: u64,
    /// Unloads.
    pub unloads: u64,
    /// The last failed call, if any.
    pub last_error: Option<LastErrorSummary>,
    /// The latency of the timed calls.
    pub latency: LatencySummary,
}

/// The last failed call, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LastErrorSummary {
    /// When it returned, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The error, as [`Error`](crate::Error) displays it.
    pub message: String,
}

/// A latency distribution as JSON, in nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LatencySummary {
    /// How many calls were timed.
    pub count: u64,
    /// Their mean.
    pub mean_ns: u64,
    /// The median.
    pub p50_ns: u64,
    /// The 90th percentile.
    pub p90_ns: u64,
    /// The 99th percentile.
    pub p99_ns: u64,
}

/// A latency distribution: a histogram with 8 buckets per power of two of nanoseconds.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latency {
    pub(crate) buckets: Vec<u64>,
    pub(crate) sum: Duration,
}

impl Latency {
    /// How many calls it counts.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The total time of those calls.
    pub fn sum(&self) -> Duration {
        self.sum
    }

    /// The mean, or zero if there were no calls.
    pub fn mean(&self) -> Duration {
        match self.count() {
            0 => Duration::ZERO,
            n => Duration::from_nanos((self.sum.as_nanos() / u128::from(n)) as u64),
        }
    }

    /// The latency that a fraction `q` (0.0–1.0) of the calls did not exceed, as the upper
    /// bound of its bucket (at most 12.5% above the true value). Zero if there were no calls.
    pub fn quantile(&self, q: f64) -> Duration {
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos(upper_bound(i));
            }
        }
        Duration::from_nanos(u64::MAX)
    }

    /// The non-empty buckets, in order: each one's upper bound in nanoseconds and its count
    /// (for drawing the distribution).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (upper_bound(i), *n))
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    /// The 90th percentile.
    pub fn p90(&self) -> Duration {
        self.quantile(0.90)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }
}

impl fmt::Debug for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latency")
            .field("count", &self.count())
            .field("mean", &self.mean())
            .field("p50", &self.p50())
            .field("p90", &self.p90())
            .field("p99", &self.p99())
            .finish()
    }
}
