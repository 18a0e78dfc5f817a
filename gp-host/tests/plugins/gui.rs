//! The management GUI in a real browser: Debian's Chromium, headless, driven through
//! chromedriver (WebDriver) on loopback, against the admin API serving real plugins.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`apt-get install chromium
//! chromium-driver`). Without them the tests fail, saying what to install, unless
//! `GP_BROWSER_TESTS=skip` (then they are skipped, and the skip is said on stderr). Every wait
//! is bounded.
//!
//! This file holds what the GUI must do; driving the browser (chromedriver, waits, clicks,
//! screenshots) is in `gui/browser.rs`.

use std::time::Instant;

use fantoccini::{Client, Locator};
use gp_host::http::{Admin, AdminToken, PluginServer};
use gp_host::{Context, Manager};

use crate::harness::{base_dir, example};
use crate::http::Running;

mod browser;
mod signin;

use browser::{
    browser_installed, click, css, in_browser, save_page, save_screenshot, type_into, until,
    wait_text,
};

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
    for name in ["sample", "dispatch", "dispatch-typed"] {
        gp_host::build::install_library(example(name), base.path()).unwrap();
    }
    // A configuration: the page shows its schema's keys and its hash, never its values.
    std::fs::write(
        base.path().join("dispatch-typed/config.json"),
        r#"{"step": 5}"#,
    )
    .unwrap();
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

// Long: one scenario, read top to bottom: each step starts from the state the last one left.
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
    wait_text(&client, "count-serving", "3").await;
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
    // The Label field offers the labels of the plugin's routes, as its manifest declares them.
    let (spec, _) = manager.get_plugin("sample").unwrap();
    let declared: Vec<String> = spec
        .manifest
        .http_services
        .as_ref()
        .map(|http| http.routes.iter().map(|r| r.label.clone()).collect())
        .unwrap_or_default();
    assert_eq!(declared, ["plugin.get", "plugin.post"]);
    let offered = client
        .execute(
            "const input = document.querySelector('[data-testid=\"try-label\"]'); return [...input.list.options].map((o) => o.value);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(offered, serde_json::json!(declared));
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

    // A plugin with a configuration: its schema's keys (`?` if optional) and the file's hash.
    let (typed, _) = manager.get_plugin("dispatch-typed").unwrap();
    let hash = typed
        .config_sha256
        .clone()
        .expect("dispatch-typed has a config.json");
    click(&client, "nav-plugins").await;
    click(&client, "plugin-link-dispatch-typed").await;
    wait_text(
        &client,
        "facts",
        &format!("Config {{step}}, optional, config.json {}", &hash[..12]),
    )
    .await;

    // Disabled, sample cannot be called: its page hides "Try it" and says why.
    manager
        .disable("sample", "checked in the GUI test")
        .unwrap();
    click(&client, "nav-plugins").await;
    wait_text(&client, "state-sample", "disabled").await;
    click(&client, "plugin-link-sample").await;
    wait_text(
        &client,
        "try-not-serving",
        "sample is disabled: enable it to try it.",
    )
    .await;
    let form_shown = client
        .find(Locator::Css(&css("try-form")))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap();
    assert!(!form_shown, "no Try it form for a disabled plugin");

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
// Long: one scenario, read top to bottom: each step starts from the state the last one left.
#[test]
fn the_hub_page_installs_and_upgrades_from_a_real_registry_in_a_real_browser() {
    use gp_host::hub::{Client as Hub, Namespace};
    if !browser_installed() {
        return;
    }
    let Some(registry) = crate::hub::start_registry(crate::hub::Auth::None, false) else {
        return;
    };
    let hub = || Hub::new(crate::hub::anonymous());
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
    // A repository whose name lies about the plugin it holds: gp install would refuse it.
    crate::hub::copy_across(&registry.host, "team/sample", "0.1.0", "team/liar");
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
        // What install would refuse is marked, with why, and offers no install.
        wait_text(
            &client,
            "hub-refused-liar",
            "refused: it holds the plugin `sample`, not `liar` as the repository's name says",
        )
        .await;
        assert!(client
            .find(Locator::Css("[data-testid=hub-install-liar]"))
            .await
            .is_err());

        // Install: one click, confirmed in the page, naming the exact digest.
        click(&client, "hub-install-counter").await;
        wait_text(&client, "confirm-title", "Install counter 1.0.0?").await;
        wait_text(
            &client,
            "confirm-text",
            &format!("oci://{host}/team/counter:1.0.0@sha256:"),
        )
        .await;
        // The long reference wraps inside the dialog instead of running past its edge.
        let fits = client
            .execute(
                "const e = document.querySelector('[data-testid=confirm-text]'); return e.scrollWidth <= e.clientWidth + 1 && e.getBoundingClientRect().right <= document.querySelector('.dialog').getBoundingClientRect().right;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            fits,
            serde_json::Value::Bool(true),
            "the install dialog wraps its reference"
        );
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
