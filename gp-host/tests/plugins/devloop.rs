//! The plugin author's loop: rebuilds of one version reload when the manager is told to
//! (`reload_same_version`, `gp serve --dev`), and only then.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gp_host::build::build_plugin;
use gp_host::{Context, Error, Event, Manager, Upgrade, UpgradeOptions, WatchOptions};

use crate::harness::{
    base_dir, install_lifecycle, lifecycle, options, plugin_manifest, target_dir, workspace,
};

fn counter_v1(reload_same_version: bool) -> (Manager, tempfile::TempDir) {
    let base = base_dir();
    install_lifecycle(base.path(), "counter-v1", "counter");
    let manager = Manager::builder(base.path())
        .reload_same_version(reload_same_version)
        .build();
    assert!(manager.load_plugins().is_ok());
    (manager, base)
}

#[test]
fn a_rebuild_of_the_running_version_is_refused_by_default_naming_the_setting() {
    let (manager, _base) = counter_v1(false);
    let error = manager
        .upgrade("counter", lifecycle("counter-rebuild"))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "upgrade of plugin `counter` refused, 1.0.0 keeps serving: version 1.0.0 is already \
         running, from another build: bump the version in the plugin's Cargo.toml, force the \
         upgrade, or reload rebuilds of one version (`gp serve --dev`, \
         `ManagerBuilder::reload_same_version(true)`)"
    );
    assert!(matches!(
        &error,
        Error::UpgradeRefused { source, .. } if matches!(**source, Error::SameVersion { .. })
    ));
    // Forcing still works, as for a downgrade.
    let forced = manager
        .upgrade_with(
            "counter",
            lifecycle("counter-rebuild"),
            UpgradeOptions { force: true },
        )
        .unwrap();
    assert!(matches!(forced, Upgrade::Upgraded(_)), "{forced:?}");
}

#[test]
fn with_reload_same_version_a_rebuild_upgrades_and_the_build_hash_tells_them_apart() {
    let (manager, _base) = counter_v1(true);
    let before = manager.stats()[0].build.clone().unwrap();
    let upgraded = manager
        .upgrade("counter", lifecycle("counter-rebuild"))
        .unwrap();
    let Upgrade::Upgraded(upgraded) = upgraded else {
        panic!("expected an upgrade, got {upgraded:?}");
    };
    assert_eq!(upgraded.from.version(), upgraded.to.version());
    assert_ne!(upgraded.from.sha256, upgraded.to.sha256);
    let stats = &manager.stats()[0];
    assert_eq!(stats.build.as_deref(), Some(upgraded.to.sha256.as_str()));
    assert_ne!(stats.build.as_deref(), Some(before.as_str()));
    assert_eq!(
        stats.summary().build.as_deref(),
        Some(&upgraded.to.sha256[..16])
    );
    let build_info = format!(
        "gp_plugin_build_info{{plugin=\"counter\",build=\"{}\"}} 1",
        &upgraded.to.sha256[..16]
    );
    let text = manager.prometheus();
    assert!(text.lines().any(|l| l == build_info), "{text}");
    // Lower versions stay refused.
    let error = manager
        .upgrade("counter", lifecycle("counter-old"))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("version 0.9.0 is not newer than the running 1.0.0: bump the version in the plugin's Cargo.toml, or force the upgrade"),
        "{error}"
    );
}

const SOURCE: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("answer", ANSWER);
    Ok(())
}
"#;

/// A plugin crate answering `answer`, in `dir`.
fn write_crate(dir: &Path, answer: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        plugin_manifest("devloop", "0.1.0", true),
    )
    .unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::write(dir.join("src/lib.rs"), SOURCE.replace("ANSWER", answer)).unwrap();
}

fn answer(manager: &Manager) -> Option<i64> {
    let mut ctx = Context::new();
    manager.executor("devloop").ok()?.execute(&mut ctx).ok()?;
    ctx.get("answer").and_then(|v| v.as_i64())
}

/// Polls `condition` every 50 ms for at most `limit`.
fn within(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}

/// Edit, rebuild into a watched folder, see the change: the version never changes.
#[test]
fn edit_build_reload_under_a_watching_dev_manager() {
    std::fs::create_dir_all(target_dir()).unwrap();
    let work = tempfile::Builder::new()
        .prefix("gp-devloop-")
        .tempdir_in(target_dir())
        .unwrap();
    let (krate, base) = (work.path().join("devloop"), work.path().join("plugins"));
    write_crate(&krate, "1");
    build_plugin(&krate, &base, &options()).unwrap();

    let manager = Manager::builder(&base).reload_same_version(true).build();
    assert!(manager.load_plugins().is_ok());
    assert_eq!(answer(&manager), Some(1));
    let (sender, failures) = mpsc::channel();
    let sender = std::sync::Mutex::new(sender);
    manager.subscribe_lifecycle(move |event| {
        if let Event::UpgradeRefused { error, .. } | Event::LoadFailed { error, .. } = event {
            let _ = sender.lock().unwrap().send(error.to_string());
        }
    });
    let settle = Duration::from_millis(200);
    let _watcher = manager
        .watch_with(WatchOptions {
            settle,
            attempts: 3,
        })
        .unwrap();

    // A rebuild of 0.1.0 with another answer serves within the watcher's settle time (plus
    // the load: polled for at most 10 s).
    write_crate(&krate, "2");
    build_plugin(&krate, &base, &options()).unwrap();
    assert!(
        within(Duration::from_secs(10), || answer(&manager) == Some(2)),
        "the rebuild was not reloaded: {:?}",
        answer(&manager)
    );
    let stats = &manager.stats()[0];
    assert_eq!(stats.version.as_ref().unwrap().to_string(), "0.1.0");
    assert_eq!(stats.upgrades, 1);

    // A build that fails writes nothing: the running build keeps serving.
    write_crate(&krate, "\"not a number\" +");
    let error = build_plugin(&krate, &base, &options()).unwrap_err();
    assert!(error.to_string().starts_with("building "), "{error}");

    // A half-written library is retried while it settles, then reported once; the running
    // build keeps serving.
    let library = base.join("devloop").join(format!(
        "{}devloop{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let data = std::fs::read(&library).unwrap();
    std::fs::write(&library, &data[..data.len() / 2]).unwrap();
    let reported = failures
        .recv_timeout(Duration::from_secs(10))
        .expect("the truncated library is reported");
    assert!(reported.contains("the file is truncated"), "{reported}");
    assert!(
        failures.recv_timeout(settle * 5).is_err(),
        "reported more than once"
    );
    assert_eq!(answer(&manager), Some(2));
}
