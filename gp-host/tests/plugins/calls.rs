//! Calling real plugins: values, labels, errors, panics, cancellation, threads.

use std::time::Duration;

use gp_host::{Context, Error, Executor, Manager};

use crate::harness::{base_dir_with, with_captured_log};

fn manager(names: &[&str]) -> (Manager, tempfile::TempDir) {
    let base = base_dir_with(names);
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    (manager, base)
}

#[test]
fn sample_reads_the_seed_value_and_sets_a_greeting() {
    let (manager, _base) = manager(&["sample"]);
    let (_, executor) = manager.get_plugin("sample").unwrap();
    let mut ctx = Context::new();
    ctx.set_as("sample", &serde_json::json!({"name": "hello gp"}))
        .unwrap();
    let ((), log) = with_captured_log(|| executor.execute(&mut ctx).unwrap());
    assert_eq!(
        ctx.to_json(),
        serde_json::json!({"greeting": "sample plugin says: hello gp", "sample": {"name": "hello gp"}})
    );
    assert_eq!(
        log,
        " INFO gp::plugin: sample got \"hello gp\" plugin=\"sample\"\n"
    );
}

#[test]
fn a_missing_value_is_named_in_the_error() {
    let (manager, _base) = manager(&["sample"]);
    let error = manager
        .executor("sample")
        .unwrap()
        .execute(&mut Context::new())
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `sample` failed: context value `sample` is not set"
    );
}

#[test]
fn labels_dispatch_and_errors_come_back_with_the_plugins_message() {
    let (manager, _base) = manager(&["dispatch"]);
    let dispatch = manager.executor("dispatch").unwrap();

    let mut ctx = Context::new().with_label("counter.add");
    ctx.set("count", 41);
    dispatch.execute(&mut ctx).unwrap();
    assert_eq!(ctx.get("count").and_then(|v| v.as_i64()), Some(42));

    let error = dispatch
        .execute(&mut Context::new().with_label("counter.reset"))
        .unwrap_err();
    assert!(matches!(error, Error::Failed { .. }));
    assert_eq!(
        error.to_string(),
        "plugin `dispatch` failed: label \"counter.reset\" is not supported: use counter.get or counter.add"
    );
    let error = dispatch.execute(&mut Context::new()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `dispatch` failed: label is not set in the plugin context"
    );
}

#[test]
fn a_panic_costs_one_call_and_reaches_the_host_log() {
    let (manager, _base) = manager(&["panicky", "sample"]);
    let panicky = manager.executor("panicky").unwrap();
    for _ in 0..3 {
        let (error, log) = with_captured_log(|| {
            panicky
                .execute(&mut Context::new().with_label("boom"))
                .unwrap_err()
        });
        assert!(matches!(error, Error::Panicked { .. }));
        assert_eq!(
            error.to_string(),
            "plugin `panicky` panicked: boom: asked for item 3 of 0 items (at examples/panicky/src/lib.rs:10:9)"
        );
        assert_eq!(
            log,
            "ERROR gp::plugin: plugin panicked: boom: asked for item 3 of 0 items (at examples/panicky/src/lib.rs:10:9) plugin=panicky\n"
        );
    }
    let mut ctx = Context::new();
    panicky.execute(&mut ctx).unwrap();
    assert_eq!(
        ctx.get("status").and_then(|v| v.as_str()),
        Some("still alive")
    );
    crate::harness::assert_sample_serves(&manager);
}

#[test]
fn cancelling_a_call_mid_flight_stops_it() {
    let (manager, _base) = manager(&["slow"]);
    let slow = manager.executor("slow").unwrap();
    let mut ctx = Context::new();
    let token = ctx.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        token.cancel();
    });
    // Without cancellation this call would run for ever (no `steps` set).
    let error = slow.execute(&mut ctx).unwrap_err();
    canceller.join().unwrap();
    assert!(matches!(error, Error::Cancelled { .. }), "{error}");
    assert_eq!(error.to_string(), "call to plugin `slow` was cancelled");
    let done = ctx.get("done").and_then(|v| v.as_i64()).unwrap_or(0);
    assert!(done > 0, "the plugin was running when cancelled");
}

#[test]
fn a_deadline_stops_a_call() {
    let (manager, _base) = manager(&["slow"]);
    let slow = manager.executor("slow").unwrap();
    let mut ctx = Context::new().with_timeout(Duration::from_millis(50));
    let error = slow.execute(&mut ctx).unwrap_err();
    assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "call to plugin `slow` passed its deadline"
    );
}

#[test]
fn a_call_that_finishes_in_time_succeeds() {
    let (manager, _base) = manager(&["slow"]);
    let mut ctx = Context::new().with_timeout(Duration::from_secs(60));
    ctx.set("steps", 3);
    ctx.set("step_ms", 1);
    manager.executor("slow").unwrap().execute(&mut ctx).unwrap();
    assert_eq!(ctx.get("done").and_then(|v| v.as_i64()), Some(3));
}

#[test]
fn one_executor_serves_many_threads_at_once() {
    fn assert_shareable<T: Clone + Send + Sync>() {}
    assert_shareable::<Executor>();

    let (manager, _base) = manager(&["dispatch"]);
    let dispatch = manager.executor("dispatch").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dispatch = dispatch.clone();
            std::thread::spawn(move || {
                let mut ctx = Context::new().with_label("counter.add");
                ctx.set("count", t * 1_000_000);
                for _ in 0..10_000 {
                    dispatch.execute(&mut ctx).unwrap();
                }
                ctx.get("count").and_then(|v| v.as_i64()).unwrap()
            })
        })
        .collect();
    let counts: Vec<i64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(counts, [10_000, 1_010_000, 2_010_000, 3_010_000]);
}
