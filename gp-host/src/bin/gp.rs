//! `gp`: inspect, list, call and serve gp plugins from the command line.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gp_host::{Context, Error, Manager, Value};

/// Inspect, list, call and serve gp plugins.
#[derive(Parser)]
#[command(name = "gp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a plugin library's embedded manifest and ABI version, after the checks a host
    /// makes before calling it (the library is loaded into this process)
    Inspect {
        /// The plugin library (.so)
        library: PathBuf,
    },
    /// Print the plugin.json that matches a plugin library (read from the file, not loaded)
    Manifest {
        /// The plugin library (.so)
        library: PathBuf,
        /// Write it to this file instead of standard output
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Load every plugin folder in a base directory and report each one's status
    List {
        /// The plugin base directory
        dir: PathBuf,
    },
    /// Call a plugin and print the context's values afterwards, as JSON
    Call {
        /// The plugin base directory
        dir: PathBuf,
        /// The plugin's name
        name: String,
        /// The call's label
        #[arg(long)]
        label: Option<String>,
        /// A context value, KEY=JSON (e.g. --set n=41 --set 'who="ann"'); repeatable
        #[arg(long = "set", value_name = "KEY=JSON", value_parser = parse_set)]
        values: Vec<(String, Value)>,
        /// A deadline for the call, such as 500ms or 2s
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
    },
    /// Load the plugins of a base directory and keep them loaded, serving their metrics over
    /// HTTP (GET /metrics in Prometheus text format, GET /stats as JSON) until Ctrl-C
    Serve {
        /// The plugin base directory
        dir: PathBuf,
        /// Follow the directory: load new plugin folders, upgrade changed ones (newer versions
        /// only), unload removed ones
        #[arg(long)]
        watch: bool,
        /// The address to serve metrics on (port 0 picks a free port)
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
    },
    /// Print the per-plugin metrics of a running `gp serve` as a table
    Stats {
        /// The address `gp serve` listens on
        #[arg(long, default_value = DEFAULT_LISTEN)]
        addr: SocketAddr,
        /// Print the JSON as served instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// Where `gp serve` serves metrics and `gp stats` reads them (9464: the port OpenTelemetry's
/// Prometheus exporter uses by default).
const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

fn parse_set(arg: &str) -> Result<(String, Value), String> {
    let (key, json) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not KEY=JSON"))?;
    if key.is_empty() {
        return Err(format!("{arg:?} has an empty key"));
    }
    let json: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        format!(
            "the value of {key:?} is not JSON ({e}); quote strings, e.g. --set '{key}=\"text\"'"
        )
    })?;
    Ok((key.to_owned(), Value::from(json)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server reports what happens to its plugins; one-shot commands only what goes wrong.
    let default_filter = match cli.command {
        Command::Serve { .. } => "warn,gp=info",
        _ => "warn,gp::plugin=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GP_LOG")
        .unwrap_or_else(|_| default_filter.into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Inspect { library } => {
            let info = gp_host::verify(&library)?;
            print!("{info}");
            println!("status:      loadable");
        }
        Command::Manifest { library, output } => {
            let json = gp_host::inspect(&library)?.plugin_json().to_json_pretty();
            match output {
                Some(path) => {
                    gp_host::build::write_atomically(&path, |tmp| std::fs::write(tmp, &json))?
                }
                None => print!("{json}"),
            }
        }
        Command::List { dir } => {
            let report = Manager::new(dir).load_plugins();
            print!("{report}");
            if !report.is_ok() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Call {
            dir,
            name,
            label,
            values,
            timeout,
        } => {
            let manager = Manager::new(&dir);
            let report = manager.load_plugins();
            let executor = manager.executor(&name).map_err(|not_found| {
                // If the plugin's folder failed to load, that failure is the useful answer.
                report
                    .failed
                    .into_iter()
                    .find(|f| f.dir.file_name().is_some_and(|n| n == name.as_str()))
                    .map_or(not_found, |f| f.error)
            })?;
            let mut ctx = Context::new();
            ctx.set_label(label);
            if let Some(timeout) = timeout {
                ctx = ctx.with_timeout(timeout);
            }
            for (key, value) in values {
                ctx.set(key, value);
            }
            executor.execute(&mut ctx)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&ctx.to_json()).expect("JSON values serialise")
            );
        }
        Command::Serve { dir, watch, listen } => return serve(dir, watch, listen),
        Command::Stats { addr, json } => return stats(addr, json),
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(dir: PathBuf, watch: bool, listen: SocketAddr) -> Result<ExitCode, Error> {
    let manager = Manager::new(&dir);
    let report = manager.load_plugins();
    print!("{report}");
    if matches!(report.failed.first(), Some(f) if matches!(f.error, Error::MissingBaseDir { .. })) {
        return Ok(ExitCode::FAILURE);
    }
    let _watcher = if watch { Some(manager.watch()?) } else { None };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            path: dir.clone(),
            source: e,
        })?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| cannot_listen(listen, e))?;
        let local = listener
            .local_addr()
            .map_err(|e| cannot_listen(listen, e))?;
        println!("serving metrics on http://{local}/metrics and http://{local}/stats");
        let _ = std::io::stdout().flush();
        axum::serve(listener, metrics_routes(manager))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| cannot_listen(listen, e))
    })?;
    Ok(ExitCode::SUCCESS)
}

fn cannot_listen(addr: SocketAddr, e: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(addr.to_string()),
        source: e,
    }
}

fn metrics_routes(manager: Manager) -> axum::Router {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;
    let metrics = {
        let manager = manager.clone();
        move || async move {
            (
                [(
                    CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                manager.prometheus(),
            )
        }
    };
    let stats = move || async move {
        let stats: Vec<serde_json::Value> = manager.stats().iter().map(|s| s.to_json()).collect();
        axum::Json(stats)
    };
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/stats", get(stats))
}

fn stats(addr: SocketAddr, json: bool) -> Result<ExitCode, Error> {
    let url = format!("http://{addr}/stats");
    let unreachable = |reason: String| Error::Io {
        path: PathBuf::from(&url),
        source: std::io::Error::other(format!("{reason}; is `gp serve --listen {addr}` running?")),
    };
    let body = ureq::get(&url)
        .call()
        .map_err(|e| unreachable(e.to_string()))?
        .body_mut()
        .read_to_string()
        .map_err(|e| unreachable(e.to_string()))?;
    let stats: Vec<serde_json::Value> = serde_json::from_str(&body)
        .map_err(|e| unreachable(format!("the answer is not gp stats ({e})")))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).expect("JSON values serialise")
        );
    } else {
        print!("{}", stats_table(&stats));
    }
    Ok(ExitCode::SUCCESS)
}

/// The stats of `gp serve` as a table, one plugin per row.
fn stats_table(stats: &[serde_json::Value]) -> String {
    let headers = [
        "PLUGIN",
        "VERSION",
        "CALLS",
        "ERRORS",
        "PANICS",
        "IN FLIGHT",
        "P50",
        "P90",
        "P99",
        "LOADS",
        "UPGRADES",
        "LAST ERROR",
    ];
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let latency = |s: &serde_json::Value, q: &str| {
        let ns = s["latency"][q].as_u64().unwrap_or(0);
        if s["latency"]["count"].as_u64().unwrap_or(0) == 0 {
            "-".to_owned()
        } else {
            format_ns(ns)
        }
    };
    let rows: Vec<Vec<String>> = stats
        .iter()
        .map(|s| {
            vec![
                text(&s["name"]),
                s["version"].as_str().unwrap_or("(unloaded)").to_owned(),
                text(&s["calls"]),
                text(&s["errors"]),
                text(&s["panics"]),
                text(&s["in_flight"]),
                latency(s, "p50_ns"),
                latency(s, "p90_ns"),
                latency(s, "p99_ns"),
                text(&s["loads"]),
                text(&s["upgrades"]),
                text(&s["last_error"]["message"]),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(headers.map(str::to_owned).to_vec()).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// 850ns, 12.3µs, 4.5ms, 1.2s.
fn format_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}ms", ns as f64 / 1e6),
        _ => format!("{:.1}s", ns as f64 / 1e9),
    }
}
