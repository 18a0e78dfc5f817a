//! Lifecycle on real plugins: hooks, upgrades (under load too), refused upgrades, unloads
//! while calls run, events.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::Duration;

use gp_host::{
    Context, Error, Event, Executor, Manager, UnloadHook, Upgrade, UpgradeOptions, Upgraded,
};

use crate::harness::{
    base_dir, eventually, fixture, hook_log, install_lifecycle, lifecycle, plain_cdylib, Interface,
};

/// A manager over a fresh base directory holding `package` as folder `counter`.
fn counter_manager(package: &str) -> (Manager, tempfile::TempDir) {
    let base = base_dir();
    install_lifecycle(base.path(), package, "counter");
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    (manager, base)
}

/// The version an executor's plugin reports, calling it once.
fn version_of(executor: &Executor) -> String {
    let mut ctx = Context::new();
    executor.execute(&mut ctx).expect("the call succeeds");
    ctx.get("version")
        .and_then(|v| v.as_str())
        .expect("the plugin sets version")
        .to_owned()
}

/// Collects the lifecycle events of `manager` as one line each.
fn record_events(manager: &Manager) -> Arc<Mutex<Vec<String>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    manager.subscribe_lifecycle(move |event| {
        let line = match event {
            // The reservation around a load, pinned in cli/serve_loading.rs.
            Event::Loading { .. } | Event::LoadAbandoned { .. } => return,
            Event::Loaded { spec } => format!("loaded {} {}", spec.name(), spec.version()),
            Event::LoadFailed { error, .. } => format!("load failed: {error}"),
            Event::Upgraded { from, to } => {
                format!(
                    "upgraded {} {} -> {}",
                    to.name(),
                    from.version(),
                    to.version()
                )
            }
            Event::UpgradeRefused { error, .. } => error.to_string(),
            Event::Unloaded { report } => {
                format!("unloaded {} {}", report.spec.name(), report.spec.version())
            }
            other => format!("unexpected {other:?}"),
        };
        sink.lock().unwrap().push(line);
    });
    events
}

#[test]
fn a_plugin_built_before_hooks_existed_loads_and_serves() {
    let base = base_dir();
    gp_host::build::install_library(fixture(Interface::WithoutHooks), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    let (spec, executor) = manager.get_plugin("before-hooks").unwrap();
    assert!(!spec.has_on_load && !spec.has_on_unload);
    let mut ctx = Context::new();
    ctx.set("n", 21);
    executor.execute(&mut ctx).unwrap();
    assert_eq!(ctx.get("n").and_then(|v| v.as_i64()), Some(42));
    let report = manager.unload("before-hooks").unwrap();
    assert!(matches!(report.on_unload, UnloadHook::Absent));
}

#[test]
fn hooks_run_in_order_across_load_upgrade_and_unload() {
    let _ = std::fs::remove_file(hook_log());
    let base = base_dir();
    install_lifecycle(base.path(), "hooks-v1", "hooks");
    let manager = Manager::new(base.path());
    let events = record_events(&manager);
    let log = || std::fs::read_to_string(hook_log()).unwrap_or_default();

    assert!(manager.load_plugins().is_ok());
    let (spec, executor) = manager.get_plugin("hooks").unwrap();
    assert!(spec.has_on_load && spec.has_on_unload);
    executor.execute(&mut Context::new()).unwrap();

    let upgrade = manager.upgrade("hooks", lifecycle("hooks-v2")).unwrap();
    assert!(matches!(upgrade, Upgrade::Upgraded(_)));
    // The old version's on_unload runs on the reaper thread once its last call returned.
    eventually("1.0.0's on_unload", Duration::from_secs(10), || {
        log().contains("1.0.0 on_unload")
    });
    executor.execute(&mut Context::new()).unwrap();

    let report = manager.unload("hooks").unwrap();
    match &report.on_unload {
        UnloadHook::Failed(error) => assert_eq!(
            error.to_string(),
            "plugin `hooks` 2.0.0: its on_unload hook failed: flush failed"
        ),
        other => panic!("expected the failed hook, got {other:?}"),
    }
    assert_eq!(
        log(),
        "1.0.0 on_load\n1.0.0 execute\n2.0.0 on_load\n1.0.0 on_unload\n2.0.0 execute\n2.0.0 on_unload\n"
    );

    // The same build loaded again while its previous instance still drains shares its statics:
    // on_load ran for the first instance, on_unload runs after the last.
    let _ = std::fs::remove_file(hook_log());
    manager.load_plugin(base.path().join("hooks")).unwrap();
    let executor = manager.executor("hooks").unwrap();
    let slow = std::thread::spawn(move || {
        let mut ctx = Context::new();
        ctx.set("sleep_ms", 300);
        executor.execute(&mut ctx)
    });
    eventually("the slow call to start", Duration::from_secs(10), || {
        log().contains("execute")
    });
    let report = manager
        .unload_with_timeout("hooks", Duration::from_millis(20))
        .unwrap();
    assert!(
        matches!(report.on_unload, UnloadHook::Deferred),
        "{report:?}"
    );
    manager.load_plugin(base.path().join("hooks")).unwrap();
    slow.join().unwrap().unwrap();
    std::thread::sleep(Duration::from_millis(50)); // the reaper's turn
    assert_eq!(
        log(),
        "1.0.0 on_load\n1.0.0 execute\n",
        "no hook for the drained instance"
    );
    let report = manager.unload("hooks").unwrap();
    assert!(
        matches!(report.on_unload, UnloadHook::Succeeded),
        "{report:?}"
    );
    assert_eq!(log(), "1.0.0 on_load\n1.0.0 execute\n1.0.0 on_unload\n");
    assert_eq!(
        events.lock().unwrap()[..3],
        [
            "loaded hooks 1.0.0",
            "upgraded hooks 1.0.0 -> 2.0.0",
            "unloaded hooks 2.0.0"
        ]
    );
}

#[test]
fn an_upgrade_swaps_the_version_under_every_executor() {
    let (manager, _base) = counter_manager("counter-v1");
    let executor = manager.executor("counter").unwrap();
    assert_eq!(version_of(&executor), "1.0.0");

    let upgraded = manager.upgrade("counter", lifecycle("counter-v2")).unwrap();
    let Upgrade::Upgraded(Upgraded { from, to, .. }) = upgraded else {
        panic!("expected an upgrade, got {upgraded:?}");
    };
    assert_eq!(
        (from.version().to_string(), to.version().to_string()),
        ("1.0.0".into(), "2.0.0".into())
    );
    assert_eq!(to.library, lifecycle("counter-v2"));
    assert_eq!(
        to.dir, from.dir,
        "a library upgrade keeps the plugin's folder"
    );
    assert_eq!(version_of(&executor), "2.0.0");
    assert_eq!(manager.list()[0].version().to_string(), "2.0.0");
    assert_eq!(executor.spec().unwrap().version().to_string(), "2.0.0");

    // The same build again changes nothing.
    let again = manager.upgrade("counter", lifecycle("counter-v2")).unwrap();
    assert!(matches!(again, Upgrade::Unchanged(spec) if spec.version().to_string() == "2.0.0"));
    let stats = manager.stats();
    assert_eq!((stats[0].loads, stats[0].upgrades), (1, 1));
    // The host ran private copies and removed them once loaded.
    let leftovers: Vec<_> = std::fs::read_dir(manager.runtime_dir()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_changed_folder_upgrades_on_reload_and_load_plugins() {
    let (manager, base) = counter_manager("counter-v1");
    let executor = manager.executor("counter").unwrap();
    assert!(matches!(
        manager.reload("counter").unwrap(),
        Upgrade::Unchanged(_)
    ));

    std::fs::remove_dir_all(base.path().join("counter")).unwrap();
    install_lifecycle(base.path(), "counter-v2", "counter");
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.upgraded.len(), 1);
    assert!(
        report
            .to_string()
            .contains("upgraded   counter 1.0.0 -> 2.0.0"),
        "{report}"
    );
    assert_eq!(version_of(&executor), "2.0.0");
    assert!(matches!(
        manager.reload("counter").unwrap(),
        Upgrade::Unchanged(_)
    ));
}

// Long: one scenario, read top to bottom: each step starts from the state the last one left.
#[test]
fn refused_upgrades_say_why_and_leave_the_old_version_serving() {
    let (manager, base) = counter_manager("counter-v2");
    let events = record_events(&manager);
    let executor = manager.executor("counter").unwrap();

    let truncated = base.path().join("truncated.so");
    let whole = std::fs::read(lifecycle("counter-v1")).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    let layout = crate::harness::custom_fixture(
        "counter-wider-error-kind",
        "9.0.0",
        "use gp_sdk::{plugin_entry, Context, Result};\n\n#[plugin_entry(name = \"counter\")]\nfn run(_ctx: &mut Context) -> Result {\n    Ok(())\n}\n",
        Interface::WiderErrorKind,
    );

    let cases: Vec<(&std::path::Path, String)> = vec![
        (
            &truncated,
            format!(
                "upgrade of plugin `counter` refused, 2.0.0 keeps serving: {}: not a loadable library: the file is truncated",
                truncated.display()
            ),
        ),
        (
            layout,
            format!(
                "upgrade of plugin `counter` refused, 2.0.0 keeps serving: plugin `counter` ({}) was built against an incompatible gp-core: `CallError.kind`: incompatible type size (host expects 1, plugin has 4); `CallError.kind`: incompatible type alignment",
                layout.display()
            ),
        ),
        (
            lifecycle("counter-other"),
            format!(
                "upgrade of plugin `counter` refused, 2.0.0 keeps serving: {} is plugin `other`, not `counter`",
                lifecycle("counter-other").display()
            ),
        ),
        (
            lifecycle("counter-v1"),
            "upgrade of plugin `counter` refused, 2.0.0 keeps serving: version 1.0.0 is not newer than the running 2.0.0: bump the version in the plugin's Cargo.toml, or force the upgrade".into(),
        ),
        (
            lifecycle("counter-old"),
            "upgrade of plugin `counter` refused, 2.0.0 keeps serving: version 0.9.0 is not newer than the running 2.0.0: bump the version in the plugin's Cargo.toml, or force the upgrade".into(),
        ),
        (
            lifecycle("counter-refuses"),
            "upgrade of plugin `counter` refused, 2.0.0 keeps serving: plugin `counter` 3.0.0: its on_load hook failed: database unreachable".into(),
        ),
        (
            lifecycle("counter-hook-panics"),
            "upgrade of plugin `counter` refused, 2.0.0 keeps serving: plugin `counter` 3.1.0: its on_load hook panicked: on_load exploded (at counter-hook-panics/src/lib.rs:".into(),
        ),
        (
            plain_cdylib(),
            format!(
                "upgrade of plugin `counter` refused, 2.0.0 keeps serving: {}: not a gp plugin: it exports no gp root module",
                plain_cdylib().display()
            ),
        ),
        (
            std::path::Path::new("/nonexistent/libcounter.so"),
            "upgrade of plugin `counter` refused, 2.0.0 keeps serving: /nonexistent/libcounter.so: not a loadable library: the file does not exist".into(),
        ),
    ];
    for (path, expected) in &cases {
        let error = manager.upgrade("counter", path).unwrap_err();
        assert!(matches!(error, Error::UpgradeRefused { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with(expected.as_str()),
            "upgrading to {}:\n  got      {message}\n  expected {expected}",
            path.display()
        );
        assert_eq!(version_of(&executor), "2.0.0", "after {}", path.display());
    }
    // A forced downgrade is allowed.
    let forced = manager
        .upgrade_with(
            "counter",
            lifecycle("counter-v1"),
            UpgradeOptions { force: true },
        )
        .unwrap();
    assert!(matches!(forced, Upgrade::Upgraded(_)));
    assert_eq!(version_of(&executor), "1.0.0");
    // Upgrading a plugin that is not loaded.
    assert_eq!(
        manager
            .upgrade("nothing", lifecycle("counter-v2"))
            .unwrap_err()
            .to_string(),
        "no plugin named `nothing` is loaded"
    );

    let events = events.lock().unwrap();
    assert_eq!(events.len(), cases.len() + 1, "{events:#?}");
    for (event, (_, expected)) in events.iter().zip(&cases) {
        assert!(event.starts_with(expected.as_str()), "{event}");
    }
    assert_eq!(events.last().unwrap(), "upgraded counter 2.0.0 -> 1.0.0");
}

#[test]
fn fifty_upgrades_under_four_calling_threads_fail_no_call() {
    const UPGRADES: usize = 50;
    const THREADS: usize = 4;
    let (manager, _base) = counter_manager("counter-v1");
    let builds = [lifecycle("counter-v2"), lifecycle("counter-v1")];
    let expected = ["2.0.0", "1.0.0"];
    // `begun` is the number of upgrades started; `done` the number returned.
    let begun = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(THREADS + 1));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let executor = manager.executor("counter").unwrap();
            let (begun, done, stop, start) = (
                Arc::clone(&begun),
                Arc::clone(&done),
                Arc::clone(&stop),
                Arc::clone(&start),
            );
            std::thread::spawn(move || {
                let (mut calls, mut failed, mut stale) = (0u64, Vec::new(), Vec::new());
                let mut ctx = Context::new();
                start.wait();
                while !stop.load(Ordering::Acquire) {
                    let returned = done.load(Ordering::Acquire);
                    calls += 1;
                    if let Err(error) = executor.execute(&mut ctx) {
                        failed.push(error.to_string());
                        continue;
                    }
                    let got = ctx.get("version").and_then(|v| v.as_str()).unwrap();
                    // Before the first upgrade returned, v1 or (mid-upgrade) v2 is fine.
                    let newest_done = if returned == 0 {
                        "1.0.0"
                    } else {
                        expected[(returned - 1) % 2]
                    };
                    if got != newest_done && begun.load(Ordering::Acquire) <= returned {
                        // Not the version of the last upgrade that returned before this call
                        // started, and no later upgrade had begun by the time it ended.
                        stale.push(format!("call after upgrade {returned} saw {got}"));
                    }
                }
                (calls, failed, stale)
            })
        })
        .collect();
    start.wait();
    for i in 0..UPGRADES {
        begun.store(i + 1, Ordering::Release);
        let outcome = manager
            .upgrade_with("counter", builds[i % 2], UpgradeOptions { force: true })
            .unwrap();
        assert!(
            matches!(outcome, Upgrade::Upgraded(_)),
            "upgrade {i}: {outcome:?}"
        );
        done.store(i + 1, Ordering::Release);
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Release);
    let (mut calls, mut failed, mut stale) = (0, Vec::new(), Vec::new());
    for thread in threads {
        let (c, f, s) = thread.join().expect("no calling thread panics");
        calls += c;
        failed.extend(f);
        stale.extend(s);
    }
    println!(
        "{calls} calls during {UPGRADES} upgrades: {} failed, {} stale",
        failed.len(),
        stale.len()
    );
    assert!(failed.is_empty(), "failed calls: {failed:?}");
    assert!(stale.is_empty(), "calls that saw an old version: {stale:?}");
    assert!(
        calls > UPGRADES as u64 * THREADS as u64,
        "only {calls} calls"
    );
    let stats = &manager.stats()[0];
    assert_eq!(stats.upgrades, UPGRADES as u64);
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.calls, calls);
}

#[test]
fn unload_while_four_threads_call_cancels_drains_and_reports() {
    // A build of its own: with counter-v1, another test's manager holding the same build
    // would make this unload's hook `Shared`.
    let (manager, _base) = counter_manager("counter-own");
    let events = record_events(&manager);
    let start = Arc::new(Barrier::new(5));
    let (sender, results) = mpsc::channel();
    for i in 0..4 {
        let executor = manager.executor("counter").unwrap();
        let (start, sender) = (Arc::clone(&start), sender.clone());
        std::thread::spawn(move || {
            let mut outcomes: Vec<String> = Vec::new();
            start.wait();
            loop {
                // Two threads wait in the plugin until cancelled; two make quick calls.
                let mut ctx = Context::new().with_label(if i < 2 { "patient" } else { "quick" });
                match executor.execute(&mut ctx) {
                    Ok(()) => {
                        if outcomes.last().map(String::as_str) != Some("ok") {
                            outcomes.push("ok".into());
                        }
                    }
                    Err(error @ Error::NotFound { .. }) => {
                        outcomes.push(error.to_string());
                        break;
                    }
                    Err(error) => outcomes.push(error.to_string()),
                }
            }
            sender.send((i, outcomes)).unwrap();
        });
    }
    start.wait();
    std::thread::sleep(Duration::from_millis(100));
    let report = manager.unload("counter").unwrap();
    assert_eq!(report.still_running, 0);
    assert!(matches!(report.on_unload, UnloadHook::Succeeded));
    assert!(
        report.waited < Duration::from_secs(5),
        "{:?}",
        report.waited
    );

    let mut all = Vec::new();
    for _ in 0..4 {
        all.push(
            results
                .recv_timeout(Duration::from_secs(10))
                .expect("every calling thread returns: none hangs or panics"),
        );
    }
    all.sort();
    let not_found = "no plugin named `counter` is loaded";
    let cancelled = "plugin `counter` was unloaded while this call ran; the call was cancelled";
    for (i, outcomes) in &all {
        if *i < 2 {
            assert_eq!(outcomes, &[cancelled, not_found], "thread {i}");
        } else {
            assert_eq!(outcomes.last().unwrap(), not_found, "thread {i}");
            assert!(
                outcomes[..outcomes.len() - 1]
                    .iter()
                    .all(|o| o == "ok" || o == cancelled),
                "thread {i}: {outcomes:?}"
            );
        }
    }
    assert_eq!(*events.lock().unwrap(), ["unloaded counter 1.0.0"]);
    assert_eq!(
        manager.get_plugin("counter").unwrap_err().to_string(),
        not_found
    );
    assert!(manager.list().is_empty());
    assert_eq!(
        manager.unload("counter").unwrap_err().to_string(),
        not_found
    );
}

#[test]
fn unload_reports_calls_still_running_at_the_timeout_and_defers_the_hook() {
    let (manager, base) = counter_manager("counter-v1");
    let executor = manager.executor("counter").unwrap();
    let call = std::thread::spawn(move || {
        let mut ctx = Context::new().with_label("stubborn");
        ctx.set("ms", 400);
        executor.execute(&mut ctx)
    });
    std::thread::sleep(Duration::from_millis(100));
    let report = manager
        .unload_with_timeout("counter", Duration::from_millis(50))
        .unwrap();
    assert_eq!(report.still_running, 1);
    assert!(matches!(report.on_unload, UnloadHook::Deferred));
    // The stubborn call ignored the cancellation and finishes on the unloaded version.
    call.join().unwrap().expect("the running call completes");

    // Loading the folder again serves again, through the executors handed out before.
    let executor = manager.executor("counter");
    assert!(executor.is_err());
    manager.load_plugin(base.path().join("counter")).unwrap();
    let executor = manager.executor("counter").unwrap();
    assert_eq!(version_of(&executor), "1.0.0");
    let stats = &manager.stats()[0];
    assert_eq!((stats.loads, stats.unloads), (2, 1));
}

#[test]
fn an_on_load_refusal_refuses_the_first_load_too() {
    let base = base_dir();
    install_lifecycle(base.path(), "counter-refuses", "counter");
    let manager = Manager::new(base.path());
    let events = record_events(&manager);
    let report = manager.load_plugins();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(
        report.failed[0].error.to_string(),
        "plugin `counter` 3.0.0: its on_load hook failed: database unreachable"
    );
    assert!(manager.list().is_empty());
    assert!(
        manager.stats().is_empty(),
        "a refused plugin leaves no trace"
    );
    assert_eq!(
        *events.lock().unwrap(),
        ["load failed: plugin `counter` 3.0.0: its on_load hook failed: database unreachable"]
    );
}
