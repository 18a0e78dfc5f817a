//! Serving plugin routes over real sockets: `PluginServer` on 127.0.0.1 with an ephemeral
//! port, requests written byte by byte, real plugins answering. Every loop is bounded in
//! count and time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gp_host::http::{PluginServer, RouteLimits};
use gp_host::{Error, Manager, UpgradeOptions};

use crate::harness::base_dir;
use crate::web_fixture::web;

/// A server running `server.router()` on its own runtime; stopped when dropped.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn start(server: &PluginServer) -> Running {
        Running::serve(server.router())
    }

    /// Serves `app` on 127.0.0.1 with an ephemeral port.
    pub fn serve(app: axum::Router) -> Running {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
            // Calls still running on the blocking pool (a hanging plugin) are not waited for.
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).expect("server up");
        Running {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A response as it came off the socket.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The JSON body without its request id (which differs per request), after checking
    /// that the header carries the same one.
    pub fn error_body(&self) -> serde_json::Value {
        let mut json = self.json();
        let id = json["request_id"].take();
        assert_eq!(Some(id.as_str().unwrap()), self.header("x-request-id"));
        json.as_object_mut().unwrap().remove("request_id");
        json
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body`, with
/// `Connection: close`, and reads the whole response.
pub fn send(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, &format!("GET {path} HTTP/1.1"), b"")
}

pub fn post_json(addr: SocketAddr, path: &str, body: &str) -> Reply {
    send(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}",
            body.len()
        ),
        body.as_bytes(),
    )
}

pub fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v == "chunked");
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = out;
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// A manager over a fresh base dir with `web` 1.0.0 in it, and a server built before loading.
fn web_server(
    configure: impl FnOnce(gp_host::http::PluginServerBuilder) -> gp_host::http::PluginServerBuilder,
) -> (tempfile::TempDir, Manager, PluginServer) {
    let base = base_dir();
    gp_host::build::install_library(web("web-v1"), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let server = configure(PluginServer::builder(manager.clone())).build();
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    (base, manager, server)
}

#[test]
fn a_request_reaches_the_plugin_with_its_label_and_the_documented_context() {
    let (_base, _manager, server) = web_server(|b| b);
    let running = Running::start(&server);
    let reply = send(
        running.addr,
        "GET /web/echo/a%20b?tag=x&tag=y&q=hello%20world HTTP/1.1\r\nAccept: text/x-test\r\nX-Request-Id: test-42",
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-request-id"), Some("test-42"));
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "label": "echo", "method": "GET", "path": "/web/echo/a%20b",
            "route": "/web/echo/:id", "id": "a b", "tags": ["x", "y"], "q": "hello world",
            "accept": "text/x-test", "body": "", "remote_ip_is_loopback": true,
            "request_id": "test-42", "json": null,
        })
    );
    let reply = post_json(running.addr, "/web/echo", r#"{"n": [1, 2]}"#);
    assert_eq!(reply.status, 200);
    let echo = reply.json();
    assert_eq!(echo["label"], "echo.post");
    assert_eq!(echo["json"], serde_json::json!({"n": [1, 2]}));
    assert_eq!(echo["body"], r#"{"n": [1, 2]}"#);
    // A generated request id when the client sent none.
    let id = get(running.addr, "/web/empty");
    assert!(id.header("x-request-id").is_some_and(|id| id.len() == 17));
}

#[test]
fn bodies_become_json_text_bytes_or_204_and_hop_by_hop_headers_are_dropped() {
    let (_base, _manager, server) = web_server(|b| b);
    let running = Running::start(&server);
    let empty = get(running.addr, "/web/empty");
    assert_eq!((empty.status, empty.body.len()), (204, 0));
    let bytes = get(running.addr, "/web/bytes");
    assert_eq!(
        bytes.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(bytes.body, [0, 1, 2, 255]);
    let text = get(running.addr, "/web/files/a/b.txt");
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(text.text(), "a/b.txt");
    let status = get(running.addr, "/web/status/418");
    assert_eq!((status.status, status.text()), (418, "status 418"));
    let headers = get(running.addr, "/web/headers");
    assert_eq!(headers.status, 200);
    assert_eq!(headers.headers_named("x-a"), ["1", "2"]);
    assert_eq!(
        headers.header("content-length"),
        Some("12"),
        "the plugin's 999 is dropped"
    );
    assert_eq!(headers.header("transfer-encoding"), None);
    assert_eq!(
        headers.header("connection"),
        Some("close"),
        "ours, for Connection: close"
    );
    let created = post_json(running.addr, "/web/json", r#"{"name": "gp"}"#);
    assert_eq!(
        (created.status, created.json()),
        (201, serde_json::json!({"name": "gp"}))
    );
    let typed = get(running.addr, "/web/items/42");
    assert_eq!(typed.json(), serde_json::json!({"id": 42}));
}

#[test]
fn every_error_has_its_status_and_exact_body() {
    let (_base, _manager, server) = web_server(|b| b.body_limit(64));
    let running = Running::start(&server);

    let missing = get(running.addr, "/nothing/here");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.error_body(),
        serde_json::json!({"error": "no route for GET /nothing/here"})
    );
    // A typed parameter that does not fit is no route either.
    assert_eq!(get(running.addr, "/web/items/4x").status, 404);
    // No trailing-slash redirect.
    assert_eq!(get(running.addr, "/web/empty/").status, 404);

    let wrong = send(running.addr, "DELETE /web/echo/1 HTTP/1.1", b"");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD"));
    assert_eq!(
        wrong.error_body(),
        serde_json::json!({"error": "method DELETE is not allowed on /web/echo/1; allowed: GET, HEAD"})
    );
    let head = send(running.addr, "HEAD /web/files/x HTTP/1.1", b"");
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("content-length"), Some("1"));

    let failed = get(running.addr, "/web/fail");
    assert_eq!(failed.status, 500);
    assert_eq!(
        failed.error_body(),
        serde_json::json!({"error": "database unreachable", "plugin": "web", "label": "fail"})
    );
    let rejected = get(running.addr, "/web/reject");
    assert_eq!(
        (rejected.status, rejected.json()),
        (404, serde_json::json!({"error": "no item 7"}))
    );
    let panicked = get(running.addr, "/web/panic");
    assert_eq!(panicked.status, 500);
    assert_eq!(
        panicked.error_body(),
        serde_json::json!({"error": "the plugin panicked; the host log has the message", "plugin": "web", "label": "panic"})
    );
    assert_eq!(
        get(running.addr, "/web/empty").status,
        204,
        "the plugin keeps serving after a panic"
    );
    let bad = get(running.addr, "/web/bad-status");
    assert_eq!(bad.status, 500);
    assert_eq!(
        bad.error_body(),
        serde_json::json!({"error": "the plugin's response is invalid: status 42 is not 100 to 599", "plugin": "web", "label": "bad.status"})
    );

    let malformed = post_json(running.addr, "/web/echo", "{\"n\": ");
    assert_eq!(malformed.status, 400);
    assert_eq!(
        malformed.error_body(),
        serde_json::json!({"error": "the request body is not valid JSON: EOF while parsing a value at line 1 column 6", "plugin": "web", "label": "echo.post"})
    );
    let misfit = post_json(running.addr, "/web/json", r#"{"nom": 1}"#);
    assert_eq!(misfit.status, 400);
    assert!(
        misfit.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("the request body does not fit "),
        "{}",
        misfit.text()
    );

    let big = "x".repeat(65);
    let declared = send(
        running.addr,
        &format!("POST /web/echo HTTP/1.1\r\nContent-Length: {}", big.len()),
        big.as_bytes(),
    );
    assert_eq!(declared.status, 413);
    assert_eq!(
        declared.error_body(),
        serde_json::json!({"error": "the request body is larger than this route's limit of 64 bytes", "plugin": "web", "label": "echo.post"})
    );
    // Without a Content-Length (chunked), cut off while reading.
    let chunked = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let streamed = send(
        running.addr,
        "POST /web/echo HTTP/1.1\r\nTransfer-Encoding: chunked",
        chunked.as_bytes(),
    );
    assert_eq!(streamed.status, 413, "{}", streamed.text());
    let small = format!("{:x}\r\n{}\r\n0\r\n\r\n", 64, "y".repeat(64));
    assert_eq!(
        send(
            running.addr,
            "POST /web/echo HTTP/1.1\r\nTransfer-Encoding: chunked",
            small.as_bytes()
        )
        .status,
        200
    );

    // No error body holds a path of this machine.
    for reply in [
        &missing, &wrong, &failed, &panicked, &bad, &malformed, &declared,
    ] {
        let text = reply.text();
        assert!(
            !text.contains("/tmp") && !text.contains(".so") && !text.contains("/work"),
            "{text}"
        );
    }
}

#[test]
fn a_slow_call_times_out_with_504_and_a_client_that_leaves_cancels_the_call() {
    let (base, _manager, server) = web_server(|b| {
        b.route(
            "web",
            "slow",
            RouteLimits {
                timeout: Some(Duration::from_millis(300)),
                body_limit: None,
            },
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
    let deadline = Instant::now() + Duration::from_secs(10);
    let in_flight = || {
        manager
            .stats()
            .iter()
            .find(|s| s.name == "web")
            .map_or(0, |s| s.in_flight)
    };
    while in_flight() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // ...so the third call to web gets 503 at once...
    let refused = get(addr, "/web/empty");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(
        refused.error_body(),
        serde_json::json!({"error": "plugin `web` is running as many calls as it may; retry shortly", "plugin": "web", "label": "empty"})
    );
    // ...while another plugin answers as usual.
    let sample = get(addr, "/api/plugin/sample/7");
    assert_eq!(sample.status, 200);
    std::fs::write(&release, "").unwrap();
    for call in hanging {
        assert_eq!(call.join().unwrap().text(), "woke up");
    }
    assert_eq!(get(addr, "/web/empty").status, 204);
}

#[test]
fn a_conflicting_plugin_is_refused_naming_both_and_the_others_keep_serving() {
    let (base, manager, server) = web_server(|b| b);
    let running = Running::start(&server);
    gp_host::build::install_library(web("web-clash"), base.path()).unwrap();
    let error = manager
        .load_plugin(base.path().join("web-clash"))
        .unwrap_err();
    assert!(matches!(error, Error::Refused { .. }));
    assert_eq!(
        error.to_string(),
        format!(
            "plugin `web-clash` ({}) refused: route GET /web/items/:num:int (label \"clash.items\") conflicts with route GET /web/items/:id:int (label \"item\") of plugin `web`, which is serving: the two match the same requests; change one of them, or unload `web` first",
            base.path().join("web-clash").display()
        )
    );
    assert!(
        manager.get_plugin("web-clash").is_err(),
        "a refused plugin is not loaded"
    );
    assert_eq!(
        get(running.addr, "/web/items/1").json(),
        serde_json::json!({"id": 1})
    );
    assert_eq!(
        send(
            running.addr,
            "POST /clash/ok HTTP/1.1\r\nContent-Length: 0",
            b""
        )
        .status,
        404
    );
    // Once web is gone, the same plugin loads and its routes answer.
    manager.unload("web").unwrap();
    assert_eq!(get(running.addr, "/web/items/1").status, 404);
    manager.load_plugin(base.path().join("web-clash")).unwrap();
    assert_eq!(get(running.addr, "/web/items/1").text(), "clash");
    // The reserved prefix answers gp's own health check.
    let health = get(running.addr, "/-/healthz");
    assert_eq!(
        health.json(),
        serde_json::json!({"status": "ok", "plugins": 1})
    );
}

#[test]
fn routes_follow_upgrades_under_load_without_losing_a_request() {
    let (_base, manager, server) = web_server(|b| b);
    let running = Running::start(&server);
    let addr = running.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut versions = std::collections::BTreeSet::new();
                for _ in 0..100_000 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let reply = get(addr, "/web/version");
                    if reply.status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                        versions.insert(reply.text().to_owned());
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed: {} {}", reply.status, reply.text());
                    }
                }
                versions
            })
        })
        .collect();
    for i in 0..20 {
        let to = if i % 2 == 0 { "web-v2" } else { "web-v1" };
        manager
            .upgrade_with("web", web(to), UpgradeOptions { force: true })
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut versions = std::collections::BTreeSet::new();
    for client in clients {
        versions.extend(client.join().unwrap());
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{ok} requests answered, {failed} failed, across 20 upgrades");
    assert_eq!(failed, 0);
    assert!(ok >= 40, "{ok}");
    assert_eq!(versions.into_iter().collect::<Vec<_>>(), ["1.0.0", "2.0.0"]);
}

#[test]
fn the_seed_plugin_json_with_the_beego_driver_is_served_unchanged() {
    let base = base_dir();
    let dir = base.path().join("sample");
    gp_host::build::install_library(crate::harness::example("sample"), base.path()).unwrap();
    // The seed's sample plugin.json's http_services block, as the seed wrote it.
    let seed: serde_json::Value = serde_json::from_str(
        r#"{
        "driver": "beego",
        "routes": [
            { "route": "/api/plugin/sample/:id", "method": "GET", "label": "plugin.get" },
            { "route": "/api/plugin/samples", "method": "POST", "label": "plugin.post" }
        ]
    }"#,
    )
    .unwrap();
    let info = gp_host::inspect(&dir.join(crate::harness::example("sample").file_name().unwrap()))
        .unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&info.plugin_json().to_json_pretty()).unwrap();
    assert_eq!(written["http_services"], seed);
    std::fs::write(dir.join("plugin.json"), info.plugin_json().to_json_pretty()).unwrap();
    let manager = Manager::new(base.path());
    let server = PluginServer::new(manager.clone());
    assert!(manager.load_plugins().failed.is_empty());
    let running = Running::start(&server);
    let reply = get(running.addr, "/api/plugin/sample/7");
    assert_eq!(
        reply.json(),
        serde_json::json!({"id": "7", "greeting": "sample plugin says: hello, sample 7"})
    );
    let created = post_json(running.addr, "/api/plugin/samples", r#"{"name": "gp"}"#);
    assert_eq!(
        (created.status, created.json()),
        (
            201,
            serde_json::json!({"greeting": "sample plugin says: gp"})
        )
    );
}
