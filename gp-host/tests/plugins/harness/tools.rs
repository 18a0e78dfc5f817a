//! Tests that need a tool outside Rust (a browser, a registry): without it they fail, saying
//! what to install, unless their variable says `skip` (`GP_BROWSER_TESTS=skip`,
//! `GP_REGISTRY_TESTS=skip`). libtest has no "skipped" state, and it hides what a passing
//! test prints with `eprintln!`: a skip is written straight to the process's stderr, once per
//! variable and run, so that it shows in every run's output.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Mutex;

/// `true` if the tool is there; `false` if it is `missing` and `variable` is `skip` (said on
/// stderr); panics otherwise, with `install`: how to get it.
pub fn tool_present(variable: &str, missing: Option<String>, install: &str) -> bool {
    let Some(missing) = missing else {
        return true;
    };
    if std::env::var(variable).as_deref() != Ok("skip") {
        panic!(
            "{missing} is missing: install it ({install}), or set {variable}=skip to skip the tests that need it"
        );
    }
    static SAID: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    if said
        .get_or_insert_with(HashSet::new)
        .insert(variable.to_owned())
    {
        // Not `eprintln!`: the test harness would hide it, the test passing.
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED ({variable}=skip): the tests that need {missing}; install it with {install}\n"
        );
    }
    false
}

#[test]
#[should_panic(
    expected = "a test tool is missing: install it (apt-get install test-tool), or set GP_NEVER_SET_TESTS=skip to skip the tests that need it"
)]
fn a_missing_tool_fails_unless_skipped() {
    tool_present(
        "GP_NEVER_SET_TESTS",
        Some("a test tool".into()),
        "apt-get install test-tool",
    );
}

#[test]
fn a_missing_tool_is_skipped_when_asked() {
    // A variable no other test reads.
    std::env::set_var("GP_SKIPPED_TOOL_TESTS", "skip");
    assert!(!tool_present(
        "GP_SKIPPED_TOOL_TESTS",
        Some("a test tool".into()),
        "apt-get install test-tool"
    ));
    assert!(tool_present(
        "GP_SKIPPED_TOOL_TESTS",
        None,
        "apt-get install test-tool"
    ));
}
