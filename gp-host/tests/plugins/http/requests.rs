//! What a request brings the plugin and what its answer becomes: the label and documented
//! context, JSON, text, bytes or 204, hop-by-hop headers dropped, the seed's plugin.json served
//! unchanged.

use gp_host::http::PluginServer;
use gp_host::Manager;

use super::{get, post_json, send, web_server, Running};
use crate::harness::{base_dir, Written};

#[test]
fn a_request_reaches_the_plugin_with_its_label_and_the_documented_context() {
    let (_base, _manager, server) = web_server(|b| b);
    // As `gp serve` serves it (no router in front), and as an application mounting the router.
    for running in [Running::start(&server), Running::start_router(&server)] {
        same_context_either_way(&running);
    }
}

fn same_context_either_way(running: &Running) {
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

/// The request's keys are made only when the plugin reads them, which it cannot tell: they
/// are listed, overwritten and removed as any other value. Each path parameter is also a key
/// of its own, which `param` reads (the map is there for plugins built before).
#[test]
fn the_request_keys_behave_as_context_values() {
    let (_base, _manager, server) = web_server(|b| b);
    let running = Running::start(&server);
    let reply = post_json(running.addr, "/web/context/7", "{}");
    assert_eq!(reply.status, 405, "GET only");
    let reply = get(running.addr, "/web/context/7");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        serde_json::json!({
            "keys": [
                "http.request.body", "http.request.headers", "http.request.id",
                "http.request.method", "http.request.param.id", "http.request.params",
                "http.request.path", "http.request.query", "http.request.remote_addr",
                "http.request.route",
            ],
            "path": "/rewritten", "removed": {"id": "7"}, "after": null, "again": null,
            "method": "GET", "own": "7", "param": "7", "missing": null,
        })
    );
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
        headers.header("content-type"),
        Some("text/x-last"),
        "the later of two content types (respond_json's, then set_header's)"
    );
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

#[test]
fn every_request_is_one_access_line_with_its_request_id() {
    let written = Written::default();
    let (_base, _manager, server) = web_server(|b| b.access_log_to(written.clone()));
    let running = Running::start(&server);
    for n in 0..3 {
        let head = format!("GET /web/echo/{n}?q=1 HTTP/1.1\r\nX-Request-Id: line-{n}");
        assert_eq!(send(running.addr, &head, b"").status, 200);
    }
    assert_eq!(get(running.addr, "/web/nowhere").status, 404);
    // Lines are written by the log's thread every 20 ms or so: wait for all four, 5 s at most.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let text = loop {
        let text = written.text();
        if text.lines().count() >= 4 || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    for (n, line) in lines[..3].iter().enumerate() {
        let expected = format!(
            "method=GET path=/web/echo/{n} status=200 plugin=web label=echo request_id=line-{n} micros="
        );
        assert!(
            line.starts_with(&expected),
            "{line:?} does not start with {expected:?}"
        );
        assert!(line[expected.len()..].parse::<u64>().is_ok(), "{line}");
    }
    let generated = lines[3]
        .strip_prefix("method=GET path=/web/nowhere status=404 plugin= label= request_id=")
        .unwrap_or_else(|| panic!("{:?}", lines[3]));
    assert_eq!(
        generated.split(' ').next().map(str::len),
        Some(17),
        "{generated}"
    );
}
