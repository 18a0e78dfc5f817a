//! The cost of getting a plugin ready: reading a library ([`gp_host::inspect`]) and loading a
//! plugin folder into a fresh [`gp_host::Manager`].
//!
//! The dynamic loader keeps a library it has opened by path (and abi_stable never closes
//! one), so repeated loads of the same folder measure inspection, verification and a cached
//! `dlopen`. Before criterion runs, a few cold loads (a fresh copy of the library under a
//! new file name each time) are timed once and printed.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use gp_benches::{BenchPlugins, GETSET};
use gp_host::build::install_library;
use gp_host::Manager;

/// How many cold loads to time.
const COLD_LOADS: usize = 5;

fn load(c: &mut Criterion) {
    let plugins = BenchPlugins::get();
    let library = plugins.installed_library(GETSET);
    let dir = plugins.plugin_dir(GETSET);

    let mut group = c.benchmark_group("load");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("inspect", |b| {
        b.iter(|| gp_host::inspect(black_box(&library)).expect("inspect"))
    });
    // The build is known to the process: a stat instead of a read and a hash, and neither a
    // private copy, a `dlopen` nor a layout check (see benches/README.md).
    group.bench_function("load_plugin/cached", |b| {
        b.iter(|| {
            let manager = Manager::new(plugins.base_dir.as_path());
            manager.load_plugin(black_box(&dir)).expect("load");
            manager
        })
    });
    group.finish();
}

/// Loads `COLD_LOADS` fresh copies of bench-getset, each under a file name the process has
/// never opened and with bytes of its own appended (another build to gp: another SHA-256, so
/// a private copy, a `dlopen` and abi_stable's checks), and prints how long each
/// `load_plugin` took. Runs before anything else is loaded, so the first copy is also the
/// first plugin this process loads.
fn cold_loads() {
    let built = gp_benches::build_plugins().unwrap_or_else(|e| panic!("{e}"));
    let built = &built
        .iter()
        .find(|(name, _)| name == GETSET)
        .expect("bench-getset was built")
        .1;
    let scratch = tempfile::Builder::new()
        .prefix("gp-bench-cold-")
        .tempdir()
        .expect("temporary directory");
    let stem = built
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("library file name");
    let mut times = Vec::new();
    for i in 0..COLD_LOADS {
        let copy = scratch.path().join(format!(
            "{stem}_cold{}_{i}{}",
            std::process::id(),
            std::env::consts::DLL_SUFFIX
        ));
        let mut bytes = std::fs::read(built).expect("read the library");
        bytes.extend_from_slice(format!("cold copy {i} of {}", std::process::id()).as_bytes());
        std::fs::write(&copy, bytes).expect("copy the library");
        let base = scratch.path().join(format!("base{i}"));
        install_library(&copy, &base).expect("install the copy");
        let manager = Manager::new(&base);
        let start = Instant::now();
        manager.load_plugin(base.join(GETSET)).expect("cold load");
        times.push(start.elapsed());
    }
    report_cold(&times, built);
}

fn report_cold(times: &[Duration], built: &Path) {
    let size = std::fs::metadata(built).map(|m| m.len()).unwrap_or(0);
    println!(
        "load/load_plugin/cold_dlopen: {COLD_LOADS} fresh copies of {} ({} KiB), timed once each \
         (copy 0 is the first plugin this process loads)",
        built.file_name().unwrap_or_default().to_string_lossy(),
        size / 1024
    );
    for (i, t) in times.iter().enumerate() {
        println!("  copy {i}: {:>9.1} µs", t.as_secs_f64() * 1e6);
    }
    let mut sorted = times.to_vec();
    sorted.sort();
    if let Some(median) = sorted.get(sorted.len() / 2) {
        println!("  median: {:>8.1} µs", median.as_secs_f64() * 1e6);
    }
}

criterion_group!(benches, load);

fn main() {
    // Timed before criterion's warm loads; cheap enough to run under `cargo test` too.
    cold_loads();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
