//! The shape of every JSON body the HTTP surfaces answer (management API, event stream, the
//! open `/stats`, the plugin listener's own answers), pinned in `api_shapes.json`: keys and
//! value types, with the exact values of the fields that name a state or a result. A
//! refactoring that changes what a client parses fails here, endpoint by endpoint.
//!
//! After a deliberate change to a body, regenerate the file with
//! `GP_UPDATE_API_SHAPES=1 cargo test -p gp-host --all-features --test plugins api_shapes`
//! and review its diff.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use gp_host::http::AdminToken;

use crate::admin::{package_of, plane_with, Plane};
use crate::http::{send, Reply, Running};
use crate::web_fixture::web;

/// Keys whose string values are part of the contract (a state, a result, an event's kind),
/// kept as they are; every other string becomes `"string"`.
const EXACT: &[&str] = &["state", "result", "event", "on_unload", "status", "ready"];

/// The shape of `value`: objects key by key, arrays as the list of their distinct element
/// shapes, scalars as their type, and the values of [`EXACT`] keys as they are.
fn shape(value: &serde_json::Value, key: Option<&str>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        J::Null => J::from("null"),
        J::Bool(_) => J::from("bool"),
        J::Number(_) => J::from("number"),
        J::String(s) if key.is_some_and(|k| EXACT.contains(&k)) => J::from(s.clone()),
        J::String(_) => J::from("string"),
        J::Array(items) => {
            let mut shapes: Vec<J> = Vec::new();
            for item in items {
                let item = shape(item, key);
                if !shapes.contains(&item) {
                    shapes.push(item);
                }
            }
            J::Array(shapes)
        }
        J::Object(map) => J::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape(v, Some(k))))
                .collect(),
        ),
    }
}

/// What a reply is recorded as: its status, its content type's media type, and the shape of
/// its JSON body (or `null` for another body).
fn record(reply: &Reply) -> serde_json::Value {
    let media = reply
        .header("content-type")
        .map(|t| t.split(';').next().unwrap_or_default().trim().to_owned());
    let body = serde_json::from_slice::<serde_json::Value>(&reply.body)
        .map(|json| shape(&json, None))
        .unwrap_or(serde_json::Value::Null);
    serde_json::json!({ "status": reply.status, "type": media, "body": body })
}

struct Surfaces {
    plane: Plane,
    open: Running,
    recorded: serde_json::Map<String, serde_json::Value>,
}

impl Surfaces {
    fn admin(&mut self, what: &str, method: &str, path: &str, body: &str) -> Reply {
        let reply = self.request(&self.plane.token, method, path, body.as_bytes());
        self.keep(what, &reply);
        reply
    }

    /// A management API request as `token`, its body JSON, or a package when it is not.
    fn request(&self, token: &AdminToken, method: &str, path: &str, body: &[u8]) -> Reply {
        let content_type = if body.starts_with(b"{") || body.is_empty() {
            "application/json"
        } else {
            "application/octet-stream"
        };
        self.plane.call_as(token, method, path, content_type, body)
    }

    /// Records `reply` as `what`, whose "(NNN" names the status expected (2xx otherwise), so
    /// that a step that went another way than the walk intends fails here.
    fn keep(&mut self, what: &str, reply: &Reply) {
        let expected = what
            .split_once('(')
            .and_then(|(_, rest)| rest.get(..3))
            .and_then(|code| code.parse::<u16>().ok());
        match expected {
            Some(status) => assert_eq!(reply.status, status, "{what}: {}", reply.text()),
            None => assert!(
                (200..300).contains(&reply.status),
                "{what}: {} {}",
                reply.status,
                reply.text()
            ),
        }
        assert!(
            self.recorded.insert(what.into(), record(reply)).is_none(),
            "{what} recorded twice"
        );
    }
}

/// The events `GET /api/v1/events` sends first (its backlog), read until it has been quiet
/// for half a second (bounded by ten).
fn backlog(addr: SocketAddr, token: &AdminToken) -> Vec<serde_json::Value> {
    let mut stream = crate::admin::open_events(addr, token, Duration::from_millis(500));
    let (mut text, mut buffer) = (String::new(), [0u8; 4096]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buffer[..n])),
        }
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn surfaces() -> Surfaces {
    // A folder that fails to load, so the failures list has an entry.
    let broken = |base: &Path| {
        std::fs::create_dir(base.join("broken")).unwrap();
        std::fs::write(base.join("broken/plugin.json"), "{ not json").unwrap();
    };
    let plane = plane_with(broken, 1);
    let open = gp_host::http::metrics_router(plane.manager.clone(), Some(plane.server.clone()));
    Surfaces {
        open: Running::serve(open),
        plane,
        recorded: serde_json::Map::new(),
    }
}

// Long: one scenario, read top to bottom: each step starts from the state the last one left.
#[test]
fn every_http_body_keeps_its_shape() {
    let mut s = surfaces();
    let scratch = tempfile::tempdir().unwrap();
    let v2 = package_of(web("web-v2"), scratch.path());

    // The plugin listener's own answers.
    let addr = s.plane.plugins.addr;
    let replies = [
        (
            "plugins GET /-/healthz",
            crate::http::get(addr, "/-/healthz"),
        ),
        (
            "plugins GET /web/items/7",
            crate::http::get(addr, "/web/items/7"),
        ),
        (
            "plugins GET /nothing (404)",
            crate::http::get(addr, "/nothing"),
        ),
        (
            "plugins POST /web/items/7 (405)",
            crate::http::post_json(addr, "/web/items/7", "{}"),
        ),
        (
            "plugins GET /web/fail (500)",
            crate::http::get(addr, "/web/fail"),
        ),
    ];
    for (what, reply) in &replies {
        s.keep(what, reply);
    }
    let open = s.open.addr;
    let stats = crate::http::get(open, "/stats");
    s.keep("open GET /stats", &stats);
    let metrics = crate::http::get(open, "/metrics");
    s.keep("open GET /metrics", &metrics);

    // The management API, through a plugin's whole life.
    s.admin("GET /healthz", "GET", "/healthz", "");
    s.admin("GET /readyz", "GET", "/readyz", "");
    s.admin("GET /metrics", "GET", "/metrics", "");
    let openapi = s.request(&s.plane.token, "GET", "/openapi.json", b"");
    let openapi_json = openapi.json();
    let mut paths: Vec<&String> = openapi_json["paths"]
        .as_object()
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    paths.sort();
    let described = serde_json::json!({ "status": openapi.status, "paths": paths });
    s.recorded
        .insert("GET /openapi.json (paths)".into(), described);
    s.admin("GET /plugins", "GET", "/plugins", "");
    s.admin("GET /plugins/web", "GET", "/plugins/web", "");
    s.admin("GET /plugins/nope (404)", "GET", "/plugins/nope", "");
    s.admin(
        "POST /plugins/sample/invoke",
        "POST",
        "/plugins/sample/invoke",
        r#"{"values": {"sample": {"name": "gp"}}, "timeout_ms": 5000}"#,
    );
    s.admin(
        "POST /plugins/sample/invoke (400)",
        "POST",
        "/plugins/sample/invoke",
        r#"{"lable": 1}"#,
    );
    s.admin(
        "POST /plugins/web/reload",
        "POST",
        "/plugins/web/reload",
        "{}",
    );
    s.admin(
        "POST /plugins/web/rollback (409, nothing kept)",
        "POST",
        "/plugins/web/rollback",
        "{}",
    );
    let upgraded = s.request(&s.plane.token, "POST", "/plugins/web/upgrade", &v2);
    s.keep("POST /plugins/web/upgrade", &upgraded);
    s.admin("GET /plugins/web (upgraded)", "GET", "/plugins/web", "");
    s.admin(
        "POST /plugins/web/rollback",
        "POST",
        "/plugins/web/rollback",
        "{}",
    );
    s.admin(
        "POST /plugins/web/disable",
        "POST",
        "/plugins/web/disable",
        r#"{"reason": "maintenance"}"#,
    );
    s.admin("GET /plugins (one disabled)", "GET", "/plugins", "");
    let refused = crate::http::get(addr, "/web/items/7");
    s.keep("plugins GET /web/items/7 (503, disabled)", &refused);
    s.admin(
        "POST /plugins/sample/enable (409, not disabled)",
        "POST",
        "/plugins/sample/enable",
        "{}",
    );
    s.admin(
        "POST /plugins/web/enable",
        "POST",
        "/plugins/web/enable",
        "{}",
    );
    s.admin("DELETE /plugins/sample", "DELETE", "/plugins/sample", "");
    s.admin(
        "GET /plugins/sample (unloaded)",
        "GET",
        "/plugins/sample",
        "",
    );
    s.admin(
        "POST /plugins/sample/load",
        "POST",
        "/plugins/sample/load",
        "{}",
    );
    s.admin(
        "POST /plugins/sample/load (409)",
        "POST",
        "/plugins/sample/load",
        "{}",
    );
    s.admin("GET /routes", "GET", "/routes", "");
    s.admin("GET /hub", "GET", "/hub", "");
    s.admin("GET /hub/search (404)", "GET", "/hub/search?q=x", "");
    s.admin("POST /plugins (400)", "POST", "/plugins", r#"{"url": ""}"#);
    s.admin(
        "POST /plugins (502)",
        "POST",
        "/plugins",
        r#"{"url": "http://127.0.0.1:9/nothing.plg"}"#,
    );
    s.admin("GET /nothing (404)", "GET", "/nothing", "");
    let forbidden = s.request(&s.plane.read_only, "POST", "/plugins/web/reload", b"{}");
    s.keep("POST /plugins/web/reload (403, read-only)", &forbidden);
    let anonymous = send(s.plane.admin.addr, "GET /api/v1/plugins HTTP/1.1", b"");
    s.keep("GET /plugins (401)", &anonymous);

    // The event stream's backlog: one shape per kind of event, in order of appearance.
    let events = backlog(s.plane.admin.addr, &s.plane.token);
    let mut kinds: Vec<serde_json::Value> = Vec::new();
    for event in &events {
        let event = shape(event, None);
        if !kinds.contains(&event) {
            kinds.push(event);
        }
    }
    s.recorded
        .insert("GET /events (backlog)".into(), kinds.into());
    drop(s.plane);

    let actual = serde_json::to_string_pretty(&serde_json::Value::Object(s.recorded.clone()))
        .unwrap()
        + "\n";
    let pinned = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plugins/api_shapes.json");
    if std::env::var_os("GP_UPDATE_API_SHAPES").is_some() {
        std::fs::write(&pinned, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&pinned).unwrap_or_default();
    if actual != expected {
        let changed = changes(&expected, &s.recorded);
        panic!(
            "the HTTP bodies' shapes changed ({}): a client parsing them would break. If this is deliberate, regenerate with GP_UPDATE_API_SHAPES=1 and review the diff:\n{}",
            pinned.display(),
            changed.join("\n")
        );
    }
}

/// What differs between the pinned file's text and what was recorded, an entry per line:
/// `- what` pinned only, `+ what` recorded only, `~ what` changed (pinned, then recorded).
fn changes(pinned: &str, recorded: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let pinned: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(pinned).unwrap_or_default();
    let mut changes = Vec::new();
    for (what, old) in &pinned {
        match recorded.get(what) {
            None => changes.push(format!("- {what}: {old}")),
            Some(new) if new != old => changes.push(format!("~ {what}: {old}\n    now {new}")),
            Some(_) => {}
        }
    }
    for (what, new) in recorded {
        if !pinned.contains_key(what) {
            changes.push(format!("+ {what}: {new}"));
        }
    }
    if changes.is_empty() {
        changes
            .push("(the same entries: only their order or the file's formatting differs)".into());
    }
    changes
}
