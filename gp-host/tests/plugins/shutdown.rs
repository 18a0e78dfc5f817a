//! Shutting down: every plugin unloaded at once, within the drain timeout however long their
//! calls run, naming the versions still in a call (an upgrade's replaced version too).

use std::time::{Duration, Instant};

use gp_host::{Context, Manager, UnloadHook};

use crate::harness::{base_dir, example, in_flight, install_lifecycle};

#[test]
fn unload_all_unloads_in_parallel_and_names_the_versions_still_in_a_call() {
    let base = base_dir();
    install_lifecycle(base.path(), "counter-v1", "counter");
    install_lifecycle(base.path(), "counter-other", "other");
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    // One call each into `counter` and `other` that ignores cancellation for 3 s.
    let calls: Vec<_> = ["counter", "other"]
        .into_iter()
        .map(|name| {
            let executor = manager.executor(name).unwrap();
            std::thread::spawn(move || {
                let mut ctx = Context::new().with_label("stubborn");
                ctx.set("ms", 3_000);
                executor.execute(&mut ctx)
            })
        })
        .collect();
    let in_flight = |name: &str| in_flight(&manager, name);
    let deadline = Instant::now() + Duration::from_secs(10);
    while (in_flight("counter") == 0 || in_flight("other") == 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }

    let started = Instant::now();
    let reports = manager.unload_all_with_timeout(Duration::from_millis(500));
    let took = started.elapsed();
    // One after the other, the two drains alone would take 1 s.
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(900),
        "unload_all took {took:?}"
    );
    let seen: Vec<(&str, String, usize, String)> = reports
        .iter()
        .map(|r| {
            (
                r.spec.name(),
                r.spec.version().to_string(),
                r.still_running,
                r.on_unload.to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("counter", "1.0.0".into(), 1, "deferred".into()),
            ("other", "5.0.0".into(), 1, "absent".into()),
            ("sample", "0.1.0".into(), 0, "absent".into()),
        ]
    );
    assert!(matches!(reports[0].on_unload, UnloadHook::Deferred));
    assert!(manager.list().is_empty());
    assert_eq!(
        still_running(&manager),
        ["counter 1.0.0: 1 call(s)", "other 5.0.0: 1 call(s)"]
    );
    // The calls ignored the cancellation and finish on their unloaded versions.
    for call in calls {
        call.join().unwrap().expect("the running call completes");
    }
    assert!(manager.unload_all().is_empty(), "nothing left to unload");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !manager.still_running().is_empty() {
        assert!(Instant::now() < deadline, "{:?}", manager.still_running());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn still_running_names_a_version_an_upgrade_replaced_while_its_call_runs() {
    let base = base_dir();
    install_lifecycle(base.path(), "counter-v1", "counter");
    let manager = Manager::new(base.path());
    assert!(manager.load_plugins().is_ok());
    let executor = manager.executor("counter").unwrap();
    let call = std::thread::spawn(move || {
        let mut ctx = Context::new().with_label("stubborn");
        ctx.set("ms", 4_000);
        executor.execute(&mut ctx)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while manager.stats()[0].in_flight == 0 {
        assert!(Instant::now() < deadline, "no call");
        std::thread::sleep(Duration::from_millis(5));
    }
    let staging = base_dir();
    let v2 = install_lifecycle(staging.path(), "counter-v2", "counter");
    manager.upgrade("counter", &v2).unwrap();
    assert_eq!(still_running(&manager), ["counter 1.0.0: 1 call(s)"]);
    // Unloading the serving version leaves the replaced one as it was.
    let reports = manager.unload_all();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].still_running, 0);
    assert_eq!(still_running(&manager), ["counter 1.0.0: 1 call(s)"]);
    call.join().unwrap().expect("the running call completes");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !manager.still_running().is_empty() {
        assert!(Instant::now() < deadline, "{:?}", manager.still_running());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// [`Manager::still_running`] as `plugin version: calls`, by name.
fn still_running(manager: &Manager) -> Vec<String> {
    let mut versions: Vec<String> = manager
        .still_running()
        .iter()
        .map(|v| {
            format!(
                "{} {}: {} call(s)",
                v.spec.name(),
                v.spec.version(),
                v.calls
            )
        })
        .collect();
    versions.sort();
    versions
}
