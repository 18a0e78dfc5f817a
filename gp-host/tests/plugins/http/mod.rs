//! Serving plugin routes over real sockets: `PluginServer` on 127.0.0.1 with an ephemeral
//! port, requests written byte by byte, real plugins answering. Every loop is bounded in
//! count and time.
//!
//! This file holds what the tests share (the admin, isolation and GUI tests too): a running
//! server, requests written by hand, and replies as they came off the socket.

mod bodies;
mod connections;
mod errors;
mod in_task;
mod limits;
mod queue;
mod requests;
mod routes;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use gp_host::http::PluginServer;
use gp_host::Manager;

use crate::harness::base_dir;
use crate::web_fixture::web;

/// A server running `server.router()` on its own runtime; stopped when dropped.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Serves `server` on 127.0.0.1 with an ephemeral port as `gp serve` does: on gp's
    /// listener with its default limits, with no router in front.
    pub fn start(server: &PluginServer) -> Running {
        Running::serve_limited(server.clone(), gp_host::http::ListenLimits::default())
    }

    /// Serves `server`'s router with `axum::serve`, as an application that mounts it would.
    pub fn start_router(server: &PluginServer) -> Running {
        Running::serve(server.router())
    }

    /// Serves `app` on 127.0.0.1 with an ephemeral port, with `axum::serve` (as an
    /// application that mounts the router would).
    pub fn serve(app: axum::Router) -> Running {
        Running::spawn(Served::Axum(app))
    }

    /// Serves `app` on 127.0.0.1 with an ephemeral port, with gp's listener and `limits`
    /// (as `gp serve` does).
    pub fn serve_limited(
        app: impl gp_host::http::App,
        limits: gp_host::http::ListenLimits,
    ) -> Running {
        let serve: Served = Served::Listener(Box::new(move |listener, stopped| {
            Box::pin(gp_host::http::serve_listener(
                listener, app, stopped, limits,
            ))
        }));
        Running::spawn(serve)
    }

    fn spawn(served: Served) -> Running {
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
                let stopped = async {
                    let _ = stopped.await;
                };
                match served {
                    Served::Listener(serve) => serve(listener, Box::pin(stopped)).await,
                    Served::Axum(app) => axum::serve(
                        listener,
                        app.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(stopped)
                    .await
                    .unwrap(),
                }
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

impl Running {
    /// Tells the server to shut down, without waiting for it (dropping it waits).
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the server's thread has ended (its listener returned, its runtime shut down).
    pub fn has_ended(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

/// How a test server serves: gp's listener over some [`gp_host::http::App`], or `axum::serve`.
enum Served {
    Listener(Box<dyn FnOnce(tokio::net::TcpListener, Stopped) -> Stopped + Send>),
    Axum(axum::Router),
}

type Stopped = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

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

/// The 504 a connection wrote itself, for a call of `web`'s `label` stuck in its request's
/// task (500 ms deadline): gp's body, the id in the header and body,
/// and the connection closing.
pub fn assert_answered_by_connection(reply: &Reply, label: &str) {
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert_eq!(
        reply.header("connection"),
        Some("close"),
        "{:?}",
        reply.headers
    );
    let body = reply.json();
    assert_eq!(body["error"], "plugin `web` did not answer within 500 ms");
    assert_eq!(body["plugin"], "web");
    assert_eq!(body["label"], label);
    assert_eq!(reply.header("x-request-id"), body["request_id"].as_str());
}

/// Asserts that `reply` is the 503 of plugin `plugin`, whose slots (and queue) are full, for
/// the route labelled `label`.
pub fn assert_busy(reply: &Reply, plugin: &str, label: &str) {
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(
        reply.error_body(),
        serde_json::json!({"error": format!("plugin `{plugin}` is running as many calls as it may; retry shortly"), "plugin": plugin, "label": label})
    );
}

/// The counter `name` (`gp_http_…_total`) as `server`'s `/metrics` has it now.
pub fn counted(server: &PluginServer, name: &str) -> u64 {
    let mut registry = prometheus_client::registry::Registry::default();
    server.register_metrics(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
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

/// One response read from `stream`, a connection kept open: its head, then the body its
/// `content-length` says (at most 10 s a read); `what` names the response in a failure.
pub fn read_response(stream: &mut TcpStream, what: &str) -> Reply {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect(what);
        assert_eq!(n, 1, "closed in the head of {what}: {raw:?}");
        raw.push(byte[0]);
    }
    let length = parse_reply(&raw)
        .header("content-length")
        .map_or(0, |n| n.parse::<usize>().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect(what);
    raw.extend_from_slice(&body);
    parse_reply(&raw)
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
pub fn web_server(
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
