//! The route table as plugins come and go: a conflicting plugin refused naming both, and
//! routes that follow upgrades under load without losing a request.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gp_host::{Error, UpgradeOptions};

use super::{get, send, web_server, Running};
use crate::web_fixture::web;

/// `web`'s route answers; `web-clash`'s own route does not exist.
fn web_serves_and_clash_does_not(addr: std::net::SocketAddr) {
    assert_eq!(
        get(addr, "/web/items/1").json(),
        serde_json::json!({"id": 1})
    );
    assert_eq!(
        send(addr, "POST /clash/ok HTTP/1.1\r\nContent-Length: 0", b"").status,
        404
    );
}

/// What `web-clash`, in `base`, is refused with while `web` serves.
fn clash_refused(base: &std::path::Path) -> String {
    format!(
        "plugin `web-clash` ({}) refused: route GET /web/items/:num:int (label \"clash.items\") conflicts with route GET /web/items/:id:int (label \"item\") of plugin `web`, which is serving: the two match the same requests; change one of them, or unload `web` first",
        base.join("web-clash").display()
    )
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
    assert_eq!(error.to_string(), clash_refused(base.path()));
    assert!(
        manager.get_plugin("web-clash").is_err(),
        "a refused plugin is not loaded"
    );
    web_serves_and_clash_does_not(running.addr);
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
    // GET and HEAD only: the same answers on gp's listener and through the router.
    let router = Running::start_router(&server);
    for addr in [running.addr, router.addr] {
        let head = send(addr, "HEAD /-/healthz HTTP/1.1", b"");
        assert_eq!((head.status, head.body.len()), (200, 0));
        let post = send(addr, "POST /-/healthz HTTP/1.1", b"");
        assert_eq!(post.status, 405);
        assert_eq!(post.header("allow"), Some("GET,HEAD"));
    }
}

#[test]
fn a_server_built_after_the_load_refuses_what_one_built_before_would() {
    let base = crate::harness::base_dir();
    gp_host::build::install_library(web("web-v1"), base.path()).unwrap();
    gp_host::build::install_library(web("web-clash"), base.path()).unwrap();
    let manager = gp_host::Manager::new(base.path());
    let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&failed);
    manager.subscribe_lifecycle(move |event| {
        if let gp_host::Event::LoadFailed { path, error } = event {
            seen.lock()
                .unwrap()
                .push((path.to_path_buf(), error.to_string()));
        }
    });
    // Without a server both load: nothing checks routes yet.
    let report = manager.load_plugins();
    assert_eq!(report.loaded.len(), 2, "{report}");
    let server = gp_host::http::PluginServer::new(manager.clone());
    // Checked now, in name order: `web` stays, `web-clash` is refused and unloaded, as a
    // server built before the load would have refused it.
    let names: Vec<String> = manager.list().iter().map(|s| s.name().to_owned()).collect();
    assert_eq!(names, ["web"]);
    assert_eq!(
        *failed.lock().unwrap(),
        [(base.path().join("web-clash"), clash_refused(base.path()))]
    );
    let running = Running::start(&server);
    web_serves_and_clash_does_not(running.addr);
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
fn with_loads_running_at_once_a_conflict_at_start_refuses_the_later_folder_every_time() {
    // `a.plg` (web, as a package: unpacked and verified before its admission) comes first in
    // name order and is slower to reach admission than `b` (web-clash, a plain folder). Loads
    // run at once, but are admitted in name order, so web-clash is the one refused, as when
    // they loaded one after another; admitted as they came, web-clash would win the race.
    let base = crate::harness::base_dir();
    let staging = crate::harness::base_dir();
    let package = crate::admin::package_of(web("web-v1"), staging.path());
    std::fs::write(base.path().join("a.plg"), package).unwrap();
    let info = gp_host::build::install_library(web("web-clash"), staging.path()).unwrap();
    std::fs::rename(
        staging.path().join(&info.manifest.name),
        base.path().join("b"),
    )
    .unwrap();
    for _ in 0..3 {
        let manager = gp_host::Manager::new(base.path());
        let _server = gp_host::http::PluginServer::new(manager.clone());
        let report = manager.load_plugins();
        let loaded: Vec<&str> = report.loaded.iter().map(|s| s.name()).collect();
        assert_eq!(loaded, ["web"], "{report}");
        assert_eq!(report.failed.len(), 1, "{report}");
        // `web` may still be in its load when `web-clash` is admitted: the message says which.
        let refused = |held: &str| {
            format!(
                "plugin `web-clash` ({}) refused: route GET /web/items/:num:int (label \"clash.items\") conflicts with route GET /web/items/:id:int (label \"item\") of plugin `web`, which is {held}: the two match the same requests; change one of them, or unload `web` first",
                base.path().join("b").display()
            )
        };
        let error = report.failed[0].error.to_string();
        assert!(
            error == refused("serving") || error == refused("loading"),
            "{error}"
        );
    }
}
