//! The seed's `main`, in Rust, plus a tour of what a host sees.
//!
//! 1. builds the example plugins from source (`cargo build`), and installs each into a plugin
//!    base directory as `<name>/plugin.json` + library;
//! 2. loads the base directory and prints the load report;
//! 3. calls `sample` with the seed's `Hello` value, `dispatch` by label, `panicky` into a
//!    panic and out again, and `slow` past a deadline and through a cancellation;
//! 4. upgrades `greeter` 1.0.0 to 2.0.0 (`greeter-next`) while two threads call it, shows an
//!    upgrade refused, unloads `slow` while a call runs in it, and prints the metrics;
//! 5. serves the plugins' HTTP routes (`sample` declares the seed's two) on a loopback port,
//!    sends each route a request and prints the answers.
//!
//! Run it from anywhere in the workspace: `cargo run -p host-app`. With `serve [ADDR]` it
//! then keeps serving the routes on ADDR (default `127.0.0.1:8080`) until Ctrl-C:
//! `cargo run -p host-app -- serve`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gp_host::build::{cargo_build, install_library, BuildOptions};
use gp_host::http::PluginServer;
use gp_host::{Context, Error, Event, Manager, Upgrade};

/// What this host reports when it stops: gp-host's errors and its own, as `?` makes them.
type Failure = Box<dyn std::error::Error>;
use serde::Serialize;

/// The seed's `Hello` struct, stored in the context under `sample`.
#[derive(Serialize)]
struct Hello {
    name: String,
}

const PLUGINS: [&str; 6] = [
    "sample",
    "dispatch",
    "panicky",
    "slow",
    "greeter",
    "greeter-next",
];

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("[Error]: {error}");
            ExitCode::FAILURE
        }
    }
}

// Long: the tour itself, read top to bottom as the module documentation lists it.
fn run() -> Result<(), Failure> {
    let serve_at: Option<SocketAddr> = match std::env::args().nth(1).as_deref() {
        None => None,
        Some("serve") => Some(
            std::env::args()
                .nth(2)
                .unwrap_or_else(|| "127.0.0.1:8080".into())
                .parse()
                .map_err(|e| format!("serve ADDR: not an address: {e}"))?,
        ),
        Some(other) => {
            return Err(format!(
                "{other}: unknown argument: run with no argument, or `serve [ADDR]`"
            )
            .into())
        }
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .map_err(|e| format!("{}: {e}", env!("CARGO_MANIFEST_DIR")))?;
    let base_dir = workspace.join("target/gp-example/plugins");
    let greeter_next = build_plugins(&workspace, &base_dir)?;

    // The seed's main: a manager over the base dir, load, get "sample", call it.
    println!("[INFO]: Plugin base dir: {}", base_dir.display());
    let manager = Manager::new(&base_dir);
    // Every plugin's routes are checked against the others', whether the server is made
    // before or after the load.
    let server = PluginServer::new(manager.clone());
    let report = manager.load_plugins();
    print!("{report}");
    let (spec, executor) = manager.get_plugin("sample")?;
    println!(
        "[INFO]: Plugin '{}' loaded with version '{}'",
        spec.name(),
        spec.version()
    );
    let mut ctx = Context::new();
    ctx.set_as(
        "sample",
        &Hello {
            name: "hello gp".into(),
        },
    )
    .expect("Hello serialises");
    executor.execute(&mut ctx)?;
    println!("[INFO]: sample -> {}", ctx.to_json());

    // One entry point, dispatching on the call's label.
    let dispatch = manager.executor("dispatch")?;
    let mut ctx = Context::new().with_label("counter.add");
    ctx.set("count", 40);
    ctx.set("by", 2);
    dispatch.execute(&mut ctx)?;
    println!("[INFO]: dispatch counter.add -> {}", ctx.to_json());
    let mut ctx = Context::new().with_label("counter.reset");
    let refused = dispatch.execute(&mut ctx).unwrap_err();
    println!("[INFO]: dispatch counter.reset -> {refused}");

    // A panic costs one call: the same executor works right after.
    let panicky = manager.executor("panicky")?;
    let panic = panicky
        .execute(&mut Context::new().with_label("boom"))
        .unwrap_err();
    println!("[INFO]: panicky boom -> {panic}");
    let mut ctx = Context::new();
    panicky.execute(&mut ctx)?;
    println!("[INFO]: panicky again -> {}", ctx.to_json());

    // Deadlines and cancellation reach the plugin, which stops.
    let slow = manager.executor("slow")?;
    let mut ctx = Context::new().with_timeout(Duration::from_millis(100));
    let late = slow.execute(&mut ctx).unwrap_err();
    println!(
        "[INFO]: slow with a 100ms deadline -> {late} (after {} steps)",
        ctx.get("done").and_then(|v| v.as_i64()).unwrap_or(0)
    );
    let mut ctx = Context::new();
    let token = ctx.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        token.cancel();
    });
    let cancelled = slow.execute(&mut ctx).unwrap_err();
    canceller.join().expect("canceller thread");
    println!("[INFO]: slow cancelled from another thread -> {cancelled}");

    lifecycle(&manager, &greeter_next)?;

    serve(&server, serve_at)?;

    println!(
        "[INFO]: done: {} plugins still loaded, {} failed to load",
        manager.list().len(),
        report.failed.len()
    );
    Ok(())
}

/// Serves the plugins' routes on a loopback port and calls each of sample's; with `forever`,
/// keeps serving there until Ctrl-C.
fn serve(server: &PluginServer, forever: Option<SocketAddr>) -> Result<(), Failure> {
    let io = |e: std::io::Error| format!("127.0.0.1: {e}");
    let runtime = tokio::runtime::Runtime::new().map_err(io)?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(
            forever.unwrap_or_else(|| "127.0.0.1:0".parse().expect("an address")),
        ))
        .map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let app = server
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    for route in server.routes() {
        println!(
            "[INFO]: serving {} http://{addr}{} -> {} ({})",
            route.method, route.route, route.plugin, route.label
        );
    }
    let get = request(addr, "GET /api/plugin/sample/7", "").map_err(io)?;
    println!("[INFO]: GET /api/plugin/sample/7 -> {get}");
    let post = request(
        addr,
        "POST /api/plugin/samples",
        r#"{"name": "hello over HTTP"}"#,
    )
    .map_err(io)?;
    println!("[INFO]: POST /api/plugin/samples -> {post}");
    for _ in 0..2 {
        let add = request(addr, "POST /api/counter/hits", r#"{"by": 2}"#).map_err(io)?;
        println!("[INFO]: POST /api/counter/hits {{\"by\": 2}} -> {add}");
    }
    let missing = request(addr, "GET /api/plugin/nothing", "").map_err(io)?;
    println!("[INFO]: GET /api/plugin/nothing -> {missing}");
    if forever.is_some() {
        println!("[INFO]: serving on http://{addr}/ until Ctrl-C; try:");
        println!("  curl http://{addr}/api/plugin/sample/7");
        let _ = std::io::stdout().flush();
        runtime.block_on(async {
            let _ = tokio::signal::ctrl_c().await;
        });
    }
    let _ = stop.send(());
    let _ = runtime.block_on(serving);
    Ok(())
}

/// One HTTP/1.1 request (`"METHOD PATH"`, a JSON body or none); returns the status line's
/// code and the body.
fn request(addr: SocketAddr, line: &str, json: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{line} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
        json.len()
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let status = reply.split(' ').nth(1).unwrap_or("?").to_owned();
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(format!("{status} {body}"))
}

/// Upgrades under load, a refused upgrade, an unload while a call runs, and the metrics.
// Long: one scenario (upgrade under calls, a refused upgrade, an unload mid-call), read in order.
fn lifecycle(manager: &Manager, greeter_next: &Path) -> Result<(), Failure> {
    manager.subscribe_lifecycle(|event| match event {
        Event::Upgraded { from, to } => println!(
            "[EVENT]: {} upgraded {} -> {}",
            to.name(),
            from.version(),
            to.version()
        ),
        Event::UpgradeRefused { error, .. } => println!("[EVENT]: {error}"),
        Event::Unloaded { report } => println!(
            "[EVENT]: {} {} unloaded after {:?}",
            report.spec.name(),
            report.spec.version(),
            report.waited
        ),
        _ => {}
    });

    // Two threads call greeter without pause while it is upgraded: no call fails, and every
    // call after the upgrade returned sees 2.0.0.
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let greeter = manager.executor("greeter")?;
            let stop = Arc::clone(&stop);
            Ok(std::thread::spawn(move || {
                let mut seen: BTreeMap<String, u64> = BTreeMap::new();
                let mut failed = 0u64;
                let mut ctx = Context::new();
                ctx.set("name", "tour");
                while !stop.load(Ordering::Relaxed) {
                    match greeter.execute(&mut ctx) {
                        Ok(()) => {
                            let version = ctx.get("version").and_then(|v| v.as_str());
                            *seen.entry(version.unwrap_or("?").to_owned()).or_default() += 1;
                        }
                        Err(_) => failed += 1,
                    }
                }
                (seen, failed)
            }))
        })
        .collect::<Result<_, Error>>()?;
    std::thread::sleep(Duration::from_millis(50));
    if let Upgrade::Upgraded(upgraded) = manager.upgrade("greeter", greeter_next)? {
        println!(
            "[INFO]: greeter {} now serves; {} finishes its calls in flight",
            upgraded.to.version(),
            upgraded.from.version()
        );
    }
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut failed = 0;
    for caller in callers {
        let (s, f) = caller.join().expect("caller thread");
        for (version, n) in s {
            *seen.entry(version).or_default() += n;
        }
        failed += f;
    }
    println!("[INFO]: calls by version during the upgrade: {seen:?}, failed: {failed}");
    let mut ctx = Context::new();
    ctx.set("name", "gp");
    manager.executor("greeter")?.execute(&mut ctx)?;
    println!("[INFO]: greeter -> {}", ctx.to_json()["greeting"]);

    // Going back is refused unless forced: the running version keeps serving.
    let greeter_one = manager.base_dir().join("greeter");
    let refused = manager.upgrade("greeter", &greeter_one).unwrap_err();
    println!("[INFO]: upgrade back to the folder's 1.0.0 -> {refused}");

    // Unloading slow while a call runs in it: the call sees itself cancelled and returns.
    let slow = manager.executor("slow")?;
    let call = std::thread::spawn(move || slow.execute(&mut Context::new()));
    std::thread::sleep(Duration::from_millis(50));
    let report = manager.unload("slow")?;
    let outcome = call.join().expect("slow caller");
    println!(
        "[INFO]: the call running in slow -> {}",
        outcome.map_or_else(|e| e.to_string(), |()| "ok".into())
    );
    println!(
        "[INFO]: slow unloaded: {} call(s) still running, on_unload: {:?}",
        report.still_running, report.on_unload
    );
    println!(
        "[INFO]: calling slow now -> {}",
        manager.executor("slow").unwrap_err()
    );

    println!("[INFO]: metrics:");
    println!(
        "  {:<9} {:<8} {:>7} {:>6} {:>6} {:>9} {:>9}",
        "PLUGIN", "VERSION", "CALLS", "ERRORS", "PANICS", "P50", "P99"
    );
    for stats in manager.stats() {
        let version = stats.version.map_or("-".into(), |v| v.to_string());
        println!(
            "  {:<9} {:<8} {:>7} {:>6} {:>6} {:>9} {:>9}",
            stats.name,
            version,
            stats.calls,
            stats.errors,
            stats.panics,
            short(stats.latency.p50()),
            short(stats.latency.p99())
        );
    }
    let prometheus = manager.prometheus();
    let line = prometheus
        .lines()
        .find(|l| l.starts_with("gp_plugin_upgrades_total{plugin=\"greeter\"}"))
        .unwrap_or_default();
    println!("[INFO]: in Prometheus text: {line}");
    Ok(())
}

/// A duration in its largest whole unit, to one decimal: 959ns, 6.1µs, 109.1ms.
fn short(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1e3 {
        format!("{ns}ns")
    } else if ns < 1e6 {
        format!("{:.1}µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1}ms", ns / 1e6)
    } else {
        format!("{:.1}s", ns / 1e9)
    }
}

/// Builds the example plugin crates and installs them into `base_dir`, except
/// `greeter-next`, the 2.0.0 release of greeter, whose library it returns.
fn build_plugins(workspace: &Path, base_dir: &Path) -> Result<PathBuf, Failure> {
    println!("[INFO]: building the example plugins from source");
    let libraries: Vec<PathBuf> = cargo_build(
        &workspace.join("Cargo.toml"),
        &PLUGINS,
        &BuildOptions::default(),
    )?;
    let mut greeter_next = None;
    for library in libraries {
        if library
            .file_stem()
            .is_some_and(|stem| stem.to_string_lossy().ends_with("greeter_next"))
        {
            greeter_next = Some(library);
            continue;
        }
        let installed = install_library(&library, base_dir)?;
        println!(
            "[INFO]: installed {} {} -> {}",
            installed.manifest.name,
            installed.manifest.version,
            installed.path.display()
        );
    }
    greeter_next.ok_or_else(|| {
        format!(
            "building {} failed: cargo built no greeter-next library",
            workspace.join("examples/greeter-next").display()
        )
        .into()
    })
}
