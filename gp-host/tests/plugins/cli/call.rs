//! `gp call`: the context printed after the call, each failure with its message and exit code,
//! and a plugin crate from outside the workspace called.

use super::{gp, stderr, stdout};
use crate::harness::{base_dir_with, fixture, Interface};

#[test]
fn call_prints_the_context_after_the_call() {
    let base = base_dir_with(&["dispatch"]);
    let output = gp(&[
        &"call",
        &base.path(),
        &"dispatch",
        &"--label",
        &"counter.add",
        &"--set",
        &"count=41",
        &"--set",
        &"note=\"kept\"",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"count": 42, "note": "kept", "result": 42})
    );
}

#[test]
fn call_reports_a_panic_through_the_host_log_only() {
    let base = base_dir_with(&["panicky"]);
    let output = gp(&[&"call", &base.path(), &"panicky", &"--label", &"boom"]);
    assert_eq!(output.status.code(), Some(1));
    // The plugin's own panic hook ("thread '...' panicked at ...") stays silent.
    assert_eq!(
        stderr(&output),
        "ERROR gp::plugin: plugin panicked: boom: asked for item 3 of 0 items (at examples/panicky/src/lib.rs:10:9) plugin=panicky\n\
         error: plugin `panicky` panicked: boom: asked for item 3 of 0 items (at examples/panicky/src/lib.rs:10:9)\n"
    );
}

#[test]
fn call_honours_the_timeout() {
    let base = base_dir_with(&["slow"]);
    let output = gp(&[&"call", &base.path(), &"slow", &"--timeout", &"50ms"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: call to plugin `slow` passed its deadline\n"
    );
}

#[test]
fn call_refuses_a_value_that_is_not_json() {
    let base = base_dir_with(&["sample"]);
    let output = gp(&[&"call", &base.path(), &"sample", &"--set", &"sample=hello"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with(
        "error: invalid value 'sample=hello' for '--set <KEY=JSON>': the value of \"sample\" is not JSON (expected value at line 1 column 1); quote strings, e.g. --set 'sample=\"text\"'\n"
    ), "{}", stderr(&output));
}

#[test]
fn call_names_the_failure_of_the_plugin_asked_for() {
    let base = base_dir_with(&["sample"]);
    let dir = base.path().join("sample");
    std::fs::write(dir.join("plugin.json"), "[]").unwrap();
    let output = gp(&[&"call", &base.path(), &"sample"]);
    assert_eq!(output.status.code(), Some(1));
    let last = stderr(&output).lines().last().unwrap().to_owned();
    assert_eq!(
        last,
        format!(
            "error: {}: a manifest is a JSON object ({{\"name\": ..., \"version\": ...}}), not an array",
            dir.join("plugin.json").display()
        )
    );
}

/// A plugin crate outside the workspace, depending on gp-sdk by path, built with plain
/// `cargo build`, given a plugin.json by `gp manifest`, and called by `gp call`.
#[test]
fn a_crate_outside_the_workspace_builds_and_is_called() {
    let library = fixture(Interface::Real);
    let base = crate::harness::base_dir();
    let dir = base.path().join("outside");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(library, dir.join(library.file_name().unwrap())).unwrap();
    let output = gp(&[&"manifest", &library, &"-o", &dir.join("plugin.json")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = gp(&[&"call", &base.path(), &"outside", &"--set", &"n=21"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json, serde_json::json!({"n": 42}));
}
