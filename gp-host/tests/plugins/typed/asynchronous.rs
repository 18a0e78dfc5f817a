//! `async fn` handlers: run to their end on the plugin's runtime, dropped where they wait at
//! the call's deadline, able to use an async HTTP client, never run on a server's async
//! workers, and marked async in the library for the host to see before it loads it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gp_host::http::{PluginServer, RouteLimits};
use gp_host::{Context, Error, Manager};
use serde_json::json;

use gp_host::build::cargo_build;

use crate::harness::{
    base_dir, build_workspace, eventually, example, http_server, options, plugin_manifest,
    target_dir, workspace, Reply,
};
use crate::http::{counted, get, Running};

/// Async routes and labels, a sync route beside them, and a future that never ends by
/// itself, whose drop is counted.
const WAITS: &str = r#"
#[gp_sdk::plugin(name = "waits", driver = "beego")]
mod waits {
    use std::sync::Mutex;

    use gp_sdk::Context;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    /// The ids of the `Guard`s dropped: each a future dropped where it waited (by id: tests
    /// run at once, and the build's statics are shared by all of them).
    static DROPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    struct Guard(String);

    impl Drop for Guard {
        fn drop(&mut self) {
            DROPPED.lock().unwrap().push(std::mem::take(&mut self.0));
        }
    }

    #[route(GET, "/w/now")]
    async fn now() -> &'static str {
        "now"
    }

    #[route(GET, "/w/sync")]
    fn sync() -> &'static str {
        "sync"
    }

    #[route(GET, "/w/forever/:id")]
    async fn forever(id: String) -> &'static str {
        let _guard = Guard(id);
        std::future::pending::<()>().await;
        "never"
    }

    #[label]
    async fn park(id: String) -> &'static str {
        let _guard = Guard(id);
        std::future::pending::<()>().await;
        "never"
    }

    /// Spends the task's whole budget on every poll and never ends: tokio's timers cannot
    /// fire in such a task, so its deadline must be seen another way.
    #[label]
    async fn starve(id: String) -> &'static str {
        let _guard = Guard(id);
        loop {
            gp_sdk::tokio::task::coop::consume_budget().await;
        }
    }

    /// The author's own type named `Request`: a label's input, not the HTTP request.
    #[derive(serde::Deserialize)]
    pub struct Request {
        q: String,
    }

    #[label]
    async fn search(request: Request) -> String {
        format!("searched {}", request.q)
    }

    /// How many futures with this id were dropped.
    #[label]
    fn dropped(id: String) -> usize {
        DROPPED.lock().unwrap().iter().filter(|d| **d == id).count()
    }

    /// A label's input, the context (shared) and an output, through a future.
    #[label]
    async fn next(n: i64, ctx: &Context) -> i64 {
        ctx.debug(format!("next after {n}"));
        n + 1
    }

    /// GETs `url` with hyper's client on the plugin's runtime: "status body".
    #[label]
    async fn fetch(url: String) -> Result<String, String> {
        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
        let uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let response = client.get(uri).await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?;
        Ok(format!("{status} {}", String::from_utf8_lossy(&body.to_bytes())))
    }
}
"#;

/// The `waits` fixture's library.
fn waits() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let sdk = workspace().join("gp-sdk");
        let extra = format!(
            "gp-sdk = {{ path = {:?}, features = [\"async\"] }}\nbytes = \"1\"\nserde = {{ version = \"1\", features = [\"derive\"] }}\nhttp-body-util = \"0.1\"\nhyper-util = {{ version = \"0.1\", features = [\"client-legacy\", \"http1\", \"tokio\"] }}\n",
            sdk.display().to_string()
        );
        let crates = [("waits", "1.0.0", WAITS)];
        let mut built = build_workspace(&target_dir().join("fixtures/waits"), &crates, &extra);
        built.remove("waits").expect("the waits fixture was built")
    })
}

#[test]
fn without_the_async_feature_an_async_handler_is_one_error_saying_what_to_add() {
    // Its own workspace: in this one, another crate's `features = ["async"]` would unify.
    let root = target_dir().join("fixtures/no-async");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::copy(workspace().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        plugin_manifest("no-async", "1.0.0", true),
    )
    .unwrap();
    std::fs::write(
        root.join("src/lib.rs"),
        "#[gp_sdk::plugin]
mod api {
    #[label]
    async fn now() -> i64 {
        7
    }
}
",
    )
    .unwrap();
    let error = cargo_build(&root.join("Cargo.toml"), &[], &options())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("error[E0277]: `async fn` handlers need gp-sdk's `async` feature"),
        "{error}"
    );
    assert!(
        error.contains(
            "in the plugin's Cargo.toml: `gp-sdk = { version = \"0.1\", features = [\"async\"] }`"
        ),
        "{error}"
    );
    // At the handler's `async`.
    assert!(error.contains("--> src/lib.rs:4:5"), "{error}");
    assert_eq!(error.matches("error[").count(), 1, "one error: {error}");
}

fn loaded() -> (tempfile::TempDir, Manager) {
    let base = base_dir();
    gp_host::build::install_library(waits(), base.path()).unwrap();
    gp_host::build::install_library(example("sample-async"), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    (base, manager)
}

#[test]
fn the_library_says_which_handlers_are_async_before_it_loads() {
    let info = gp_host::inspect(waits()).unwrap();
    let mut labels = info.details.async_labels.clone();
    labels.sort();
    assert_eq!(
        labels,
        ["fetch", "forever", "next", "now", "park", "search", "starve"]
    );
    assert!(!info.details.is_async("sync") && !info.details.is_async("dropped"));
    let shown = info.to_string();
    assert!(
        shown.contains("  GET     /w/now                           -> now (async)\n"),
        "{shown}"
    );
    assert!(
        shown.contains("  GET     /w/sync                          -> sync\n"),
        "{shown}"
    );
    assert!(
        shown.contains("async:       now, forever, park, starve, search, next, fetch\n"),
        "{shown}"
    );
    // A plugin without async handlers has no details to show.
    let sample = gp_host::inspect(example("sample-typed")).unwrap();
    assert!(!sample.details.has_async());
    assert!(!sample.to_string().contains("async"), "{sample}");
}

#[test]
fn a_plugin_that_takes_no_configuration_ignores_a_config_json() {
    // `waits` keeps an instance (its runtime) but takes no configuration: a file beside it,
    // even one naming a secret nobody set, is neither read nor hashed.
    let base = base_dir();
    gp_host::build::install_library(waits(), base.path()).unwrap();
    std::fs::write(
        base.path().join("waits/config.json"),
        r#"{"token": {"secret": "env:GP_TEST_WAITS_NEVER_SET"}}"#,
    )
    .unwrap();
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    let (spec, executor) = manager.get_plugin("waits").unwrap();
    assert_eq!(spec.details.configured, Some(false));
    assert_eq!(spec.config_sha256, None);
    assert_eq!(executor.call::<_, i64>("next", &1).unwrap(), 2);
}

#[test]
fn an_async_label_reads_its_input_and_writes_its_output() {
    let (_base, manager) = loaded();
    let waits = manager.executor("waits").unwrap();
    assert_eq!(waits.call::<_, i64>("next", &41).unwrap(), 42);
    // Many calls at once, each its own thread blocked on its own future.
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let waits = waits.clone();
            std::thread::spawn(move || waits.call::<_, i64>("next", &i).unwrap())
        })
        .collect();
    let sums: Vec<i64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(sums, (1..=8).collect::<Vec<i64>>());
    // The example: three waits at once take about as long as one.
    let sample = manager.executor("sample-async").unwrap();
    let took = sample.call::<_, u64>("gather", &[200, 200, 200]).unwrap();
    assert!((200..600).contains(&took), "gather took {took} ms");
    let error = sample.call::<_, u64>("gather", &[20_000]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `sample-async` failed: wait at most 10000 ms, not 20000"
    );
}

#[test]
fn the_deadline_drops_the_future_where_it_waits() {
    let (_base, manager) = loaded();
    let waits = manager.executor("waits").unwrap();
    let started = Instant::now();
    let mut ctx = Context::new()
        .with_label("park")
        .with_timeout(Duration::from_millis(200));
    ctx.set("input", "deadline");
    let error = waits.execute(&mut ctx).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "call to plugin `waits` passed its deadline"
    );
    assert!(
        took >= Duration::from_millis(200),
        "returned after {took:?}"
    );
    // The call returned after the future was dropped, not before.
    let dropped: usize = waits.call("dropped", &"deadline").unwrap();
    assert_eq!(dropped, 1, "the waiting future was dropped");
    // A cancellation (a client gone) ends it too.
    let mut ctx = Context::new().with_label("park");
    ctx.set("input", "cancelled");
    let token = ctx.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        token.cancel();
    });
    assert!(waits.execute(&mut ctx).is_err());
    canceller.join().unwrap();
    assert_eq!(waits.call::<_, usize>("dropped", &"cancelled").unwrap(), 1);
    // A future that spends its whole budget on every poll ends at its deadline too.
    let mut ctx = Context::new()
        .with_label("starve")
        .with_timeout(Duration::from_millis(200));
    ctx.set("input", "starved");
    let error = waits.execute(&mut ctx).unwrap_err();
    assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error:?}");
    assert_eq!(waits.call::<_, usize>("dropped", &"starved").unwrap(), 1);
    // An input type of the author's named `Request` is theirs, async or not.
    let found: String = waits
        .call("search", &serde_json::json!({"q": "gp"}))
        .unwrap();
    assert_eq!(found, "searched gp");
}

#[test]
fn an_async_handler_calls_an_http_service_with_an_async_client() {
    let (_base, manager) = loaded();
    let url = http_server([("/hello".to_owned(), Reply::Body(b"hi there".to_vec()))].into());
    let waits = manager.executor("waits").unwrap();
    let got: String = waits.call("fetch", &format!("{url}/hello")).unwrap();
    assert_eq!(got, "200 hi there");
    let got: String = waits.call("fetch", &format!("{url}/nothing")).unwrap();
    assert!(got.starts_with("404 "), "{got}");
}

// Long: one scenario, served: the example's routes, then where calls run, then a deadline.
#[test]
fn a_server_answers_async_routes_and_never_runs_them_inline() {
    let (_base, manager) = loaded();
    let timeout = Duration::from_millis(300);
    let server = PluginServer::builder(manager.clone())
        .route(
            "waits",
            "forever",
            RouteLimits::default().with_timeout(timeout),
        )
        .build();
    let running = Running::start(&server);
    let addr = running.addr;
    // The example.
    assert_eq!(
        get(addr, "/api/async/wait/20").json(),
        json!({"waited_ms": 20})
    );
    let reply = get(addr, "/api/async/wait/20000");
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({"error": "wait at most 10000 ms, not 20000"})
    );
    // A sync route that is fast runs inline after a streak of fast calls: the control.
    let inline = || counted(&server, "gp_http_calls_inline_total");
    for _ in 0..200 {
        assert_eq!(get(addr, "/w/sync").text(), "sync");
    }
    let after_sync = inline();
    assert!(after_sync > 0, "the sync route ran inline");
    // An async route as fast never does.
    for _ in 0..200 {
        assert_eq!(get(addr, "/w/now").text(), "now");
    }
    assert_eq!(inline(), after_sync, "no async call ran inline");
    // At the route's deadline: 504, and the future was dropped.
    let waits = manager.executor("waits").unwrap();
    let reply = get(addr, "/w/forever/served");
    assert_eq!(reply.status, 504);
    eventually(
        "the future of the request that timed out to be dropped",
        Duration::from_secs(2),
        || waits.call::<_, usize>("dropped", &"served").unwrap() == 1,
    );
}
