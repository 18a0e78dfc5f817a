//! Plugin base directories for a test: fresh ones, ones holding example plugins, and the
//! check that a manager still serves `sample` after whatever the test did to it.

use gp_host::build::install_library;
use gp_host::{Context, Manager};

use super::build::example;

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
