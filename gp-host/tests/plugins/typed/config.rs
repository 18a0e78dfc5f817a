//! Configuration from `config.json` beside `plugin.json`: read into the type the plugin's
//! `#[on_load]` takes before it runs, secrets resolved by the host (`env:`, `file:`), and
//! every refusal naming the file and the field, never a secret's value.

use std::path::Path;

use gp_host::{Error, ErrorKind, Manager};

use super::typed;
use crate::harness::base_dir;

/// A base directory holding `typed` with `config` (none if `None`) as its `config.json`, and
/// what loading it gives: the manager, or the error.
fn load_with(
    config: Option<&str>,
    extra: &[(&str, &str)],
) -> (tempfile::TempDir, Result<Manager, Error>) {
    let base = base_dir();
    gp_host::build::install_library(typed(), base.path()).unwrap();
    let dir = base.path().join("typed");
    if let Some(config) = config {
        std::fs::write(dir.join("config.json"), config).unwrap();
    }
    for (file, text) in extra {
        std::fs::write(dir.join(file), text).unwrap();
    }
    let manager = Manager::new(base.path());
    let mut report = manager.load_plugins();
    let outcome = match report.failed.pop() {
        Some(failure) => Err(failure.error),
        None => Ok(manager),
    };
    (base, outcome)
}

fn greeting(manager: &Manager) -> String {
    manager
        .executor("typed")
        .unwrap()
        .call("greeting", &())
        .unwrap()
}

fn config_path(base: &Path) -> String {
    base.join("typed/config.json").display().to_string()
}

#[test]
fn the_configuration_reaches_on_load_and_none_is_none() {
    let (_base, manager) = load_with(Some(r#"{"greeting": "howdy"}"#), &[]);
    assert_eq!(greeting(&manager.unwrap()), "howdy");
    let (_base, manager) = load_with(None, &[]);
    assert_eq!(greeting(&manager.unwrap()), "hello", "no file: `None`");
}

#[test]
fn a_configuration_that_does_not_fit_is_refused_with_the_file_and_the_field() {
    let (base, error) = load_with(Some(r#"{"greeting": 5}"#), &[]);
    let error = error.err().unwrap();
    assert!(matches!(error, Error::Config { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Source);
    assert_eq!(
        error.to_string(),
        format!(
            "plugin `typed`: its configuration {} was refused: it does not fit Option<Config>: `greeting`: invalid type: integer `5`, expected a string",
            config_path(base.path())
        )
    );
    let (base, error) = load_with(Some(r#"{"greting": "hi"}"#), &[]);
    assert_eq!(
        error.err().unwrap().to_string(),
        format!(
            "plugin `typed`: its configuration {} was refused: it does not fit Option<Config>: missing field `greeting`",
            config_path(base.path())
        )
    );
    let (base, error) = load_with(Some("{greeting: hi}"), &[]);
    assert_eq!(
        error.err().unwrap().to_string(),
        format!(
            "plugin `typed`: its configuration {} was refused: it is not JSON: key must be a string at line 1 column 2",
            config_path(base.path())
        )
    );
}

#[test]
fn secrets_come_from_the_environment_or_a_file_and_never_show() {
    // A name of this test's own: the process's environment is shared by every test.
    std::env::set_var("GP_TEST_TYPED_GREETING", "bonjour");
    let (_base, manager) = load_with(
        Some(r#"{"greeting": {"secret": "env:GP_TEST_TYPED_GREETING"}}"#),
        &[],
    );
    assert_eq!(greeting(&manager.unwrap()), "bonjour");
    let (_base, manager) = load_with(
        Some(r#"{"greeting": {"secret": "file:greeting.txt"}}"#),
        &[("greeting.txt", "salut\n")],
    );
    assert_eq!(greeting(&manager.unwrap()), "salut", "without the newline");
    // One that cannot be read is refused before the plugin runs.
    let (base, error) = load_with(
        Some(r#"{"greeting": {"secret": "env:GP_TEST_TYPED_UNSET"}}"#),
        &[],
    );
    assert_eq!(
        error.err().unwrap().to_string(),
        format!(
            "plugin `typed`: its configuration {} was refused: `greeting`: secret env:GP_TEST_TYPED_UNSET: the environment variable is not set",
            config_path(base.path())
        )
    );
    // What the plugin says back is scrubbed of every secret's value.
    std::env::set_var("GP_TEST_TYPED_LEAK", "fail:hunter2");
    let (_base, error) = load_with(
        Some(r#"{"greeting": {"secret": "env:GP_TEST_TYPED_LEAK"}}"#),
        &[],
    );
    let error = error.err().unwrap();
    assert!(matches!(error, Error::HookFailed { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "plugin `typed` 1.0.0: its on_load hook failed: cannot greet with \"[secret]\""
    );
}

#[test]
fn an_isolated_instance_opens_with_its_configuration_in_its_runner() {
    let base = base_dir();
    gp_host::build::install_library(typed(), base.path()).unwrap();
    std::fs::write(
        base.path().join("typed/config.json"),
        r#"{"greeting": "from the runner"}"#,
    )
    .unwrap();
    let isolation = gp_host::isolation::Isolation {
        backoff: std::time::Duration::from_millis(10),
        ..gp_host::isolation::Isolation::all().program(env!("CARGO_BIN_EXE_gp"))
    };
    let manager = Manager::builder(base.path()).isolation(isolation).build();
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    assert_eq!(greeting(&manager), "from the runner");
    assert_eq!(
        manager
            .executor("typed")
            .unwrap()
            .call::<_, usize>("double", &4)
            .unwrap(),
        8
    );
}
