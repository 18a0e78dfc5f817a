//! Calls run in their request's own task (see `listen::rescue`): a promoted plugin's call on
//! a plain HTTP/1 connection whose watcher wakes before the call's deadline. Such a call
//! sees itself cancelled at its deadline; a stuck one gets its 504 from its connection, after
//! the responses before it; pipelined requests keep their order; an h2c connection never runs
//! a call that way.
//!
//! The servers here have their connections' watchers wake every 200 ms (the header timeout)
//! and give `web`'s `slow` and `hang` a 500 ms deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use gp_host::http::{ListenLimits, PluginServer, RouteLimits, PROMOTE_AFTER};

use super::{
    assert_answered_by_connection, counted, get, parse_reply, read_response, web_server, Running,
};
use crate::harness::eventually;

/// The deadline of `web`'s `slow` and `hang` here.
const DEADLINE: Duration = Duration::from_millis(500);

/// A running server whose `web` runs its calls on the async workers, and a connection to it
/// that has answered a request (so its watcher has looked at it).
struct Promoted {
    server: PluginServer,
    running: Running,
    kept: TcpStream,
    /// Dropped last: a call still running may be waiting for a file in it.
    base: tempfile::TempDir,
}

impl Promoted {
    fn start() -> Promoted {
        // A budget of 100 ms: on a test machine busy with other tests, a fast call preempted
        // twice would send `web` back to the pool, and its calls into tasks of their own.
        let (base, _manager, server) = web_server(|b| {
            b.route("web", "slow", RouteLimits::default().with_timeout(DEADLINE))
                .route("web", "hang", RouteLimits::default().with_timeout(DEADLINE))
                .inline_budget(Some(Duration::from_millis(100)))
        });
        // A grace of a minute: a shutdown that waited for it would show.
        let limits = ListenLimits::default()
            .with_header_timeout(Duration::from_millis(200))
            .with_grace(Duration::from_secs(60));
        let running = Running::serve_limited(server.clone(), limits);
        for _ in 0..PROMOTE_AFTER * 16 {
            assert_eq!(get(running.addr, "/web/empty").status, 204);
            if counted(&server, "gp_http_calls_inline_total") > 0 {
                break;
            }
        }
        assert!(
            counted(&server, "gp_http_calls_inline_total") > 0,
            "web runs its calls on the async workers"
        );
        let mut kept = TcpStream::connect(running.addr).unwrap();
        let addr = running.addr;
        write!(kept, "GET /web/empty HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut kept, "the first 204").status, 204);
        // The connection's watcher, spawned as the connection started, may not have run yet
        // (a worker busy elsewhere): until it has, the connection cannot answer for a call
        // and calls run in tasks of their own. It runs as soon as a worker is free, and again
        // every 200 ms at most; 250 ms covers both.
        std::thread::sleep(Duration::from_millis(250));
        Promoted {
            base,
            server,
            running,
            kept,
        }
    }

    /// Writes `paths` as pipelined GET requests, in one write.
    fn pipeline(&mut self, paths: &[String]) {
        let addr = self.running.addr;
        let requests: String = paths
            .iter()
            .map(|p| format!("GET {p} HTTP/1.1\r\nHost: {addr}\r\n\r\n"))
            .collect();
        self.kept.write_all(requests.as_bytes()).unwrap();
    }
}

/// Calls of `web` run in their request's own task so far.
fn in_request_task(server: &PluginServer) -> u64 {
    counted(server, "gp_http_calls_in_request_task_total")
}

#[test]
fn a_call_in_its_request_task_sees_itself_cancelled_at_its_deadline() {
    let mut promoted = Promoted::start();
    let marker = promoted.base.path().join("cancelled");
    let before = in_request_task(&promoted.server);
    promoted.pipeline(&[format!("/web/slow?marker={}", marker.display())]);
    let reply = read_response(&mut promoted.kept, "the slow call's 504");
    assert_eq!(
        in_request_task(&promoted.server),
        before + 1,
        "run in its task"
    );
    // Either the connection's watcher answered (and cancelled the call), or the call, seeing
    // its deadline pass, returned first and its request answered: the same 504 either way.
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert_eq!(
        reply.json()["error"],
        "plugin `web` did not answer within 500 ms"
    );
    // `slow` returns once it sees itself cancelled, and says when.
    eventually(
        "the slow call to see its cancel",
        Duration::from_secs(5),
        || marker.exists(),
    );
    let said = std::fs::read_to_string(&marker).unwrap();
    assert!(said.starts_with("cancelled after "), "{said}");
    // Counted once, by whichever answered.
    let counted_504 = r#"gp_http_requests_total{plugin="web",label="slow",status="504"}"#;
    assert_eq!(counted(&promoted.server, counted_504), 1);
}

#[test]
fn pipelined_requests_are_answered_in_order_and_a_stuck_one_after_those_before_it() {
    let mut promoted = Promoted::start();
    let paths: Vec<String> = (1..=32).map(|i| format!("/web/items/{i}")).collect();
    let before = in_request_task(&promoted.server);
    promoted.pipeline(&paths);
    for i in 1..=32 {
        let reply = read_response(&mut promoted.kept, &format!("item {i}"));
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json(), serde_json::json!({ "id": i }));
    }
    assert!(
        in_request_task(&promoted.server) > before,
        "some of the pipelined calls ran in their request's task"
    );
    // A fast call and then a stuck one, pipelined: the connection's 504 comes after the 204.
    let release = promoted.base.path().join("release");
    promoted.pipeline(&[
        "/web/empty".to_owned(),
        format!("/web/hang?until={}", release.display()),
    ]);
    assert_eq!(
        read_response(&mut promoted.kept, "the pipelined 204").status,
        204
    );
    let reply = read_response(&mut promoted.kept, "the stuck call's 504");
    assert_answered_by_connection(&reply, "hang");
    // Counted once, by the connection.
    let counted_504 = r#"gp_http_requests_total{plugin="web",label="hang",status="504"}"#;
    assert_eq!(counted(&promoted.server, counted_504), 1);
    std::fs::write(&release, "").unwrap();
}

#[test]
fn over_h2c_a_stuck_call_is_answered_by_its_request_and_the_connection_stays_open() {
    let promoted = Promoted::start();
    let release = promoted.base.path().join("release");
    let addr = promoted.running.addr;
    let before = in_request_task(&promoted.server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let statuses = runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut send, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let mut statuses = Vec::new();
        for path in [
            format!("/web/hang?until={}", release.display()),
            "/web/empty".to_owned(),
        ] {
            let request = hyper::Request::get(format!("http://{addr}{path}"))
                .body(http_body_util::Empty::<hyper::body::Bytes>::new())
                .unwrap();
            let response =
                tokio::time::timeout(Duration::from_secs(10), send.send_request(request))
                    .await
                    .expect("an answer within 10 s")
                    .expect("the connection still open");
            statuses.push(response.status().as_u16());
        }
        statuses
    });
    std::fs::write(&release, "").unwrap();
    assert_eq!(
        in_request_task(&promoted.server),
        before,
        "none in its request's task"
    );
    // The 504 came on the HTTP/2 stream (the connection wrote no HTTP/1 bytes into it), and
    // the next request went on the same connection.
    assert_eq!(statuses, [504, 204]);
}

#[test]
fn a_connection_that_answered_for_its_stuck_call_holds_back_no_shutdown() {
    let mut promoted = Promoted::start();
    let release = promoted.base.path().join("release");
    promoted.pipeline(&[format!("/web/hang?until={}", release.display())]);
    let reply = read_response(&mut promoted.kept, "the stuck call's 504");
    assert_answered_by_connection(&reply, "hang");
    // The call is still stuck in the connection's task; shutdown does not wait for it (nor
    // for the minute's grace).
    promoted.running.begin_shutdown();
    eventually("the server to shut down", Duration::from_secs(5), || {
        promoted.running.has_ended()
    });
    std::fs::write(&release, "").unwrap();
}

#[test]
fn a_head_request_never_runs_in_its_request_task() {
    let mut promoted = Promoted::start();
    let before = in_request_task(&promoted.server);
    let release = promoted.base.path().join("release");
    let addr = promoted.running.addr;
    let hang = format!("/web/hang?until={}", release.display());
    write!(
        promoted.kept,
        "HEAD {hang} HTTP/1.1\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    // A HEAD response is its head alone (a connection's own 504 would carry a body).
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            promoted.kept.read(&mut byte).unwrap(),
            1,
            "closed: {head:?}"
        );
        head.push(byte[0]);
    }
    assert_eq!(parse_reply(&head).status, 504);
    assert_eq!(in_request_task(&promoted.server), before);
    std::fs::write(&release, "").unwrap();
    // The connection goes on, its next response where it should be.
    promoted.pipeline(&["/web/empty".to_owned()]);
    assert_eq!(
        read_response(&mut promoted.kept, "the next 204").status,
        204
    );
}
