//! Configuration from `config.json` beside `plugin.json`: read into the type the plugin's
//! `#[on_load]` takes before it runs, secrets resolved by the host (`env:`, `file:`), and
//! every refusal naming the file and the field, never a secret's value.

use std::path::Path;
use std::time::Duration;

use gp_host::{Error, ErrorKind, Manager};

use super::typed;
use crate::harness::{base_dir, eventually};

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
            "plugin `typed`: its configuration {} was refused: `greeting`: secret env:GP_TEST_TYPED_UNSET: the environment variable is not set (an isolated plugin's runner has only those `Isolation::env` passes on)",
            config_path(base.path())
        )
    );
    // What the plugin says back is scrubbed of every secret's value, also where it is quoted
    // with escapes (the plugin's message prints it with `{:?}`).
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
    let (_base, error) = load_with(
        Some(r#"{"greeting": {"secret": "file:leak.txt"}}"#),
        &[("leak.txt", "fail:\"two\"\nlines\n")],
    );
    assert_eq!(
        error.err().unwrap().to_string(),
        "plugin `typed` 1.0.0: its on_load hook failed: cannot greet with \"[secret]\""
    );
    // A secret too short to be told from ordinary text is refused.
    let (base, error) = load_with(
        Some(r#"{"greeting": {"secret": "file:short.txt"}}"#),
        &[("short.txt", "abc\n")],
    );
    assert_eq!(
        error.err().unwrap().to_string(),
        format!(
            "plugin `typed`: its configuration {} was refused: `greeting`: secret file:short.txt is 3 bytes: gp scrubs secrets from messages and cannot tell one under 4 bytes from ordinary text; use a longer one",
            config_path(base.path())
        )
    );
}

#[test]
fn a_packaged_plugin_reads_its_configuration_beside_its_package() {
    let base = base_dir();
    let scratch = tempfile::tempdir().unwrap();
    let package = crate::admin::package_of(typed(), scratch.path());
    std::fs::write(base.path().join("typed-1.0.0.plg"), package).unwrap();
    // Beside the package, by the plugin's name; its secrets' files relative to it.
    std::fs::write(
        base.path().join("typed.config.json"),
        r#"{"greeting": {"secret": "file:typed-greeting.txt"}}"#,
    )
    .unwrap();
    std::fs::write(base.path().join("typed-greeting.txt"), "ahoj\n").unwrap();
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    assert_eq!(greeting(&manager), "ahoj");
    let (spec, _) = manager.get_plugin("typed").unwrap();
    assert_eq!(spec.config_path(), base.path().join("typed.config.json"));
    // A change of it is a reconfiguration, as for a folder's config.json.
    std::fs::write(
        base.path().join("typed.config.json"),
        r#"{"greeting": "nazdar"}"#,
    )
    .unwrap();
    manager.reload("typed").unwrap();
    assert_eq!(greeting(&manager), "nazdar");
    // And a watching manager sees it change by itself.
    let _watcher = manager.watch().unwrap();
    std::fs::write(
        base.path().join("typed.config.json"),
        r#"{"greeting": "servus"}"#,
    )
    .unwrap();
    eventually(
        "the watcher to reconfigure the packaged plugin",
        Duration::from_secs(10),
        || greeting(&manager) == "servus",
    );
    // One that does not fit is refused naming that file, and the old one keeps serving.
    let config = base.path().join("typed.config.json");
    std::fs::write(&config, r#"{"greeting": 5}"#).unwrap();
    let refused = manager.reload("typed").unwrap_err().to_string();
    assert!(
        refused.contains(&format!(
            "its configuration {} was refused: it does not fit",
            config.display()
        )),
        "{refused}"
    );
    assert_eq!(greeting(&manager), "servus");
}

#[test]
fn a_watcher_loads_a_packaged_plugin_once_its_configuration_is_fixed() {
    let base = base_dir();
    let scratch = tempfile::tempdir().unwrap();
    let package = crate::admin::package_of(typed(), scratch.path());
    std::fs::write(base.path().join("typed-1.0.0.plg"), package).unwrap();
    let config = base.path().join("typed.config.json");
    std::fs::write(&config, r#"{"greeting": "fail:at first"}"#).unwrap();
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert_eq!(report.failed.len(), 1, "{report}");
    let _watcher = manager.watch().unwrap();
    std::fs::write(&config, r#"{"greeting": "fixed"}"#).unwrap();
    eventually(
        "the watcher to load the plugin its fixed configuration allows",
        Duration::from_secs(10),
        || manager.executor("typed").is_ok(),
    );
    assert_eq!(greeting(&manager), "fixed");
}

#[test]
fn a_secret_the_plugin_logs_is_scrubbed_from_its_log_lines() {
    std::env::set_var("GP_TEST_TYPED_LOGGED", "gruezi mitenand");
    let (_base, manager) = load_with(
        Some(r#"{"greeting": {"secret": "env:GP_TEST_TYPED_LOGGED"}}"#),
        &[],
    );
    let manager = manager.unwrap();
    let typed = manager.executor("typed").unwrap();
    let ((), log) = crate::harness::with_captured_log(|| {
        typed.call::<_, ()>("announce", &()).unwrap();
    });
    assert!(
        log.contains("gp::plugin: the greeting is \"[secret]\" plugin=\"typed\""),
        "{log}"
    );
    assert!(!log.contains("gruezi"), "{log}");
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

/// A changed `config.json` is a new instance of the same build, opened with it, swapped in as
/// an upgrade is: a thread calling all along sees no failure, and each answer is one of the
/// configurations written. One the plugin refuses leaves the last one serving.
#[test]
fn a_configuration_change_opens_a_new_instance_and_no_call_fails() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let (base, manager) = load_with(Some(r#"{"greeting": "one"}"#), &[]);
    let manager = manager.unwrap();
    let file = base.path().join("typed/config.json");
    assert!(matches!(
        manager.reload("typed").unwrap(),
        gp_host::Upgrade::Unchanged(_)
    ));
    let greetings = ["one", "two", "three", "four", "five", "six"];
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let caller = {
        let executor = manager.executor("typed").unwrap();
        let (stop, calls, failures) = (stop.clone(), calls.clone(), failures.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            // Bounded in count and time, whatever the reloads do.
            while !stop.load(Ordering::SeqCst)
                && calls.load(Ordering::SeqCst) < 2_000_000
                && started.elapsed() < Duration::from_secs(30)
            {
                match executor.call::<_, String>("greeting", &()) {
                    Ok(greeting) => assert!(greetings.contains(&greeting.as_str()), "{greeting}"),
                    Err(error) => {
                        eprintln!("a call failed: {error}");
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                calls.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    for written in &greetings[1..] {
        std::fs::write(&file, format!(r#"{{"greeting": "{written}"}}"#)).unwrap();
        let upgraded = manager.reload("typed").unwrap();
        let gp_host::Upgrade::Upgraded(upgraded) = upgraded else {
            panic!("{upgraded:?}");
        };
        assert_eq!(upgraded.from.version(), upgraded.to.version());
        assert_eq!(greeting(&manager), *written);
    }
    std::fs::write(&file, r#"{"greeting": 6}"#).unwrap();
    let refused = manager.reload("typed").unwrap_err();
    let Error::UpgradeRefused { source, .. } = &refused else {
        panic!("{refused:?}");
    };
    assert!(matches!(**source, Error::Config { .. }), "{source:?}");
    assert_eq!(
        greeting(&manager),
        "six",
        "the last configuration keeps serving"
    );
    stop.store(true, Ordering::SeqCst);
    caller.join().unwrap();
    assert!(calls.load(Ordering::SeqCst) > 0);
    assert_eq!(failures.load(Ordering::SeqCst), 0, "no call failed");
}

/// The schema `#[derive(ConfigSchema)]` made a constant: what the library carries, read before
/// it loads; what `gp inspect` prints.
fn typed_schema() -> serde_json::Value {
    serde_json::json!({
        "anyOf": [
            {
                "title": "Config",
                "description": "The typed fixture's configuration.",
                "type": "object",
                "properties": {
                    "greeting": {"description": "What it greets with.", "type": "string"}
                },
                "required": ["greeting"]
            },
            {"type": "null"}
        ]
    })
}

#[test]
fn the_schema_is_read_from_the_library_before_it_loads() {
    let info = gp_host::inspect(typed()).unwrap();
    assert_eq!(info.details.config, Some(typed_schema()));
    let shown = info.to_string();
    assert!(
        shown.contains("config:      config.json beside plugin.json (or <name>.config.json beside a package), of this JSON Schema (a string may be a secret reference):\n  {\n    \"anyOf\": [\n"),
        "{shown}"
    );
    // A plugin whose `#[on_load]` takes no configuration has none.
    let sample = gp_host::inspect(crate::harness::example("sample-typed")).unwrap();
    assert_eq!(sample.details.config, None);
}

#[test]
fn the_api_shows_the_schema_and_the_files_hash_never_its_values() {
    std::env::set_var("GP_TEST_TYPED_API_GREETING", "guten tag");
    let config = r#"{"greeting": {"secret": "env:GP_TEST_TYPED_API_GREETING"}}"#;
    let plane = crate::admin::plane_with(
        |base| {
            gp_host::build::install_library(typed(), base).unwrap();
            std::fs::write(base.join("typed/config.json"), config).unwrap();
        },
        0,
    );
    let reply = crate::http::send(
        plane.admin.addr,
        &format!(
            "GET /api/v1/plugins/typed HTTP/1.1\r\nAuthorization: Bearer {}",
            plane.token.secret()
        ),
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let view = reply.json();
    assert_eq!(view["config"]["schema"], typed_schema());
    let sha256: String = {
        use sha2::Digest;
        sha2::Sha256::digest(config.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(view["config"]["sha256"], sha256.as_str());
    assert!(!reply.text().contains("guten tag"), "{}", reply.text());
    // The sample plugin has neither schema nor file.
    let reply = crate::http::send(
        plane.admin.addr,
        &format!(
            "GET /api/v1/plugins/sample HTTP/1.1\r\nAuthorization: Bearer {}",
            plane.token.secret()
        ),
        b"",
    );
    assert_eq!(reply.json()["config"], serde_json::Value::Null);
}
