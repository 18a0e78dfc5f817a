//! The plugins of the lifecycle tests (versions of `counter`, `hooks` and `guarded`), built
//! together once per run, and installed into a base directory as a test asks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::build::{build_workspace, target_dir};

/// The file the `hooks` test plugins append their lifecycle to (one line per hook or call:
/// `<version> <what>`). Written into their source, so only one test may load them.
pub fn hook_log() -> PathBuf {
    target_dir().join("fixtures/lifecycle/hooks.log")
}

/// The plugins of the lifecycle tests, built together once per run: package → library.
///
/// - `counter-v1`, `counter-own`, `counter-rebuild` (1.0.0 too), `counter-v2`, `counter-old`
///   (0.9.0): plugin `counter`, which sets
///   `version` to its version; label `fail` returns an error, `panic` panics, `stubborn`
///   sleeps `ms` milliseconds ignoring cancellation, `patient` waits until cancelled.
///   v1 and v2 have an empty `on_unload`.
/// - `counter-refuses` (3.0.0): its `on_load` returns "database unreachable".
/// - `counter-hook-panics` (3.1.0): its `on_load` panics.
/// - `counter-other` (5.0.0): the same code as plugin `other`; `counter-capital` (1.0.0) as
///   plugin `Counter`.
/// - `hooks-v1`, `hooks-v2`: plugin `hooks`, writing each hook and call to [`hook_log`];
///   v2's `on_unload` fails with "flush failed".
/// - `guarded-v1`, `guarded-v2`: plugin `guarded`, whose `on_unload` poisons its build: a call
///   that runs after it, or while it runs, fails with "called after on_unload", and the hook
///   counts the calls it found in flight (`violations` in every call's context).
pub fn lifecycle(package: &str) -> &'static Path {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    let built = BUILT.get_or_init(build_lifecycle);
    built
        .get(package)
        .unwrap_or_else(|| panic!("no lifecycle fixture {package}"))
}

const COUNTER: &str = r#"use std::time::Duration;

use gp_sdk::{bail, plugin_entry, Context, Result};

HOOKS

#[plugin_entry(name = "PLUGIN")]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("version", env!("CARGO_PKG_VERSION"));
    match ctx.label() {
        Some("fail") => bail!("asked to fail"),
        Some("panic") => panic!("asked to panic"),
        Some("stubborn") => {
            let ms = ctx.get_i64("ms").unwrap_or(0).max(0) as u64;
            std::thread::sleep(Duration::from_millis(ms));
        }
        Some("patient") => loop {
            ctx.check_cancelled()?;
            std::thread::sleep(Duration::from_millis(1));
        },
        _ => {}
    }
    Ok(())
}
"#;

const HOOKS: &str = r#"use std::io::Write;

use gp_sdk::{bail, on_load, on_unload, plugin_entry, Context, Result};

fn note(what: &str) {
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(HOOK_LOG)
        .unwrap();
    writeln!(log, "{} {what}", env!("CARGO_PKG_VERSION")).unwrap();
}

#[on_load]
fn start(ctx: &mut Context) -> Result {
    ctx.info("starting");
    note("on_load");
    Ok(())
}

#[on_unload]
fn stop() -> Result {
    note("on_unload");
    if env!("CARGO_PKG_VERSION") == "2.0.0" {
        bail!("flush failed");
    }
    Ok(())
}

#[plugin_entry(name = "hooks")]
fn execute(ctx: &mut Context) -> Result {
    note("execute");
    let ms = ctx.get_i64("sleep_ms").unwrap_or(0).max(0) as u64;
    std::thread::sleep(std::time::Duration::from_millis(ms));
    Ok(())
}
"#;

const GUARDED: &str = r#"use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use gp_sdk::{bail, on_load, on_unload, plugin_entry, Context, Result};

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static UNLOADED: AtomicBool = AtomicBool::new(false);
static VIOLATIONS: AtomicUsize = AtomicUsize::new(0);

#[on_load]
fn start() {
    UNLOADED.store(false, SeqCst);
}

#[on_unload]
fn stop() {
    if IN_FLIGHT.load(SeqCst) != 0 {
        VIOLATIONS.fetch_add(1, SeqCst);
    }
    UNLOADED.store(true, SeqCst);
}

#[plugin_entry(name = "guarded")]
fn execute(ctx: &mut Context) -> Result {
    IN_FLIGHT.fetch_add(1, SeqCst);
    let before = UNLOADED.load(SeqCst);
    for _ in 0..200 {
        std::hint::spin_loop();
    }
    let after = UNLOADED.load(SeqCst);
    IN_FLIGHT.fetch_sub(1, SeqCst);
    if before || after {
        bail!("called after on_unload");
    }
    ctx.set("version", env!("CARGO_PKG_VERSION"));
    ctx.set("violations", VIOLATIONS.load(SeqCst) as i64);
    Ok(())
}
"#;

fn build_lifecycle() -> HashMap<String, PathBuf> {
    let root = target_dir().join("fixtures/lifecycle");
    let noop_unload = "#[gp_sdk::on_unload]\nfn bye() {}";
    let refuses =
        "#[gp_sdk::on_load]\nfn connect() -> Result {\n    bail!(\"database unreachable\")\n}";
    let panics =
        "#[gp_sdk::on_load]\nfn explode(_ctx: &mut Context) {\n    panic!(\"on_load exploded\")\n}";
    let counter =
        |plugin: &str, hooks: &str| COUNTER.replace("PLUGIN", plugin).replace("HOOKS", hooks);
    let hooks = HOOKS.replace(
        "HOOK_LOG)",
        &format!("{:?})", hook_log().display().to_string()),
    );
    let crates: Vec<(&str, &str, String)> = vec![
        ("counter-v1", "1.0.0", counter("counter", noop_unload)),
        // The same plugin, a build no other test loads: its hooks run for it alone, since
        // instances of one build in the process share them.
        ("counter-own", "1.0.0", counter("counter", noop_unload)),
        ("counter-v2", "2.0.0", counter("counter", noop_unload)),
        // Another build of counter 1.0.0 (another package, so another library).
        ("counter-rebuild", "1.0.0", counter("counter", noop_unload)),
        ("counter-old", "0.9.0", counter("counter", "")),
        ("counter-refuses", "3.0.0", counter("counter", refuses)),
        ("counter-hook-panics", "3.1.0", counter("counter", panics)),
        ("counter-other", "5.0.0", counter("other", "")),
        // A legal plugin name no OCI repository can carry (capitals).
        ("counter-capital", "1.0.0", counter("Counter", "")),
        ("hooks-v1", "1.0.0", hooks.clone()),
        ("hooks-v2", "2.0.0", hooks),
        ("guarded-v1", "1.0.0", GUARDED.to_owned()),
        ("guarded-v2", "2.0.0", GUARDED.to_owned()),
    ];
    build_workspace(&root, &crates, "")
}

/// Installs a lifecycle fixture into `base` as plugin folder `folder`.
pub fn install_lifecycle(base: &Path, package: &str, folder: &str) -> PathBuf {
    let library = lifecycle(package);
    let dir = base.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    let file_name = library.file_name().unwrap();
    std::fs::copy(library, dir.join(file_name)).unwrap();
    let info = gp_host::inspect(&dir.join(file_name)).unwrap();
    std::fs::write(dir.join("plugin.json"), info.plugin_json().to_json_pretty()).unwrap();
    dir
}
