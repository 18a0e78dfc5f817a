//! Deadlines, cancellation, memory and CPU limits on an isolated call, host-wide and for one
//! plugin: they end the call, not the host.

use std::time::{Duration, Instant};

use gp_host::isolation::Isolation;
use gp_host::{Context, Error, Executor, Manager};

use super::{alive, call, isolation, loaded, served, unruly};
use crate::harness::{base_dir, example};

#[test]
fn a_call_that_ignores_its_deadline_is_stopped_by_killing_its_runner() {
    let (_base, manager) = loaded(
        &[unruly()],
        Isolation {
            grace: Duration::from_millis(300),
            ..isolation()
        },
    );
    let executor = manager.executor("unruly").unwrap();
    let pid = served(&executor);
    let started = Instant::now();
    let mut ctx = Context::new()
        .with_label("spin")
        .with_timeout(Duration::from_millis(200));
    let error = executor.execute(&mut ctx).unwrap_err();
    assert_eq!(
        error.to_string(),
        "call to plugin `unruly` passed its deadline"
    );
    // Not before the deadline plus the grace period (and not forever).
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(!alive(pid as u32));
    assert_ne!(served(&executor), pid);
}

#[test]
fn memory_and_cpu_limits_end_the_call_not_the_host() {
    let (_base, manager) = loaded(
        &[unruly()],
        Isolation {
            memory_limit: Some(1 << 30),
            cpu_per_call: Some(Duration::from_secs(1)),
            ..isolation()
        },
    );
    let executor = manager.executor("unruly").unwrap();
    served(&executor);
    let error = call(&executor, "alloc").unwrap_err();
    let Error::Crashed { status, stderr, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(status, "killed by signal 6 (SIGABRT)");
    assert!(
        stderr.contains("memory allocation of 8589934592 bytes failed"),
        "{stderr}"
    );
    served(&executor);
    // No deadline: the CPU limit stops it (after 1 to 2 s of CPU time).
    let error = call(&executor, "spin").unwrap_err();
    let Error::Crashed { status, .. } = &error else {
        panic!("{error}");
    };
    assert_eq!(status, "killed by signal 24 (SIGXCPU)");
    served(&executor);
}

#[test]
fn a_cancelled_call_that_stops_keeps_its_runner() {
    let (_base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    let pid = served(&executor);
    let mut ctx = Context::new().with_label("wait-for-cancel");
    let token = ctx.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        token.cancel();
    });
    let error = executor.execute(&mut ctx).unwrap_err();
    canceller.join().unwrap();
    assert_eq!(error.to_string(), "call to plugin `unruly` was cancelled");
    assert_eq!(
        served(&executor),
        pid,
        "the plugin stopped: its runner lives on"
    );
}

/// The address-space limit of process `pid`, as `/proc/PID/limits` shows it.
fn address_space_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().to_owned()
}

#[test]
fn one_plugin_can_have_settings_of_its_own() {
    let base = base_dir();
    gp_host::build::install_library(unruly(), base.path()).unwrap();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::builder(base.path())
        .isolation(isolation())
        .isolate(
            "unruly",
            Isolation {
                memory_limit: Some(1 << 30),
                ..isolation()
            },
        )
        .build();
    assert!(manager.load_plugins().failed.is_empty());
    let unruly = manager.executor("unruly").unwrap();
    let sample = manager.executor("sample").unwrap();
    let pid = |e: &Executor| e.isolation().unwrap().runner_pid.unwrap();
    assert_eq!(address_space_limit(pid(&unruly)), "1073741824");
    assert_eq!(address_space_limit(pid(&sample)), "unlimited");
    assert!(matches!(call(&unruly, "alloc"), Err(Error::Crashed { .. })));
    crate::harness::assert_sample_serves(&manager);
}
