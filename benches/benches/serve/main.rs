//! What gp's HTTP plugin server adds to a request: `GET /api/plugin/sample/{id}` served by the
//! `sample` plugin through [`gp_host::http::PluginServer`], against a bare axum handler that
//! builds the same JSON, at 1 and 32 concurrent keep-alive connections.
//!
//! `cargo bench -p gp-benches --bench serve` (about 50 s, plus building `sample` the first
//! time). Not a criterion benchmark: each case runs for a fixed time (1 s warm-up, 3 s
//! measured) and prints requests per second and the p50/p99 latency of every request; the
//! cases run interleaved in 3 rounds, and the summary is each figure's median over them
//! (`GP_BENCH_ROUNDS=n` to change). `cargo test --benches` (no `--bench` argument), `--test`
//! or `GP_BENCH_QUICK=1` run one round of half a second per case instead. A positional
//! argument filters the cases by name (`serve/gp/c1`, `serve/axum/c32`, ...).
//!
//! Both servers run in one multi-thread tokio runtime (the default worker count, one per
//! core), each on its own ephemeral port of 127.0.0.1: axum with `axum::serve` (with connect
//! info), gp as `gp serve` serves it (gp's listener, the plugin server with no router in
//! front). The client is a current-thread runtime on the main
//! thread: each connection is a task sending one request at a time, with a minimal HTTP/1.1
//! client of its own (a fixed request, the response parsed with `httparse`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::extract::Path as UrlPath;
use axum::routing::get;
use axum::{Json, Router};
use gp_host::build::{cargo_build, install_library, BuildOptions};
use gp_host::http::PluginServer;
use gp_host::Manager;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

mod client;

use client::Connection;

/// The plugin served through gp, and its route.
const PLUGIN: &str = "sample";
const ROUTE_PREFIX: &str = "/api/plugin/sample/";

/// The concurrencies measured: connections, each with one request in flight.
const CONCURRENCY: [usize; 2] = [1, 32];

/// The full run: warm-up, then measurement, per case.
const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);
/// The quick run (`cargo test --benches`, `--test`, `GP_BENCH_QUICK=1`).
const QUICK_WARM_UP: Duration = Duration::from_millis(100);
const QUICK_MEASURE: Duration = Duration::from_millis(500);

/// Rounds of the full run: every case once per round, interleaved; the summary is each
/// figure's median over the rounds (`GP_BENCH_ROUNDS` overrides, 1 in the quick run).
const ROUNDS: usize = 3;

/// Bounds on every connection's loop, besides its deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUESTS_PER_CONNECTION: u64 = 5_000_000;
const MAX_FAILURES_PER_CONNECTION: u64 = 100;
/// The largest response the client accepts.
const MAX_RESPONSE: usize = 1 << 20;
/// Error messages kept per case, to print.
const KEPT_ERRORS: usize = 5;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Axum,
    Gp,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Axum => "axum",
            Server::Gp => "gp",
        }
    }
}

/// One measured case.
struct CaseResult {
    server: Server,
    concurrency: usize,
    /// Successful requests started inside the measurement window.
    requests: usize,
    rps: f64,
    p50: Duration,
    p99: Duration,
    /// Every request that failed (warm-up included): a status other than 200, an I/O error,
    /// a malformed response or a timeout.
    failed: u64,
    errors: Vec<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let bench = args.iter().any(|a| a == "--bench");
    let quick_env = std::env::var("GP_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let quick = !bench || quick_env || args.iter().any(|a| a == "--test");
    let (warm_up, measure) = if quick {
        (QUICK_WARM_UP, QUICK_MEASURE)
    } else {
        (WARM_UP, MEASURE)
    };
    let rounds = std::env::var("GP_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(if quick { 1 } else { ROUNDS })
        .clamp(1, 20);
    let cases = cases(&args);
    if cases.is_empty() {
        return;
    }

    let plugin_server = loaded_server();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("serve-server")
        .build()
        .expect("server runtime");
    let axum_addr = serve(&server_runtime, axum_router());
    let gp_addr = serve_gp(&server_runtime, plugin_server.clone());
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    // Both must answer the same request with the same JSON.
    let (gp_body, axum_body) = client.block_on(async {
        (
            fetch_json(gp_addr, "check").await,
            fetch_json(axum_addr, "check").await,
        )
    });
    assert_eq!(
        gp_body, axum_body,
        "gp and the axum baseline answer differently"
    );

    println!(
        "serve: GET {ROUTE_PREFIX}{{id}}, gp ({PLUGIN} plugin) on {gp_addr}, axum on {axum_addr}; \
         {} ms warm-up + {} ms per case{}",
        warm_up.as_millis(),
        measure.as_millis(),
        if quick { " (quick)" } else { "" }
    );
    let mut rounds_results: Vec<Vec<CaseResult>> = Vec::new();
    for round in 1..=rounds {
        if rounds > 1 {
            println!("round {round}/{rounds}");
        }
        let mut results = Vec::new();
        for &(concurrency, server) in &cases {
            let addr = match server {
                Server::Axum => axum_addr,
                Server::Gp => gp_addr,
            };
            let result = run_case(&client, server, addr, concurrency, warm_up, measure);
            print_result(&result);
            results.push(result);
        }
        rounds_results.push(results);
    }
    let failed: u64 = rounds_results.iter().flatten().map(|r| r.failed).sum();
    if rounds > 1 {
        println!("median of {rounds} rounds");
        for i in 0..cases.len() {
            print_result(&median(rounds_results.iter().map(|r| &r[i])));
        }
    }
    print_comparison(&rounds_results);
    drop(client);
    server_runtime.shutdown_timeout(Duration::from_secs(1));
    if failed > 0 {
        eprintln!("serve: {failed} requests failed");
        std::process::exit(1);
    }
}

/// A plugin server over a manager that loaded the example plugin, which serves a GET route.
fn loaded_server() -> PluginServer {
    let base_dir = install_sample();
    let manager = Manager::new(&base_dir);
    let plugin_server = PluginServer::new(manager.clone());
    let report = manager.load_plugins();
    assert!(
        report.failed.is_empty(),
        "loading {}: {report}",
        base_dir.display()
    );
    assert!(
        plugin_server
            .routes()
            .iter()
            .any(|r| r.plugin == PLUGIN && r.method == "GET"),
        "{PLUGIN} serves no GET route"
    );
    plugin_server
}

/// The cases the positional arguments select (every case without one), in running order.
fn cases(args: &[String]) -> Vec<(usize, Server)> {
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    CONCURRENCY
        .iter()
        .flat_map(|&c| [(c, Server::Axum), (c, Server::Gp)])
        .filter(|&(c, server)| {
            let id = format!("serve/{}/c{c}", server.name());
            filters.is_empty() || filters.iter().any(|f| id.contains(f))
        })
        .collect()
}

/// gp against axum in the same round (the two ran back to back), then the median over the
/// rounds of those differences and ratios.
fn print_comparison(rounds_results: &[Vec<CaseResult>]) {
    let rounds = rounds_results.len();
    for concurrency in CONCURRENCY {
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        let mut rps = Vec::new();
        for results in rounds_results {
            let find = |server| {
                results
                    .iter()
                    .find(|r| r.server == server && r.concurrency == concurrency)
            };
            if let (Some(gp), Some(axum)) = (find(Server::Gp), find(Server::Axum)) {
                p50.push(micros(gp.p50) - micros(axum.p50));
                p99.push(micros(gp.p99) - micros(axum.p99));
                rps.push(gp.rps / axum.rps);
            }
        }
        if p50.is_empty() {
            continue;
        }
        let per_round = if rounds > 1 {
            let list = |values: &[f64], format: fn(f64) -> String| {
                values
                    .iter()
                    .map(|&v| format(v))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            format!(
                "  (per round: p50 {} µs, rps {})",
                list(&p50, |v| format!("{v:+.1}")),
                list(&rps, |v| format!("{v:.2}x")),
            )
        } else {
            String::new()
        };
        println!(
            "serve/gp vs axum c={concurrency:<3} p50 {:+.1}µs  p99 {:+.1}µs  rps {:.2}x{per_round}",
            middle(p50),
            middle(p99),
            middle(rps),
        );
    }
}

/// Builds `sample` in release mode (into `bench-plugins` beside this binary's target
/// directory, a cargo target directory of its own) and installs it into a base directory of
/// its own there, which it returns.
fn install_sample() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_owned))
        .map(|dir| dir.join("bench-plugins"))
        .unwrap_or_else(gp_benches::plugins_target_dir);
    let options = BuildOptions {
        release: true,
        target_dir: Some(target.clone()),
        quiet: true,
    };
    let manifest = gp_benches::workspace_dir().join("Cargo.toml");
    let libraries = cargo_build(&manifest, &[PLUGIN], &options)
        .unwrap_or_else(|e| panic!("building {PLUGIN}: {e}"));
    let library = libraries
        .iter()
        .find(|l| gp_host::inspect(l).is_ok_and(|info| info.manifest.name == PLUGIN))
        .unwrap_or_else(|| panic!("cargo built no library for {PLUGIN}: {libraries:?}"));
    let base_dir = target.join("serve-installed");
    install_library(library, &base_dir)
        .unwrap_or_else(|e| panic!("installing {}: {e}", library.display()));
    base_dir
}

/// The baseline: the same route and the same JSON, as a bare axum handler.
fn axum_router() -> Router {
    async fn sample(UrlPath(id): UrlPath<String>) -> Json<serde_json::Value> {
        Json(serde_json::json!({
            "id": id,
            "greeting": format!("sample plugin says: hello, sample {id}"),
        }))
    }
    Router::new().route("/api/plugin/sample/{id}", get(sample))
}

/// Serves `server` on an ephemeral port of 127.0.0.1 in `runtime`, as `gp serve` does.
fn serve_gp(runtime: &Runtime, server: PluginServer) -> SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let limits = gp_host::http::ListenLimits::default();
    runtime.spawn(gp_host::http::serve_listener(
        listener,
        server,
        std::future::pending::<()>(),
        limits,
    ));
    addr
}

/// Serves `router` on an ephemeral port of 127.0.0.1 in `runtime`, with `axum::serve`.
fn serve(runtime: &Runtime, router: Router) -> SocketAddr {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    runtime.spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(error) = axum::serve(listener, service).await {
            eprintln!("serve: server on {addr} stopped: {error}");
        }
    });
    addr
}

fn request_bytes(addr: SocketAddr, id: &str) -> Vec<u8> {
    format!("GET {ROUTE_PREFIX}{id} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes()
}

/// One request on a fresh connection; panics unless it is a 200 with a JSON body.
async fn fetch_json(addr: SocketAddr, id: &str) -> serde_json::Value {
    let mut connection = tokio::time::timeout(REQUEST_TIMEOUT, Connection::open(addr))
        .await
        .unwrap_or_else(|_| panic!("connecting to {addr} timed out"))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    let mut body = Vec::new();
    let status = tokio::time::timeout(
        REQUEST_TIMEOUT,
        connection.get(&request_bytes(addr, id), Some(&mut body)),
    )
    .await
    .unwrap_or_else(|_| panic!("GET on {addr} timed out"))
    .unwrap_or_else(|e| panic!("GET on {addr}: {e}"));
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "GET on {addr}: {text}");
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("GET on {addr}: {e}: {text}"))
}

/// What one connection measured.
#[derive(Default)]
struct Outcome {
    /// The latency of each successful request started inside the measurement window.
    latencies: Vec<Duration>,
    failed: u64,
    errors: Vec<String>,
}

impl Outcome {
    fn fail(&mut self, error: String) {
        self.failed += 1;
        if self.errors.len() < KEPT_ERRORS {
            self.errors.push(error);
        }
    }
}

/// One connection: requests one after another until `end`, timing those started from
/// `measure_from`. Reconnects after an error; bounded in requests, failures and time.
async fn drive(addr: SocketAddr, request: Vec<u8>, measure_from: Instant, end: Instant) -> Outcome {
    let mut outcome = Outcome {
        latencies: Vec::with_capacity(64 * 1024),
        ..Outcome::default()
    };
    let mut connection: Option<Connection> = None;
    let mut sent = 0u64;
    while sent < MAX_REQUESTS_PER_CONNECTION && outcome.failed < MAX_FAILURES_PER_CONNECTION {
        if Instant::now() >= end {
            break;
        }
        let conn = match &mut connection {
            Some(conn) => conn,
            None => match tokio::time::timeout(REQUEST_TIMEOUT, Connection::open(addr)).await {
                Ok(Ok(conn)) => connection.insert(conn),
                Ok(Err(error)) => {
                    outcome.fail(format!("connect: {error}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(_) => {
                    outcome.fail("connect: timed out".into());
                    continue;
                }
            },
        };
        let started = Instant::now();
        let result = tokio::time::timeout(REQUEST_TIMEOUT, conn.get(&request, None)).await;
        let latency = started.elapsed();
        sent += 1;
        match result {
            Ok(Ok(200)) => {
                if started >= measure_from && started < end {
                    outcome.latencies.push(latency);
                }
            }
            Ok(Ok(status)) => outcome.fail(format!("status {status}")),
            Ok(Err(error)) => {
                outcome.fail(format!("request: {error}"));
                connection = None;
            }
            Err(_) => {
                outcome.fail(format!("request: no response in {REQUEST_TIMEOUT:?}"));
                connection = None;
            }
        }
    }
    outcome
}

fn run_case(
    client: &Runtime,
    server: Server,
    addr: SocketAddr,
    concurrency: usize,
    warm_up: Duration,
    measure: Duration,
) -> CaseResult {
    let outcomes = client.block_on(async {
        let measure_from = Instant::now() + warm_up;
        let end = measure_from + measure;
        let mut tasks = JoinSet::new();
        for i in 0..concurrency {
            tasks.spawn(drive(
                addr,
                request_bytes(addr, &i.to_string()),
                measure_from,
                end,
            ));
        }
        let mut outcomes = Vec::with_capacity(concurrency);
        while let Some(joined) = tasks.join_next().await {
            outcomes.push(joined.expect("a client connection panicked"));
        }
        outcomes
    });
    let mut latencies: Vec<Duration> = Vec::new();
    let mut failed = 0;
    let mut errors = Vec::new();
    for outcome in outcomes {
        latencies.extend(outcome.latencies);
        failed += outcome.failed;
        for error in outcome.errors {
            if errors.len() < KEPT_ERRORS && !errors.contains(&error) {
                errors.push(error);
            }
        }
    }
    latencies.sort_unstable();
    CaseResult {
        server,
        concurrency,
        requests: latencies.len(),
        rps: latencies.len() as f64 / measure.as_secs_f64(),
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        failed,
        errors,
    }
}

/// Each figure's median over the rounds of one case (the upper middle for an even count);
/// failures are added up.
fn median<'a>(rounds: impl Iterator<Item = &'a CaseResult>) -> CaseResult {
    let rounds: Vec<&CaseResult> = rounds.collect();
    let first = rounds[0];
    let of = |f: fn(&CaseResult) -> f64| middle(rounds.iter().map(|r| f(r)).collect());
    CaseResult {
        server: first.server,
        concurrency: first.concurrency,
        requests: of(|r| r.requests as f64) as usize,
        rps: of(|r| r.rps),
        p50: Duration::from_secs_f64(of(|r| r.p50.as_secs_f64())),
        p99: Duration::from_secs_f64(of(|r| r.p99.as_secs_f64())),
        failed: rounds.iter().map(|r| r.failed).sum(),
        errors: Vec::new(),
    }
}

/// The median of `values` (the upper middle for an even count); `values` is not empty.
fn middle(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The nearest-rank percentile `q` of `sorted`; zero when empty.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn print_result(r: &CaseResult) {
    println!(
        "{:<10} c={:<3} rps={:<7.0} p50={:<9} p99={:<9} failed={}  ({} requests)",
        format!("serve/{}", r.server.name()),
        r.concurrency,
        r.rps,
        format!("{:.1}µs", micros(r.p50)),
        format!("{:.1}µs", micros(r.p99)),
        r.failed,
        r.requests,
    );
    for error in &r.errors {
        println!("    failure: {error}");
    }
}
