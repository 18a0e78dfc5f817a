//! API = disk = restart: many changes at once to one plugin, through the API, never answer
//! 500, never leave the disk saying something else than the API, and never serve a version
//! after its replacement was acknowledged. Names from URLs are names, never paths.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use gp_host::Manager;

use super::{package_of, plane_with, Plane};
use crate::http::get;
use crate::web_fixture::web;

/// What the API acknowledged: when the answer arrived, and the version then serving (`None`:
/// unloaded or disabled).
type Ack = (Instant, Option<String>);

/// What a call served: when it started, and the version that answered.
type Served = (Instant, String);

/// The changes fired at once, in this order (each thread takes the next).
const CHANGES: [&str; 8] = [
    "upgrade-v2",
    "rollback",
    "reload",
    "disable",
    "enable",
    "upgrade-v1",
    "unload",
    "load",
];

/// Fires `count` mixed changes at plugin `web` at once, while two clients call it; returns
/// every acknowledgement and every version served.
fn churn(plane: &Plane, packages: &[Vec<u8>; 2], count: usize) -> (Vec<Ack>, Vec<Served>) {
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let served: Arc<Mutex<Vec<Served>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let addr = plane.plugins.addr;
    let deadline = Instant::now() + Duration::from_secs(120);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (served, stop) = (Arc::clone(&served), Arc::clone(&stop));
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let start = Instant::now();
                    let reply = get(addr, "/web/version");
                    if reply.status == 200 {
                        served
                            .lock()
                            .unwrap()
                            .push((start, reply.text().to_owned()));
                    }
                }
            });
        }
        let barrier = Arc::new(Barrier::new(count));
        let changes: Vec<_> = (0..count)
            .map(|i| {
                let (barrier, acks) = (Arc::clone(&barrier), Arc::clone(&acks));
                scope.spawn(move || {
                    let change = CHANGES[i % CHANGES.len()];
                    barrier.wait();
                    let reply = match change {
                        "upgrade-v2" | "upgrade-v1" => {
                            plane.upload("web", &packages[usize::from(change == "upgrade-v2")])
                        }
                        "unload" => plane.call("DELETE", "/plugins/web", ""),
                        "disable" => {
                            plane.call("POST", "/plugins/web/disable", r#"{"reason": "churn"}"#)
                        }
                        other => plane.call("POST", &format!("/plugins/web/{other}"), "{}"),
                    };
                    let at = Instant::now();
                    assert!(
                        [200, 404, 409, 422].contains(&reply.status),
                        "{change}: {} {}",
                        reply.status,
                        reply.text()
                    );
                    let body = reply.json();
                    if reply.status != 200 {
                        let error = body["error"].as_str().unwrap();
                        assert!(
                            !error.contains(plane.base.path().to_str().unwrap())
                                && !error.contains("/tmp/"),
                            "{change}: an error shows a host path: {error}"
                        );
                        return;
                    }
                    let now = match body["result"].as_str().unwrap() {
                        "upgraded" => Some(body["to"].as_str().unwrap().to_owned()),
                        "loaded" | "unchanged" => {
                            Some(body["version"].as_str().unwrap().to_owned())
                        }
                        "unloaded" => None,
                        other => panic!("{change}: result {other}"),
                    };
                    acks.lock().unwrap().push((at, now));
                })
            })
            .collect();
        for change in changes {
            change.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    let served = std::mem::take(&mut *served.lock().unwrap());
    (acks, served)
}

/// Checks a round: every version served was acknowledged as serving (or was serving at the
/// start), and a call that started after an acknowledgement served that version or one a
/// later change (acknowledged after the call started) put in.
fn check_round(start: &str, acks: &[Ack], served: &[Served]) {
    let mut acks = acks.to_vec();
    acks.sort_by_key(|(at, _)| *at);
    let acknowledged: BTreeSet<&str> = acks
        .iter()
        .filter_map(|(_, v)| v.as_deref())
        .chain([start])
        .collect();
    for (began, version) in served {
        assert!(
            acknowledged.contains(version.as_str()),
            "version {version} served, never acknowledged as serving ({acknowledged:?})"
        );
        let before = acks.iter().rev().find(|(at, _)| at < began);
        let Some((_, Some(last))) = before else {
            continue;
        };
        let later_put_in = acks
            .iter()
            .any(|(at, v)| at > began && v.as_deref() == Some(version.as_str()));
        assert!(
            version == last || later_put_in,
            "a call that started after {last} was acknowledged served {version}"
        );
    }
}

/// What the API says of `web` (state, version), what a fresh manager over the same base dir
/// says, and whether it loads with no failure; asserts they agree.
fn check_agreement(plane: &Plane) -> String {
    let listed = plane.plugin("web");
    let state = listed["state"].as_str().unwrap().to_owned();
    let version = listed["version"].as_str().map(str::to_owned);
    let fresh = Manager::new(plane.base.path());
    let report = fresh.load_plugins();
    assert!(report.failed.is_empty(), "a restart fails: {report}");
    match state.as_str() {
        "serving" => {
            let (spec, _) = fresh.get_plugin("web").unwrap();
            assert_eq!(Some(spec.version().to_string()), version, "{report}");
        }
        "disabled" => {
            assert!(fresh.get_plugin("web").is_err());
            let off = fresh.disabled_plugin("web").unwrap();
            assert_eq!(Some(off.manifest.version.to_string()), version);
        }
        // Unloaded with DELETE: it comes back on a restart, from where it lives.
        _ => assert!(fresh.get_plugin("web").is_ok(), "{report}"),
    }
    // The API's rollback_to is offered only where a roll-back succeeds.
    if state == "serving" {
        if let Some(to) = listed["rollback_to"].as_str() {
            let back = plane.call("POST", "/plugins/web/rollback", "{}");
            assert_eq!(back.status, 200, "rollback_to {to} shown: {}", back.text());
            assert_eq!(back.json()["to"], to);
        }
    }
    state
}

/// Brings `web` back to serving, whatever the last round left.
fn revive(plane: &Plane) -> String {
    let state = plane.plugin("web")["state"].as_str().unwrap().to_owned();
    let action = match state.as_str() {
        "disabled" => Some("enable"),
        "unloaded" => Some("load"),
        _ => None,
    };
    if let Some(action) = action {
        let reply = plane.call("POST", &format!("/plugins/web/{action}"), "{}");
        assert_eq!(reply.status, 200, "{action}: {}", reply.text());
    }
    plane.plugin("web")["version"].as_str().unwrap().to_owned()
}

fn rounds(plane: &Plane) {
    let scratch = tempfile::tempdir().unwrap();
    let packages = [
        package_of(web("web-v1"), &scratch.path().join("v1")),
        package_of(web("web-v2"), &scratch.path().join("v2")),
    ];
    for round in 0..3 {
        let start = revive(plane);
        let (acks, served) = churn(plane, &packages, 56);
        check_round(&start, &acks, &served);
        let state = check_agreement(plane);
        eprintln!(
            "round {round}: {} changes acknowledged, {} calls served, ends {state}",
            acks.len(),
            served.len()
        );
    }
}

#[test]
fn fifty_changes_at_once_to_a_folder_plugin_keep_api_disk_and_restart_in_agreement() {
    let plane = plane_with(|_| {}, 0);
    rounds(&plane);
    assert!(
        !plane.base.path().join("web.plg").exists(),
        "a folder plugin stays a folder"
    );
}

#[test]
fn fifty_changes_at_once_to_a_package_plugin_keep_api_disk_and_restart_in_agreement() {
    let plane = plane_with(
        |base: &Path| {
            let scratch = tempfile::tempdir().unwrap();
            std::fs::remove_dir_all(base.join("web")).unwrap();
            std::fs::write(
                base.join("web.plg"),
                package_of(web("web-v1"), scratch.path()),
            )
            .unwrap();
        },
        0,
    );
    rounds(&plane);
    assert!(
        !plane.base.path().join("web").exists(),
        "a package plugin stays a package"
    );
}

#[test]
fn an_unloaded_folder_plugin_is_upgraded_in_its_folder_and_a_restart_agrees() {
    let plane = plane_with(|_| {}, 0);
    let scratch = tempfile::tempdir().unwrap();
    let v2 = package_of(web("web-v2"), scratch.path());
    assert_eq!(plane.call("DELETE", "/plugins/web", "").status, 200);
    let upgraded = plane.upload("web", &v2);
    assert_eq!(
        (upgraded.status, upgraded.json()),
        (
            200,
            serde_json::json!({"result": "loaded", "version": "2.0.0"})
        )
    );
    assert!(!plane.base.path().join("web.plg").exists());
    assert_eq!(plane.plugin("web")["version"], "2.0.0");
    assert_eq!(plane.plugin("web")["rollback_to"], "1.0.0");
    assert_eq!(check_agreement(&plane), "serving");
    assert_eq!(plane.plugin("web")["version"], "1.0.0", "rolled back");
}

#[test]
fn a_name_that_is_a_path_is_refused_on_every_endpoint_and_nothing_outside_is_touched() {
    let plane = plane_with(|_| {}, 0);
    // A marker outside the base dir, naming a plugin folder outside it.
    let outside = tempfile::tempdir().unwrap();
    gp_host::build::install_library(web("web-v2"), outside.path()).unwrap();
    let evil = serde_json::json!({
        "name": "evil", "origin": outside.path().join("web"), "reason": "x", "since": 0,
        "manifest": plane.manager.get_plugin("web").unwrap().0.manifest,
    });
    let marker = plane.base.path().parent().unwrap().join("evil.json");
    std::fs::write(&marker, evil.to_string()).unwrap();
    let name = "..%2f..%2fevil";
    for (method, path) in [
        ("GET", format!("/plugins/{name}")),
        ("DELETE", format!("/plugins/{name}")),
        ("POST", format!("/plugins/{name}/reload")),
        ("POST", format!("/plugins/{name}/load")),
        ("POST", format!("/plugins/{name}/upgrade")),
        ("POST", format!("/plugins/{name}/rollback")),
        ("POST", format!("/plugins/{name}/disable")),
        ("POST", format!("/plugins/{name}/enable")),
        ("POST", format!("/plugins/{name}/invoke")),
    ] {
        let reply = if path.ends_with("/upgrade") {
            plane.call_as(
                &plane.token,
                method,
                &path,
                "application/octet-stream",
                b"x",
            )
        } else {
            plane.call(method, &path, "{}")
        };
        assert_eq!(reply.status, 400, "{method} {path}: {}", reply.text());
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert_eq!(
            error,
            "invalid plugin name \"../../evil\": use 1 to 64 ASCII letters, digits, '-' or '_', starting with a letter",
        );
    }
    assert!(
        marker.exists(),
        "a file outside the base dir is never deleted"
    );
    let names: Vec<String> = plane
        .manager
        .list()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    assert_eq!(names, ["sample", "web"]);

    // A marker inside the state folder that names an origin outside the base dir is ignored.
    let dir = plane.base.path().join(gp_host::DISABLED_DIR);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&marker, dir.join("evil.json")).unwrap();
    // And one filed under another plugin's name.
    let mut other = evil.clone();
    other["name"] = "web".into();
    other["origin"] = plane.base.path().join("web").to_str().unwrap().into();
    std::fs::write(dir.join("sample.json"), other.to_string()).unwrap();
    let reply = plane.call("POST", "/plugins/evil/enable", "{}");
    assert_eq!(
        (reply.status, reply.json()),
        (
            409,
            serde_json::json!({"error": "plugin `evil` is not disabled"})
        )
    );
    assert!(plane.manager.get_plugin("evil").is_err());
    assert!(plane.manager.disabled().is_empty());
    assert!(plane.manager.get_plugin("sample").is_ok());
}

#[test]
fn api_errors_show_no_host_path_and_a_long_reason_is_cut() {
    let plane = plane_with(|_| {}, 0);
    let scratch = tempfile::tempdir().unwrap();
    let sample = package_of(crate::harness::example("sample"), scratch.path());
    let mismatch = plane.upload("web", &sample);
    assert_eq!(
        (mismatch.status, mismatch.json()),
        (
            409,
            serde_json::json!({"error": "the package is plugin `sample`, not `web`: upload it to /api/v1/plugins/sample/upgrade"})
        )
    );
    // A folder the manager cannot load: its error names it relative to the base dir.
    std::fs::create_dir(plane.base.path().join("broken")).unwrap();
    std::fs::write(plane.base.path().join("broken/plugin.json"), "{").unwrap();
    std::fs::create_dir_all(plane.base.path().join(gp_host::DISABLED_DIR)).unwrap();
    let marker = serde_json::json!({
        "name": "broken", "origin": plane.base.path().join("broken"), "reason": "x", "since": 0,
        "manifest": plane.manager.get_plugin("web").unwrap().0.manifest,
    });
    std::fs::write(
        plane
            .base
            .path()
            .join(gp_host::DISABLED_DIR)
            .join("broken.json"),
        marker.to_string(),
    )
    .unwrap();
    let enabled = plane.call("POST", "/plugins/broken/enable", "{}");
    assert_eq!(enabled.status, 422, "{}", enabled.text());
    let error = enabled.json()["error"].as_str().unwrap().to_owned();
    assert!(error.contains("broken/plugin.json"), "{error}");
    assert!(
        !error.contains(plane.base.path().to_str().unwrap()),
        "{error}"
    );

    let long = "é".repeat(600); // 1,200 bytes
    let off = plane.call(
        "POST",
        "/plugins/web/disable",
        &serde_json::json!({ "reason": long }).to_string(),
    );
    assert_eq!(off.status, 200, "{}", off.text());
    let stored = plane.manager.disabled_plugin("web").unwrap().reason;
    assert_eq!(stored, format!("{}…", "é".repeat(510)));
    assert!(stored.len() <= gp_host::MAX_REASON);
    let reserved = get(plane.plugins.addr, "/web/empty");
    assert_eq!(reserved.status, 503);
    assert_eq!(
        reserved.error_body()["error"],
        format!("plugin `web` is disabled: {}…", "é".repeat(98))
    );
}
