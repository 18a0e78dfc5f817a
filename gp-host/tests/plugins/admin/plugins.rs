//! The plugins through the API: listed, invoked, unloaded (waiting for calls in flight),
//! disabled and enabled, each failure with its status and message, and the events on the way.

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gp_host::http::AdminToken;
use gp_host::Manager;

use super::{package_of, plane};
use crate::http::get;
use crate::web_fixture::web;

// Long: a table of cases, each with the exact message a user sees, in one place.
#[test]
fn plugins_are_listed_and_each_failure_has_its_status_and_message() {
    let plane = plane();
    let list = plane.call("GET", "/plugins", "");
    assert_eq!(list.status, 200);
    let list = list.json();
    let names: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sample", "web"]);
    assert_eq!(list["failures"], serde_json::json!([]));
    let listed = plane.plugin("web");
    assert_eq!(listed["state"], "serving");
    assert_eq!(listed["version"], "1.0.0");
    assert_eq!(
        listed["routes"][0],
        serde_json::json!({"method": "GET", "route": "/web/echo/:id", "label": "echo", "async": false})
    );
    assert_eq!(listed["metrics"]["calls"], 0);

    let missing = plane.call("GET", "/plugins/nope", "");
    assert_eq!(
        (missing.status, missing.json()),
        (
            404,
            serde_json::json!({"error": "no plugin named `nope` is loaded"})
        )
    );
    let not_disabled = plane.call("POST", "/plugins/web/enable", "{}");
    assert_eq!(
        (not_disabled.status, not_disabled.json()),
        (
            409,
            serde_json::json!({"error": "plugin `web` is not disabled"})
        )
    );
    let nothing_kept = plane.call("POST", "/plugins/web/rollback", "{}");
    assert_eq!(nothing_kept.status, 409);
    assert_eq!(
        nothing_kept.json()["error"],
        "plugin `web` has no previous version kept to roll back to: only a replacement by an uploaded package (the management API's upgrade) keeps one"
    );
    let bad = plane.call("POST", "/plugins/sample/invoke", "{\"lable\": 1}");
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("the request body is not what this endpoint takes: unknown field `lable`"),
        "{}",
        bad.text()
    );
    let scratch = tempfile::tempdir().unwrap();
    let mut package = package_of(web("web-v2"), scratch.path());
    let middle = package.len() / 2;
    package[middle] ^= 0xff;
    let tampered = plane.upload("web", &package);
    assert_eq!(tampered.status, 422, "{}", tampered.text());
    assert!(
        tampered.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("package refused: "),
        "{}",
        tampered.text()
    );
    assert_eq!(
        plane.plugin("web")["version"],
        "1.0.0",
        "a refused package changes nothing"
    );
    let unknown = plane.call("GET", "/nothing", "");
    assert_eq!(
        (unknown.status, unknown.json()),
        (
            404,
            serde_json::json!({"error": "no such endpoint: see GET /api/v1/openapi.json"})
        )
    );

    // A plugin refused for its routes is a failure, and a refused route with its reason.
    gp_host::build::install_library(web("web-clash"), plane.base.path()).unwrap();
    assert_eq!(plane.manager.load_plugins().failed.len(), 1);
    let listed = plane.call("GET", "/plugins", "").json();
    assert_eq!(listed["failures"].as_array().unwrap().len(), 1);
    let routes = plane.call("GET", "/routes", "").json();
    assert_eq!(routes["routes"].as_array().unwrap().len(), 20);
    assert_eq!(
        routes["refused"],
        serde_json::json!([{
            "origin": plane.base.path().join("web-clash"),
            "reason": "route GET /web/items/:num:int (label \"clash.items\") conflicts with route GET /web/items/:id:int (label \"item\") of plugin `web`, which is serving: the two match the same requests; change one of them, or unload `web` first",
        }])
    );

    // Probes and the API's description.
    assert_eq!(
        plane.call("GET", "/healthz", "").json(),
        serde_json::json!({"status": "ok"})
    );
    assert_eq!(
        plane.call("GET", "/readyz", "").json(),
        serde_json::json!({"ready": true, "loaded": true, "plugins": 2, "required": [], "missing": [], "refusing": []})
    );
    assert!(plane
        .call("GET", "/metrics", "")
        .text()
        .contains("gp_plugin_loads_total{plugin=\"web\"} 1"));
    let openapi = plane.call("GET", "/openapi.json", "").json();
    assert_eq!(openapi["openapi"], "3.1.0");
}

// Long: one scenario, read top to bottom: each step starts from the state the last one left.
#[test]
fn invoke_unload_disable_and_enable_through_the_api() {
    let plane = plane();
    let answer = plane.call(
        "POST",
        "/plugins/sample/invoke",
        r#"{"values": {"sample": {"name": "from the API"}}}"#,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.json()["values"]["greeting"],
        "sample plugin says: from the API"
    );
    let failed = plane.call("POST", "/plugins/sample/invoke", r#"{"values": {}}"#);
    assert_eq!(failed.status, 500);
    assert_eq!(
        failed.json(),
        serde_json::json!({"error": "plugin `sample` failed: context value `sample` is not set"})
    );

    // Disable: unloaded, kept off, its routes answer 503 with the reason.
    let off = plane.call(
        "POST",
        "/plugins/web/disable",
        r#"{"reason": "maintenance"}"#,
    );
    assert_eq!(off.status, 200, "{}", off.text());
    assert_eq!(off.json()["result"], "unloaded");
    assert!(plane.manager.get_plugin("web").is_err());
    let web = plane.plugin("web");
    assert_eq!(
        (web["state"].as_str(), web["disabled"]["reason"].as_str()),
        (Some("disabled"), Some("maintenance"))
    );
    let reserved = get(plane.plugins.addr, "/web/empty");
    assert_eq!(reserved.status, 503);
    assert_eq!(
        reserved.error_body(),
        serde_json::json!({"error": "plugin `web` is disabled: maintenance", "plugin": "web", "label": "empty"})
    );
    let again = plane.manager.load_plugins();
    assert!(
        plane.manager.get_plugin("web").is_err(),
        "a disabled plugin stays off"
    );
    assert_eq!(again.disabled.len(), 1);
    assert!(
        format!("{again}").contains("disabled   web (maintenance)"),
        "{again}"
    );
    assert!(plane.base.path().join(".gp-disabled/web.json").exists());
    // Still off for a new manager over the same directory (a restart).
    let restarted = Manager::new(plane.base.path());
    assert_eq!(restarted.load_plugins().disabled.len(), 1);

    let on = plane.call("POST", "/plugins/web/enable", "{}");
    assert_eq!(
        (on.status, on.json()),
        (
            200,
            serde_json::json!({"result": "loaded", "version": "1.0.0"})
        )
    );
    assert_eq!(get(plane.plugins.addr, "/web/empty").status, 204);

    // Unload: gone until the next load.
    // No content type needed: a DELETE cannot be sent cross-site without a preflight.
    let unloaded = plane.call_as(&plane.token, "DELETE", "/plugins/sample", "", b"");
    assert_eq!(unloaded.status, 200);
    assert_eq!(unloaded.json()["on_unload"], "absent");
    assert_eq!(plane.plugin("sample")["state"], "unloaded");
    assert_eq!(plane.call("DELETE", "/plugins/sample", "").status, 404);
    let loaded = plane.call("POST", "/plugins/sample/load", "{}");
    assert_eq!(
        (loaded.status, loaded.json()),
        (
            200,
            serde_json::json!({"result": "loaded", "version": "0.1.0"})
        )
    );
    let twice = plane.call("POST", "/plugins/sample/load", "{}");
    assert_eq!(
        (twice.status, twice.json()),
        (
            409,
            serde_json::json!({"error": "plugin `sample` is loaded already"})
        )
    );

    // Every change above is in the event stream, each load announced as it starts (the
    // first two loads run at once: their `loading` events may come in either order).
    let events = sse(plane.admin.addr, &plane.token, 10);
    let all: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["plugin"].as_str().unwrap()))
        .collect();
    for (at, (event, plugin)) in all.iter().enumerate() {
        if *event == "loaded" {
            assert!(all[..at].contains(&("loading", *plugin)), "{all:?}");
        }
    }
    assert_eq!(
        all.iter().filter(|(e, _)| *e == "loading").count(),
        4,
        "{all:?}"
    );
    let mut seen: Vec<(&str, &str)> = all
        .iter()
        .copied()
        .filter(|(event, _)| *event != "loading")
        .collect();
    // So may their `loaded` events: whichever load ends first.
    if let Some(first_two) = seen.get_mut(..2) {
        first_two.sort_unstable();
    }
    assert_eq!(
        seen,
        [
            ("loaded", "sample"),
            ("loaded", "web"),
            ("unloaded", "web"),
            ("loaded", "web"),
            ("unloaded", "sample"),
            ("loaded", "sample")
        ]
    );
}

/// Reads `count` events from `GET /api/v1/events` (bounded by time).
fn sse(addr: SocketAddr, token: &AdminToken, count: usize) -> Vec<serde_json::Value> {
    let mut stream = super::open_events(addr, token, Duration::from_secs(10));
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events: Vec<serde_json::Value> = seen
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        if events.len() >= count || Instant::now() > deadline {
            return events;
        }
        let n = stream.read(&mut buffer).unwrap();
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
    }
}

#[test]
fn an_unload_waits_for_calls_in_flight_and_the_plugin_shows_as_draining_meanwhile() {
    let plane = plane();
    let release = plane.base.path().join("release");
    let hang = format!("/web/hang?until={}", release.display());
    let addr = plane.plugins.addr;
    let call = std::thread::spawn(move || get(addr, &hang));
    let in_flight = || {
        plane.plugin("web")["metrics"]["in_flight"]
            .as_u64()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_flight() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::scope(|scope| {
        let unload = scope.spawn(|| plane.call("DELETE", "/plugins/web", ""));
        let deadline = Instant::now() + Duration::from_secs(10);
        while plane.plugin("web")["state"] != "draining" && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(plane.plugin("web")["state"], "draining");
        std::fs::write(&release, "").unwrap();
        let unloaded = unload.join().unwrap();
        assert_eq!(unloaded.status, 200, "{}", unloaded.text());
        assert_eq!(unloaded.json()["still_running"], 0);
        assert!(unloaded.json()["waited_ms"].as_u64().unwrap() > 0);
    });
    assert_eq!(
        call.join().unwrap().text(),
        "woke up",
        "the call in flight finished"
    );
    assert_eq!(plane.plugin("web")["state"], "unloaded");
}

#[test]
fn invoke_answers_504_at_its_timeout_when_the_plugin_ignores_cancellation() {
    let plane = plane();
    let release = plane.base.path().join("release");
    let body = serde_json::json!({
        "label": "spin",
        "values": {"until": release.display().to_string()},
        "timeout_ms": 1000,
    });
    let started = Instant::now();
    let answer = plane.call("POST", "/plugins/web/invoke", &body.to_string());
    let waited = started.elapsed();
    assert_eq!(
        (answer.status, answer.json()),
        (
            504,
            serde_json::json!({"error": "plugin `web` did not return within 1000 ms and is still running: its call was cancelled, but the plugin has not stopped (its thread stays busy until it does)"})
        )
    );
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_millis(1500),
        "answered after {waited:?}"
    );
    // The call runs on, and shows; once the plugin stops, it is done.
    assert_eq!(plane.plugin("web")["metrics"]["in_flight"], 1);
    std::fs::write(&release, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while plane.plugin("web")["metrics"]["in_flight"] != 0 {
        assert!(Instant::now() < deadline, "the call did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
}
