//! Time and concurrency limits: a slow call gets 504, a client that leaves cancels its call,
//! and a hanging plugin exhausts only its own slots.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use gp_host::http::{PluginServer, RouteLimits};
use gp_host::Manager;

use super::{assert_busy, get, web_server, Running};
use crate::harness::{base_dir, wait_in_flight};
use crate::web_fixture::web;

#[test]
fn a_slow_call_times_out_with_504_and_a_client_that_leaves_cancels_the_call() {
    let (base, _manager, server) = web_server(|b| {
        b.route(
            "web",
            "slow",
            RouteLimits::default().with_timeout(Duration::from_millis(300)),
        )
    });
    let running = Running::start(&server);
    let marker = base.path().join("timed-out");
    let started = Instant::now();
    let reply = get(
        running.addr,
        &format!("/web/slow?marker={}", marker.display()),
    );
    assert_eq!(reply.status, 504);
    assert_eq!(
        reply.error_body(),
        serde_json::json!({"error": "plugin `web` did not answer within 300 ms", "plugin": "web", "label": "slow"})
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_for(&marker);

    // A client that disconnects mid-call: the plugin sees itself cancelled.
    let marker = base.path().join("disconnected");
    let mut stream = TcpStream::connect(running.addr).unwrap();
    write!(
        stream,
        "GET /web/slow?marker={} HTTP/1.1\r\nHost: x\r\n\r\n",
        marker.display()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    drop(stream);
    let text = wait_for(&marker);
    assert!(text.starts_with("cancelled after "), "{text}");
}

/// Waits (at most 10 s) for `path` to exist; returns its text.
fn wait_for(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never appeared", path.display());
}

#[test]
fn a_hanging_plugin_exhausts_only_its_own_slots() {
    let base = base_dir();
    gp_host::build::install_library(web("web-v1"), base.path()).unwrap();
    gp_host::build::install_library(crate::harness::example("sample"), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let server = PluginServer::builder(manager.clone())
        .plugin_concurrency("web", 2)
        // No queue: a request beyond the slots is refused at once.
        .queue(0, Duration::ZERO)
        .build();
    assert!(manager.load_plugins().failed.is_empty());
    let running = Running::start(&server);
    let addr = running.addr;
    let release = base.path().join("release");
    let hang = format!("/web/hang?until={}", release.display());
    let hanging: Vec<_> = (0..2)
        .map(|_| {
            let hang = hang.clone();
            std::thread::spawn(move || get(addr, &hang))
        })
        .collect();
    // Both slots taken (waiting at most 10 s for both calls to be in the plugin)...
    wait_in_flight(&manager, "web", 2);
    // ...so the third call to web gets 503 at once...
    assert_busy(&get(addr, "/web/empty"), "web", "empty");
    // ...while another plugin answers as usual.
    let sample = get(addr, "/api/plugin/sample/7");
    assert_eq!(sample.status, 200);
    std::fs::write(&release, "").unwrap();
    for call in hanging {
        assert_eq!(call.join().unwrap().text(), "woke up");
    }
    assert_eq!(get(addr, "/web/empty").status, 204);
}
