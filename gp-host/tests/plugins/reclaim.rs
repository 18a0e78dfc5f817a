//! A version is released only when no call runs on it, whichever barrier protects calls.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::Duration;

use gp_host::{Context, Manager, UnloadHook, UpgradeOptions};

use crate::harness::{base_dir, install_lifecycle, lifecycle, with_captured_log};

/// Four threads call `guarded` while the main thread swaps its two builds 100 times. Each
/// swap retires a build whose `on_unload` poisons it; a call that overlapped that hook (a
/// version released too early) fails, and the hook counts the calls it found in flight.
#[test]
fn a_version_is_never_released_while_a_call_runs_on_it() {
    println!("barrier: {}", gp_host::__private::call_barrier());
    let base = base_dir();
    install_lifecycle(base.path(), "guarded-v1", "guarded");
    let manager = Manager::new(base.path());
    assert!(manager.load_plugins().is_ok());
    let executor = manager.executor("guarded").unwrap();
    let builds = [lifecycle("guarded-v2"), lifecycle("guarded-v1")];
    let stop = AtomicBool::new(false);
    let start = Barrier::new(5);
    let (calls, failures) = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let (mut calls, mut failures) = (0u64, Vec::new());
                    while !stop.load(Ordering::Acquire) {
                        let mut ctx = Context::new();
                        calls += 1;
                        if let Err(error) = executor.execute(&mut ctx) {
                            failures.push(error.to_string());
                        }
                    }
                    (calls, failures)
                })
            })
            .collect();
        start.wait();
        for i in 0..100 {
            manager
                .upgrade_with("guarded", builds[i % 2], UpgradeOptions { force: true })
                .unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Release);
        callers.into_iter().map(|c| c.join().unwrap()).fold(
            (0, Vec::new()),
            |(n, mut all), (c, f)| {
                all.extend(f);
                (n + c, all)
            },
        )
    });
    println!("{calls} calls during 100 swaps");
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(calls > 400, "only {calls} calls");
    // Both builds served; neither found a call in flight when its on_unload ran.
    for build in builds {
        manager
            .upgrade_with("guarded", build, UpgradeOptions { force: true })
            .unwrap();
        let mut ctx = Context::new();
        executor.execute(&mut ctx).unwrap();
        assert_eq!(ctx.get("violations").and_then(|v| v.as_i64()), Some(0));
    }
}

/// The same tests with `membarrier` off: the fallback protects calls with full fences.
#[test]
fn without_membarrier_calls_are_protected_by_fences() {
    let tests = [
        "reclaim::a_version_is_never_released_while_a_call_runs_on_it",
        "lifecycle::fifty_upgrades_under_four_calling_threads_fail_no_call",
    ];
    let output = Command::new(std::env::current_exe().unwrap())
        .args(tests)
        .args(["--exact", "--nocapture", "--test-threads", "1"])
        .env("GP_MEMBARRIER", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("barrier: fences"), "{stdout}");
    assert!(stdout.contains("test result: ok. 2 passed"), "{stdout}");
    // And this process uses membarrier where the kernel has it (Linux 4.14 and later).
    if cfg!(target_os = "linux") {
        assert_eq!(gp_host::__private::call_barrier(), "membarrier");
    }
}

/// An unload that times out on a plugin without `on_unload` hands the version to the reaper
/// like one with a hook: it is released when the call returns, not let go under it.
#[test]
fn an_unload_timing_out_without_a_hook_releases_the_version_after_the_call() {
    let base = base_dir();
    install_lifecycle(base.path(), "counter-old", "counter");
    let manager = Manager::new(base.path());
    assert!(manager.load_plugins().is_ok());
    let executor = manager.executor("counter").unwrap();
    let call = std::thread::spawn(move || {
        let mut ctx = Context::new().with_label("stubborn");
        ctx.set("ms", 300);
        executor.execute(&mut ctx)
    });
    std::thread::sleep(Duration::from_millis(100));
    let (report, log) = with_captured_log(|| {
        manager
            .unload_with_timeout("counter", Duration::from_millis(20))
            .unwrap()
    });
    assert_eq!(report.still_running, 1);
    assert!(matches!(report.on_unload, UnloadHook::Absent), "{report:?}");
    assert!(!log.contains("leaked"), "{log}");
    call.join().unwrap().expect("the running call completes");
}
