//! The route table at scale: what a [`gp_host::http::PluginServer`] pays in its route tables
//! when plugins load and upgrade, with 256 generated plugins of 64 routes each.
//!
//! `cargo bench -p gp-benches --bench routes` (`-- --quick` for a short run). No plugin is
//! built: the manifests are generated, and the tables are driven through
//! `gp_host::__private::routes`, which runs the server's own admission check and served
//! table (no manager, sockets or executors). Measured:
//!
//! - `routes/start/256x64`: 256 loads in name order, each checked against the plugins before
//!   it and then served: a server's start-up over 256 plugins;
//! - `routes/upgrade/<others>`: one upgrade of a plugin (to a version whose 64 routes differ,
//!   and back, alternately) with 16 or 256 other plugins serving: must not depend on them;
//! - `routes/lookup/<plugins>`: a request's lookup (table loaded, route and parameter found);
//! - printed before criterion starts, `whole-table rebuilds`: the same start-up done the way
//!   gp did before (every change built the check's table and the served table from all
//!   plugins), timed once at 16, 64 and 256 plugins, for comparison; and, outside the route
//!   tables, what the manager's copies of the specs it hands the check cost over a start-up;
//!   and one upgrade done the old way, with 16 and 256 others.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use gp_host::__private::routes::{spec, RouteTables};
use gp_host::manifest::HttpMethod;
use gp_host::{Manifest, Spec};

/// Plugins and routes per plugin, as the issue sets them.
const PLUGINS: usize = 256;
const ROUTES: usize = 64;

/// Plugin `index`'s manifest: 16 resources × (list, show, update, delete). Version 2 moves
/// every route under `/v2`, so an upgrade changes all 64.
fn manifest(index: usize, version: u32) -> Manifest {
    let name = format!("p{index:03}");
    let prefix = if version == 1 {
        format!("/{name}")
    } else {
        format!("/{name}/v2")
    };
    let routes: Vec<serde_json::Value> = (0..ROUTES / 4)
        .flat_map(|r| {
            let one = format!("{prefix}/r{r}/{{id}}");
            [
                ("GET", format!("{prefix}/r{r}")),
                ("GET", one.clone()),
                ("PUT", one.clone()),
                ("DELETE", one),
            ]
            .into_iter()
            .enumerate()
            .map(move |(i, (method, route))| {
                serde_json::json!({"method": method, "route": route, "label": format!("r{r}.{i}")})
            })
        })
        .collect();
    let json = serde_json::json!({
        "name": name, "version": format!("{version}.0.0"),
        "source": {"mode": "local_so", "path": "lib.so"},
        "http_services": {"driver": "axum", "routes": routes},
    });
    Manifest::from_plugin_json(&json.to_string()).expect("a generated manifest is valid")
}

/// Plugins `0..count`, version 1, in name order.
fn plugins(count: usize) -> Vec<Spec> {
    (0..count)
        .map(|i| spec(manifest(i, 1), &format!("build-{i}-1")))
        .collect()
}

/// Loads `specs` in order, each checked against those before it, as a server built before
/// `load_plugins` does.
fn start(specs: &[Spec]) -> RouteTables {
    let mut tables = RouteTables::new();
    for (i, candidate) in specs.iter().enumerate() {
        tables.load(candidate, &specs[..i]).expect("no conflict");
    }
    tables
}

/// The same start-up as gp did it before: for every load, the admission check built a table
/// of all the plugins serving, and the served table was rebuilt from all of them.
fn start_rebuilding_whole(specs: &[Spec]) -> RouteTables {
    for (i, candidate) in specs.iter().enumerate() {
        RouteTables::new()
            .load(candidate, &specs[..i])
            .expect("no conflict");
        RouteTables::new().serve(&specs[..=i]);
    }
    start(specs)
}

fn routes(c: &mut Criterion) {
    let all = plugins(PLUGINS + 1);
    let mut group = c.benchmark_group("routes");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function(format!("start/{PLUGINS}x{ROUTES}"), |b| {
        b.iter(|| start(black_box(&all[..PLUGINS])))
    });
    for others in [16, PLUGINS] {
        // The plugin upgraded is the last by name, after `others` plugins.
        let serving = &all[..others];
        let mut tables = start(serving);
        let versions = [
            spec(manifest(PLUGINS, 1), "upgraded-1"),
            spec(manifest(PLUGINS, 2), "upgraded-2"),
        ];
        tables.load(&versions[0], serving).expect("no conflict");
        let mut next = 1;
        group.bench_function(format!("upgrade/{others}"), |b| {
            b.iter(|| {
                tables.load(&versions[next], serving).expect("no conflict");
                next = 1 - next;
            })
        });
        assert_eq!(tables.len(), (others + 1) * ROUTES);
    }
    for count in [16, PLUGINS] {
        let tables = start(&all[..count]);
        let path = format!("/p{:03}/r7/42", count / 2);
        assert!(tables.serves(HttpMethod::Get, &path));
        group.bench_function(format!("lookup/{count}"), |b| {
            b.iter(|| tables.serves(HttpMethod::Get, black_box(&path)))
        });
    }
    group.finish();
}

/// Times the old way's start-up once per size and prints it, with the new way's beside it.
fn whole_table_rebuilds() {
    println!("whole-table rebuilds, timed once (before criterion):");
    for count in [16, 64, PLUGINS] {
        let specs = plugins(count);
        let started = Instant::now();
        let tables = start_rebuilding_whole(&specs);
        let whole = started.elapsed();
        assert_eq!(tables.len(), count * ROUTES);
        let started = Instant::now();
        black_box(start(&specs));
        let incremental = started.elapsed();
        // Outside the route tables: the manager hands each check a copy of every other
        // plugin's spec (`Manager::admit`'s `serving`), made before every load.
        let started = Instant::now();
        for i in 0..count {
            black_box(specs[..i].to_vec());
        }
        let copies = started.elapsed();
        println!(
            "  {count:>3} plugins x {ROUTES} routes: rebuilding whole {whole:>10.1?}, changing one plugin {incremental:>8.1?}; the manager's copies of `serving` {copies:>8.1?}"
        );
    }
}

/// Times one upgrade done the old way (the check's table and the served table built from
/// every plugin), with 16 and 256 others, averaged over a few, and prints it.
fn whole_table_upgrades() {
    let all = plugins(PLUGINS);
    let upgraded = spec(manifest(PLUGINS, 2), "upgraded-2");
    for others in [16, PLUGINS] {
        let serving = &all[..others];
        let mut everyone = serving.to_vec();
        everyone.push(upgraded.clone());
        let runs = 5;
        let started = Instant::now();
        for _ in 0..runs {
            RouteTables::new()
                .load(&upgraded, serving)
                .expect("no conflict");
            RouteTables::new().serve(&everyone);
        }
        println!(
            "  one upgrade with {others:>3} others, rebuilding whole: {:>8.1?}",
            started.elapsed() / runs
        );
    }
}

criterion_group!(benches, routes);

fn main() {
    whole_table_rebuilds();
    whole_table_upgrades();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
