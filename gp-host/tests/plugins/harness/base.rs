//! Plugin base directories for a test: fresh ones, ones holding example plugins, the check
//! that a manager still serves `sample` after whatever the test did to it, and how many calls
//! a plugin runs.

use std::time::{Duration, Instant};

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

/// How many calls `manager`'s plugin `plugin` runs now (0 if it has no metrics).
pub fn in_flight(manager: &Manager, plugin: &str) -> u64 {
    manager
        .stats()
        .iter()
        .find(|s| s.name == plugin)
        .map_or(0, |s| s.in_flight)
}

/// Waits (at most 10 s) until `manager`'s plugin `plugin` runs `calls` calls; asserts it does.
pub fn wait_in_flight(manager: &Manager, plugin: &str, calls: u64) {
    eventually(
        &format!("{calls} calls of `{plugin}`"),
        Duration::from_secs(10),
        || in_flight(manager, plugin) >= calls,
    );
    assert_eq!(in_flight(manager, plugin), calls, "calls of `{plugin}`");
}

/// Waits until `condition` holds, checking every 5 ms; fails the test, naming `what`, once
/// `within` has passed.
pub fn eventually(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
