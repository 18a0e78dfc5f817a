//! Installing and upgrading through the API: an uploaded upgrade under load, kept across a
//! restart and rolled back; an install from a URL; an upload over the limit, refused before
//! its body when it says its length.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gp_host::http::{Admin, AdminToken};
use gp_host::Manager;

use super::{api, package_of, plane};
use crate::harness::{base_dir, example};
use crate::http::{get, Running};
use crate::web_fixture::web;

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
    let upgraded = plane.upload("web", &v2);
    assert_eq!(upgraded.status, 200, "{}", upgraded.text());
    assert_eq!(
        upgraded.json(),
        serde_json::json!({"result": "upgraded", "from": "1.0.0", "to": "2.0.0"})
    );
    assert_eq!(get(addr, "/web/version").text(), "2.0.0");
    // Written into the plugin's folder: a restart serves 2.0.0.
    let restarted = Manager::new(plane.base.path());
    let report = restarted.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
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
    let report = restarted.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
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

/// `sample` loaded, behind an admin API whose uploads may be 1,024 bytes at most: the base
/// dir, the manager, the admin token, and the API running.
fn sample_with_upload_limit_1024() -> (tempfile::TempDir, Manager, AdminToken, Running) {
    let base = base_dir();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let token = AdminToken::generate();
    let admin = Admin::builder(manager.clone(), token.clone())
        .upload_limit(1024)
        .build();
    assert_eq!(manager.load_plugins().loaded.len(), 1);
    let running = Running::serve(admin.router());
    (base, manager, token, running)
}

#[test]
fn install_from_a_url_and_an_upload_over_the_limit() {
    let (_base, manager, token, running) = sample_with_upload_limit_1024();
    let plane = |method: &str, path: &str, content_type: &str, body: &[u8]| {
        api(running.addr, &token, method, path, content_type, body)
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
fn an_upload_declared_over_the_limit_is_refused_before_its_body_and_none_is_kept() {
    use std::io::{Read, Write};

    let (_base, manager, token, running) = sample_with_upload_limit_1024();
    let addr = running.addr;
    let over = serde_json::json!({"error": "the request body is larger than this endpoint accepts (1024 bytes)"});
    let upload = |framing: &str, body: &[u8]| {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "POST /api/v1/plugins/sample/upgrade HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n{framing}\r\n\r\n",
            token.secret()
        )
        .unwrap();
        // The server may answer and close before it has all of it.
        let _ = stream.write_all(body);
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        crate::http::parse_reply(&raw)
    };

    // 300 MB declared: refused at once, before a byte of it is sent.
    let started = Instant::now();
    let declared = upload("Content-Length: 314572800", b"");
    assert_eq!(declared.status, 413, "{}", declared.text());
    assert_eq!(declared.json(), over);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Without a length, the body is refused once it grows past the limit.
    let mut chunked = Vec::new();
    for _ in 0..3 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[0u8; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let grown = upload("Transfer-Encoding: chunked", &chunked);
    assert_eq!(grown.status, 413, "{}", grown.text());
    assert_eq!(grown.json(), over);

    // Neither left a file in the scratch folder.
    let scratch = manager.runtime_dir().join("tmp");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
