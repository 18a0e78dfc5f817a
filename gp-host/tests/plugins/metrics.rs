//! Metrics and call events on real plugins.

use std::sync::{Arc, Mutex};

use gp_host::{Context, Event, Manager};

use crate::harness::{base_dir, install_lifecycle, lifecycle};

fn counter(metrics: bool) -> (Manager, tempfile::TempDir) {
    let base = base_dir();
    install_lifecycle(base.path(), "counter-v1", "counter");
    let manager = Manager::builder(base.path()).metrics(metrics).build();
    assert!(manager.load_plugins().is_ok());
    (manager, base)
}

/// Makes `ok` successful calls, `failed` failing ones and `panicked` panicking ones.
fn call(manager: &Manager, ok: usize, failed: usize, panicked: usize) {
    let executor = manager.executor("counter").unwrap();
    for _ in 0..ok {
        executor.execute(&mut Context::new()).unwrap();
    }
    for _ in 0..failed {
        executor
            .execute(&mut Context::new().with_label("fail"))
            .unwrap_err();
    }
    for _ in 0..panicked {
        executor
            .execute(&mut Context::new().with_label("panic"))
            .unwrap_err();
    }
}

#[test]
fn metrics_count_the_calls_made() {
    let base = base_dir();
    install_lifecycle(base.path(), "counter-v1", "counter");
    // Every call timed, so that the histogram's count is exact.
    let manager = Manager::builder(base.path()).latency_sampling(1).build();
    assert!(manager.load_plugins().is_ok());
    call(&manager, 100, 7, 3);
    manager.upgrade("counter", lifecycle("counter-v2")).unwrap();
    call(&manager, 10, 0, 0);

    let stats = manager.stats();
    assert_eq!(stats.len(), 1);
    let s = &stats[0];
    assert_eq!(s.name, "counter");
    assert_eq!(s.version.as_ref().unwrap().to_string(), "2.0.0");
    assert_eq!((s.calls, s.errors, s.panics, s.in_flight), (120, 7, 3, 0));
    assert_eq!((s.loads, s.upgrades, s.unloads), (1, 1, 0));
    assert_eq!(s.latency.count(), 120);
    assert!(s.latency.p50() <= s.latency.p90() && s.latency.p90() <= s.latency.p99());
    assert!(s.latency.p50() > std::time::Duration::ZERO);
    let last = s.last_error.as_ref().unwrap();
    assert!(
        last.message
            .starts_with("plugin `counter` panicked: asked to panic (at counter-v1/src/lib.rs:"),
        "{}",
        last.message
    );

    let text = manager.prometheus();
    for line in [
        "gp_plugin_calls_total{plugin=\"counter\"} 120",
        "gp_plugin_errors_total{plugin=\"counter\"} 7",
        "gp_plugin_panics_total{plugin=\"counter\"} 3",
        "gp_plugin_upgrades_total{plugin=\"counter\"} 1",
        "gp_plugin_in_flight{plugin=\"counter\"} 0",
        "gp_plugin_loaded{plugin=\"counter\",version=\"2.0.0\"} 1",
        "gp_plugin_call_duration_seconds_count{plugin=\"counter\"} 120",
        "gp_plugin_call_duration_seconds_bucket{le=\"+Inf\",plugin=\"counter\"} 120",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"), "{text}");

    manager.unload("counter").unwrap();
    let s = &manager.stats()[0];
    assert_eq!((s.version.as_ref(), s.calls, s.unloads), (None, 120, 1));
}

#[test]
fn with_metrics_off_calls_are_not_counted_but_lifecycle_is() {
    let (manager, _base) = counter(false);
    call(&manager, 10, 1, 1);
    let s = &manager.stats()[0];
    assert_eq!((s.calls, s.errors, s.panics, s.loads), (0, 0, 0, 1));
}

#[test]
fn call_events_reach_subscribers_only_while_subscribed() {
    let (manager, _base) = counter(true);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let id = manager.subscribe(move |event| {
        let line = match event {
            Event::BeforeCall { spec, ctx } => {
                format!("before {} {:?}", spec.version(), ctx.label())
            }
            Event::AfterCall {
                spec, ctx, outcome, ..
            } => format!(
                "after {} {:?} {}",
                spec.version(),
                ctx.get("version").and_then(|v| v.as_str()),
                match outcome {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => e.to_string(),
                }
            ),
            other => format!("{other:?}"),
        };
        sink.lock().unwrap().push(line);
    });
    call(&manager, 1, 1, 0);
    assert!(manager.unsubscribe(id));
    assert!(!manager.unsubscribe(id));
    call(&manager, 1, 0, 0);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "before 1.0.0 None",
            "after 1.0.0 Some(\"1.0.0\") ok",
            "before 1.0.0 Some(\"fail\")",
            "after 1.0.0 Some(\"1.0.0\") plugin `counter` failed: asked to fail",
        ]
    );
    assert_eq!(manager.stats()[0].calls, 3);
}

#[test]
fn a_panicking_subscriber_is_skipped_and_the_call_goes_on() {
    let (manager, _base) = counter(true);
    manager.subscribe(|event| {
        if event.is_call() {
            panic!("subscriber bug");
        }
    });
    call(&manager, 3, 0, 0);
}

#[test]
fn a_subscriber_may_change_the_registry_from_its_handler() {
    let base = base_dir();
    install_lifecycle(base.path(), "counter-v1", "counter");
    let manager = Manager::new(base.path());
    let handle = manager.clone();
    let unloaded = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&unloaded);
    manager.subscribe_lifecycle(move |event| {
        if let Event::Upgraded { to, .. } = event {
            // Unloading from inside the handler must not deadlock on the manager's own lock.
            let report = handle.unload(to.name()).unwrap();
            *sink.lock().unwrap() = Some(report.spec.version().to_string());
        }
    });
    assert!(manager.load_plugins().is_ok());
    manager.upgrade("counter", lifecycle("counter-v2")).unwrap();
    assert_eq!(unloaded.lock().unwrap().as_deref(), Some("2.0.0"));
    assert!(manager.list().is_empty());
}

#[test]
fn latency_sampling_times_one_call_in_n_and_still_counts_them_all() {
    let base = base_dir();
    install_lifecycle(base.path(), "counter-v1", "counter");
    let manager = Manager::builder(base.path()).latency_sampling(3).build();
    assert!(manager.load_plugins().is_ok());
    call(&manager, 100, 2, 0);
    let s = &manager.stats()[0];
    assert_eq!((s.calls, s.errors, s.in_flight), (102, 2, 0));
    // One in 3, picked by a hash of the shard's call count: 35 of calls 0..102, and one more
    // if the metrics tick (a second) turned during the calls.
    assert!((35..=36).contains(&s.latency.count()), "{s:?}");
}

#[test]
fn by_default_one_call_in_64_is_timed_and_each_second_times_one_more() {
    let (manager, _base) = counter(true);
    call(&manager, 1000, 0, 0);
    let s = &manager.stats()[0];
    assert_eq!(s.calls, 1000);
    // 16 of 1000 by the hash, plus one for each tick the calls spanned.
    assert!((16..=18).contains(&s.latency.count()), "{s:?}");

    // A rarely called plugin: the hash does not pick this thread's call 1000, but it is the
    // shard's first call in a new second, so it is timed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let before = s.latency.count();
    call(&manager, 1, 0, 0);
    let s = &manager.stats()[0];
    assert_eq!(s.calls, 1001);
    assert_eq!(s.latency.count(), before + 1, "{s:?}");
}

#[test]
fn a_running_call_is_counted_in_flight_until_it_returns() {
    let (manager, _base) = counter(true);
    let executor = manager.executor("counter").unwrap();
    let call = std::thread::spawn(move || {
        let mut ctx = Context::new().with_label("stubborn");
        ctx.set("ms", 300);
        executor.execute(&mut ctx)
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    let s = &manager.stats()[0];
    assert_eq!((s.in_flight, s.calls), (1, 0));
    call.join().unwrap().unwrap();
    let s = &manager.stats()[0];
    assert_eq!((s.in_flight, s.calls), (0, 1));
}
