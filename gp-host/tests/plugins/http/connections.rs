//! gp's listener (`serve_listener`, what `gp serve` runs) and its connections: one that sends
//! nothing, or only an HTTP/2 preface, is closed at the idle timeout; a request head sent in
//! part, at the header timeout (an h2c connection's frames are no head); at the connection
//! limit the connection idle the longest makes room, and a new one is refused only when every
//! open one has a request in flight; at shutdown, idle connections close at once, a request
//! in flight is answered first, and past the grace the rest are closed; a connection whose
//! request panicked holds back no shutdown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gp_host::http::ListenLimits;

use super::{get, web_server, Running};
use crate::harness::{eventually, in_flight, wait_in_flight};

/// The HTTP/2 connection preface and an empty SETTINGS frame: what an h2c client with prior
/// knowledge sends first.
const H2C_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Reads `stream` until the server closes it (at most 10 s), and asserts that this took at
/// least `at_least` and less than 3 s; `what` names the connection in the failure.
fn assert_closed_after(stream: &mut TcpStream, at_least: Duration, what: &str) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut sink = Vec::new();
    match stream.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection was not closed within 10 s: {e}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= at_least && waited < Duration::from_secs(3),
        "{what} closed after {waited:?}"
    );
}

/// A connection to `addr` with a request in flight: the web fixture's `/web/hang`, which
/// answers `woke up` once the file `release` exists.
fn hanging_request(addr: SocketAddr, release: &std::path::Path) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /web/hang?until={} HTTP/1.1\r\nHost: {addr}\r\n\r\n",
        release.display()
    )
    .unwrap();
    stream
}

#[test]
fn connections_that_send_nothing_or_only_an_h2c_preface_are_closed_at_the_idle_timeout() {
    let (base, _manager, server) = web_server(|b| b);
    let limits = ListenLimits::default().with_idle_timeout(Duration::from_millis(400));
    let running = Running::serve_limited(server.clone(), limits);
    let addr = running.addr;

    let mut silent = TcpStream::connect(addr).unwrap();
    assert_closed_after(
        &mut silent,
        Duration::from_millis(300),
        "a silent connection",
    );

    let mut h2c = TcpStream::connect(addr).unwrap();
    h2c.write_all(H2C_PREFACE).unwrap();
    assert_closed_after(
        &mut h2c,
        Duration::from_millis(300),
        "an h2c connection with no stream",
    );

    // A connection with a request in flight is not idle, however long the call takes.
    let release = base.path().join("release");
    let hang = format!("/web/hang?until={}", release.display());
    let call = std::thread::spawn(move || get(addr, &hang));
    std::thread::sleep(Duration::from_millis(900));
    std::fs::write(&release, "").unwrap();
    assert_eq!(call.join().unwrap().text(), "woke up");

    // After its response, a kept-alive connection is idle again, from then on.
    let mut kept = TcpStream::connect(addr).unwrap();
    write!(kept, "GET /-/healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    assert_closed_after(
        &mut kept,
        Duration::from_millis(300),
        "a kept-alive connection, after its request,",
    );
}

/// Opens a connection that sends nothing.
fn idle(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).unwrap()
}

/// Whether the server closed `stream` (within 5 s).
fn is_closed(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        _ => false,
    }
}

// Long: one scenario read top to bottom: idle connections make room, then busy ones refuse.
#[test]
fn past_the_connection_limit_the_longest_idle_makes_room_and_healthz_answers() {
    let (base, manager, server) = web_server(|b| b);
    let app = server
        .router()
        .merge(gp_host::http::metrics_router(manager.clone(), None));
    let limits = ListenLimits::default()
        .with_max_connections(3)
        .with_idle_timeout(Duration::from_secs(60));
    let running = Running::serve_limited(app, limits);
    let addr = running.addr;

    // Three idle connections fill the listener; each new request closes the oldest idle one.
    let mut first = idle(addr);
    std::thread::sleep(Duration::from_millis(50));
    let mut second = idle(addr);
    std::thread::sleep(Duration::from_millis(50));
    let _third = idle(addr);
    std::thread::sleep(Duration::from_millis(50));
    let health = get(addr, "/-/healthz");
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(
        is_closed(&mut first),
        "the oldest idle connection is closed"
    );
    let _fourth = idle(addr);
    std::thread::sleep(Duration::from_millis(50));
    let health = get(addr, "/-/healthz");
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(is_closed(&mut second), "then the next oldest");

    // Three calls in flight take every place: a fourth connection is refused at once.
    let release = base.path().join("release");
    let in_flight = || in_flight(&manager, "web");
    let hanging: Vec<_> = (0..3)
        .map(|_| {
            let hang = format!("/web/hang?until={}", release.display());
            let call = std::thread::spawn(move || get(addr, &hang));
            // One at a time, so that each finds an idle one (if any) to close, not another call.
            let deadline = Instant::now() + Duration::from_secs(10);
            let before = in_flight();
            while in_flight() == before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            call
        })
        .collect();
    assert_eq!(in_flight(), 3);
    let mut refused = TcpStream::connect(addr).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut raw = Vec::new();
    refused.read_to_end(&mut raw).unwrap();
    let refused = super::parse_reply(&raw);
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        refused.json(),
        serde_json::json!({"error": "the server has as many connections open as it may (3), each with a request in flight; retry shortly"})
    );

    std::fs::write(&release, "").unwrap();
    for call in hanging {
        assert_eq!(call.join().unwrap().text(), "woke up");
    }
    let health = get(addr, "/-/healthz");
    assert_eq!(health.status, 200, "{}", health.text());
    let metrics = get(addr, "/metrics");
    let text = metrics.text();
    assert!(
        text.contains(&format!(
            "gp_http_connections_refused_total{{listener=\"{addr}\"}} 1\n"
        )),
        "{text}"
    );
    // The first two, for the health checks; the third and fourth, for the second and third
    // calls.
    assert!(
        text.contains(&format!(
            "gp_http_connections_evicted_total{{listener=\"{addr}\"}} 4\n"
        )),
        "{text}"
    );
}

/// An HTTP/2 PING frame (stream 0, 8 bytes of payload).
const H2_PING: &[u8] = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00gp-ping!";

/// Whether the server closed `stream`, reading whatever it sends for `within`.
fn closes_within(stream: &mut TcpStream, within: Duration) -> bool {
    let until = Instant::now() + within;
    let mut sink = [0u8; 256];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => {} // timed out: still open
        }
    }
    false
}

/// The header timeout (300 ms here; the idle timeout is a minute): a head sent in part is
/// closed between one and two header timeouts after its first byte, also when it follows a
/// request that was in flight for longer than that; an h2c connection's frames (pings here)
/// never start the header clock.
#[test]
fn a_slow_head_is_closed_at_the_header_timeout_and_h2c_frames_are_not_a_head() {
    let (base, _manager, server) = web_server(|b| b);
    let limits = ListenLimits::default()
        .with_header_timeout(Duration::from_millis(300))
        .with_idle_timeout(Duration::from_secs(60));
    let running = Running::serve_limited(server.clone(), limits);
    let addr = running.addr;
    let part = format!("GET /-/healthz HTTP/1.1\r\nHost: {addr}\r\n");

    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(part.as_bytes()).unwrap();
    assert_closed_after(&mut slow, Duration::from_millis(250), "a head sent in part");

    // A call in flight for longer than the header timeout, then a head sent in part on the
    // same connection: the connection looked again while the call ran, and closes this head
    // at its own timeout, not at the idle timeout.
    let release = base.path().join("release");
    let mut kept = hanging_request(addr, &release);
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(&release, "").unwrap();
    let answered = super::read_response(&mut kept, "the call's response");
    assert!(answered.body.ends_with(b"woke up"), "{}", answered.text());
    kept.write_all(part.as_bytes()).unwrap();
    assert_closed_after(
        &mut kept,
        Duration::from_millis(250),
        "a head sent in part after a call",
    );

    // An h2c connection that pings for three header timeouts stays open (it has no stream:
    // the idle timeout, a minute, is its bound).
    let mut h2c = TcpStream::connect(addr).unwrap();
    h2c.write_all(H2C_PREFACE).unwrap();
    for _ in 0..9 {
        h2c.write_all(H2_PING).unwrap();
        assert!(
            !closes_within(&mut h2c, Duration::from_millis(100)),
            "an h2c connection was closed while it pinged"
        );
    }
}

/// Shutdown (the listener's future resolves): a kept-alive connection between requests is
/// closed at once, not at its idle timeout (a minute here); a request in flight gets its whole
/// response, then its connection closes; the listener returns once both are closed.
#[test]
fn at_shutdown_idle_connections_close_at_once_and_a_request_in_flight_is_answered_first() {
    let (base, manager, server) = web_server(|b| b);
    // A grace longer than any wait below: the listener returns because its connections
    // closed, not because the grace ran out.
    let limits = ListenLimits::default()
        .with_idle_timeout(Duration::from_secs(60))
        .with_grace(Duration::from_secs(60));
    let mut running = Running::serve_limited(server.clone(), limits);
    let addr = running.addr;

    let mut kept = TcpStream::connect(addr).unwrap();
    write!(kept, "GET /-/healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let checked = super::read_response(&mut kept, "the health check's response");
    assert!(checked.body.ends_with(b"}"), "{}", checked.text());
    let release = base.path().join("release");
    let mut busy = hanging_request(addr, &release);
    wait_in_flight(&manager, "web", 1);

    running.begin_shutdown();
    assert_closed_after(
        &mut kept,
        Duration::ZERO,
        "a kept-alive connection at shutdown",
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !running.has_ended(),
        "the listener returned with a request in flight"
    );
    std::fs::write(&release, "").unwrap();
    busy.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = Vec::new();
    busy.read_to_end(&mut raw)
        .expect("the call's response, then the connection closed");
    let answered = super::parse_reply(&raw);
    assert_eq!(answered.status, 200);
    assert_eq!(answered.text(), "woke up");
    eventually(
        "the listener to return after its last connection closed",
        Duration::from_secs(10),
        || running.has_ended(),
    );
}

/// Past the grace after shutdown, the connections still open are closed there and then (a
/// request in flight gets no answer; its client sees the connection end), not left to whoever
/// drops the runtime: `gp serve` unloads its plugins after the listener returns, which takes
/// up to its drain and hook timeouts more.
#[test]
fn past_the_grace_a_connection_with_a_request_in_flight_is_closed() {
    let (base, manager, server) = web_server(|b| b);
    let limits = ListenLimits::default().with_grace(Duration::from_millis(300));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let served = runtime.spawn(gp_host::http::serve_listener(
        listener,
        server.clone(),
        stopped,
        limits,
    ));

    let release = base.path().join("release");
    let mut busy = hanging_request(addr, &release);
    wait_in_flight(&manager, "web", 1);
    stop.send(()).unwrap();
    // The runtime runs on: what closes the connection is the listener, at the grace.
    assert_closed_after(
        &mut busy,
        Duration::from_millis(250),
        "a connection with a request in flight past the grace",
    );
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), served).await })
        .expect("the listener returned at the grace")
        .unwrap();
    std::fs::write(&release, "").unwrap();
    runtime.shutdown_timeout(Duration::from_secs(5));
}

/// An application whose every answer panics (gp's own code never should; this stands in for
/// a bug).
#[derive(Clone)]
struct Panics;

impl gp_host::http::App for Panics {
    async fn answer(
        self,
        _request: axum::extract::Request<hyper::body::Incoming>,
        _peer: SocketAddr,
    ) -> axum::response::Response {
        panic!("a bug in the answer")
    }
}

/// A request whose future panics takes its connection down with it (the client sees it
/// closed), and the listener forgets the connection: shutdown does not wait for it until the
/// grace (a minute here) runs out.
#[test]
fn a_connection_whose_request_panicked_holds_back_no_shutdown() {
    let limits = ListenLimits::default().with_grace(Duration::from_secs(60));
    let mut running = Running::serve_limited(Panics, limits);
    let addr = running.addr;
    let mut broken = TcpStream::connect(addr).unwrap();
    write!(broken, "GET /anything HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    assert_closed_after(
        &mut broken,
        Duration::ZERO,
        "a connection whose request panicked",
    );

    running.begin_shutdown();
    // Shutdown does not wait for the connection whose request panicked.
    eventually(
        "the listener to return, the panicked connection forgotten",
        Duration::from_secs(5),
        || running.has_ended(),
    );
}
