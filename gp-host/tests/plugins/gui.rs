//! The management GUI in a real browser: Debian's Chromium, headless, driven through
//! chromedriver (WebDriver) on loopback, against the admin API serving real plugins.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`apt-get install chromium
//! chromium-driver`). Without them the test says so loudly and passes, unless
//! `GP_BROWSER_TESTS=required` (as CI sets it), where it fails. Every wait is bounded.

use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use gp_host::http::{Admin, AdminToken, PluginServer};
use gp_host::{Context, Manager};

use crate::harness::{base_dir, example, workspace};
use crate::http::Running;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any one thing may take to show up in the page.
const WAIT: Duration = Duration::from_secs(10);

/// Whether the browser is installed; if not, fails (`GP_BROWSER_TESTS=required`) or says
/// loudly that the test is skipped.
fn browser_installed() -> bool {
    let missing: Vec<String> = [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(path, package)| format!("{path} (Debian package `{package}`)"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(" and ");
    if std::env::var("GP_BROWSER_TESTS").as_deref() == Ok("required") {
        panic!(
            "GP_BROWSER_TESTS=required, but {missing} is missing: apt-get install chromium chromium-driver"
        );
    }
    // Straight to the process's stderr: the test harness would hide an `eprintln!` of a
    // passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\n\
         ************************************************************************\n\
         * SKIPPED the GUI browser test: {missing} is missing.\n\
         * Install it with: apt-get install chromium chromium-driver\n\
         * (set GP_BROWSER_TESTS=required to make this a failure instead)\n\
         ************************************************************************\n"
    );
    false
}

/// chromedriver on a loopback port of its own, in a process group of its own (with the
/// browsers it starts); killed, group and all, when dropped.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let dir = tempfile::Builder::new()
            .prefix("gp-chromedriver-")
            .tempdir()
            .unwrap();
        let log = dir.path().join("chromedriver.log");
        // A free port: bound, noted and released (chromedriver cannot take a listener).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"));
        let mut driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + WAIT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return driver;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before answering: {}",
                    driver.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on port {port} within {WAIT:?}: {}",
                driver.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any browser it left behind.
        #[cfg(target_os = "linux")]
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group this test created; no memory is involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new browser session through `driver`, in a fresh profile.
async fn browser(driver: &Driver, profile: &Path) -> Client {
    let capabilities = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut builder = ClientBuilder::new(connector);
    builder.capabilities(capabilities);
    let connecting = builder.connect(&driver.url);
    match tokio::time::timeout(Duration::from_secs(60), connecting).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => panic!("starting Chromium: {e}\n{}", driver.log_text()),
        Err(_) => panic!("Chromium did not start within 60 s\n{}", driver.log_text()),
    }
}

/// Polls `probe` until it gives a value, for at most [`WAIT`]; panics naming `what` and
/// the last thing `probe` saw.
async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = match probe().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "waited {WAIT:?} for {what}; last saw: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn css(testid: &str) -> String {
    format!("[data-testid=\"{testid}\"]")
}

/// The text of the element with `data-testid` `testid` once it is shown and contains
/// `needle`.
async fn wait_text(client: &Client, testid: &str, needle: &str) -> String {
    let selector = css(testid);
    until(&format!("{selector} to show {needle:?}"), || async {
        let element = client
            .find(Locator::Css(&selector))
            .await
            .map_err(|e| format!("no element ({e})"))?;
        if !element.is_displayed().await.map_err(|e| e.to_string())? {
            return Err("the element is hidden".into());
        }
        let text = element.text().await.map_err(|e| e.to_string())?;
        if text.contains(needle) {
            Ok(text)
        } else {
            Err(format!("{text:?}"))
        }
    })
    .await
}

/// Clicks the element with `data-testid` `testid` once it is shown and clickable.
async fn click(client: &Client, testid: &str) {
    let selector = css(testid);
    until(&format!("{selector} to be clicked"), || async {
        let element = client
            .find(Locator::Css(&selector))
            .await
            .map_err(|e| format!("no element ({e})"))?;
        element.click().await.map_err(|e| e.to_string())
    })
    .await
}

/// Types `text` into the (emptied) field with `data-testid` `testid`.
async fn type_into(client: &Client, testid: &str, text: &str) {
    let selector = css(testid);
    until(&format!("{selector} to take {text:?}"), || async {
        let element = client
            .find(Locator::Css(&selector))
            .await
            .map_err(|e| format!("no element ({e})"))?;
        element.clear().await.map_err(|e| e.to_string())?;
        element.send_keys(text).await.map_err(|e| e.to_string())?;
        match element.prop("value").await.map_err(|e| e.to_string())? {
            Some(value) if value == text => Ok(()),
            other => Err(format!("the field holds {other:?}")),
        }
    })
    .await
}

/// The page down to its last line (the body's box), saved as `target/NAME`.
async fn save_page(client: &Client, name: &str) -> PathBuf {
    let png = client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .screenshot()
        .await
        .unwrap();
    save_screenshot(&png, name)
}

fn save_screenshot(png: &[u8], name: &str) -> PathBuf {
    let dir = workspace().join("target");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap();
    path
}

/// Some calls, one of them failing, so the tables and the histogram have something to show.
fn some_traffic(manager: &Manager) {
    let sample = manager.executor("sample").unwrap();
    for i in 0..40 {
        let mut ctx = Context::new();
        ctx.set_as(
            "sample",
            &serde_json::json!({"name": format!("caller {i}")}),
        )
        .unwrap();
        sample.execute(&mut ctx).unwrap();
    }
    let dispatch = manager.executor("dispatch").unwrap();
    for _ in 0..12 {
        let mut ctx = Context::new();
        ctx.set_label(Some("counter.add".into()));
        dispatch.execute(&mut ctx).unwrap();
    }
    let mut unlabelled = Context::new();
    assert!(dispatch.execute(&mut unlabelled).is_err());
}

struct Scene {
    manager: Manager,
    token: AdminToken,
    gui: String,
}

#[test]
fn the_gui_signs_in_lists_unloads_and_tries_plugins_in_a_real_browser() {
    if !browser_installed() {
        return;
    }
    let started = Instant::now();
    let base = base_dir();
    for name in ["sample", "dispatch"] {
        gp_host::build::install_library(example(name), base.path()).unwrap();
    }
    // Every call timed, so that the histogram shows them all.
    // `sample` runs isolated (the test build's gp is its runner): the page says so.
    let manager = Manager::builder(base.path())
        .latency_sampling(1)
        .isolation(
            gp_host::isolation::Isolation::named(["sample"]).program(env!("CARGO_BIN_EXE_gp")),
        )
        .build();
    let server = PluginServer::new(manager.clone());
    let token = AdminToken::generate();
    let admin = Admin::builder(manager.clone(), token.clone())
        .server(server.clone())
        .build();
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    admin.mark_ready();
    some_traffic(&manager);
    let running = Running::serve(admin.router());
    let scene = Scene {
        manager: manager.clone(),
        token,
        gui: gp_host::http::gui_url(running.addr),
    };

    in_browser(|client| scenario(client, scene));
    eprintln!("the GUI browser test took {:?}", started.elapsed());
}

/// Runs `scenario` in a fresh headless Chromium (its own chromedriver and profile) as a task
/// of its own, so that, whatever it does, the browser is closed before the test reports;
/// a panic in it is the test's.
fn in_browser<F, Fut>(scenario: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let driver = Driver::start();
    let profile = tempfile::Builder::new()
        .prefix("gp-chromium-")
        .tempdir()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let client = browser(&driver, profile.path()).await;
        let outcome = tokio::spawn(scenario(client.clone())).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        outcome
    });
    drop(driver);
    if let Err(error) = outcome {
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("the browser scenario did not finish: {error}"),
        }
    }
}

async fn scenario(client: Client, scene: Scene) {
    let Scene {
        manager,
        token,
        gui,
    } = scene;
    client.goto(&gui).await.unwrap();

    // The token prompt; a wrong token is refused with the API's 401 message.
    wait_text(&client, "token-submit", "Sign in").await;
    type_into(&client, "token", "not-the-token-but-long-enough").await;
    click(&client, "token-submit").await;
    wait_text(
        &client,
        "token-error",
        "the token is not valid for this server",
    )
    .await;
    assert!(
        client
            .find(Locator::Css(&css("plugins-table")))
            .await
            .is_err(),
        "nothing but the prompt is shown without a valid token"
    );

    // The right token: signed in, on the overview.
    type_into(&client, "token", token.secret()).await;
    click(&client, "token-submit").await;
    wait_text(&client, "count-serving", "2").await;
    let url = client.current_url().await.unwrap();
    assert!(
        !url.as_str().contains(token.secret()),
        "the token stays out of the URL: {url}"
    );
    // From here on, record any content security policy violation.
    client
        .execute(
            "window.gpViolations = []; document.addEventListener('securitypolicyviolation', (e) => window.gpViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
            vec![],
        )
        .await
        .unwrap();
    wait_text(&client, "overview-latency", "sample").await;
    wait_text(&client, "events", "loaded").await;

    // The plugins table lists both plugins, serving, with their calls.
    click(&client, "nav-plugins").await;
    wait_text(&client, "plugin-row-sample", "sample").await;
    wait_text(&client, "state-sample", "serving").await;
    wait_text(&client, "state-dispatch", "serving").await;
    wait_text(&client, "version-sample", "0.1.0").await;
    wait_text(&client, "plugin-row-sample", "40").await;
    wait_text(
        &client,
        "plugin-row-dispatch",
        "label is not set in the plugin context",
    )
    .await;
    // The page down to its last line (the body's box), for the README's picture.
    save_page(&client, "gui-plugins.png").await;

    // Unload dispatch: asked in the page, cancelled once, then confirmed.
    click(&client, "unload-dispatch").await;
    wait_text(&client, "confirm-title", "Unload dispatch?").await;
    click(&client, "confirm-no").await;
    until("the dialog to close", || async {
        let shown = client
            .find(Locator::Css(&css("confirm")))
            .await
            .map_err(|e| e.to_string())?
            .is_displayed()
            .await
            .map_err(|e| e.to_string())?;
        if shown {
            Err("still shown".into())
        } else {
            Ok(())
        }
    })
    .await;
    assert!(manager.get_plugin("dispatch").is_ok(), "cancelled: kept");
    click(&client, "unload-dispatch").await;
    wait_text(&client, "confirm-title", "Unload dispatch?").await;
    click(&client, "confirm-yes").await;
    wait_text(
        &client,
        "status",
        "Unload dispatch: unloaded (on_unload: absent",
    )
    .await;
    until("the manager to drop dispatch", || async {
        match manager.get_plugin("dispatch") {
            Err(_) => Ok(()),
            Ok(_) => Err("still loaded".into()),
        }
    })
    .await;
    until("the dispatch row to leave the serving state", || async {
        let Ok(row) = client.find(Locator::Css(&css("plugin-row-dispatch"))).await else {
            return Ok(()); // gone from the table
        };
        let state = row.attr("data-state").await.map_err(|e| e.to_string())?;
        match state.as_deref() {
            Some("serving") | None => Err(format!("state {state:?}")),
            Some(_) => Ok(()),
        }
    })
    .await;
    wait_text(&client, "state-sample", "serving").await;

    // The overview's live event list got the unload from the event stream.
    click(&client, "nav-overview").await;
    wait_text(&client, "events", "unloaded version").await;
    wait_text(&client, "count-unloaded", "1").await;
    // Rates need two refreshes (2 s apart); nothing calls a plugin meanwhile.
    wait_text(&client, "rate-calls", "0.0").await;
    wait_text(&client, "rate-errors", "0.0").await;
    let overview_png = client.screenshot().await.unwrap();
    save_screenshot(&overview_png, "gui-overview.png");

    // Try it on sample's page.
    click(&client, "nav-plugins").await;
    click(&client, "plugin-link-sample").await;
    wait_text(&client, "facts", "0.1.0").await;
    wait_text(&client, "facts", "isolated: runner pid ").await;
    wait_text(&client, "facts", ", 0 restarts, 0 crashes, circuit closed").await;
    type_into(
        &client,
        "try-values",
        r#"{"sample": {"name": "from the browser"}}"#,
    )
    .await;
    click(&client, "try-run").await;
    let result = wait_text(
        &client,
        "try-result",
        "sample plugin says: from the browser",
    )
    .await;
    assert!(result.contains("\"greeting\""), "{result}");
    // A failing call shows the API's error, in the same place.
    type_into(&client, "try-values", "{}").await;
    click(&client, "try-run").await;
    wait_text(&client, "try-result", "context value `sample` is not set").await;
    until("the histogram to draw its bars", || async {
        let bars = client
            .find_all(Locator::Css(&css("histogram-bar")))
            .await
            .map_err(|e| e.to_string())?;
        if bars.is_empty() {
            Err("no bars".into())
        } else {
            Ok(())
        }
    })
    .await;
    wait_text(&client, "plugin-routes", "/api/plugin/samples").await;
    client
        .execute("window.scrollTo(0, 0);", vec![])
        .await
        .unwrap();
    let png = client.screenshot().await.unwrap();
    let path = save_screenshot(&png, "gui-screenshot.png");
    eprintln!(
        "GUI screenshots: {} (and gui-plugins.png, gui-overview.png beside it)",
        path.display()
    );

    // The routes page.
    click(&client, "nav-routes").await;
    wait_text(&client, "routes-table", "/api/plugin/sample/:id").await;

    let violations = client
        .execute("return window.gpViolations;", vec![])
        .await
        .unwrap();
    assert_eq!(
        violations,
        serde_json::json!([]),
        "content security policy violations"
    );

    // A token that stops being valid sends the page back to the prompt, with the message.
    // (Changed from a page of the same origin without the GUI's script, so that no request
    // of the GUI races the change.)
    client
        .goto(&gui.replace("/ui/", "/api/v1/healthz"))
        .await
        .unwrap();
    client
        .execute(
            "sessionStorage.setItem('gp.admin.token', 'revoked-token-0123456789');",
            vec![],
        )
        .await
        .unwrap();
    client.goto(&format!("{gui}#/plugins")).await.unwrap();
    wait_text(
        &client,
        "token-error",
        "the token is not valid for this server",
    )
    .await;
    let stored = client
        .execute("return sessionStorage.getItem('gp.admin.token');", vec![])
        .await
        .unwrap();
    assert_eq!(
        stored,
        serde_json::Value::Null,
        "a refused token is forgotten"
    );
}

/// Issue 17, item 6: the Hub page searches the registry `gp serve --registry` names, and
/// installs, then upgrades, a plugin with one confirmed click each, through the same
/// verification as `gp install`; what it installed serves calls.
#[test]
fn the_hub_page_installs_and_upgrades_from_a_real_registry_in_a_real_browser() {
    use gp_host::hub::{Client as Hub, ClientOptions, Credentials, Namespace};
    if !browser_installed() {
        return;
    }
    let Some(registry) = crate::hub::start_registry(crate::hub::Auth::None, false) else {
        return;
    };
    let hub = || {
        Hub::new(ClientOptions {
            credentials: Credentials::Anonymous,
            ..ClientOptions::default()
        })
    };
    let namespace = Namespace::parse(&format!("{}/team", registry.host)).unwrap();
    let scratch = base_dir();
    for fixture in ["counter-v1", "sample"] {
        let (package, _) = crate::hub::packed(fixture, scratch.path());
        let name = if fixture == "sample" {
            "sample"
        } else {
            "counter"
        };
        hub()
            .push(&package, &namespace.reference(name), &Default::default())
            .unwrap();
    }
    let (v2, _) = crate::hub::packed("counter-v2", scratch.path());

    let base = base_dir();
    let manager = Manager::new(base.path());
    let token = AdminToken::generate();
    let admin = Admin::builder(manager.clone(), token.clone())
        .hub(namespace.clone(), hub())
        .build();
    assert!(manager.load_plugins().is_ok());
    admin.mark_ready();
    let running = Running::serve(admin.router());
    let gui = gp_host::http::gui_url(running.addr);
    let host = registry.host.clone();
    let calls = manager.clone();
    in_browser(move |client| async move {
        client.goto(&format!("{gui}#/hub")).await.unwrap();
        type_into(&client, "token", token.secret()).await;
        click(&client, "token-submit").await;
        wait_text(&client, "hub-registry", &format!("oci://{host}/team")).await;
        // Every plugin of the namespace, none of them here.
        wait_text(&client, "hub-row-counter", "1.0.0").await;
        wait_text(&client, "hub-row-sample", "The seed's sample plugin").await;
        wait_text(&client, "hub-here-counter", "—").await;

        // Install: one click, confirmed in the page, naming the exact digest.
        click(&client, "hub-install-counter").await;
        wait_text(&client, "confirm-title", "Install counter 1.0.0?").await;
        wait_text(
            &client,
            "confirm-text",
            &format!("oci://{host}/team/counter:1.0.0@sha256:"),
        )
        .await;
        click(&client, "confirm-yes").await;
        wait_text(
            &client,
            "status-text",
            "Install counter: installed (plugin: counter, version: 1.0.0)",
        )
        .await;
        wait_text(&client, "hub-here-counter", "1.0.0 (serving)").await;
        wait_text(&client, "hub-current-counter", "up to date").await;
        assert_eq!(crate::watching::version(&calls), "1.0.0");

        // A new version is published: a search finds it, and the row offers the upgrade.
        tokio::task::spawn_blocking(move || {
            hub().push(&v2, &namespace.reference("counter"), &Default::default())
        })
        .await
        .unwrap()
        .unwrap();
        type_into(&client, "hub-query", "COUNT").await;
        click(&client, "hub-search").await;
        wait_text(&client, "hub-row-counter", "2.0.0").await;
        assert!(
            client
                .find(Locator::Css(&css("hub-row-sample")))
                .await
                .is_err(),
            "the search for COUNT leaves sample out"
        );
        click(&client, "hub-upgrade-counter").await;
        wait_text(&client, "confirm-title", "Upgrade counter 2.0.0?").await;
        wait_text(&client, "confirm-text", "swaps it in for 1.0.0").await;
        click(&client, "confirm-yes").await;
        wait_text(
            &client,
            "status-text",
            "Upgrade counter: installed (plugin: counter, version: 2.0.0)",
        )
        .await;
        wait_text(&client, "hub-here-counter", "2.0.0 (serving)").await;
        assert_eq!(crate::watching::version(&calls), "2.0.0");
        save_page(&client, "gui-hub.png").await;
    });
}
