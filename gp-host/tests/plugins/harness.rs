//! Builds the real plugins the tests load, once per test run, into `target/test-plugins`
//! (a target dir of its own: the outer `cargo test` holds the lock on the workspace's).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gp_host::build::{cargo_build, install_library, BuildOptions};
use gp_host::{Context, Manager};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gp-host sits in the workspace")
        .to_owned()
}

fn target_dir() -> PathBuf {
    workspace().join("target/test-plugins")
}

fn options() -> BuildOptions {
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
}

/// A plugin crate of its own (outside the workspace, `[workspace]` at its root) built with
/// plain `cargo build`, against `interface`. Returns its library.
pub fn fixture(interface: Interface) -> &'static Path {
    static BUILT: OnceLock<std::sync::Mutex<HashMap<Interface, &'static Path>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Held across the build: fixtures share a target dir, so cargo would serialise them anyway.
    let mut built = built.lock().unwrap();
    if let Some(path) = built.get(&interface) {
        return path;
    }
    let path: &'static Path = Box::leak(build_fixture(interface).into_boxed_path());
    built.insert(interface, path);
    path
}

fn build_fixture(interface: Interface) -> PathBuf {
    let name = match interface {
        Interface::Real => "outside",
        Interface::WiderErrorKind => "layout-mismatch",
        Interface::OlderVersion => "version-mismatch",
    };
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
version = "1.0.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
gp-sdk = {{ path = {sdk:?} }}

[workspace]
"#,
            sdk = sdk.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("src/lib.rs"),
        r#"use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(description = "A plugin crate of its own")]
fn run(ctx: &mut Context) -> Result {
    let n = ctx.get_i64("n").unwrap_or(0);
    ctx.set("n", n * 2);
    Ok(())
}
"#,
    )
    .unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--quiet"])
        .env("CARGO_TARGET_DIR", target_dir())
        .current_dir(&root)
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "building fixture {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let file = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    target_dir().join("debug").join(file)
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
        Interface::OlderVersion => {
            let current = format!("version = \"{}\"", gp_host::ABI_VERSION);
            replace_in(
                &root.join("gp-core/Cargo.toml"),
                &current,
                "version = \"0.0.1\"",
            );
            for krate in ["gp-macros", "gp-sdk"] {
                replace_in(
                    &root.join(krate).join("Cargo.toml"),
                    &format!("gp-core = {{ {current}"),
                    "gp-core = { version = \"0.0.1\"",
                );
            }
        }
    }
}

/// A plain shared library with no gp in it.
pub fn plain_cdylib() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = target_dir().join("fixtures").join("plain");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(
            root.join("Cargo.toml"),
            "[package]\nname = \"plain\"\nversion = \"1.0.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[workspace]\n",
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
