//! Plugin crates of their own, outside the workspace, built against the real interface crates
//! or against copies altered to stand for another layout, an older gp-core, or a plugin built
//! before lifecycle hooks or host services existed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use gp_host::build::cargo_build;

use super::build::{options, profile, target_dir, workspace};

/// How a fixture's copy of the interface crates differs from the real ones.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Interface {
    /// The real crates, used from a crate outside the workspace.
    Real,
    /// `gp-core` with a wider `CallErrorKind`: same version, different layout.
    WiderErrorKind,
    /// `gp-core` released as 0.0.1.
    OlderVersion,
    /// `gp-core` released as 0.2.0: a version check before loading lets it through (a later
    /// minor), abi_stable's layout check then finds every shared type from another release.
    NewerVersion,
    /// `gp-core` and `gp-sdk` as they were before lifecycle hooks: `PluginMod` ends at
    /// `execute`, as in a plugin built before hooks existed.
    WithoutHooks,
    /// `gp-core` as 0.1.1 (hooks, no `bind_host`) and `gp-sdk` without the field: the host
    /// never binds its services, so the plugin keeps its per-call state itself, as one built
    /// against 0.1.1 does, and as a 0.1.2 plugin does under a host older than 0.1.2.
    WithoutHostServices,
    /// `gp-core` as 0.1.2 (no `call` entry point, so no table of the context's values) and
    /// `gp-sdk` without the field: every read and write goes through the context's vtable,
    /// as in a plugin built against 0.1.2, and as a 0.1.3 plugin's under a 0.1.2 host.
    WithoutTable,
    /// `gp-core` as 0.1.3 (no `open`, `close` or `call_with`) and `gp-sdk` without the
    /// fields: the plugin is called through `call`, with the table but without the call's
    /// label or an instance state, as one built against 0.1.3.
    WithoutInstance,
    /// `gp-sdk` whose `bind_host` (the SDK's code a host runs after mapping the library and
    /// before `on_load`) aborts the process.
    BindHostAborts,
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
        Interface::NewerVersion => "newer-core",
        Interface::WithoutHooks => "before-hooks",
        Interface::WithoutHostServices => "before-services",
        Interface::WithoutTable => "before-table",
        Interface::WithoutInstance => "before-instance",
        Interface::BindHostAborts => "bind-host-aborts",
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
    static BUILT: Built = OnceLock::new();
    once_per_run(&BUILT, name, || {
        build_fixture(name, version, source, interface)
    })
}

/// Fixtures built so far in this test run, by name.
type Built = OnceLock<Mutex<HashMap<String, &'static Path>>>;

/// The fixture called `name` in `built`, built by `build` if it is not there yet.
fn once_per_run(built: &Built, name: &str, build: impl FnOnce() -> PathBuf) -> &'static Path {
    let built = built.get_or_init(Default::default);
    // Held across the build: fixtures share a target dir, so cargo would serialise them anyway.
    let mut built = built.lock().unwrap();
    if let Some(path) = built.get(name) {
        return path;
    }
    let path: &'static Path = Box::leak(build().into_boxed_path());
    built.insert(name.to_owned(), path);
    path
}

/// `target/fixtures/<name>`, emptied, with an empty `src`.
fn fresh_root(name: &str) -> PathBuf {
    let root = target_dir().join("fixtures").join(name);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("src")).unwrap();
    root
}

/// Copies of gp-core, gp-macros and gp-sdk under `root`, altered as `interface` says (the
/// patches may change all three). Returns the folder that holds them.
fn interface_copy(root: &Path, name: &str, interface: Interface) -> PathBuf {
    // Cargo names a path package's artifacts by its path relative to the workspace root,
    // so copies at `gp-core` would overwrite the real gp-core's artifacts in the shared
    // target dir (and every example plugin would then be built against the patched one).
    let interface_dir = root.join(format!("{name}-interface"));
    for krate in ["gp-core", "gp-macros", "gp-sdk"] {
        copy_crate(&workspace().join(krate), &interface_dir.join(krate));
    }
    patch_interface(&interface_dir, interface);
    interface_dir
}

fn build_fixture(name: &str, version: &str, source: &str, interface: Interface) -> PathBuf {
    let root = fresh_root(name);
    let sdk = if interface == Interface::Real {
        workspace().join("gp-sdk")
    } else {
        interface_copy(&root, name, interface).join("gp-sdk")
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

/// A host program of its own, with `source` as its `main.rs`, built against `interface`'s
/// copy of gp-core (with abi_stable and serde_json, nothing of gp-host): a host as one built
/// from that gp-core loads a plugin, abi_stable's layout check included. Built once per test
/// run; returns its executable.
pub fn host_fixture(name: &str, source: &str, interface: Interface) -> &'static Path {
    static BUILT: Built = OnceLock::new();
    once_per_run(&BUILT, name, || build_host_fixture(name, source, interface))
}

fn build_host_fixture(name: &str, source: &str, interface: Interface) -> PathBuf {
    let root = fresh_root(name);
    let core = interface_copy(&root, name, interface).join("gp-core");
    std::fs::copy(workspace().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            r#"[package]
name = "{name}"
version = "0.0.0"
edition = "2021"

[dependencies]
gp-core = {{ path = {core:?} }}
abi_stable = {{ version = "0.11.3", default-features = false }}
serde_json = "1"

[workspace]
{profile}"#,
            core = core.display().to_string(),
            profile = profile(),
        ),
    )
    .unwrap();
    std::fs::write(root.join("src/main.rs"), source).unwrap();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .envs(super::build::build_env())
        .status()
        .unwrap();
    assert!(status.success(), "building host fixture {name}");
    target_dir()
        .join("debug")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn copy_crate(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("Cargo.toml"), to.join("Cargo.toml")).unwrap();
    copy_tree(&from.join("src"), &to.join("src"));
}

/// Copies the folder `from` to `to`, subfolders included (a crate's modules may be folders).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
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
                "        on_load: ON_LOAD.first().copied(),\n        on_unload: ON_UNLOAD.first().copied(),\n        bind_host: Some(bind_host),\n        call: Some(call),\n        open: state.map(|s| s.0),\n        close: state.map(|s| s.1),\n        call_with: Some(call_with),\n",
                "",
            );
            set_interface_version(root, "0.1.0");
        }
        Interface::WithoutHostServices => {
            cut_root_module_from(root, "    /// Hands the plugin the host's [`HostServices`]");
            replace_in(
                &root.join("gp-sdk/src/__private.rs"),
                "        bind_host: Some(bind_host),\n        call: Some(call),\n        open: state.map(|s| s.0),\n        close: state.map(|s| s.1),\n        call_with: Some(call_with),\n",
                "",
            );
            set_interface_version(root, "0.1.1");
        }
        Interface::WithoutTable => {
            cut_root_module_from(
                root,
                "    /// The plugin's entry point with the context's values",
            );
            replace_in(
                &root.join("gp-sdk/src/__private.rs"),
                "        call: Some(call),\n        open: state.map(|s| s.0),\n        close: state.map(|s| s.1),\n        call_with: Some(call_with),\n",
                "",
            );
            set_interface_version(root, "0.1.2");
        }
        Interface::WithoutInstance => {
            cut_root_module_from(root, "    /// Builds the state of one instance");
            replace_in(&root.join("gp-sdk/src/__private.rs"), "        open: state.map(|s| s.0),\n        close: state.map(|s| s.1),\n        call_with: Some(call_with),\n", "");
            set_interface_version(root, "0.1.3");
        }
        Interface::BindHostAborts => replace_in(
            &root.join("gp-sdk/src/__private.rs"),
            "    let _ = HOST.set(services);\n",
            "    let _ = HOST.set(services);\n    std::process::abort();\n",
        ),
        Interface::OlderVersion => set_interface_version(root, "0.0.1"),
        Interface::NewerVersion => set_interface_version(root, "0.2.0"),
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
    let mut cut = format!("{}{}", &text[..start], &text[end..]);
    if !cut.contains("table: CallTable") {
        // The `call` field went too: its argument's type is no longer used here.
        cut = cut.replacen("use crate::{CallTable, Value};", "use crate::Value;", 1);
    }
    std::fs::write(&abi, cut).unwrap();
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
