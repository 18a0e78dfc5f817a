//! Builds the real plugins the tests load, once per test run, into `target/test-plugins`
//! (a target dir of its own: the outer `cargo test` holds the lock on the workspace's).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gp_host::build::{cargo_build, BuildOptions};

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
        let names = [
            "sample",
            "sample-typed",
            "dispatch",
            "dispatch-typed",
            "sample-async",
            "panicky",
            "slow",
        ];
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

/// Writes the plugin crates `crates` (package, version, `lib.rs`; each depending on gp-sdk,
/// plus the `[dependencies]` lines of `extra`, where a `gp-sdk = ...` line replaces the
/// default one, to name features) as one workspace at `root` and builds them together.
/// Returns package → library.
pub fn build_workspace<S: AsRef<str>>(
    root: &Path,
    crates: &[(&str, &str, S)],
    extra: &str,
) -> HashMap<String, PathBuf> {
    let _ = std::fs::remove_dir_all(root);
    for (package, version, source) in crates {
        let dir = root.join(package);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        let mut manifest = plugin_manifest(package, version, false);
        let mut extra = extra.to_owned();
        if let Some(sdk) = extra.lines().find(|l| l.starts_with("gp-sdk =")) {
            let sdk = sdk.to_owned();
            let default = manifest
                .lines()
                .find(|l| l.starts_with("gp-sdk ="))
                .unwrap();
            manifest = manifest.replace(default, &sdk);
            extra = extra.replace(&format!("{sdk}\n"), "");
        }
        std::fs::write(dir.join("Cargo.toml"), manifest + &extra).unwrap();
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
