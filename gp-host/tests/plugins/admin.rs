//! The management API over a real socket, with real plugins: every endpoint, every refusal
//! with its exact body, and an upgrade through the API under request load.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gp_host::http::{Admin, AdminToken, PluginServer};
use gp_host::Manager;

use crate::harness::{base_dir, example};
use crate::http::{get, Reply, Running};
use crate::web_fixture::web;

/// A base dir with `web` 1.0.0 (a folder) and `sample`, a manager, its plugin server (on a
/// port of its own) and its admin API (on another), both running.
struct Plane {
    base: tempfile::TempDir,
    manager: Manager,
    token: AdminToken,
    read_only: AdminToken,
    plugins: Running,
    admin: Running,
}

fn plane() -> Plane {
    let base = base_dir();
    gp_host::build::install_library(web("web-v1"), base.path()).unwrap();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let server = PluginServer::new(manager.clone());
    let token = AdminToken::generate();
    let read_only = AdminToken::generate();
    let admin = Admin::builder(manager.clone(), token.clone())
        .server(server.clone())
        .read_only_token(read_only.clone())
        .build();
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    admin.mark_ready();
    Plane {
        plugins: Running::start(&server),
        admin: Running::serve(admin.router()),
        base,
        manager,
        token,
        read_only,
    }
}

/// One request, with exactly the headers given (and `Connection: close`).
fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    crate::http::parse_reply(&bytes)
}

impl Plane {
    fn call(&self, method: &str, path: &str, body: &str) -> Reply {
        self.call_as(
            &self.token,
            method,
            path,
            "application/json",
            body.as_bytes(),
        )
    }

    fn call_as(
        &self,
        token: &AdminToken,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Reply {
        let addr = self.admin.addr;
        raw(
            addr,
            &format!(
                "{method} /api/v1{path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}",
                token.secret()
            ),
            body,
        )
    }

    fn plugin(&self, name: &str) -> serde_json::Value {
        let reply = self.call("GET", &format!("/plugins/{name}"), "");
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }
}

#[test]
fn the_api_needs_a_valid_token_a_known_host_and_no_foreign_origin() {
    let plane = plane();
    let addr = plane.admin.addr;
    let none = raw(
        addr,
        &format!("GET /api/v1/plugins HTTP/1.1\r\nHost: {addr}"),
        b"",
    );
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer realm=\"gp\""));
    assert_eq!(
        none.json(),
        serde_json::json!({"error": "the management API needs a token: send `Authorization: Bearer <token>` (gp serve prints where its token file is)"})
    );
    let wrong = raw(
        addr,
        &format!("GET /api/v1/plugins HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer not-the-token-at-all"),
        b"",
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.json(),
        serde_json::json!({"error": "the token is not valid for this server"})
    );
    let rebinding = raw(
        addr,
        &format!(
            "GET /api/v1/plugins HTTP/1.1\r\nHost: evil.example:{}\r\nAuthorization: Bearer {}",
            addr.port(),
            plane.token.secret()
        ),
        b"",
    );
    assert_eq!(rebinding.status, 403);
    assert_eq!(
        rebinding.json(),
        serde_json::json!({"error": format!("host \"evil.example:{}\" is not one this admin listener answers to (127.0.0.1, localhost, [::1]): use one of them, or add the name with --admin-host", addr.port())})
    );
    // The GUI's page is checked the same way.
    let page = raw(
        addr,
        &format!("GET /ui/ HTTP/1.1\r\nHost: evil.example:{}", addr.port()),
        b"",
    );
    assert_eq!(page.status, 403);
    let foreign = raw(
        addr,
        &format!(
            "POST /api/v1/plugins/web/reload HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nAuthorization: Bearer {}\r\nContent-Type: application/json",
            plane.token.secret()
        ),
        b"{}",
    );
    assert_eq!(foreign.status, 403);
    assert_eq!(
        foreign.json(),
        serde_json::json!({"error": "origin \"http://evil.example\" may not use the management API: only pages it serves itself may"})
    );
    // A form post (not JSON) is refused, and so is a change with a read-only token.
    let form = plane.call_as(
        &plane.token,
        "POST",
        "/plugins/web/disable",
        "application/x-www-form-urlencoded",
        b"reason=x",
    );
    assert_eq!(form.status, 415);
    assert_eq!(
        form.json(),
        serde_json::json!({"error": "a change is sent as application/json, not \"application/x-www-form-urlencoded\""})
    );
    let read_only = plane.call_as(
        &plane.read_only,
        "POST",
        "/plugins/web/disable",
        "application/json",
        b"{}",
    );
    assert_eq!(read_only.status, 403);
    assert_eq!(
        read_only.json(),
        serde_json::json!({"error": "this token may only read: changes need the admin token"})
    );
    assert_eq!(
        plane
            .call_as(&plane.read_only, "GET", "/plugins", "application/json", b"")
            .status,
        200
    );
    // GET never changes anything: there is no GET on a change.
    let get_change = plane.call("GET", "/plugins/web/disable", "");
    assert_eq!(get_change.status, 405);
    assert!(plane.manager.get_plugin("web").is_ok());
    assert!(plane.manager.disabled().is_empty());
}

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
        serde_json::json!({"method": "GET", "route": "/web/echo/:id", "label": "echo"})
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
    let tampered = plane.call_as(
        &plane.token,
        "POST",
        "/plugins/web/upgrade",
        "application/octet-stream",
        &package,
    );
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
    assert_eq!(routes["routes"].as_array().unwrap().len(), 18);
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
        serde_json::json!({"ready": true, "plugins": 2})
    );
    assert!(plane
        .call("GET", "/metrics", "")
        .text()
        .contains("gp_plugin_loads_total{plugin=\"web\"} 1"));
    let openapi = plane.call("GET", "/openapi.json", "").json();
    assert_eq!(openapi["openapi"], "3.1.0");
}

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

    // Every change above is in the event stream.
    let events = sse(plane.admin.addr, &plane.token, 6);
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["plugin"].as_str().unwrap()))
        .collect();
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
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        token.secret()
    )
    .unwrap();
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

/// A `.plg` of the library `library`, in `dir`.
fn package_of(library: &Path, dir: &Path) -> Vec<u8> {
    let folder = dir.join("folder");
    let info = gp_host::build::install_library(library, &folder).unwrap();
    let plugin = folder.join(&info.manifest.name);
    let output = dir.join("out.plg");
    gp_host::package::pack(&plugin, &output, None).unwrap();
    std::fs::read(output).unwrap()
}

#[test]
fn an_uploaded_upgrade_serves_at_once_outlasts_a_restart_and_rolls_back_under_load() {
    let plane = plane();
    let scratch = tempfile::tempdir().unwrap();
    let v2 = package_of(web("web-v2"), scratch.path());
    let addr = plane.plugins.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                for _ in 0..100_000 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    if get(addr, "/web/version").status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let upgraded = plane.call_as(
        &plane.token,
        "POST",
        "/plugins/web/upgrade",
        "application/octet-stream",
        &v2,
    );
    assert_eq!(upgraded.status, 200, "{}", upgraded.text());
    assert_eq!(
        upgraded.json(),
        serde_json::json!({"result": "upgraded", "from": "1.0.0", "to": "2.0.0"})
    );
    assert_eq!(get(addr, "/web/version").text(), "2.0.0");
    // Written into the plugin's folder: a restart serves 2.0.0.
    let restarted = Manager::new(plane.base.path());
    restarted.load_plugins();
    assert_eq!(
        restarted.get_plugin("web").unwrap().0.version().to_string(),
        "2.0.0"
    );
    drop(restarted);

    let back = plane.call("POST", "/plugins/web/rollback", "{}");
    assert_eq!(back.status, 200, "{}", back.text());
    assert_eq!(
        back.json(),
        serde_json::json!({"result": "upgraded", "from": "2.0.0", "to": "1.0.0"})
    );
    assert_eq!(get(addr, "/web/version").text(), "1.0.0");
    let restarted = Manager::new(plane.base.path());
    restarted.load_plugins();
    assert_eq!(
        restarted.get_plugin("web").unwrap().0.version().to_string(),
        "1.0.0"
    );

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{ok} requests answered, {failed} failed, across an upload and a roll-back");
    assert_eq!(failed, 0);
    assert!(ok > 0);
}

#[test]
fn install_from_a_url_and_an_upload_over_the_limit() {
    let base = base_dir();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let token = AdminToken::generate();
    let admin = Admin::builder(manager.clone(), token.clone())
        .upload_limit(1024)
        .build();
    manager.load_plugins();
    let running = Running::serve(admin.router());
    let plane = |method: &str, path: &str, content_type: &str, body: &[u8]| {
        let addr = running.addr;
        raw(
            addr,
            &format!(
                "{method} /api/v1{path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}",
                token.secret()
            ),
            body,
        )
    };
    let scratch = tempfile::tempdir().unwrap();
    let package = package_of(web("web-v1"), scratch.path());
    let sha256: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&package)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let files = std::collections::HashMap::from([(
        "/web.plg".to_owned(),
        crate::harness::Reply::Body(package),
    )]);
    let url = format!("{}/web.plg", crate::harness::http_server(files));

    let pinned_wrong = plane(
        "POST",
        "/plugins",
        "application/json",
        serde_json::json!({"url": url, "sha256": "00".repeat(32)})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(pinned_wrong.status, 502, "{}", pinned_wrong.text());
    assert_eq!(
        pinned_wrong.json()["error"],
        format!(
            "{url}: its SHA-256 is {sha256}, not the {} expected; the file was not installed",
            "00".repeat(32)
        )
    );
    let installed = plane(
        "POST",
        "/plugins",
        "application/json",
        serde_json::json!({"url": url, "sha256": sha256})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(installed.status, 201, "{}", installed.text());
    assert_eq!(
        installed.json(),
        serde_json::json!({"result": "installed", "plugin": "web", "version": "1.0.0"})
    );
    assert!(manager.get_plugin("web").is_ok());

    let too_big = plane(
        "POST",
        "/plugins/sample/upgrade",
        "application/octet-stream",
        &[0u8; 2048],
    );
    assert_eq!(too_big.status, 413);
    assert_eq!(
        too_big.json(),
        serde_json::json!({"error": "the request body is larger than this endpoint accepts (1024 bytes)"})
    );
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
