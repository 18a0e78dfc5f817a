//! The seed's `main`, in Rust, plus a tour of what a host sees.
//!
//! 1. builds the example plugins from source (`cargo build`), and installs each into a plugin
//!    base directory as `<name>/plugin.json` + library;
//! 2. loads the base directory and prints the load report;
//! 3. calls `sample` with the seed's `Hello` value, `dispatch` by label, `panicky` into a
//!    panic and out again, and `slow` past a deadline and through a cancellation.
//!
//! Run it from anywhere in the workspace: `cargo run -p host-app`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use gp_host::build::{cargo_build, install_library, BuildOptions};
use gp_host::{Context, Error, Manager};
use serde::Serialize;

/// The seed's `Hello` struct, stored in the context under `sample`.
#[derive(Serialize)]
struct Hello {
    name: String,
}

const PLUGINS: [&str; 4] = ["sample", "dispatch", "panicky", "slow"];

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

fn run() -> Result<(), Error> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .map_err(|e| Error::Io {
            path: env!("CARGO_MANIFEST_DIR").into(),
            source: e,
        })?;
    let base_dir = workspace.join("target/gp-example/plugins");
    build_plugins(&workspace, &base_dir)?;

    // The seed's main: a manager over the base dir, load, get "sample", call it.
    println!("[INFO]: Plugin base dir: {}", base_dir.display());
    let manager = Manager::new(&base_dir);
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

    println!(
        "[INFO]: done: {} plugins loaded, {} failed",
        manager.list().len(),
        report.failed.len()
    );
    Ok(())
}

/// Builds the example plugin crates and installs them into `base_dir`.
fn build_plugins(workspace: &Path, base_dir: &Path) -> Result<(), Error> {
    println!("[INFO]: building the example plugins from source");
    let libraries: Vec<PathBuf> = cargo_build(
        &workspace.join("Cargo.toml"),
        &PLUGINS,
        &BuildOptions::default(),
    )?;
    for library in libraries {
        let installed = install_library(&library, base_dir)?;
        println!(
            "[INFO]: installed {} {} -> {}",
            installed.manifest.name,
            installed.manifest.version,
            installed.path.display()
        );
    }
    Ok(())
}
