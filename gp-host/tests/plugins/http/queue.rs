//! Queue, then refuse; and where calls run: a fast plugin under 256 concurrent requests gets
//! no 503, a full queue or a wait that runs out does, and a plugin that was fast (its calls on
//! the async workers) and then hangs holds at most all workers but one, so every request still
//! gets its 504 on time while the health check and other plugins answer.

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use gp_host::http::{ListenLimits, PluginServer, RouteLimits, PROMOTE_AFTER};
use gp_host::Manager;

use super::{
    assert_answered_by_connection, assert_busy, counted, get, read_response, web_server, Reply,
    Running,
};
use crate::harness::{base_dir, example, wait_in_flight};
use crate::web_fixture::web;

/// `web` with 1 slot and a queue of `queue` requests waiting at most `wait`, served, its slot
/// taken by a call that hangs until the file `release` (in the base dir) exists: the server,
/// its address, the file, and the hanging call (which answers "woke up").
struct OneSlotTaken {
    _running: Running,
    addr: std::net::SocketAddr,
    release: std::path::PathBuf,
    hanging: std::thread::JoinHandle<super::Reply>,
    _base: tempfile::TempDir,
}

fn one_slot_taken(queue: usize, wait: Duration) -> OneSlotTaken {
    let (base, manager, server) = web_server(|b| b.plugin_concurrency("web", 1).queue(queue, wait));
    let running = Running::start(&server);
    let addr = running.addr;
    let release = base.path().join("release");
    let hang = format!("/web/hang?until={}", release.display());
    let hanging = std::thread::spawn(move || get(addr, &hang));
    wait_in_flight(&manager, "web", 1);
    OneSlotTaken {
        _running: running,
        addr,
        release,
        hanging,
        _base: base,
    }
}

#[test]
fn a_full_queue_or_a_wait_that_runs_out_answers_503_and_a_queued_request_waits_its_turn() {
    let taken = one_slot_taken(1, Duration::from_secs(10));
    let addr = taken.addr;
    // The slot is taken: the next request waits in the queue...
    let queued = std::thread::spawn(move || get(addr, "/web/version"));
    std::thread::sleep(Duration::from_millis(200));
    // ...and the one after finds the queue full.
    assert_busy(&get(addr, "/web/empty"), "web", "empty");
    std::fs::write(&taken.release, "").unwrap();
    assert_eq!(taken.hanging.join().unwrap().text(), "woke up");
    let served = queued.join().unwrap();
    assert_eq!((served.status, served.text()), (200, "1.0.0"));

    // A queue whose wait runs out: 503 after it.
    let taken = one_slot_taken(8, Duration::from_millis(300));
    let started = Instant::now();
    assert_busy(&get(taken.addr, "/web/empty"), "web", "empty");
    assert!(started.elapsed() >= Duration::from_millis(300));
    std::fs::write(&taken.release, "").unwrap();
    taken.hanging.join().unwrap();
}

#[test]
fn a_queued_request_whose_client_leaves_gives_its_place_in_the_queue_back() {
    let taken = one_slot_taken(1, Duration::from_secs(10));
    let addr = taken.addr;
    // A request waits in the queue (its only place), then its client leaves.
    let mut leaving = TcpStream::connect(addr).unwrap();
    leaving
        .write_all(b"GET /web/version HTTP/1.1\r\nhost: gp\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(leaving);
    // The server sees the connection close and drops the request; its place is free again, so
    // the next request waits its turn rather than finding the queue full.
    std::thread::sleep(Duration::from_millis(300));
    let queued = std::thread::spawn(move || get(addr, "/web/version"));
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(&taken.release, "").unwrap();
    assert_eq!(taken.hanging.join().unwrap().text(), "woke up");
    let served = queued.join().unwrap();
    assert_eq!((served.status, served.text()), (200, "1.0.0"));
}

#[test]
fn a_fast_plugin_gets_no_503_at_256_concurrent_requests() {
    let base = base_dir();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let server = PluginServer::new(manager.clone());
    assert!(manager.load_plugins().failed.is_empty());
    let running = Running::start(&server);
    let addr = running.addr;
    let start = Arc::new(Barrier::new(256));
    let clients: Vec<_> = (0..256)
        .map(|i| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                (0..4)
                    .map(|_| get(addr, &format!("/api/plugin/sample/{i}")).status)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let mut statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    statuses.dedup();
    assert_eq!(statuses, [200], "every request answered 200");
}

#[test]
fn a_plugin_fast_then_stuck_holds_at_most_all_workers_but_one() {
    // The connections' watchers wake every 10 s, later than the 500 ms deadline: the calls
    // run in tasks of their own, and the request's task answers 504.
    let replies = fast_then_stuck(ListenLimits::default());
    assert!(
        replies
            .iter()
            .all(|r| r.header("connection") != Some("close")),
        "every 504 from its request's task"
    );
}

#[test]
fn a_call_stuck_in_its_request_task_is_answered_504_by_its_connection() {
    // The watchers wake every 200 ms, before the 500 ms deadline: a call may run in its
    // request's own task (one at a time, on 2 workers), and its connection answers 504.
    let replies =
        fast_then_stuck(ListenLimits::default().with_header_timeout(Duration::from_millis(200)));
    let by_connection = replies
        .iter()
        .filter(|r| r.header("connection") == Some("close"))
        .count();
    assert_eq!(by_connection, 1, "one call ran in its request's task");
    let answered = replies
        .iter()
        .find(|r| r.header("connection") == Some("close"))
        .unwrap();
    assert_answered_by_connection(answered, "hang");
}

/// A plugin fast for 1,024 calls, then hung (ignoring cancellation) by 2 × workers requests,
/// each on a connection that has answered a request before: each gets its 504 within its
/// deadline + 100 ms while the health check and another plugin answer within 100 ms. Returns
/// the 504s, for the caller to check who wrote them.
// Long: one scenario, read top to bottom: fast calls, then a hang, then the checks.
fn fast_then_stuck(limits: ListenLimits) -> Vec<Reply> {
    let base = base_dir();
    gp_host::build::install_library(web("web-v1"), base.path()).unwrap();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let timeout = Duration::from_millis(500);
    let server = PluginServer::builder(manager.clone())
        .route("web", "hang", RouteLimits::default().with_timeout(timeout))
        .build();
    assert!(manager.load_plugins().failed.is_empty());
    // The test server's runtime has 2 workers: at most 1 call inline.
    let running = Running::serve_limited(server.clone(), limits);
    let addr = running.addr;
    // Fast calls: `web` runs its calls on the async workers from now on.
    for _ in 0..(PROMOTE_AFTER * 16) {
        assert_eq!(get(addr, "/web/empty").status, 204);
    }
    // The calls run on the async workers and on the blocking pool, as `/metrics` counts them.
    let placed = (
        counted(&server, "gp_http_calls_inline_total"),
        counted(&server, "gp_http_calls_pool_total"),
    );
    assert!(
        placed.0 > u64::from(PROMOTE_AFTER) * 8,
        "inline, pool: {placed:?}"
    );
    let release = base.path().join("release");
    let hang = format!("/web/hang?until={}", release.display());
    // Then it hangs, ignoring cancellation: 2 × workers requests at once.
    let stuck: Vec<_> = (0..4)
        .map(|_| {
            let hang = hang.clone();
            std::thread::spawn(move || {
                // A request first, so that the hang comes on a connection its watcher looks
                // after (a call runs in its request's task only then).
                let mut stream = TcpStream::connect(addr).unwrap();
                write!(stream, "GET /web/empty HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
                let empty = read_response(&mut stream, "the 204 of /web/empty");
                assert_eq!(empty.status, 204);
                let sent = Instant::now();
                write!(stream, "GET {hang} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
                let reply = read_response(&mut stream, "the hang's answer");
                (reply, sent.elapsed())
            })
        })
        .collect();
    // Meanwhile the health check and another plugin answer, each within 100 ms.
    let watched = Instant::now();
    let mut slowest = Duration::ZERO;
    while watched.elapsed() < timeout + Duration::from_millis(500) {
        for path in ["/-/healthz", "/api/plugin/sample/7"] {
            let sent = Instant::now();
            assert_eq!(get(addr, path).status, 200, "{path}");
            slowest = slowest.max(sent.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        slowest < Duration::from_millis(100),
        "the health check or sample took {slowest:?} while web hung"
    );
    let mut replies = Vec::new();
    for request in stuck {
        let (reply, took) = request.join().unwrap();
        assert_eq!(reply.status, 504);
        assert!(
            took < timeout + Duration::from_millis(100),
            "a hung call's 504 came after {took:?}"
        );
        replies.push(reply);
    }
    std::fs::write(&release, "").unwrap();
    replies
}
