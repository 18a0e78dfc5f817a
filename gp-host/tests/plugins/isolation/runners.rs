//! A runner's lifetime: unload ends it and the plugin's threads, an upgrade starts the new
//! runner before the old one goes, and neither spinning nor the exit of the thread that
//! started it ends it.

use std::time::{Duration, Instant};

use gp_host::isolation::Isolation;
use gp_host::{Context, Error, Manager};

use super::{alive, call, isolation, loaded, served, unruly};
use crate::harness::base_dir;

#[test]
fn unload_ends_the_runner_and_every_thread_the_plugin_started() {
    let (base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    let file = base.path().join("written");
    let mut ctx = Context::new().with_label("thread");
    ctx.set("file", file.display().to_string());
    executor.execute(&mut ctx).unwrap();
    let pid = ctx.get("pid").and_then(|v| v.as_i64()).unwrap() as u32;
    let lines = || {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lines() >= 3, "the plugin's thread writes");
    manager.unload("unruly").unwrap();
    assert!(!alive(pid), "the runner {pid} is gone after unload");
    let after = lines();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        lines(),
        after,
        "the plugin's thread stopped with its runner"
    );
}

#[test]
fn upgrades_under_calls_start_the_new_runner_first_and_fail_no_call() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let base = base_dir();
    crate::harness::install_lifecycle(base.path(), "counter-v1", "counter");
    let manager = Manager::builder(base.path()).isolation(isolation()).build();
    assert!(manager.load_plugins().failed.is_empty());
    let builds = [
        crate::harness::lifecycle("counter-v2"),
        crate::harness::lifecycle("counter-v1"),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (executor, stop) = (manager.executor("counter").unwrap(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut calls, mut failed) = (0u64, Vec::new());
                let mut ctx = Context::new();
                while !stop.load(Ordering::Acquire) {
                    calls += 1;
                    if let Err(error) = executor.execute(&mut ctx) {
                        failed.push(error.to_string());
                    }
                }
                (calls, failed)
            })
        })
        .collect();
    let executor = manager.executor("counter").unwrap();
    let mut runners = Vec::new();
    for i in 0..10 {
        runners.extend(executor.isolation().and_then(|s| s.runner_pid));
        let outcome = manager
            .upgrade_with(
                "counter",
                builds[i % 2],
                gp_host::UpgradeOptions { force: true },
            )
            .unwrap();
        assert!(
            matches!(outcome, gp_host::Upgrade::Upgraded(_)),
            "{outcome:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Release);
    let (mut calls, mut failed) = (0, Vec::new());
    for caller in callers {
        let (c, f) = caller.join().unwrap();
        calls += c;
        failed.extend(f);
    }
    assert!(calls > 20, "{calls} calls");
    assert_eq!(failed, Vec::<String>::new(), "{calls} calls");
    let current = executor.isolation().and_then(|s| s.runner_pid).unwrap();
    runners.retain(|pid| *pid != current);
    // The versions swapped out drained, ran on_unload in their runners, and ended them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while runners.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!runners.iter().any(|pid| alive(*pid)), "{runners:?}");
}

#[test]
fn a_spinning_runner_serves_and_recovers_like_a_sleeping_one() {
    let (_base, manager) = loaded(
        &[unruly()],
        Isolation {
            spin: Duration::from_micros(200),
            ..isolation()
        },
    );
    let executor = manager.executor("unruly").unwrap();
    let pid = served(&executor);
    assert_eq!(served(&executor), pid);
    assert!(matches!(
        call(&executor, "abort"),
        Err(Error::Crashed { .. })
    ));
    assert_ne!(served(&executor), pid);
}

#[test]
fn a_runner_started_by_a_thread_that_exits_keeps_running() {
    let (_base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    assert!(matches!(
        call(&executor, "abort"),
        Err(Error::Crashed { .. })
    ));
    // The next runner is started by a thread that ends right after its call (as a pool
    // thread would): the runner's parent-death signal must not follow that thread.
    let pid = std::thread::scope(|scope| scope.spawn(|| served(&executor)).join().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(pid as u32));
    assert_eq!(served(&executor), pid);
}
