//! Per-plugin call metrics: counters and a latency histogram cheap enough to record on every
//! call, read as [`PluginStats`] snapshots or as Prometheus text.
//!
//! Recording is per thread: each calling thread (up to [`THREAD_SHARDS`] per plugin) counts
//! into a cache-line-aligned shard of its own with plain loads and stores (it is the only
//! writer, so no locked instruction and no cache line shared with another caller); threads
//! beyond that share one shard with atomic adds. A snapshot sums the shards. Calls are timed
//! with two reads of the CPU's time-stamp counter, every call by default, or one in N
//! ([`ManagerBuilder::latency_sampling`](crate::ManagerBuilder::latency_sampling)). The
//! histogram has 8 buckets per power of two of nanoseconds (each bucket at most 12.5% wide),
//! from 1 ns to about 18 minutes.
//!
//! Why not a metrics crate for recording: the ones that expose Prometheus histograms
//! (`prometheus-client`, `prometheus`, `metrics-exporter-prometheus`) record each observation
//! behind a lock or into one shared set of atomics, which costs more than a whole plugin call
//! and contends across threads. Exposition does go through `prometheus-client`
//! ([`Collector`]), so the text format is the crate's, not ours.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 3;
const SUB: usize = 1 << SUB_BITS;
/// Values below this are their own bucket.
const LINEAR: u64 = 2 * SUB as u64;
/// Highest power of two covered: 2^40 ns ≈ 18 minutes; longer calls land in the last bucket.
const MAX_EXP: u32 = 40;
const BUCKETS: usize = LINEAR as usize + (MAX_EXP as usize - SUB_BITS as usize) * SUB;

#[inline]
fn bucket_of(ns: u64) -> usize {
    if ns < LINEAR {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros(); // ≥ SUB_BITS + 1
    if exp > MAX_EXP {
        return BUCKETS - 1;
    }
    let sub = ((ns >> (exp - SUB_BITS)) as usize) & (SUB - 1);
    LINEAR as usize + (exp - SUB_BITS - 1) as usize * SUB + sub
}

/// The largest value that falls in bucket `i` (inclusive).
fn upper_bound(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    if i == BUCKETS - 1 {
        return u64::MAX;
    }
    let j = i - LINEAR as usize;
    let exp = (j / SUB) as u32 + SUB_BITS + 1;
    let sub = (j % SUB) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    (1u64 << exp) + (sub + 1) * width - 1
}

#[repr(align(128))]
pub(crate) struct Shard {
    started: AtomicU64,
    finished: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    sum_ns: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Default for Shard {
    fn default() -> Shard {
        Shard {
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// How many threads get a shard of their own per plugin; threads beyond share one.
pub const THREAD_SHARDS: usize = 64;

/// A small number unique among the threads alive now, reused after a thread exits: the index
/// of the thread's own shard. The free list's mutex orders an exited thread's last writes to
/// its shard before the next owner's first.
struct ThreadIndex(usize);

static FREE_INDEXES: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);

impl ThreadIndex {
    fn claim() -> ThreadIndex {
        let reused = FREE_INDEXES.lock().unwrap_or_else(|p| p.into_inner()).pop();
        ThreadIndex(reused.unwrap_or_else(|| NEXT_INDEX.fetch_add(1, Relaxed)))
    }
}

impl Drop for ThreadIndex {
    fn drop(&mut self) {
        FREE_INDEXES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.0);
    }
}

thread_local! {
    static THREAD: ThreadIndex = ThreadIndex::claim();
}

/// Where one call's counts go: the calling thread's own shard (plain loads and stores: it is
/// the only writer) or the shared one (atomic adds).
pub(crate) struct Recorder<'a> {
    shard: &'a Shard,
    exclusive: bool,
}

impl Recorder<'_> {
    #[inline]
    fn add(&self, counter: &AtomicU64, n: u64) {
        if self.exclusive {
            counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
        } else {
            counter.fetch_add(n, Relaxed);
        }
    }
}

/// How a call ended, for the counters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Ok,
    Error,
    Panic,
}

/// The clock calls are timed with: the CPU's time-stamp counter where it is invariant (about
/// 8 ns a read on the machines we test, against about 18-24 ns for `Instant::now`, which is a
/// third of a whole call's cost when read twice), else the OS clock. Calibrated once.
fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A raw timestamp of [`clock`], or none for a call whose latency is not sampled.
#[derive(Clone, Copy)]
pub(crate) struct Timestamp(Option<u64>);

impl Timestamp {
    /// Whether the call is timed.
    pub(crate) fn is_timed(&self) -> bool {
        self.0.is_some()
    }
}

/// The live metrics of one plugin (across its versions).
pub(crate) struct PluginMetrics {
    clock: &'static quanta::Clock,
    /// Time one call in `sample_mask + 1` (a power of two) per thread.
    sample_mask: u64,
    threads: Box<[OnceLock<Box<Shard>>]>,
    shared: Shard,
    loads: AtomicU64,
    upgrades: AtomicU64,
    unloads: AtomicU64,
    last_error: Mutex<Option<LastError>>,
}

impl PluginMetrics {
    /// Metrics that time one call in `sample` (rounded up to a power of two; 1 = every call).
    pub(crate) fn new(sample: u32) -> PluginMetrics {
        PluginMetrics {
            clock: clock(),
            sample_mask: u64::from(sample.max(1).next_power_of_two()) - 1,
            threads: (0..THREAD_SHARDS).map(|_| OnceLock::new()).collect(),
            shared: Shard::default(),
            loads: AtomicU64::new(0),
            upgrades: AtomicU64::new(0),
            unloads: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    #[inline]
    fn recorder(&self) -> Recorder<'_> {
        let index = THREAD.try_with(|t| t.0).unwrap_or(usize::MAX);
        match self.threads.get(index) {
            Some(slot) => Recorder {
                shard: slot.get_or_init(Box::default),
                exclusive: true,
            },
            None => Recorder {
                shard: &self.shared,
                exclusive: false,
            },
        }
    }

    /// Counts a call that is starting; returns where to finish it, and its start time if its
    /// latency is sampled.
    #[inline]
    pub(crate) fn start(&self) -> (Recorder<'_>, Timestamp) {
        let recorder = self.recorder();
        let n = recorder.shard.started.load(Relaxed);
        recorder.add(&recorder.shard.started, 1);
        let timed = n & self.sample_mask == 0;
        (recorder, Timestamp(timed.then(|| self.clock.raw())))
    }

    /// Counts a call that started at `start` and returned `outcome` (remembering its error
    /// as the last one); returns how long it took, if it was timed.
    #[inline]
    pub(crate) fn finish(
        &self,
        recorder: Recorder<'_>,
        start: Timestamp,
        outcome: &Result<(), crate::Error>,
    ) -> Option<Duration> {
        let ns = start
            .0
            .map(|start| self.clock.delta_as_nanos(start, self.clock.raw()));
        let kind = match outcome {
            Ok(()) => Outcome::Ok,
            Err(crate::Error::Panicked { .. }) => Outcome::Panic,
            Err(_) => Outcome::Error,
        };
        self.record(&recorder, ns, kind);
        if let Err(error) = outcome {
            self.record_error(error.to_string());
        }
        ns.map(Duration::from_nanos)
    }

    #[inline]
    fn record(&self, recorder: &Recorder<'_>, ns: Option<u64>, outcome: Outcome) {
        let shard = recorder.shard;
        if let Some(ns) = ns {
            recorder.add(&shard.buckets[bucket_of(ns)], 1);
            recorder.add(&shard.sum_ns, ns);
        }
        match outcome {
            Outcome::Ok => {}
            Outcome::Error => recorder.add(&shard.errors, 1),
            Outcome::Panic => recorder.add(&shard.panics, 1),
        }
        recorder.add(&shard.finished, 1);
    }

    /// Remembers the last failed call's message (off the fast path: only failed calls).
    #[cold]
    fn record_error(&self, message: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(LastError {
            at: SystemTime::now(),
            message,
        });
    }

    pub(crate) fn loaded(&self) {
        self.loads.fetch_add(1, Relaxed);
    }

    pub(crate) fn upgraded(&self) {
        self.upgrades.fetch_add(1, Relaxed);
    }

    pub(crate) fn unloaded(&self) {
        self.unloads.fetch_add(1, Relaxed);
    }

    /// A consistent-enough snapshot: each counter is read once; calls finishing meanwhile may
    /// be counted in some fields and not others.
    pub(crate) fn snapshot(&self, name: &str, version: Option<semver::Version>) -> PluginStats {
        let shards: Vec<&Shard> = self
            .threads
            .iter()
            .filter_map(|slot| slot.get().map(|b| &**b))
            .chain([&self.shared])
            .collect();
        let mut buckets = vec![0u64; BUCKETS];
        let (mut started, mut finished, mut errors, mut panics, mut sum_ns) = (0, 0, 0, 0, 0);
        for shard in &shards {
            // Finished calls first, so `started - finished` never goes below zero.
            finished += shard.finished.load(Relaxed);
            for (total, b) in buckets.iter_mut().zip(shard.buckets.iter()) {
                *total += b.load(Relaxed);
            }
            errors += shard.errors.load(Relaxed);
            panics += shard.panics.load(Relaxed);
            sum_ns += shard.sum_ns.load(Relaxed);
        }
        for shard in &shards {
            started += shard.started.load(Relaxed);
        }
        PluginStats {
            name: name.to_owned(),
            version,
            calls: finished,
            errors,
            panics,
            in_flight: started.saturating_sub(finished),
            loads: self.loads.load(Relaxed),
            upgrades: self.upgrades.load(Relaxed),
            unloads: self.unloads.load(Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            latency: Latency {
                buckets,
                sum: Duration::from_nanos(sum_ns),
            },
        }
    }
}

/// The last failed call of a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
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
pub struct PluginStats {
    /// The plugin's name.
    pub name: String,
    /// The version serving now, or `None` if the plugin is unloaded.
    pub version: Option<semver::Version>,
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
    /// epoch) and `latency` (`count`, and `mean`, `p50`, `p90`, `p99` in nanoseconds).
    pub fn to_json(&self) -> serde_json::Value {
        let ns = |d: Duration| d.as_nanos().min(u64::MAX as u128) as u64;
        serde_json::json!({
            "name": self.name,
            "version": self.version.as_ref().map(|v| v.to_string()),
            "calls": self.calls,
            "errors": self.errors,
            "panics": self.panics,
            "in_flight": self.in_flight,
            "loads": self.loads,
            "upgrades": self.upgrades,
            "unloads": self.unloads,
            "last_error": self.last_error.as_ref().map(|e| serde_json::json!({
                "at_unix_ms": e.at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
                "message": e.message,
            })),
            "latency": {
                "count": self.latency.count(),
                "mean_ns": ns(self.latency.mean()),
                "p50_ns": ns(self.latency.p50()),
                "p90_ns": ns(self.latency.p90()),
                "p99_ns": ns(self.latency.p99()),
            },
        })
    }
}

/// A latency distribution: a histogram with 8 buckets per power of two of nanoseconds.
#[derive(Clone, PartialEq, Eq)]
pub struct Latency {
    buckets: Vec<u64>,
    sum: Duration,
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

    /// Buckets for Prometheus: (upper bound in seconds, count), at powers of two of
    /// nanoseconds from 256 ns (the sub-buckets merged), the last one `+Inf`.
    fn prometheus_buckets(&self) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> = Vec::new();
        let mut pending = 0;
        for (i, n) in self.buckets.iter().enumerate() {
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
            &self.0.prometheus_buckets(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_bounds_hold_it() {
        let mut previous_upper = None;
        for i in 0..BUCKETS - 1 {
            let upper = upper_bound(i);
            if let Some(p) = previous_upper {
                assert_eq!(upper_bound(i - 1), p);
                assert_eq!(bucket_of(p + 1), i, "first value of bucket {i}");
            }
            assert_eq!(bucket_of(upper), i, "last value of bucket {i}");
            previous_upper = Some(upper);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_of(1 << 41), BUCKETS - 1);
    }

    #[test]
    fn buckets_are_at_most_an_eighth_wide() {
        for i in LINEAR as usize..BUCKETS - 1 {
            let (low, high) = (upper_bound(i - 1) + 1, upper_bound(i));
            assert!((high - low + 1) * 8 <= low, "bucket {i}: {low}..={high}");
        }
    }

    #[test]
    fn quantiles_come_from_the_recorded_calls() {
        let metrics = PluginMetrics::new(1);
        for us in 1..=100u64 {
            let (recorder, _) = metrics.start();
            metrics.record(&recorder, Some(us * 1000), Outcome::Ok);
        }
        let stats = metrics.snapshot("p", None);
        assert_eq!(stats.calls, 100);
        assert_eq!(stats.in_flight, 0);
        let p50 = stats.latency.p50().as_nanos() as f64;
        let p99 = stats.latency.p99().as_nanos() as f64;
        assert!((50_000.0..=50_000.0 * 1.125).contains(&p50), "{p50}");
        assert!((99_000.0..=99_000.0 * 1.125).contains(&p99), "{p99}");
        assert_eq!(stats.latency.sum(), Duration::from_micros(5050));
    }
}
