//! `gp`: inspect, list, call and serve gp plugins from the command line.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gp_host::build::BuildOptions;
use gp_host::package::{self, Limits, Packed, PublicKey, SecretKey, Trust};
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
    /// Build a plugin crate with cargo (release) and write `OUT/<name>/plugin.json` + library,
    /// ready for a plugin base directory (or `OUT/<name>-<version>.plg` with --pack)
    Build {
        /// The plugin crate (its folder or Cargo.toml)
        #[arg(default_value = ".")]
        krate: PathBuf,
        /// Where to write the plugin folder or package
        #[arg(short, long, default_value = "plugins")]
        out: PathBuf,
        /// Write a .plg package instead of a plugin folder
        #[arg(long)]
        pack: bool,
        /// Sign the package with this secret key file (from `gp keygen`); implies --pack
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Build without --release
        #[arg(long)]
        debug: bool,
    },
    /// Pack a plugin folder (plugin.json + library), or build and pack a plugin crate, into a
    /// .plg package: tar.gz with a SHA-256 checksum list, optionally signed
    Pack {
        /// A plugin folder, or a plugin crate (a folder with Cargo.toml)
        path: PathBuf,
        /// The package to write (default: <name>-<version>.plg in the current directory)
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Sign it with this secret key file (from `gp keygen`)
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
    },
    /// Check a .plg package completely without loading it: entries, checksums, signature,
    /// and the plugin it carries
    Verify {
        /// The package
        package: PathBuf,
        /// Require a signature by this public key (base64, or a .pub file); repeatable
        #[arg(long = "public-key", value_name = "KEY")]
        public_keys: Vec<String>,
    },
    /// Make an ed25519 key pair for signing packages: NAME.key (secret) and NAME.pub
    Keygen {
        /// The path of the key files, without extension
        name: PathBuf,
    },
    /// Download a .plg package, verify it, install it into a plugin base directory and load it
    Install {
        /// The package's URL (http:// or https://)
        url: String,
        /// The SHA-256 the package must have (as `gp pack` prints it)
        #[arg(long)]
        sha256: Option<String>,
        /// Require a signature by this public key (base64, or a .pub file); repeatable
        #[arg(long = "public-key", value_name = "KEY")]
        public_keys: Vec<String>,
        /// The plugin base directory
        #[arg(long, default_value = "plugins")]
        dir: PathBuf,
    },
    /// Make a new plugin crate that builds, packs and loads as it stands
    New {
        /// The plugin's name (and the crate's folder)
        name: String,
        /// The gp-sdk to depend on: a path to its crate (default: the gp-sdk this gp was
        /// built from, if it is still there, else the published version)
        #[arg(long)]
        sdk: Option<PathBuf>,
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
        Command::Build {
            krate,
            out,
            pack,
            sign,
            debug,
        } => build(&krate, &out, pack || sign.is_some(), sign.as_deref(), debug)?,
        Command::Pack { path, output, sign } => {
            let key = sign.as_deref().map(SecretKey::read).transpose()?;
            let scratch = tempfile::tempdir().map_err(|e| Error::Io {
                path: std::env::temp_dir(),
                source: e,
            })?;
            let folder = if path.join(gp_host::MANIFEST_FILE).is_file() {
                path
            } else {
                let built = gp_host::build::build_plugin(
                    &path,
                    scratch.path(),
                    &BuildOptions {
                        release: true,
                        ..BuildOptions::default()
                    },
                )?;
                scratch.path().join(&built[0].manifest.name)
            };
            let packed = pack_folder(&folder, output, key.as_ref())?;
            print_packed(&packed);
        }
        Command::Verify {
            package,
            public_keys,
        } => {
            let trust = required_signers(&public_keys)?.unwrap_or_default();
            let verified = package::verify(&package, &trust, &Limits::default())?;
            println!(
                "{}: {} {}, sha256 {}",
                package.display(),
                verified.manifest.name,
                verified.manifest.version,
                verified.sha256
            );
            match verified.signed_by {
                Some(key) => println!("signed by {key}"),
                None => println!("not signed (checksums hold)"),
            }
        }
        Command::Keygen { name } => {
            let key = SecretKey::generate()?;
            let secret = name.with_extension("key");
            let public = name.with_extension("pub");
            if public.exists() {
                return Err(Error::Io {
                    path: public,
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "already exists; choose another name",
                    ),
                });
            }
            key.write(&secret)?;
            let public_key = key.public_key();
            std::fs::write(&public, format!("{public_key}\n")).map_err(|e| Error::Io {
                path: public.clone(),
                source: e,
            })?;
            println!("secret key: {} (keep it private)", secret.display());
            println!("public key: {} = {public_key}", public.display());
        }
        Command::Install {
            url,
            sha256,
            public_keys,
            dir,
        } => {
            let trust = required_signers(&public_keys)?;
            let manager = Manager::new(&dir);
            let terminal = std::io::stderr().is_terminal();
            let progress = |received: u64, total: Option<u64>| {
                if terminal {
                    match total {
                        Some(total) => eprint!("\rdownloading: {received} of {total} bytes"),
                        None => eprint!("\rdownloading: {received} bytes"),
                    }
                }
            };
            let installed = manager.install(
                &url,
                &gp_host::InstallOptions {
                    sha256,
                    trust,
                    progress: Some(&progress),
                },
            );
            if terminal {
                eprintln!();
            }
            let spec = installed?;
            println!(
                "installed {} {} -> {}",
                spec.name(),
                spec.version(),
                spec.origin.display()
            );
        }
        Command::New { name, sdk } => return new_plugin(&name, sdk),
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

fn build(
    krate: &std::path::Path,
    out: &std::path::Path,
    pack: bool,
    sign: Option<&std::path::Path>,
    debug: bool,
) -> Result<(), Error> {
    let key = sign.map(SecretKey::read).transpose()?;
    let options = BuildOptions {
        release: !debug,
        target_dir: None,
        quiet: false,
    };
    if !pack {
        for info in gp_host::build::build_plugin(krate, out, &options)? {
            println!(
                "built {} {} -> {}",
                info.manifest.name,
                info.manifest.version,
                info.path.parent().unwrap_or(out).display()
            );
        }
        return Ok(());
    }
    let scratch = tempfile::tempdir().map_err(|e| Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    for info in gp_host::build::build_plugin(krate, scratch.path(), &options)? {
        let name = &info.manifest.name;
        std::fs::create_dir_all(out).map_err(|e| Error::Io {
            path: out.to_owned(),
            source: e,
        })?;
        let output = out.join(package_file_name(&info.manifest));
        let packed = pack_folder(&scratch.path().join(name), Some(output), key.as_ref())?;
        print_packed(&packed);
    }
    Ok(())
}

/// `--public-key` arguments: if there are any, a signature by one of them is required.
fn required_signers(keys: &[String]) -> Result<Option<Trust>, Error> {
    let keys = keys
        .iter()
        .map(|k| PublicKey::from_text_or_file(k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!keys.is_empty()).then(|| Trust::signed_by(keys)))
}

/// The file name `gp pack` and `gp build --pack` give a package: `<name>-<version>.plg`.
fn package_file_name(manifest: &gp_host::Manifest) -> String {
    format!("{}-{}.plg", manifest.name, manifest.version)
}

/// Packs `folder` into `output`, or into `<name>-<version>.plg` in the current directory
/// (the name and version from its plugin.json, which `pack` checks against the library).
fn pack_folder(
    folder: &std::path::Path,
    output: Option<PathBuf>,
    key: Option<&SecretKey>,
) -> Result<Packed, Error> {
    let output = match output {
        Some(output) => output,
        None => {
            let path = folder.join(gp_host::MANIFEST_FILE);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
            let manifest = gp_host::Manifest::from_plugin_json(&text)
                .map_err(|source| Error::InvalidManifest { path, source })?;
            PathBuf::from(package_file_name(&manifest))
        }
    };
    package::pack(folder, &output, key)
}

fn print_packed(packed: &Packed) {
    println!(
        "packed {} {} -> {}",
        packed.manifest.name,
        packed.manifest.version,
        packed.path.display()
    );
    println!("sha256 {}", packed.sha256);
    match &packed.signed_by {
        Some(key) => println!("signed by {key}"),
        None => println!("not signed"),
    }
}

/// The gp-sdk this binary was built beside, if it is still there.
fn default_sdk() -> Option<PathBuf> {
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../gp-sdk");
    sdk.join("Cargo.toml")
        .is_file()
        .then(|| sdk.canonicalize().ok())
        .flatten()
}

fn new_plugin(name: &str, sdk: Option<PathBuf>) -> Result<ExitCode, Error> {
    if let Err(e) = gp_host::manifest::validate_name(name) {
        eprintln!("error: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let dir = PathBuf::from(name);
    if dir.exists() {
        return Err(Error::Io {
            path: dir,
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already exists; choose another name or remove it",
            ),
        });
    }
    let dependency = match sdk.or_else(default_sdk) {
        Some(path) => {
            let path = path.canonicalize().map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
            format!("gp-sdk = {{ path = {:?} }}", path.display().to_string())
        }
        None => format!("gp-sdk = \"{}\"", env!("CARGO_PKG_VERSION")),
    };
    let files = [
        (
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
description = "A gp plugin"

[lib]
crate-type = ["cdylib"]

[dependencies]
{dependency}

# A crate of its own, even inside another workspace's folder.
[workspace]
"#
            ),
        ),
        (
            "src/lib.rs",
            r#"//! A gp plugin. Build it with `gp build`, pack it with `gp build --pack`.

use gp_sdk::{plugin_entry, Context, Result};

/// Greets whoever the context's `name` says.
#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    let name = ctx.get_str("name").unwrap_or("world").to_owned();
    ctx.info(format!("greeting {name}"));
    ctx.set("greeting", format!("hello {name}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use gp_sdk::testing::TestContext;

    #[test]
    fn greets_by_name() {
        let mut ctx = TestContext::new();
        ctx.set("name", "gp");
        ctx.call(super::execute).unwrap();
        assert_eq!(ctx.get("greeting").and_then(|v| v.as_str()), Some("hello gp"));
    }
}
"#
            .to_owned(),
        ),
        (".gitignore", "/target\n/plugins\n*.plg\n".to_owned()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Io {
                path: parent.to_owned(),
                source: e,
            })?;
        }
        std::fs::write(&path, text).map_err(|e| Error::Io { path, source: e })?;
    }
    println!("created plugin crate {name}/ ({dependency})");
    println!(
        "next: cd {name} && cargo test && gp build && gp call plugins {name} --set 'name=\"you\"'"
    );
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
