//! Recording calls: per-thread shards of counters and histogram buckets, written on the call
//! path without locked instructions, summed into [`PluginStats`] on demand.
//!
//! Calls, errors and panics are all counted. Latency is sampled: timing a call reads the CPU's
//! time-stamp counter twice (8-12 ns a read on the VMs we test, more than the rest of a call),
//! so by default one call in [`DEFAULT_LATENCY_SAMPLING`] is timed, chosen by a hash of the
//! shard's call count (no period for a periodic workload to alias with), plus the first call a
//! shard records in each [`TICK`] (about a second), so that a plugin called rarely, or from
//! short-lived threads, still has latency data.
//!
//! A call that is not timed, on a thread that has a shard of its own, is counted inline
//! ([`PluginMetrics::untimed`]: the shard's pointer, its call count, the sampling pick, the
//! shard's tick against [`TICK`], one store; a load and a store to finish); the rest (timed
//! calls, the shared shard, a shard's first call in a tick) takes [`PluginMetrics::start`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::metrics::histogram::{bucket_of, BUCKETS};
use crate::metrics::stats::{LastError, Latency, PluginStats};
use crate::util::lock;

#[repr(align(128))]
pub(crate) struct Shard {
    started: AtomicU64,
    finished: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    sum_ns: AtomicU64,
    /// The tick in which the shard last timed a call.
    tick: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Default for Shard {
    fn default() -> Shard {
        Shard {
            tick: AtomicU64::new(u64::MAX),
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

/// One call in this many is timed unless
/// [`ManagerBuilder::latency_sampling`](crate::ManagerBuilder::latency_sampling) says otherwise.
pub const DEFAULT_LATENCY_SAMPLING: u32 = 64;

/// A coarse clock: advanced once a second by the `gp-metrics-tick` thread. Each shard times
/// the first call it records in a tick, whatever the sampling rate.
pub(crate) static TICK: AtomicU64 = AtomicU64::new(0);

/// Starts the thread that advances [`TICK`], once per process.
fn start_ticking() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("gp-metrics-tick".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_secs(1));
                TICK.fetch_add(1, Relaxed);
            });
        if let Err(error) = spawned {
            tracing::warn!(target: "gp", "cannot start the gp-metrics-tick thread ({error}); rarely called plugins may have no latency data");
        }
    });
}

/// Multiplying a count by this (2^64 / the golden ratio) spreads consecutive counts evenly
/// over the whole range (a Weyl sequence), so comparing the product with a threshold picks
/// one count in N with no period.
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

/// Where one call's counts go: the calling thread's own shard (plain loads and stores: it is
/// the only writer) or the shared one (atomic adds).
pub(crate) struct Recorder<'a> {
    shard: &'a Shard,
    exclusive: bool,
}

impl Recorder<'_> {
    /// Adds one to `counter`; returns its value before (for the shared shard, possibly a
    /// moment old: it only picks calls to time).
    #[inline]
    fn count(&self, counter: &AtomicU64) -> u64 {
        if self.exclusive {
            let n = counter.load(Relaxed);
            counter.store(n.wrapping_add(1), Relaxed);
            n
        } else {
            counter.fetch_add(1, Relaxed)
        }
    }

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

    /// A call that is not timed.
    pub(crate) const UNTIMED: Timestamp = Timestamp(None);
}

/// The live metrics of one plugin (across its versions).
pub(crate) struct PluginMetrics {
    clock: &'static quanta::Clock,
    /// A call whose spread count is at most this is timed: one in the sampling rate.
    sample_below: u64,
    /// Inline, so that finding the calling thread's shard is one indexed load.
    threads: [OnceLock<Box<Shard>>; THREAD_SHARDS],
    shared: Shard,
    loads: AtomicU64,
    upgrades: AtomicU64,
    unloads: AtomicU64,
    last_error: Mutex<Option<LastError>>,
}

impl PluginMetrics {
    /// Metrics that time one call in `sample` (1 = every call).
    pub(crate) fn new(sample: u32) -> PluginMetrics {
        if sample > 1 {
            start_ticking();
        }
        PluginMetrics {
            clock: clock(),
            sample_below: u64::MAX / u64::from(sample.max(1)),
            threads: std::array::from_fn(|_| OnceLock::new()),
            shared: Shard::default(),
            loads: AtomicU64::new(0),
            upgrades: AtomicU64::new(0),
            unloads: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// The shard of the thread with index `thread` (see `runtime::rcu::Record::index`).
    #[inline]
    fn recorder(&self, thread: usize) -> Recorder<'_> {
        match self.threads.get(thread) {
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

    /// Counts a call that is starting on the thread with index `thread` if that is cheap: the
    /// thread has a shard of its own and this call is not one to time. `None` otherwise,
    /// counting nothing: then the call goes through [`start`](Self::start).
    #[inline]
    pub(crate) fn untimed(&self, thread: usize) -> Option<Recorder<'_>> {
        let shard = self.threads.get(thread)?.get()?;
        let n = shard.started.load(Relaxed);
        if self.is_sampled(n) || shard.tick.load(Relaxed) != TICK.load(Relaxed) {
            return None;
        }
        shard.started.store(n.wrapping_add(1), Relaxed);
        Some(Recorder {
            shard,
            exclusive: true,
        })
    }

    /// Counts a call that is starting on the thread with index `thread`; returns where to
    /// finish it, and its start time if its latency is sampled.
    #[inline]
    pub(crate) fn start(&self, thread: usize) -> (Recorder<'_>, Timestamp) {
        let recorder = self.recorder(thread);
        let shard = recorder.shard;
        let n = recorder.count(&shard.started);
        let tick = TICK.load(Relaxed);
        let timed = self.is_sampled(n) || shard.tick.load(Relaxed) != tick;
        if !timed {
            return (recorder, Timestamp(None));
        }
        shard.tick.store(tick, Relaxed);
        (recorder, Timestamp(Some(self.clock.raw())))
    }

    /// Whether a shard's call number `n` is one the sampling rate picks for timing.
    #[inline]
    fn is_sampled(&self, n: u64) -> bool {
        n.wrapping_mul(SPREAD) <= self.sample_below
    }

    /// Counts a call that started at `start` and failed with `error`, or succeeded (remembering
    /// its error as the last one); returns how long it took, if it was timed.
    #[inline]
    pub(crate) fn finish(
        &self,
        recorder: Recorder<'_>,
        start: Timestamp,
        error: Option<&Error>,
    ) -> Option<Duration> {
        let ns = start
            .0
            .map(|start| self.clock.delta_as_nanos(start, self.clock.raw()));
        let kind = match error {
            None => Outcome::Ok,
            Some(Error::Panicked { .. }) => Outcome::Panic,
            Some(_) => Outcome::Error,
        };
        self.record(&recorder, ns, kind);
        if let Some(error) = error {
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
        *lock(&self.last_error) = Some(LastError {
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
    /// `version` and `build` (its library's SHA-256) are the serving version's, if any.
    pub(crate) fn snapshot(
        &self,
        name: &str,
        version: Option<semver::Version>,
        build: Option<String>,
    ) -> PluginStats {
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
            build,
            calls: finished,
            errors,
            panics,
            in_flight: started.saturating_sub(finished),
            loads: self.loads.load(Relaxed),
            upgrades: self.upgrades.load(Relaxed),
            unloads: self.unloads.load(Relaxed),
            last_error: lock(&self.last_error).clone(),
            latency: Latency {
                buckets,
                sum: Duration::from_nanos(sum_ns),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_recorded_calls() {
        let metrics = PluginMetrics::new(1);
        for us in 1..=100u64 {
            let (recorder, _) = metrics.start(0);
            metrics.record(&recorder, Some(us * 1000), Outcome::Ok);
        }
        let stats = metrics.snapshot("p", None, None);
        assert_eq!(stats.calls, 100);
        assert_eq!(stats.in_flight, 0);
        let p50 = stats.latency.p50().as_nanos() as f64;
        let p99 = stats.latency.p99().as_nanos() as f64;
        assert!((50_000.0..=50_000.0 * 1.125).contains(&p50), "{p50}");
        assert!((99_000.0..=99_000.0 * 1.125).contains(&p99), "{p99}");
        assert_eq!(stats.latency.sum(), Duration::from_micros(5050));
    }
}
