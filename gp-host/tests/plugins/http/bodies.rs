//! Request bodies: one sent too slowly gets 408 at the body timeout, and the bodies held at
//! once across the server stay within its budget (503 past it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{parse_reply, web_server, Reply, Running};

/// Sends a `POST /web/echo` head declaring `length` bytes (chunked when `None`), then
/// `first` of its body; the stream stays open for the rest.
fn start_post(addr: SocketAddr, length: Option<usize>, first: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let framing = match length {
        Some(n) => format!("Content-Length: {n}"),
        None => "Transfer-Encoding: chunked".to_owned(),
    };
    write!(
        stream,
        "POST /web/echo HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nConnection: close\r\n{framing}\r\n\r\n"
    )
    .unwrap();
    stream.write_all(first).unwrap();
    stream
}

/// The response the server sends on `stream`, read to its end.
fn reply(stream: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_reply(&raw)
}

#[test]
fn a_body_sent_too_slowly_gets_408_at_the_body_timeout() {
    let (_base, _manager, server) = web_server(|b| b.body_timeout(Duration::from_millis(500)));
    let running = Running::start(&server);
    let started = Instant::now();
    // Ten bytes declared, one sent, then nothing (a client sending a byte every few seconds
    // gets the same answer at the same time).
    let mut stream = start_post(running.addr, Some(10), b"x");
    let reply = reply(&mut stream);
    let waited = started.elapsed();
    assert_eq!(reply.status, 408, "{}", reply.text());
    assert_eq!(
        reply.error_body(),
        serde_json::json!({"error": "the request body was not received within 500 ms", "plugin": "web", "label": "echo.post"})
    );
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "answered after {waited:?}"
    );
}

// Long: one scenario read top to bottom: the budget filled, refusals, then given back.
#[test]
fn bodies_past_the_servers_budget_get_503_and_the_bytes_held_stay_within_it() {
    let (_base, manager, server) = web_server(|b| b.body_budget(1000));
    let running = Running::start(&server);
    let addr = running.addr;
    let metrics = Running::serve(gp_host::http::metrics_router(manager, Some(server.clone())));
    let held = || server.body_bytes_in_flight();
    let wait_until_held = |bytes: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while held() != bytes && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(held(), bytes);
    };

    // Ten bodies of 100 bytes, each declared and begun: the budget is full.
    let mut waiting = Vec::new();
    for i in 1..=10 {
        waiting.push(start_post(addr, Some(100), b"a"));
        wait_until_held(i * 100);
    }
    // An eleventh is refused as soon as its head is read, declared or chunked.
    let refused_body = serde_json::json!({"error": "the server holds as many request bodies as it may (1000 bytes); retry shortly", "plugin": "web", "label": "echo.post"});
    for _ in 0..5 {
        let mut declared = start_post(addr, Some(100), b"a");
        let refused = reply(&mut declared);
        assert_eq!(refused.status, 503, "{}", refused.text());
        assert_eq!(refused.header("retry-after"), Some("1"));
        assert_eq!(refused.error_body(), refused_body);
        assert!(held() <= 1000, "{} bytes held", held());
    }
    let mut chunked = start_post(addr, None, b"5\r\nabcde\r\n");
    let refused = reply(&mut chunked);
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error_body(), refused_body);
    assert_eq!(held(), 1000);
    let scraped = super::get(metrics.addr, "/metrics");
    assert!(
        scraped
            .text()
            .contains("\ngp_http_request_body_in_flight_bytes 1000\n"),
        "{}",
        scraped.text()
    );

    // The bodies finished, answered: the bytes are given back, and bodies fit again.
    for mut stream in waiting {
        stream.write_all(&[b'a'; 99]).unwrap();
        let echoed = reply(&mut stream);
        assert_eq!(echoed.status, 200, "{}", echoed.text());
        assert_eq!(echoed.json()["body"], "a".repeat(100));
    }
    wait_until_held(0);
    let mut fits = start_post(addr, Some(3), b"abc");
    let echoed = reply(&mut fits);
    assert_eq!(echoed.status, 200, "{}", echoed.text());
    assert_eq!(echoed.json()["body"], "abc");
    wait_until_held(0);
}
