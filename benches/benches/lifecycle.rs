//! What the lifecycle features cost a call: metrics and call events, a second calling thread,
//! and upgrades happening while a thread calls.
//!
//! - `metrics/{noop,getset}/{off,default,every_call,subscribed}`: `Executor::execute` from four
//!   managers over the same base directory, built with `metrics(false)`, with the default
//!   metrics (every call counted, one in 64 timed), with every call timed
//!   (`latency_sampling(1)`), and with the default metrics plus a call-event subscriber
//!   (`manager.subscribe(|_| {})`, which sends every call down the observed path: `BeforeCall`
//!   and `AfterCall` events).
//! - `threads/getset/{1,2}`: one and two threads calling `bench-getset` through clones of one
//!   executor (of the shared `BenchPlugins` manager: metrics on), each on a context of its
//!   own. One iteration is one call *per thread*, and the time reported is wall time divided
//!   by calls per thread, so equal times mean that two threads do twice the calls
//!   (criterion's throughput line counts the calls of all threads).
//!   The threads are spawned and make one call before a barrier; the time runs from the
//!   earliest thread's start after the barrier to the latest thread's end, so neither thread
//!   start-up nor join is in it.
//! - `upgrade/one`: one forced upgrade of `bench-noop` (`Manager::upgrade_with`, `force`)
//!   between two builds, alternating. The second build is the installed library with bytes
//!   appended: still a valid library, but another SHA-256, so another runtime copy and
//!   another `dlopen` the first time. After the first round trip both builds are known to
//!   the process, so this is a `stat` of the library (unchanged size, inode, mtime and ctime:
//!   not read or hashed again) + the manifest check + the root module checked before + the
//!   swap and its `membarrier`, not copying, mapping or layout-checking a library.
//! - The upgrade pause, printed before criterion starts (criterion reports no percentiles):
//!   one thread records the latency of every call of `bench-noop` for 2 s (into a
//!   preallocated, pre-faulted `Vec`), in three runs: "clock only" (no call: the clock read
//!   and the recording alone, i.e. the machine's own noise), "steady state" (calls), and
//!   "upgrading" (calls while another thread does forced upgrades between the two builds as
//!   fast as it can, counted and timed). A recorded latency is the call plus one clock read
//!   (`Instant` after each call, the previous one as its start). The table gives p50, p99,
//!   p99.9, p99.99 and max; how many calls took over 10 µs and how long they add up to; how
//!   long the calling thread waited for a CPU during the run (`/proc/thread-self/schedstat`,
//!   Linux), which tells a descheduled caller from a caller held up by the upgrade; and the
//!   number of upgrades with their p50 and max.
//!
//! Calls are `black_box`ed as `.is_ok()`: black-boxing the whole `Result<(), gp_host::Error>`
//! compiles to a byte-by-byte copy of the error enum that no caller pays.
//!
//! See `benches/README.md` for the figures.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use gp_benches::{BenchPlugins, GETSET, NOOP};
use gp_host::{Context, Executor, Manager, Upgrade, UpgradeOptions};

/// How long each run of the upgrade-pause measurement lasts, under `cargo bench`.
const PAUSE_RUN: Duration = Duration::from_secs(2);

/// The same, under `cargo test --benches` (criterion's test mode), just to exercise it.
const PAUSE_RUN_TEST: Duration = Duration::from_millis(100);

/// A latency above this counts as a stall in the upgrade-pause table.
const STALL: Duration = Duration::from_micros(10);

/// A host context holding `n = 0`.
fn host_context() -> Context {
    let mut ctx = Context::new();
    ctx.set("n", 0);
    ctx
}

/// A manager over the bench plugins' base directory, with both plugins loaded, timing one
/// call in `sampling`.
fn manager(metrics: bool, sampling: u32) -> Manager {
    BenchPlugins::get().manager_with(|b| b.metrics(metrics).latency_sampling(sampling))
}

/// `metrics/<plugin>/{off,default,every_call,subscribed}`.
fn metrics(c: &mut Criterion) {
    let off = manager(false, 1);
    let default = manager(true, gp_host::DEFAULT_LATENCY_SAMPLING);
    let every_call = manager(true, 1);
    let subscribed = manager(true, gp_host::DEFAULT_LATENCY_SAMPLING);
    subscribed.subscribe(|_| {});
    let managers = [
        ("off", &off),
        ("default", &default),
        ("every_call", &every_call),
        ("subscribed", &subscribed),
    ];

    for (plugin, short) in [(NOOP, "noop"), (GETSET, "getset")] {
        let mut group = c.benchmark_group(format!("metrics/{short}"));
        group
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(2));
        for (setting, manager) in managers {
            let executor = manager.executor(plugin).unwrap_or_else(|e| panic!("{e}"));
            let mut ctx = host_context();
            executor.execute(&mut ctx).expect("first call");
            // `.is_ok()`: see the top of the file (the copy costs ~40 ns here).
            group.bench_function(setting, |b| {
                b.iter(|| executor.execute(black_box(&mut ctx)).is_ok())
            });
        }
        group.finish();
    }

    // Each manager really did (or did not) count the calls.
    for (setting, manager) in managers {
        let calls: u64 = manager.stats().iter().map(|s| s.calls).sum();
        assert_eq!(
            calls > 0,
            setting != "off",
            "metrics/{setting}: {calls} calls counted"
        );
    }
}

/// `threads/getset/{1,2}`.
fn threads(c: &mut Criterion) {
    let executor = BenchPlugins::get().executor(GETSET);
    let mut group = c.benchmark_group("threads/getset");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| calls_on_threads(&executor, threads, iters))
        });
    }
    group.finish();
}

/// `iters` calls of `executor` on each of `threads` new threads, each on its own context;
/// returns the wall time from the first thread's start to the last thread's end.
fn calls_on_threads(executor: &Executor, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let executor = executor.clone();
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut ctx = host_context();
                    // The thread's first call initialises its thread-locals (metrics shard,
                    // the SDK's in-call flag in the plugin): not part of the measurement.
                    executor.execute(&mut ctx).expect("bench-getset");
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(executor.execute(black_box(&mut ctx)).is_ok());
                    }
                    let end = Instant::now();
                    assert_eq!(
                        ctx.get("n").and_then(|v| v.as_i64()),
                        Some(iters as i64 + 1)
                    );
                    (start, end)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("calling thread"))
            .collect()
    });
    let start = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("one thread at least");
    let end = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("one thread at least");
    end - start
}

/// A manager of its own with `bench-noop` loaded, and two builds of it to upgrade between.
struct UpgradeRig {
    manager: Manager,
    executor: Executor,
    /// The installed library, and a copy with bytes appended (another SHA-256).
    builds: [PathBuf; 2],
    /// The SHA-256 of each build, as the manager reports it once it serves.
    sha256: [String; 2],
    /// Holds the second build and the manager's runtime directory.
    _scratch: tempfile::TempDir,
}

impl UpgradeRig {
    fn new() -> UpgradeRig {
        let plugins = BenchPlugins::get();
        let scratch = tempfile::Builder::new()
            .prefix("gp-bench-upgrade-")
            .tempdir()
            .expect("temporary directory");
        let manager = Manager::builder(&plugins.base_dir)
            .runtime_dir(scratch.path().join("runtime"))
            .build();
        let first = manager
            .load_plugin(plugins.plugin_dir(NOOP))
            .unwrap_or_else(|e| panic!("{e}"));

        // The second build: the same library with bytes appended after its last section.
        // The loader maps only what the program headers name, so it loads the same code, but
        // the file hashes differently, so the manager copies it to another runtime path.
        let second = scratch
            .path()
            .join(first.library.file_name().expect("library file name"));
        let mut bytes = std::fs::read(&first.library).expect("read the installed library");
        bytes.extend_from_slice(b"\0gp-bench: a second build of bench-noop\0");
        std::fs::write(&second, bytes).expect("write the second build");

        let executor = manager.executor(NOOP).unwrap_or_else(|e| panic!("{e}"));
        let mut rig = UpgradeRig {
            manager,
            executor,
            builds: [first.library.clone(), second],
            sha256: [first.sha256.clone(), String::new()],
            _scratch: scratch,
        };
        // A round trip, checking that each upgrade swaps in the other build and that the
        // second build was really mapped from its own runtime copy.
        rig.upgrade_to(1);
        rig.sha256[1] = rig.serving_sha256();
        assert_ne!(
            rig.sha256[0], rig.sha256[1],
            "the second build hashes the same"
        );
        rig.check_mapped(1);
        rig.call();
        rig.upgrade_to(0);
        assert_eq!(rig.serving_sha256(), rig.sha256[0]);
        rig.check_mapped(0);
        rig.call();
        rig
    }

    /// Upgrades (forced) to build `i`; panics unless the upgrade happened.
    fn upgrade_to(&self, i: usize) {
        match self
            .manager
            .upgrade_with(NOOP, &self.builds[i], UpgradeOptions { force: true })
        {
            Ok(Upgrade::Upgraded(_)) => {}
            Ok(other) => panic!("upgrade to build {i}: {other:?}"),
            Err(e) => panic!("upgrade to build {i}: {e}"),
        }
    }

    fn serving_sha256(&self) -> String {
        self.executor
            .spec()
            .expect("bench-noop serves")
            .sha256
            .clone()
    }

    fn call(&self) {
        self.executor
            .execute(&mut Context::new())
            .expect("bench-noop");
    }

    /// The distinct runtime copies of the two builds mapped in the process (Linux; `None`
    /// elsewhere).
    fn mapped_copies(&self) -> Option<usize> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let copies: Vec<String> = (0..2).map(|i| self.copy_name(i)).collect();
        let mut files: Vec<&str> = maps
            .lines()
            .filter(|l| copies.iter().any(|c| l.contains(c.as_str())))
            .filter_map(|l| l.split_whitespace().nth(5))
            .collect();
        files.sort_unstable();
        files.dedup();
        Some(files.len())
    }

    /// `<stem>-<sha256 prefix>`: the start of build `i`'s runtime copy's file name.
    fn copy_name(&self, i: usize) -> String {
        let stem = self.builds[i]
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("library file name");
        format!("{stem}-{}", &self.sha256[i][..16])
    }

    /// On Linux, checks in `/proc/self/maps` that build `i`'s runtime copy
    /// (`<stem>-<sha256 prefix>.so`) is mapped, i.e. that `dlopen` did not hand back an
    /// already loaded library instead. The copy may be another manager's: a build the
    /// process has loaded once is not loaded again.
    fn check_mapped(&self, i: usize) {
        if !cfg!(target_os = "linux") {
            return;
        }
        let copy = self.copy_name(i);
        let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
        assert!(
            maps.lines().any(|l| l.contains(&copy)),
            "build {i} ({copy}) is not mapped"
        );
    }
}

/// `upgrade/one`.
fn upgrade(c: &mut Criterion, rig: &UpgradeRig) {
    let mut group = c.benchmark_group("upgrade");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    let mut next = 1;
    group.bench_function("one", |b| {
        b.iter(|| {
            rig.upgrade_to(next);
            next = 1 - next;
        })
    });
    group.finish();
    rig.call();
    // However many upgrades ran, the process mapped each build once: a build it has loaded
    // is not copied or opened again.
    if let Some(mapped) = rig.mapped_copies() {
        assert_eq!(mapped, 2, "runtime copies mapped");
    }
}

/// What the calling thread does in one run of the pause measurement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Only the clock reads and the recording, no call: the machine's own noise.
    ClockOnly,
    /// Calls, nothing else happening.
    Steady,
    /// Calls, while another thread upgrades back and forth.
    Upgrading,
}

impl Run {
    fn name(self) -> &'static str {
        match self {
            Run::ClockOnly => "clock only",
            Run::Steady => "steady state",
            Run::Upgrading => "upgrading",
        }
    }
}

/// What one run of the pause measurement saw.
struct PauseRun {
    run: Run,
    /// Every call's latency in nanoseconds (call + one clock read), sorted.
    latencies: Vec<u32>,
    /// The upgrades done meanwhile, each one's duration, sorted.
    upgrades: Vec<Duration>,
    /// How long the calling thread waited for a CPU (runnable, not running) during the run,
    /// from `/proc/thread-self/schedstat`; `None` where that is not available.
    runqueue_wait: Option<Duration>,
}

/// The time this thread has spent runnable but waiting for a CPU (Linux; `None` elsewhere).
fn runqueue_wait() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let waited = stat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(waited))
}

/// One thread calls `bench-noop` for `duration` (or only reads the clock, for
/// [`Run::ClockOnly`]) and records each call's latency; for [`Run::Upgrading`], another
/// thread upgrades back and forth between the two builds meanwhile. `latencies` is reused:
/// cleared, its capacity must hold every call, and it should be faulted in already.
fn pause_run(rig: &UpgradeRig, duration: Duration, run: Run, latencies: Vec<u32>) -> PauseRun {
    let upgrading = run == Run::Upgrading;
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(if upgrading { 2 } else { 1 });
    let (mut latencies, mut upgrades, runqueue_wait) = std::thread::scope(|scope| {
        let upgrader = upgrading.then(|| {
            scope.spawn(|| {
                let mut upgrades = Vec::with_capacity(1 << 16);
                let mut next = 1;
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    rig.upgrade_to(next);
                    upgrades.push(start.elapsed());
                    next = 1 - next;
                }
                // Leave the first build serving, as the other runs have it.
                if next == 0 {
                    rig.upgrade_to(0);
                }
                upgrades
            })
        });
        let caller = scope.spawn(|| {
            let mut latencies = latencies;
            latencies.clear();
            let mut ctx = Context::new();
            let executor = &rig.executor;
            executor.execute(&mut ctx).expect("bench-noop");
            let call = run != Run::ClockOnly;
            barrier.wait();
            let waited_before = runqueue_wait();
            let start = Instant::now();
            let mut last = start;
            let mut failed = 0usize;
            while latencies.len() < latencies.capacity() {
                if call {
                    failed += usize::from(executor.execute(black_box(&mut ctx)).is_err());
                }
                let now = Instant::now();
                let ns = (now - last).as_nanos();
                latencies.push(u32::try_from(ns).unwrap_or(u32::MAX));
                last = now;
                if now - start >= duration {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
            let waited = runqueue_wait().zip(waited_before).map(|(a, b)| a - b);
            assert_eq!(failed, 0, "calls failed");
            assert!(
                last - start >= duration,
                "the latency buffer ({} calls) filled before {duration:?}",
                latencies.capacity()
            );
            (latencies, waited)
        });
        let (latencies, waited) = caller.join().expect("calling thread");
        let upgrades = upgrader
            .map(|u| u.join().expect("upgrading thread"))
            .unwrap_or_default();
        (latencies, upgrades, waited)
    });
    latencies.sort_unstable();
    upgrades.sort_unstable();
    PauseRun {
        run,
        latencies,
        upgrades,
        runqueue_wait,
    }
}

/// The `q` quantile of sorted `values`.
fn quantile<T: Copy>(sorted: &[T], q: f64) -> T {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn format_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 10_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{ns} ns")
    }
}

fn format_duration(d: Duration) -> String {
    format_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Runs the pause measurement (clock only, steady state, upgrading) and prints the table.
fn upgrade_pause(rig: &UpgradeRig, duration: Duration) {
    // Room for every call: twice what a short trial run of the fastest loop (clock only)
    // records at that rate, and at least 4 Mi (~60 M per 2 s on the 2-vCPU VM: 240 MB).
    let trial = Duration::from_millis(100);
    let trial = pause_run(rig, trial, Run::ClockOnly, Vec::with_capacity(1 << 25));
    let per_run = trial.latencies.len() as f64 * duration.as_secs_f64() / 0.1;
    drop(trial);
    let capacity = ((per_run * 2.0) as usize).max(1 << 22);
    // Written once before use, so that recording a latency never takes a page fault (one
    // per 1024 calls otherwise).
    let mut buffer = vec![u32::MAX; capacity];
    buffer.clear();

    let clock = pause_run(rig, duration, Run::ClockOnly, buffer);
    let mut lines = vec![table_line(&clock)];
    let steady = pause_run(rig, duration, Run::Steady, clock.latencies);
    lines.push(table_line(&steady));
    let upgrading = pause_run(rig, duration, Run::Upgrading, steady.latencies);
    lines.push(table_line(&upgrading));
    rig.call();
    assert_eq!(rig.serving_sha256(), rig.sha256[0]);

    println!(
        "upgrade pause: one thread calling bench-noop for {duration:?} per run; latency = the \
         call + one clock read (\"clock only\": the clock read alone); \"upgrading\": another \
         thread does forced upgrades between two builds meanwhile, as fast as it can"
    );
    println!(
        "  {:<12} {:>10} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>9} {:>9} {:>8} {:>10} {:>10}",
        "run",
        "calls",
        "p50",
        "p99",
        "p99.9",
        "p99.99",
        "max",
        "calls>10µs",
        "time>10µs",
        "runq wait",
        "upgrades",
        "upg. p50",
        "upg. max",
    );
    for line in &lines {
        println!("{line}");
    }
}

/// One line of the pause table.
fn table_line(result: &PauseRun) -> String {
    let l = &result.latencies;
    let ns = |q: f64| format_ns(quantile(l, q).into());
    let stall = STALL.as_nanos() as u32;
    let stalls = &l[l.partition_point(|&ns| ns <= stall)..];
    let stalled: u64 = stalls.iter().map(|&ns| u64::from(ns)).sum();
    let upgrades = &result.upgrades;
    let (upgrades_done, upgrade_p50, upgrade_max) = match upgrades.last() {
        Some(max) => (
            upgrades.len().to_string(),
            format_duration(quantile(upgrades, 0.5)),
            format_duration(*max),
        ),
        None => ("-".into(), "-".into(), "-".into()),
    };
    format!(
        "  {:<12} {:>10} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10} {:>9} {:>9} {:>8} {:>10} {:>10}",
        result.run.name(),
        l.len(),
        ns(0.5),
        ns(0.99),
        ns(0.999),
        ns(0.9999),
        format_ns((*l.last().expect("one call at least")).into()),
        stalls.len(),
        format_ns(stalled),
        result.runqueue_wait.map_or("-".into(), format_duration),
        upgrades_done,
        upgrade_p50,
        upgrade_max,
    )
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (criterion's test
    // mode, where every benchmark runs once): keep the custom measurement short there.
    let bench = std::env::args().any(|a| a == "--bench");
    let rig = UpgradeRig::new();
    upgrade_pause(&rig, if bench { PAUSE_RUN } else { PAUSE_RUN_TEST });

    let mut c = Criterion::default().configure_from_args();
    metrics(&mut c);
    threads(&mut c);
    upgrade(&mut c, &rig);
    c.final_summary();
}
