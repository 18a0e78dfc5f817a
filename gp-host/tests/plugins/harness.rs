//! Builds the real plugins the tests load, once per test run, into `target/test-plugins`
//! (a target dir of its own: the outer `cargo test` holds the lock on the workspace's).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gp_host::build::{cargo_build, install_library, BuildOptions};
use gp_host::{Context, Manager};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gp-host sits in the workspace")
        .to_owned()
}

pub fn target_dir() -> PathBuf {
    workspace().join("target/test-plugins")
}

/// The debug info of every plugin build the tests run: the workspace's `[profile.dev]`, so
/// that all of them share one build of each dependency in [`target_dir`].
pub const DEBUG_INFO: &str = "line-tables-only";

/// The `[profile.dev]` table for the root `Cargo.toml` of a fixture workspace.
pub fn profile() -> String {
    format!("\n[profile.dev]\ndebug = {DEBUG_INFO:?}\n")
}

/// The environment for a command that builds a crate outside the fixture workspaces (whose
/// `Cargo.toml` the test does not write) into [`target_dir`].
pub fn build_env() -> [(&'static str, String); 2] {
    [
        ("CARGO_TARGET_DIR", target_dir().display().to_string()),
        ("CARGO_PROFILE_DEV_DEBUG", DEBUG_INFO.to_owned()),
    ]
}

/// The `Cargo.toml` of a plugin crate `package` at `version` depending on this workspace's
/// gp-sdk; `standalone` adds an empty `[workspace]` table, so that cargo does not look for an
/// enclosing workspace, and the tests' `[profile.dev]`.
pub fn plugin_manifest(package: &str, version: &str, standalone: bool) -> String {
    format!(
        "[package]\nname = \"{package}\"\nversion = \"{version}\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ngp-sdk = {{ path = {:?} }}\n{}",
        workspace().join("gp-sdk").display().to_string(),
        if standalone {
            format!("\n[workspace]\n{}", profile())
        } else {
            String::new()
        }
    )
}

pub fn options() -> BuildOptions {
    BuildOptions {
        release: false,
        target_dir: Some(target_dir()),
        quiet: true,
    }
}

/// The example plugins, built from source: name → library.
pub fn examples() -> &'static HashMap<String, PathBuf> {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let names = ["sample", "dispatch", "panicky", "slow"];
        let libraries = cargo_build(&workspace().join("Cargo.toml"), &names, &options())
            .unwrap_or_else(|e| panic!("building the example plugins: {e}"));
        libraries
            .into_iter()
            .map(|lib| (gp_host::inspect(&lib).unwrap().manifest.name, lib))
            .collect()
    })
}

pub fn example(name: &str) -> &'static Path {
    &examples()[name]
}

/// A fresh plugin base directory.
pub fn base_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gp-test-")
        .tempdir()
        .expect("temp dir")
}

/// A base directory holding the given example plugins, installed as `gp build` would.
pub fn base_dir_with(names: &[&str]) -> tempfile::TempDir {
    let base = base_dir();
    for name in names {
        install_library(example(name), base.path()).unwrap();
    }
    base
}

/// Asserts that `manager` still serves the `sample` plugin correctly.
pub fn assert_sample_serves(manager: &Manager) {
    let (_, executor) = manager.get_plugin("sample").expect("sample is loaded");
    let mut ctx = Context::new();
    ctx.set_as("sample", &serde_json::json!({"name": "still here"}))
        .unwrap();
    executor.execute(&mut ctx).expect("sample runs");
    assert_eq!(
        ctx.get("greeting").and_then(|v| v.as_str()),
        Some("sample plugin says: still here")
    );
}

/// How a fixture's copy of the interface crates differs from the real ones.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Interface {
    /// The real crates, used from a crate outside the workspace.
    Real,
    /// `gp-core` with a wider `CallErrorKind`: same version, different layout.
    WiderErrorKind,
    /// `gp-core` released as 0.0.1.
    OlderVersion,
    /// `gp-core` and `gp-sdk` as they were before lifecycle hooks: `PluginMod` ends at
    /// `execute`, as in a plugin built before hooks existed.
    WithoutHooks,
    /// `gp-core` as 0.1.1 (hooks, no `bind_host`) and `gp-sdk` without the field: the host
    /// never binds its services, so the plugin keeps its per-call state itself, as one built
    /// against 0.1.1 does, and as a 0.1.2 plugin does under a host older than 0.1.2.
    WithoutHostServices,
}

const OUTSIDE_SOURCE: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(description = "A plugin crate of its own")]
fn run(ctx: &mut Context) -> Result {
    let n = ctx.get_i64("n").unwrap_or(0);
    ctx.set("n", n * 2);
    Ok(())
}
"#;

/// A plugin crate of its own (outside the workspace, `[workspace]` at its root) built with
/// plain `cargo build`, against `interface`. Returns its library.
pub fn fixture(interface: Interface) -> &'static Path {
    let name = match interface {
        Interface::Real => "outside",
        Interface::WiderErrorKind => "layout-mismatch",
        Interface::OlderVersion => "version-mismatch",
        Interface::WithoutHooks => "before-hooks",
        Interface::WithoutHostServices => "before-services",
    };
    custom_fixture(name, "1.0.0", OUTSIDE_SOURCE, interface)
}

/// A plugin crate called `name`, version `version`, with `source` as its `lib.rs`, built
/// against `interface` (once per test run). Returns its library.
pub fn custom_fixture(
    name: &str,
    version: &str,
    source: &str,
    interface: Interface,
) -> &'static Path {
    static BUILT: OnceLock<std::sync::Mutex<HashMap<String, &'static Path>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Held across the build: fixtures share a target dir, so cargo would serialise them anyway.
    let mut built = built.lock().unwrap();
    if let Some(path) = built.get(name) {
        return path;
    }
    let path: &'static Path =
        Box::leak(build_fixture(name, version, source, interface).into_boxed_path());
    built.insert(name.to_owned(), path);
    path
}

fn build_fixture(name: &str, version: &str, source: &str, interface: Interface) -> PathBuf {
    let root = target_dir().join("fixtures").join(name);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("src")).unwrap();
    let sdk = if interface == Interface::Real {
        workspace().join("gp-sdk")
    } else {
        // Cargo names a path package's artifacts by its path relative to the workspace root,
        // so copies at `gp-core` would overwrite the real gp-core's artifacts in the shared
        // target dir (and every example plugin would then be built against the patched one).
        let interface_dir = root.join(format!("{name}-interface"));
        for krate in ["gp-core", "gp-macros", "gp-sdk"] {
            copy_crate(&workspace().join(krate), &interface_dir.join(krate));
        }
        patch_interface(&interface_dir, interface);
        interface_dir.join("gp-sdk")
    };
    // Resolve to the versions the workspace tested, and reuse the artifacts built for them.
    std::fs::copy(workspace().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            r#"[package]
name = "{name}"
version = "{version}"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
gp-sdk = {{ path = {sdk:?} }}

[workspace]
{profile}"#,
            sdk = sdk.display().to_string(),
            profile = profile(),
        ),
    )
    .unwrap();
    std::fs::write(root.join("src/lib.rs"), source).unwrap();
    let libraries = cargo_build(&root.join("Cargo.toml"), &[], &options())
        .unwrap_or_else(|e| panic!("building fixture {name}: {e}"));
    libraries
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("fixture {name} builds no cdylib"))
}

fn copy_crate(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("src")).unwrap();
    std::fs::copy(from.join("Cargo.toml"), to.join("Cargo.toml")).unwrap();
    for entry in std::fs::read_dir(from.join("src")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("src").join(entry.file_name())).unwrap();
    }
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} no longer contains {from:?}: update the fixture",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn patch_interface(root: &Path, interface: Interface) {
    match interface {
        Interface::Real => {}
        Interface::WiderErrorKind => replace_in(
            &root.join("gp-core/src/abi.rs"),
            "pub struct CallErrorKind(pub u8);",
            "pub struct CallErrorKind(pub u32);",
        ),
        Interface::WithoutHooks => {
            cut_root_module_from(root, "    /// The plugin's `#[on_load]` hook");
            replace_in(
                &root.join("gp-sdk/src/__private.rs"),
                "        on_load: ON_LOAD.first().copied(),\n        on_unload: ON_UNLOAD.first().copied(),\n        bind_host: Some(bind_host),\n",
                "",
            );
            set_interface_version(root, "0.1.0");
        }
        Interface::WithoutHostServices => {
            cut_root_module_from(root, "    /// Hands the plugin the host's [`HostServices`]");
            replace_in(
                &root.join("gp-sdk/src/__private.rs"),
                "        bind_host: Some(bind_host),\n",
                "",
            );
            set_interface_version(root, "0.1.1");
        }
        Interface::OlderVersion => set_interface_version(root, "0.0.1"),
    }
}

/// Removes gp-core's `PluginMod` fields from the line `from` to the end of the struct.
fn cut_root_module_from(root: &Path, from: &str) {
    let abi = root.join("gp-core/src/abi.rs");
    let text = std::fs::read_to_string(&abi).unwrap();
    let start = text
        .find(from)
        .unwrap_or_else(|| panic!("gp-core's PluginMod has no {from:?}: update the fixture"));
    let end = start + text[start..].find("\n}\n").unwrap() + 1;
    std::fs::write(&abi, format!("{}{}", &text[..start], &text[end..])).unwrap();
}

/// Releases the copy of gp-core as `version`.
fn set_interface_version(root: &Path, version: &str) {
    let current = format!("version = \"{}\"", gp_host::ABI_VERSION);
    let patched = format!("version = \"{version}\"");
    replace_in(&root.join("gp-core/Cargo.toml"), &current, &patched);
    replace_in(
        &root.join("gp-macros/Cargo.toml"),
        &format!("gp-core = {{ {current}"),
        &format!("gp-core = {{ {patched}"),
    );
    // gp-sdk requires its gp-core exactly.
    replace_in(
        &root.join("gp-sdk/Cargo.toml"),
        &format!("gp-core = {{ version = \"={}\"", gp_host::ABI_VERSION),
        &format!("gp-core = {{ version = \"={version}\""),
    );
}

/// A plain shared library with no gp in it.
pub fn plain_cdylib() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = target_dir().join("fixtures").join("plain");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"plain\"\nversion = \"1.0.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n".to_owned() + &profile(),
        )
        .unwrap();
        std::fs::write(
            root.join("src/lib.rs"),
            "#[no_mangle]\npub extern \"C\" fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
        )
        .unwrap();
        let libs = cargo_build(&root.join("Cargo.toml"), &[], &options()).unwrap();
        libs.into_iter().next().expect("plain builds a cdylib")
    })
}

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

/// Writes the plugin crates `crates` (package, version, `lib.rs`; each depending on gp-sdk,
/// plus the `[dependencies]` lines of `extra`) as one workspace at `root` and builds them
/// together. Returns package → library.
pub fn build_workspace<S: AsRef<str>>(
    root: &Path,
    crates: &[(&str, &str, S)],
    extra: &str,
) -> HashMap<String, PathBuf> {
    let _ = std::fs::remove_dir_all(root);
    for (package, version, source) in crates {
        let dir = root.join(package);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            plugin_manifest(package, version, false) + extra,
        )
        .unwrap();
        std::fs::write(dir.join("src/lib.rs"), source.as_ref()).unwrap();
    }
    let members: Vec<String> = crates.iter().map(|c| format!("{:?}", c.0)).collect();
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n{}",
            members.join(", "),
            profile()
        ),
    )
    .unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    let libraries = cargo_build(&root.join("Cargo.toml"), &[], &options())
        .unwrap_or_else(|e| panic!("building the fixtures in {}: {e}", root.display()));
    // `libcounter_v1.so` is package `counter-v1`.
    libraries
        .into_iter()
        .map(|library| {
            let stem = library.file_stem().unwrap().to_string_lossy();
            let package = stem
                .strip_prefix(std::env::consts::DLL_PREFIX)
                .unwrap_or(&stem)
                .replace('_', "-");
            (package, library)
        })
        .collect()
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

/// What the test HTTP server answers for a path.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body and its Content-Length.
    Body(Vec<u8>),
    /// 200 with this body, no Content-Length: the connection's end ends it.
    Unsized(Vec<u8>),
}

/// A real HTTP server on 127.0.0.1 serving `files` (404 for anything else), for as long as
/// the test runs. Returns its base URL.
pub fn http_server(files: HashMap<String, Reply>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let files = files.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let _ = match files.get(&path) {
                    Some(Reply::Body(body)) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| stream.write_all(body)),
                    Some(Reply::Unsized(body)) => stream
                        .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                        .and_then(|()| stream.write_all(body)),
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
                    ),
                };
            });
        }
    });
    url
}

/// Runs `f` with the host's log captured as text.
pub fn with_captured_log<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (result, text)
}
