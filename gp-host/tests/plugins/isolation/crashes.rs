//! A crashing runner: each crash costs the calls in flight, with its cause, and the next call
//! starts a new runner; repeated crashes open the breaker; a crash ends the processes the
//! plugin started.

use std::time::{Duration, Instant};

use gp_host::isolation::Isolation;
use gp_host::Error;

use super::{alive, call, isolation, loaded, served, unruly, UNRULY};

#[test]
fn each_crash_costs_one_call_with_its_cause_and_the_next_call_gets_a_new_runner() {
    let (_base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    let mut pid = served(&executor);
    for (label, status) in [
        ("segv", "killed by signal 11 (SIGSEGV)"),
        ("abort", "killed by signal 6 (SIGABRT)"),
        ("exit", "exited with status 3"),
        ("overflow", "killed by signal 6 (SIGABRT)"),
        ("double-panic", "killed by signal 6 (SIGABRT)"),
    ] {
        let error = call(&executor, label).unwrap_err();
        let Error::Crashed {
            plugin,
            status: seen,
            stderr,
        } = &error
        else {
            panic!("{label}: {error}");
        };
        assert_eq!(
            (plugin.as_str(), seen.as_str()),
            ("unruly", status),
            "{label}"
        );
        assert!(
            error.to_string().starts_with(&format!(
                "plugin `unruly` crashed: its runner process {status}; the next call starts a new one"
            )),
            "{label}: {error}"
        );
        match label {
            "overflow" => assert!(stderr.contains("has overflowed its stack"), "{stderr}"),
            "double-panic" => assert!(
                stderr.contains("gp: plugin `unruly` panicked while panicking, which aborts the process: first \"first panic\""),
                "{stderr}"
            ),
            _ => {}
        }
        assert!(
            !alive(pid as u32),
            "{label}: the crashed runner {pid} is gone"
        );
        assert_eq!(
            executor.isolation().map(|s| s.runner_pid),
            Some(None),
            "no runner until the next call"
        );
        let next = served(&executor);
        assert_ne!(next, pid, "{label}: a new runner");
        pid = next;
    }
    // Errors and panics are not crashes: the same runner answers them.
    let error = call(&executor, "panic").unwrap_err();
    let (line, column) = UNRULY
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("panic!(\"an ordinary").map(|c| (i + 1, c + 1)))
        .unwrap();
    assert_eq!(
        error.to_string(),
        format!("plugin `unruly` panicked: an ordinary panic (at src/lib.rs:{line}:{column})")
    );
    let error = call(&executor, "fail").unwrap_err();
    let Error::Failed { message, .. } = &error else {
        panic!("{error}");
    };
    assert!(
        message.ends_with("xxx… (10469376 more bytes cut)"),
        "{}",
        message.len()
    );
    assert_eq!(served(&executor), pid);
    let status = executor.isolation().unwrap();
    assert_eq!(
        (status.restarts, status.crashes, status.circuit_open),
        (5, 5, false)
    );
    drop(executor);
    drop(manager);
    assert!(!alive(pid as u32), "dropping the manager ends its runners");
}

#[test]
fn the_breaker_opens_after_repeated_crashes_until_the_plugin_is_loaded_again() {
    let (_base, manager) = loaded(
        &[unruly()],
        Isolation {
            max_crashes: 2,
            ..isolation()
        },
    );
    let executor = manager.executor("unruly").unwrap();
    for _ in 0..2 {
        assert!(matches!(
            call(&executor, "abort"),
            Err(Error::Crashed { .. })
        ));
    }
    let error = call(&executor, "").unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `unruly` is failed: its runner crashed 2 times within 60s; load it again (unload and load, or upgrade) once it is fixed"
    );
    assert!(executor.isolation().unwrap().circuit_open);
    manager.unload("unruly").unwrap();
    assert!(manager.load_plugins().failed.is_empty());
    served(&manager.executor("unruly").unwrap());
}

#[test]
fn calls_run_in_parallel_and_a_crash_fails_every_call_in_flight_at_once() {
    let (_base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    // Two calls at once run at once, each on a connection and a runner thread of its own
    // (the plugin counts the calls inside it). A busy machine may start the second call after
    // the first's 300 ms: up to three tries.
    let mut most = Vec::new();
    for _ in 0..3 {
        let barrier = std::sync::Barrier::new(2);
        most = std::thread::scope(|scope| {
            let calls: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        let ctx = call(&executor, "overlap").unwrap();
                        ctx.get("most").and_then(|v| v.as_i64()).unwrap()
                    })
                })
                .collect();
            calls
                .into_iter()
                .map(|c| c.join().unwrap())
                .collect::<Vec<i64>>()
        });
        if most.contains(&2) {
            break;
        }
    }
    assert_eq!(most.iter().max(), Some(&2), "{most:?}");

    // A call sleeping in the runner when another call crashes it gets the same error, at
    // once (not after its 5 s).
    let started = Instant::now();
    let (sleeper, crasher) = std::thread::scope(|scope| {
        let sleeper = scope.spawn(|| call(&executor, "sleep"));
        std::thread::sleep(Duration::from_millis(200));
        let crasher = scope.spawn(|| call(&executor, "segv"));
        (sleeper.join().unwrap(), crasher.join().unwrap())
    });
    for outcome in [sleeper, crasher] {
        let error = outcome.unwrap_err();
        assert!(
            matches!(&error, Error::Crashed { status, .. } if status == "killed by signal 11 (SIGSEGV)"),
            "{error}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        executor.isolation().unwrap().crashes,
        1,
        "one crash, counted once"
    );
    served(&executor);
}

#[test]
fn a_crash_ends_the_processes_the_plugin_started_and_is_reported_at_once() {
    let (_base, manager) = loaded(&[unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    served(&executor);
    let started = Instant::now();
    let error = call(&executor, "child-then-abort").unwrap_err();
    // The `sleep` it started holds the runner's stderr open: the report does not wait for
    // it, and ending the runner's process group ended it.
    assert!(
        matches!(&error, Error::Crashed { status, .. } if status == "killed by signal 6 (SIGABRT)"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The plugin's `sleep`, orphaned, would have been re-parented to init (or a subreaper)
    // and still be listed; the group kill ended it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleepers() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sleepers(), 0, "the `sleep` the plugin started is gone");
    served(&executor);
}

/// How many `sleep 30.0417` processes run on this machine: the plugin's, in the test above (an
/// odd duration, so that no other `sleep` counts).
fn sleepers() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline == b"sleep\x0030.0417\x00")
        })
        .count()
}
