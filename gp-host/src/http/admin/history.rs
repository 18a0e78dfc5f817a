//! What `GET /history` answers: the last 15 minutes of each plugin's call rate, error rate and
//! p99, from a ring buffer the plane fills every interval (10 s) on a thread of its own
//! (`AdminShared::sample_history`), reading the manager's counters (no work on the call
//! path). Each new sample is also sent on the event stream to those that ask for it (`GET
//! /events?history=true`), so the GUI's charts move without polling.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::util::lock;

/// How much history is kept.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(15 * 60);

/// How often a sample is taken unless configured otherwise.
pub const DEFAULT_HISTORY_INTERVAL: Duration = Duration::from_secs(10);

/// One plugin over one interval.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub(crate) struct Point {
    /// Calls that returned, per second.
    calls_per_s: f64,
    /// Calls that returned an error or panicked, per second.
    errors_per_s: f64,
    /// The 99th percentile latency of the calls timed in the interval, in nanoseconds (the
    /// upper bound of its histogram bucket); `None` without a timed call.
    p99_ns: Option<u64>,
}

/// Every plugin over one interval, ending at `at_unix_ms`.
#[derive(Serialize, Clone, Debug)]
pub(crate) struct Sample {
    at_unix_ms: u64,
    plugins: BTreeMap<String, Point>,
}

/// A plugin's counters at the last sample.
#[derive(Default)]
struct Totals {
    calls: u64,
    failed: u64,
    buckets: BTreeMap<u64, u64>,
}

/// The ring buffer and what the next sample is measured against.
pub(crate) struct History {
    pub(super) interval: Duration,
    samples: Mutex<VecDeque<Sample>>,
    last: Mutex<BTreeMap<String, Totals>>,
    /// Samples as they are taken, for the event streams that asked for them.
    pub(super) live: tokio::sync::broadcast::Sender<serde_json::Value>,
}

impl History {
    pub(crate) fn new(interval: Duration) -> History {
        History {
            interval: interval.max(Duration::from_millis(10)),
            samples: Mutex::new(VecDeque::new()),
            last: Mutex::new(BTreeMap::new()),
            live: tokio::sync::broadcast::channel(16).0,
        }
    }

    fn capacity(&self) -> usize {
        (HISTORY_WINDOW.as_millis() / self.interval.as_millis().max(1)).max(1) as usize
    }

    /// Forgets the samples (not the counters they are measured against).
    pub(super) fn clear(&self) {
        lock(&self.samples).clear();
    }

    /// Takes a sample of `manager`'s counters: the change since the last one, per second.
    pub(super) fn take(&self, manager: &crate::manager::Manager, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64().max(1e-3);
        let mut last = lock(&self.last);
        let mut plugins = BTreeMap::new();
        for stat in manager.stats() {
            let now = Totals {
                calls: stat.calls,
                failed: stat.errors + stat.panics,
                buckets: stat.latency.buckets().collect(),
            };
            let before = last.remove(&stat.name).unwrap_or_default();
            let mut timed: Vec<(u64, u64)> = now
                .buckets
                .iter()
                .map(|(&bound, &n)| {
                    (
                        bound,
                        n.saturating_sub(*before.buckets.get(&bound).unwrap_or(&0)),
                    )
                })
                .filter(|(_, n)| *n > 0)
                .collect();
            timed.sort_unstable();
            plugins.insert(
                stat.name.clone(),
                Point {
                    calls_per_s: now.calls.saturating_sub(before.calls) as f64 / seconds,
                    errors_per_s: now.failed.saturating_sub(before.failed) as f64 / seconds,
                    p99_ns: p99(&timed),
                },
            );
            last.insert(stat.name, now);
        }
        drop(last);
        let sample = Sample {
            at_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            plugins,
        };
        let mut samples = lock(&self.samples);
        samples.push_back(sample.clone());
        while samples.len() > self.capacity() {
            samples.pop_front();
        }
        drop(samples);
        let mut event = serde_json::to_value(&sample).expect("a sample serialises");
        event["event"] = "history".into();
        let _ = self.live.send(event);
    }

    /// What `GET /history` answers.
    pub(super) fn view(&self) -> serde_json::Value {
        let samples: Vec<Sample> = lock(&self.samples).iter().cloned().collect();
        serde_json::json!({
            "interval_ms": self.interval.as_millis() as u64,
            "window_ms": HISTORY_WINDOW.as_millis() as u64,
            "samples": samples,
        })
    }
}

/// The 99th percentile of `buckets` (upper bound, count; in order).
fn p99(buckets: &[(u64, u64)]) -> Option<u64> {
    let total: u64 = buckets.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = (total as f64 * 0.99).ceil() as u64;
    let mut seen = 0;
    for &(bound, n) in buckets {
        seen += n;
        if seen >= rank {
            return Some(bound);
        }
    }
    buckets.last().map(|(bound, _)| *bound)
}

#[cfg(test)]
mod tests {
    use super::p99;

    #[test]
    fn p99_is_the_bucket_holding_the_99th_percent() {
        assert_eq!(p99(&[]), None);
        assert_eq!(p99(&[(100, 99), (1000, 1)]), Some(100));
        assert_eq!(p99(&[(100, 98), (1000, 2)]), Some(1000));
        assert_eq!(p99(&[(100, 1)]), Some(100));
    }
}
