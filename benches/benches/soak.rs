//! A long run: 1,000 upgrades of `bench-noop` while a thread calls it, each upgrade a distinct
//! build delivered as a `.plg` package, with the runtime directory collected as it goes
//! (`GcOptions { keep: 2, min_age: 0 }`). Prints the runtime directory's size, the libraries
//! the process maps and its resident memory, before and after, and the calls that failed.
//!
//! `cargo bench -p gp-benches --bench soak` (about a minute). Not a criterion benchmark: one
//! run, its figures printed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gp_benches::{BenchPlugins, NOOP};
use gp_host::{Context, GcOptions, Manager, UpgradeOptions};

const UPGRADES: usize = 1000;

// Long: one soak run from set-up to the figures it prints, in order.
fn main() {
    let plugins = BenchPlugins::get();
    let installed = plugins.plugin_dir(NOOP);
    let work = tempfile::Builder::new()
        .prefix("gp-bench-soak-")
        .tempdir()
        .expect("temporary directory");
    let (base, packages) = (work.path().join("base"), work.path().join("packages"));
    std::fs::create_dir_all(&packages).expect("packages folder");

    // Distinct builds: the installed library with bytes of its own appended (the loader maps
    // only what the program headers name, so the code is the same; the SHA-256 is not).
    let started = Instant::now();
    let library_name = std::fs::read_dir(&installed)
        .expect("bench-noop folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .find(|n| n.to_string_lossy().ends_with(std::env::consts::DLL_SUFFIX))
        .expect("bench-noop's library");
    let library = std::fs::read(installed.join(&library_name)).expect("read the library");
    let manifest = std::fs::read(installed.join(gp_host::MANIFEST_FILE)).expect("plugin.json");
    let folder = work.path().join("folder");
    std::fs::create_dir_all(&folder).expect("scratch folder");
    std::fs::write(folder.join(gp_host::MANIFEST_FILE), &manifest).expect("plugin.json");
    let mut builds = Vec::with_capacity(UPGRADES + 1);
    for i in 0..=UPGRADES {
        let mut bytes = library.clone();
        bytes.extend_from_slice(format!("\0soak build {i}\0").as_bytes());
        std::fs::write(folder.join(&library_name), bytes).expect("write a build");
        let package = packages.join(format!("noop-{i}.plg"));
        gp_host::package::pack(&folder, &package, None).expect("pack a build");
        builds.push(package);
    }
    std::fs::create_dir_all(&base).expect("base folder");
    std::fs::copy(&builds[0], base.join("bench-noop.plg")).expect("install build 0");
    println!(
        "soak: {} distinct builds of {} packed in {:.1} s",
        builds.len(),
        NOOP,
        started.elapsed().as_secs_f64()
    );

    let manager = Manager::builder(&base)
        .gc(Some(GcOptions {
            keep: 2,
            min_age: Duration::ZERO,
            interval: None,
        }))
        .build();
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    let before = Sample::take(&manager);

    let stop = AtomicBool::new(false);
    let (calls, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let executor = manager.executor(NOOP).expect("bench-noop serves");
            while !stop.load(Ordering::Relaxed) {
                calls.fetch_add(1, Ordering::Relaxed);
                if executor.execute(&mut Context::new()).is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        for build in &builds[1..] {
            manager
                .upgrade_with(NOOP, build, UpgradeOptions { force: true })
                .unwrap_or_else(|e| panic!("{e}"));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed();
    let after = Sample::take(&manager);
    println!(
        "soak: {UPGRADES} upgrades in {:.1} s ({:.2} ms each) under {} calls, {} failed",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / UPGRADES as f64,
        calls.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
    println!("                   before      after   per upgrade");
    let per = |a: u64, b: u64| (b as f64 - a as f64) / UPGRADES as f64;
    println!(
        "runtime dir     {:>7} KiB {:>7} KiB   {:>+8.1} KiB   ({} and {} entries under packages/)",
        before.runtime_bytes / 1024,
        after.runtime_bytes / 1024,
        per(before.runtime_bytes, after.runtime_bytes) / 1024.0,
        before.unpacked,
        after.unpacked
    );
    println!(
        "mapped libraries {:>6}     {:>6}       {:>+8.2}",
        before.mapped,
        after.mapped,
        per(before.mapped, after.mapped)
    );
    println!(
        "resident memory {:>7} KiB {:>7} KiB   {:>+8.1} KiB",
        before.rss_kib,
        after.rss_kib,
        per(before.rss_kib, after.rss_kib)
    );
    assert_eq!(failed.load(Ordering::Relaxed), 0, "calls failed");
    assert!(
        after.unpacked <= 3,
        "the runtime directory was not collected"
    );
}

/// What the soak watches.
struct Sample {
    runtime_bytes: u64,
    unpacked: u64,
    mapped: u64,
    rss_kib: u64,
}

impl Sample {
    fn take(manager: &Manager) -> Sample {
        let runtime = manager.runtime_dir();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let mut files: Vec<&str> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .filter(|f| f.contains(std::env::consts::DLL_SUFFIX))
            .collect();
        files.sort_unstable();
        files.dedup();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        Sample {
            runtime_bytes: size(runtime),
            unpacked: std::fs::read_dir(runtime.join("packages"))
                .map(|e| e.count() as u64)
                .unwrap_or(0),
            mapped: files.len() as u64,
            rss_kib,
        }
    }
}

fn size(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| size(&e.path()))
                    .sum()
            })
            .unwrap_or(0),
        Ok(meta) => meta.len(),
        Err(_) => 0,
    }
}
