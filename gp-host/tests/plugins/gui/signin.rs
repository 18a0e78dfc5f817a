//! Signing in through the link `gp serve` prints, and the overview's charts of the last 15
//! minutes moving after calls: `gp serve` itself (not an embedded plane), as an operator runs it.

use fantoccini::Locator;

use super::browser::{browser_installed, in_browser, until, wait_text};
use crate::harness::{base_dir, example};

/// Issue 30, item 6: `gp serve --print-signin-link` prints a link that signs the browser in
/// (the token in the fragment, read by the page, then taken out of the address bar), and the
/// overview's charts of the last 15 minutes move after calls, fed by the event stream.
#[test]
fn the_printed_signin_link_signs_in_and_the_charts_move_after_calls() {
    if !browser_installed() {
        return;
    }
    let base = base_dir();
    gp_host::build::install_library(example("sample"), base.path()).unwrap();
    let (_serving, routes, link) = serve_with_signin_link(base.path());
    let token = std::fs::read_to_string(base.path().join(".gp-runtime/admin-token")).unwrap();
    let token = token.trim().to_owned();
    assert!(link.ends_with(&format!("/ui/#token={token}")), "{link}");

    in_browser(move |client| async move {
        // Without the link: the prompt, its help quoting commands as code, not backticks.
        let plain = link.split('#').next().unwrap().to_owned();
        client.goto(&plain).await.unwrap();
        let help = wait_text(&client, "token-help", "prints a sign-in link").await;
        assert!(!help.contains('`'), "{help}");
        let code = client
            .find(Locator::Css("[data-testid=token-help] code"))
            .await
            .unwrap();
        assert_eq!(code.text().await.unwrap(), "gp serve");

        // The link, opened afresh (not as a hash change of the page already open).
        client.goto("about:blank").await.unwrap();
        client.goto(&link).await.unwrap();
        // Signed in by the link alone: the overview, and no token in the address bar.
        wait_text(&client, "count-serving", "1").await;
        let url = client.current_url().await.unwrap();
        assert!(url.as_str().ends_with("/ui/#/"), "{url}");
        assert!(!url.as_str().contains(&token), "{url}");
        let stored = client
            .execute("return sessionStorage.getItem('gp.admin.token');", vec![])
            .await
            .unwrap();
        assert_eq!(stored, serde_json::Value::String(token.clone()));

        // The charts, before and after calls.
        until("the charts to show sample", || async {
            let series = client
                .find(Locator::Css(
                    "[data-testid=chart-calls] [data-plugin=sample]",
                ))
                .await
                .map_err(|e| e.to_string())?;
            series.attr("data-last").await.map_err(|e| e.to_string())
        })
        .await;
        let moved = |testid: &'static str| {
            let client = client.clone();
            async move {
                until(&format!("{testid} of sample to move"), || async {
                    let series = client
                        .find(Locator::Css(&format!(
                            "[data-testid={testid}] [data-plugin=sample]"
                        )))
                        .await
                        .map_err(|e| e.to_string())?;
                    let last = series.attr("data-last").await.map_err(|e| e.to_string())?;
                    match last.as_deref().map(str::parse::<f64>) {
                        Some(Ok(value)) if value > 0.0 => Ok(value),
                        other => Err(format!("data-last {other:?}")),
                    }
                })
                .await
            }
        };
        let calls = tokio::task::spawn_blocking(move || {
            for i in 0..40 {
                let reply = crate::http::get(routes, &format!("/api/plugin/sample/{i}"));
                assert_eq!(reply.status, 200);
            }
        });
        calls.await.unwrap();
        let rate = moved("chart-calls").await;
        assert!(rate > 0.0);
        moved("chart-p99").await;
        wait_text(&client, "history-charts", "sample").await;
    });
}

/// A child process, killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `gp serve BASE --print-signin-link` on free ports, sampling its history every 300 ms: the
/// process, its plugin listener's address, and the sign-in link it printed.
fn serve_with_signin_link(base: &std::path::Path) -> (Killed, std::net::SocketAddr, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gp"))
        .arg("serve")
        .arg(base)
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--print-signin-link", "--history-interval", "300ms"])
        .env_remove("GP_ADMIN_TOKEN")
        .env_remove("GP_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let serving = Killed(child);
    let (mut routes, mut link) = (None, None);
    while link.is_none() {
        let line = lines
            .next()
            .expect("gp serve printed its sign-in link")
            .unwrap();
        if let Some(rest) = line.strip_prefix("serving plugin routes on ") {
            let url = rest.split_whitespace().next().unwrap();
            let addr = url.trim_start_matches("http://").trim_end_matches('/');
            routes = Some(addr.parse::<std::net::SocketAddr>().unwrap());
        }
        if let Some(rest) = line.strip_prefix("sign in to the GUI: ") {
            link = Some(rest.to_owned());
        }
    }
    let (routes, link) = (routes.unwrap(), link.unwrap());
    // Drain the rest of its output, so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (serving, routes, link)
}
