//! Requests to an isolated plugin wait for batches (one `write` of many calls to the runner,
//! one `write` of their answers): each still gets its own answer, deadline and outcome.

use std::time::{Duration, Instant};

use gp_host::http::PluginServer;
use gp_host::Manager;

use super::isolation;
use crate::harness::base_dir;
use crate::http::{counted, get, Running};
use crate::web_fixture::web;

/// The web fixture, isolated, served with `configure`'s settings.
fn isolated_web(
    configure: impl FnOnce(gp_host::http::PluginServerBuilder) -> gp_host::http::PluginServerBuilder,
) -> (tempfile::TempDir, Manager, PluginServer) {
    let base = base_dir();
    gp_host::build::install_library(web("web-v1"), base.path()).unwrap();
    let manager = Manager::builder(base.path()).isolation(isolation()).build();
    let server = configure(PluginServer::builder(manager.clone())).build();
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    (base, manager, server)
}

#[test]
fn concurrent_requests_to_an_isolated_plugin_each_get_their_own_answer() {
    let (_base, _manager, server) = isolated_web(|b| b);
    let running = Running::start(&server);
    let addr = running.addr;
    std::thread::scope(|s| {
        for t in 0..16 {
            s.spawn(move || {
                for i in 0..20 {
                    let id = format!("{t}-{i}");
                    let reply = get(addr, &format!("/web/echo/{id}?q={id}"));
                    assert_eq!(reply.status, 200, "{}", reply.text());
                    let echo = reply.json();
                    assert_eq!(echo["id"], id.as_str(), "{echo}");
                    assert_eq!(echo["q"], id.as_str(), "{echo}");
                }
            });
        }
    });
    // Calls sent in batches, and the batches, as `/metrics` counts them.
    let calls = counted(&server, "gp_http_calls_batched_total");
    let batches = counted(&server, "gp_http_call_batches_total");
    assert_eq!(calls, 16 * 20, "every call went through a batch");
    assert!((1..=calls).contains(&batches), "{batches} batches");
}

/// Calls that wait for cancellation, past their deadline: each request gets its 504 on time,
/// however its call was batched (a call queued behind another in its batch is cancelled as it
/// starts; one still waiting for a batch at its deadline never runs), and the plugin answers
/// at once afterwards: nothing is left running.
#[test]
fn queued_calls_past_their_deadline_get_their_504_and_leave_nothing_running() {
    let timeout = Duration::from_millis(300);
    let (base, _manager, server) = isolated_web(|b| b.timeout(timeout));
    let running = Running::start(&server);
    let addr = running.addr;
    let marks = base.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    std::thread::scope(|s| {
        for n in 0..12 {
            let marker = marks.join(n.to_string());
            s.spawn(move || {
                let started = Instant::now();
                let reply = get(addr, &format!("/web/slow?marker={}", marker.display()));
                let took = started.elapsed();
                assert_eq!(reply.status, 504, "{}", reply.text());
                assert!(
                    took < timeout + Duration::from_millis(700),
                    "a 504 after {took:?}"
                );
            });
        }
    });
    // The calls that started saw their cancellation (the plugin leaves its mark then); those
    // still queued at their deadline never ran.
    let until = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(&marks).unwrap().count() == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let cancelled = std::fs::read_dir(&marks).unwrap().count();
    assert!(
        (1..=12).contains(&cancelled),
        "{cancelled} calls saw their cancellation"
    );
    let started = Instant::now();
    assert_eq!(get(addr, "/web/echo/after").status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// Only what the plugin changed comes back from its runner: the host's context ends as an
/// in-process call would leave it (set, overwritten, removed; the rest untouched).
#[test]
fn an_isolated_call_leaves_the_context_as_an_in_process_one_would() {
    let (_base, manager) = super::loaded(&[super::unruly()], isolation());
    let executor = manager.executor("unruly").unwrap();
    let mut ctx = gp_host::Context::new().with_label("edit");
    ctx.set("n", 41);
    ctx.set("gone", 1);
    ctx.set("untouched", vec![0u8, 255]);
    executor.execute(&mut ctx).unwrap();
    let mut keys: Vec<_> = ctx.values().map(|(k, _)| k.to_owned()).collect();
    keys.sort();
    assert_eq!(keys, ["added", "n", "pid", "untouched"]);
    assert_eq!(ctx.get("n").and_then(|v| v.as_i64()), Some(42));
    assert_eq!(ctx.get("added").and_then(|v| v.as_str()), Some("new"));
    assert_eq!(
        ctx.get("untouched").and_then(|v| v.as_bytes()),
        Some(&[0u8, 255][..])
    );
}

/// A plugin whose calls are slow gets batches of one, run side by side (as calls on their own
/// connections ran before batching), not one after another in a batch.
#[test]
fn the_requests_of_a_slow_isolated_plugin_run_side_by_side() {
    let (_base, manager) = super::loaded(&[super::unruly()], isolation());
    let server = PluginServer::builder(manager.clone()).build();
    let running = Running::start(&server);
    let addr = running.addr;
    // One call of 300 ms: its batch was slow, so the next ones go one a batch.
    assert_eq!(get(addr, "/unruly/overlap").status, 200);
    let most = std::thread::scope(|s| {
        let calls: Vec<_> = (0..6)
            .map(|_| s.spawn(move || get(addr, "/unruly/overlap").json()))
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().unwrap().as_i64().unwrap())
            .max()
    });
    assert!(most >= Some(2), "at most {most:?} calls ran at once");
}
