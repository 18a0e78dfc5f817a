//! `/-/readyz`: 200 while every required plugin serves, 503 naming the missing ones; a
//! required plugin that does not load stops `gp serve` (and fails `Manager::init`); the
//! read-only metrics listener.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gp_host::{Error, Manager};

use crate::cli::serve::Server;
use crate::http::get;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn readyz_answers_503_naming_a_required_plugin_while_it_does_not_serve() {
    let base = crate::harness::base_dir_with(&["sample", "dispatch"]);
    let (server, admin, _) = Server::start(base.path(), &["--required", "sample"]);
    let plugins = addr(&server.plugins);
    let ready = get(plugins, "/-/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(
        ready.json(),
        serde_json::json!({"ready": true, "loaded": true, "plugins": 2, "required": ["sample"], "missing": [], "refusing": []})
    );
    // The sample goes (its folder removed, gp serve watching): not ready, still alive.
    std::fs::remove_dir_all(base.path().join("sample")).unwrap();
    crate::harness::eventually("readyz says 503", Duration::from_secs(10), || {
        get(plugins, "/-/readyz").status == 503
    });
    let unready = get(plugins, "/-/readyz");
    assert_eq!(unready.header("retry-after"), Some("1"));
    assert_eq!(
        unready.json(),
        serde_json::json!({"ready": false, "loaded": true, "plugins": 1, "required": ["sample"], "missing": ["sample"], "refusing": [],
            "reason": "required plugin(s) not serving: sample"})
    );
    assert_eq!(get(plugins, "/-/healthz").status, 200);
    // Metrics say so too.
    let metrics = crate::cli::serve::http_get(&format!("http://{admin}/metrics"));
    assert!(metrics.contains("\ngp_ready 0\n"), "{metrics}");
    assert!(
        metrics.contains("\ngp_required_missing{plugin=\"sample\"} 1\n"),
        "{metrics}"
    );
    // Back: ready again.
    gp_host::build::install_library(crate::harness::example("sample"), base.path()).unwrap();
    crate::harness::eventually("readyz says 200 again", Duration::from_secs(10), || {
        get(plugins, "/-/readyz").status == 200
    });
    // Only GET and HEAD.
    let post = crate::http::post_json(plugins, "/-/readyz", "{}");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET,HEAD"));
}

#[test]
fn a_required_plugin_that_does_not_load_stops_gp_serve() {
    let base = crate::harness::base_dir_with(&["sample"]);
    let log = crate::harness::base_dir();
    let stderr = log.path().join("stderr");
    let (mut server, _) = Server::start_listening(
        base.path(),
        &["--required", "sample", "--required", "ghost"],
        std::fs::File::create(&stderr).unwrap().into(),
    );
    let status = server.exit_status(Instant::now() + Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    let said = std::fs::read_to_string(&stderr).unwrap();
    let expected = format!(
        "error: required plugin(s) not loaded: `ghost` (no plugin folder or package in {} declares it)\n",
        base.path().display()
    );
    assert!(said.contains(&expected), "{said}");
}

#[test]
fn manager_init_fails_naming_each_required_plugin_and_why() {
    let base = crate::harness::base_dir_with(&["sample"]);
    std::fs::create_dir(base.path().join("broken")).unwrap();
    std::fs::write(base.path().join("broken/plugin.json"), r#"{"name": "broken", "version": "1.0.0", "source": {"mode": "local_so", "path": "libnothere.so"}}"#).unwrap();
    let manager = Manager::builder(base.path())
        .require(["sample", "broken", "ghost"])
        .build();
    assert_eq!(manager.required(), ["broken", "ghost", "sample"]);
    let Err(Error::RequiredNotLoaded { plugins }) = manager.init() else {
        panic!("init with missing required plugins must fail");
    };
    let names: Vec<&str> = plugins.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["broken", "ghost"]);
    assert!(plugins[0].1.contains("libnothere.so"), "{}", plugins[0].1);
    assert_eq!(
        plugins[1].1,
        format!(
            "no plugin folder or package in {} declares it",
            base.path().display()
        )
    );
    // What did load stays loaded, and readiness says what is missing.
    assert!(manager.get_plugin("sample").is_ok());
    let readiness = manager.readiness();
    assert!(!readiness.ready && readiness.loaded);
    assert_eq!(readiness.missing, ["broken", "ghost"]);
    // Without requirements, init is load_plugins.
    let manager = Manager::new(base.path());
    assert!(
        !manager.readiness().ready,
        "not ready before the first load"
    );
    let report = manager.init().unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(manager.readiness().ready);
}

#[test]
fn the_metrics_listener_serves_metrics_and_nothing_that_changes_anything() {
    let base = crate::harness::base_dir_with(&["sample"]);
    let (server, _, _) = Server::start(base.path(), &["--metrics", "127.0.0.1:0"]);
    let scrape = addr(
        server
            .scrape
            .as_deref()
            .expect("gp serve names its metrics listener"),
    );
    let metrics = get(scrape, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text().contains("\ngp_ready 1\n"),
        "{}",
        metrics.text()
    );
    assert!(metrics
        .text()
        .contains("gp_plugin_loaded{plugin=\"sample\",version=\"0.1.0\"} 1"));
    // No management API, no GUI, no writes; no /stats (its last errors are what plugins said).
    for path in [
        "/stats",
        "/api/v1/plugins",
        "/ui/",
        "/api/v1/plugins/sample/unload",
    ] {
        assert_eq!(get(scrape, path).status, 404, "{path}");
    }
    assert_eq!(crate::http::post_json(scrape, "/metrics", "{}").status, 405);
}

#[test]
fn an_install_or_a_sync_after_the_shutdown_began_loads_nothing() {
    // What a follower still downloading at a shutdown meets when its download ends.
    let scratch = crate::harness::base_dir();
    let (package, _) = crate::hub::packed("sample", scratch.path());
    let base = crate::harness::base_dir();
    let manager = Manager::new(base.path());
    manager.stop_loading();
    let refused = manager
        .install(package.to_str().unwrap(), &Default::default())
        .unwrap_err();
    assert!(matches!(refused, Error::Stopping { .. }), "{refused:?}");
    assert_eq!(
        refused.to_string(),
        "plugin `sample` was not loaded: the host is shutting down"
    );
    assert!(manager.list().is_empty());
    assert!(!base.path().join("sample.plg").exists());
    // Nor does what the watcher would sync, once the shutdown began.
    gp_host::build::install_library(crate::harness::example("sample"), base.path()).unwrap();
    let refused = manager.sync(base.path().join("sample")).unwrap_err();
    assert!(matches!(refused, Error::Stopping { .. }), "{refused:?}");
    assert!(manager.list().is_empty());
}

#[test]
fn readyz_waits_for_a_required_plugins_routes_not_only_for_its_load() {
    let base = crate::harness::base_dir();
    let manager = Manager::builder(base.path()).require(["web"]).build();
    // The first load done, with nothing to load yet: a follower installs the plugin later.
    assert!(manager.load_plugins().failed.is_empty());
    // Subscribed before the server, so the server hears of a load only once this returns:
    // it holds open the moment between the version going into its slot and the route table
    // following it.
    let (entered, held) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    manager.subscribe_lifecycle(move |event| {
        if let gp_host::Event::Loaded { .. } = event {
            let _ = entered.send(());
            let _ = released
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
        }
    });
    let server = gp_host::http::PluginServer::new(manager.clone());
    let running = crate::http::Running::start(&server);
    let plugins = running.addr;
    gp_host::build::install_library(crate::web_fixture::web("web-v1"), base.path()).unwrap();
    let loading = {
        let manager = manager.clone();
        std::thread::spawn(move || manager.load_plugins())
    };
    held.recv_timeout(Duration::from_secs(30))
        .expect("the load reached its subscribers");
    assert!(manager.readiness().ready, "the manager says web serves");
    let unready = get(plugins, "/-/readyz");
    assert_eq!(unready.status, 503, "its routes are not served yet");
    assert_eq!(unready.json()["missing"], serde_json::json!(["web"]));
    assert_eq!(
        unready.json()["reason"],
        "required plugin(s) not serving: web"
    );
    assert_ne!(get(plugins, "/web/empty").status, 204);
    release.send(()).unwrap();
    assert!(loading.join().unwrap().failed.is_empty());
    crate::harness::eventually("readyz says 200", Duration::from_secs(10), || {
        get(plugins, "/-/readyz").status == 200
    });
    assert_eq!(get(plugins, "/web/empty").status, 204);
}
