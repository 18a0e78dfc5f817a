//! `gp serve` with a plugin whose `on_load` is slow (issue 26, item 4): the listeners open at
//! once, the other plugins serve without waiting for it, and until its load ends its routes
//! answer 503 "loading" with `Retry-After` and the management API lists it as `loading`; a
//! load that fails gives its routes back (404) and is listed as failed.
//!
//! Each test kills its server rather than wait out the 30 s hook; every loop is bounded in
//! count and time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::serve::Server;
use crate::harness::{base_dir, custom_fixture, example, Interface};
use crate::http::{get, send, Reply};

/// Plugin `loads-slowly`, whose `on_load` sleeps 30 s (gp serve's default hook timeout), with one
/// route. Its name sorts before `sample`'s: folders are taken in name order, so loading them
/// one after another would have `sample` wait for it.
const SLOW_LOAD: &str = r#"use gp_sdk::{on_load, plugin_entry, Context, Result};

#[on_load]
fn slow_start() {
    std::thread::sleep(std::time::Duration::from_secs(30));
}

#[plugin_entry(route(GET, "/slow/hello", label = "hello"))]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}
"#;

/// A base directory holding `loads-slowly` and, if asked, `sample`.
fn base_with_slow_load(sample: bool) -> tempfile::TempDir {
    let base = base_dir();
    let slow = custom_fixture("loads-slowly", "1.0.0", SLOW_LOAD, Interface::Real);
    gp_host::build::install_library(slow, base.path()).unwrap();
    if sample {
        gp_host::build::install_library(example("sample"), base.path()).unwrap();
    }
    base
}

/// `GET path` on `addr` until `done` says the reply is the one awaited, at most 400 times
/// and until `deadline`; the last reply.
fn get_until(
    addr: SocketAddr,
    path: &str,
    deadline: Instant,
    done: impl Fn(&Reply) -> bool,
) -> Reply {
    let mut reply = get(addr, path);
    for _ in 0..400 {
        if done(&reply) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
        reply = get(addr, path);
    }
    reply
}

/// `GET /api/v1/plugins` on the admin listener, with the token `gp serve` wrote.
fn plugins_listing(admin: SocketAddr, base: &std::path::Path) -> serde_json::Value {
    let token = std::fs::read_to_string(base.join(".gp-runtime/admin-token")).unwrap();
    let head = format!(
        "GET /api/v1/plugins HTTP/1.1\r\nAuthorization: Bearer {}",
        token.trim()
    );
    let reply = send(admin, &head, b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// The state the listing gives plugin `name`, if it lists it.
fn state_of(listing: &serde_json::Value, name: &str) -> Option<String> {
    listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| p["state"].as_str().unwrap().to_owned())
}

/// Asserts that `reply` is the 503 of plugin `loads-slowly` loading, on its route `hello`.
fn assert_loading(reply: &Reply) {
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(
        reply.error_body(),
        serde_json::json!({"error": "plugin `loads-slowly` is loading; retry shortly", "plugin": "loads-slowly", "label": "hello"})
    );
}

#[test]
fn a_slow_on_load_holds_back_no_other_plugin_and_its_routes_answer_503_loading() {
    let base = base_with_slow_load(true);
    let (server, admin) = Server::start_listening(base.path(), &[], std::process::Stdio::null());
    let listening = Instant::now();
    let plugins: SocketAddr = server.plugins.parse().unwrap();
    let admin: SocketAddr = admin.parse().unwrap();

    // `sample` serves within a second of the listeners opening, though `loads-slowly` sleeps 30 s
    // in its on_load (before this change, both waited for it).
    let reply = get_until(
        plugins,
        "/api/plugin/sample/7",
        listening + Duration::from_secs(10),
        |r| r.status == 200,
    );
    let waited = listening.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        waited < Duration::from_secs(1),
        "sample's route answered {waited:?} after gp serve listened"
    );

    // `loads-slowly` is still in its on_load (it has 29 s to go): its route is reserved.
    let reply = get_until(
        plugins,
        "/slow/hello",
        listening + Duration::from_secs(10),
        |r| r.status == 503,
    );
    assert_loading(&reply);
    let listing = plugins_listing(admin, base.path());
    assert_eq!(
        state_of(&listing, "loads-slowly").as_deref(),
        Some("loading"),
        "{listing}"
    );
    assert_eq!(
        state_of(&listing, "sample").as_deref(),
        Some("serving"),
        "{listing}"
    );
    let slow = listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "loads-slowly")
        .unwrap();
    assert_eq!(slow["version"], "1.0.0", "{listing}");
    assert_eq!(slow["routes"][0]["route"], "/slow/hello", "{listing}");
    assert_eq!(listing["failures"], serde_json::json!([]), "{listing}");
    // Killed, not waited for: its on_load would hold a SIGTERM's unload for the 30 s.
    drop(server);
}

#[test]
fn a_load_that_fails_gives_its_reserved_routes_back_and_is_listed_as_failed() {
    let base = base_with_slow_load(false);
    let (mut server, admin) = Server::start_listening(
        base.path(),
        &["--hook-timeout", "2s"],
        std::process::Stdio::null(),
    );
    let started = Instant::now();
    let plugins: SocketAddr = server.plugins.parse().unwrap();
    let admin: SocketAddr = admin.parse().unwrap();

    // Loading: 503 "loading"; then its on_load is abandoned at 2 s and the load fails.
    let reply = get_until(
        plugins,
        "/slow/hello",
        started + Duration::from_secs(10),
        |r| r.status != 404,
    );
    assert_loading(&reply);
    let reply = get_until(
        plugins,
        "/slow/hello",
        started + Duration::from_secs(20),
        |r| r.status != 503,
    );
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert_eq!(
        reply.error_body(),
        serde_json::json!({"error": "no route for GET /slow/hello"})
    );
    let ready = server
        .lines
        .find_map(|line| line.unwrap().strip_prefix("ready: ").map(str::to_owned));
    assert_eq!(
        ready.as_deref(),
        Some("every plugin folder tried (0 loaded, 1 failed, 0 disabled)")
    );
    let listing = plugins_listing(admin, base.path());
    assert_eq!(state_of(&listing, "loads-slowly"), None, "{listing}");
    assert_eq!(
        listing["failures"][0]["error"],
        "plugin `loads-slowly` 1.0.0: its on_load hook did not return within 2s: it was abandoned (still running on its own thread), and this build is refused until it returns or the process restarts",
        "{listing}"
    );
}

/// Plugin `wants-slow-routes`, whose route is `loads-slowly`'s.
const CLASHES: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(route(GET, "/slow/hello", label = "mine"))]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}
"#;

#[test]
fn a_plugin_loading_keeps_its_routes_until_its_load_fails() {
    use gp_host::http::PluginServer;
    use gp_host::Manager;

    let base = base_with_slow_load(false);
    // Built before the slow load starts: building takes longer than its 2 s.
    let others = base_dir();
    let clashes = custom_fixture("wants-slow-routes", "1.0.0", CLASHES, Interface::Real);
    gp_host::build::install_library(clashes, others.path()).unwrap();
    let folder = others.path().join("wants-slow-routes");
    let manager = Manager::builder(base.path())
        .hook_timeout(Duration::from_secs(2))
        .build();
    // Registers the route check, as gp serve does.
    let _server = PluginServer::builder(manager.clone()).build();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&events);
    manager.subscribe_lifecycle(move |event| {
        let line = match event {
            gp_host::Event::Loading { spec } => format!("loading {}", spec.name()),
            gp_host::Event::LoadAbandoned { plugin } => format!("abandoned {plugin}"),
            gp_host::Event::Loaded { spec } => format!("loaded {}", spec.name()),
            gp_host::Event::LoadFailed { path, .. } => {
                format!("failed {}", path.file_name().unwrap().to_string_lossy())
            }
            other => format!("{other:?}"),
        };
        sink.lock().unwrap().push(line);
    });
    let loading = std::thread::spawn({
        let manager = manager.clone();
        let folder = base.path().join("loads-slowly");
        move || manager.load_plugin(folder)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..400 {
        if !manager.loading().is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let names: Vec<String> = manager
        .loading()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    assert_eq!(names, ["loads-slowly"]);

    // While it loads, its route is taken: the other plugin is refused, naming it.
    let error = manager.load_plugin(&folder).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("plugin `wants-slow-routes` ({}) refused: route GET /slow/hello (label \"mine\") conflicts with route GET /slow/hello (label \"hello\") of plugin `loads-slowly`, which is loading: the two match the same requests; change one of them, or unload `loads-slowly` first", folder.display())
    );

    // Its on_load is abandoned at 2 s: the load fails, and the routes are free again.
    let failed = loading.join().unwrap().unwrap_err();
    assert!(
        matches!(failed, gp_host::Error::HookTimedOut { .. }),
        "{failed}"
    );
    assert!(manager.loading().is_empty());
    let loaded = manager.load_plugin(&folder).unwrap();
    assert_eq!(loaded.name(), "wants-slow-routes");
    // The refused plugin never reserved anything; the slow one's reservation ended before
    // its failure was reported.
    assert_eq!(
        *events.lock().unwrap(),
        [
            "loading loads-slowly",
            "failed wants-slow-routes",
            "abandoned loads-slowly",
            "failed loads-slowly",
            "loading wants-slow-routes",
            "loaded wants-slow-routes"
        ]
    );
}

/// Plugin `loads-then-unloads`: an `on_load` of 2 s, an `on_unload` that says it ran.
const LOADS_THEN_UNLOADS: &str = r#"use gp_sdk::{on_load, on_unload, plugin_entry, Context, Result};

#[on_load]
fn start() {
    std::thread::sleep(std::time::Duration::from_secs(2));
}

#[on_unload]
fn stop(_ctx: &mut Context) {
    eprintln!("loads-then-unloads: on_unload ran");
}

#[plugin_entry(route(GET, "/then/hello", label = "hello"))]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}
"#;

#[test]
fn a_shutdown_during_a_load_lets_it_end_and_runs_its_on_unload() {
    let base = base_dir();
    let plugin = custom_fixture(
        "loads-then-unloads",
        "1.0.0",
        LOADS_THEN_UNLOADS,
        Interface::Real,
    );
    gp_host::build::install_library(plugin, base.path()).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("stderr");
    let (mut server, _admin) = Server::start_listening(
        base.path(),
        &[],
        std::fs::File::create(&log).unwrap().into(),
    );
    let plugins: SocketAddr = server.plugins.parse().unwrap();
    // In its on_load: its route is reserved.
    let reply = get_until(
        plugins,
        "/then/hello",
        Instant::now() + Duration::from_secs(10),
        |r| r.status != 404,
    );
    assert_eq!(reply.status, 503, "{}", reply.text());

    let signalled = Instant::now();
    server.terminate();
    let status = server.exit_status(signalled + Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status}");
    // The load ended before the unload, which ran its on_unload (a shutdown that did not
    // wait would have exited with the plugin still loading, its on_unload never run).
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("loads-then-unloads: on_unload ran\n"), "{log}");
}
