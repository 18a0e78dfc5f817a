//! The plugins the HTTP tests serve: `web` (two versions, for upgrades under load) and
//! `web-clash` (whose routes conflict with web's), built once per test run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::harness::{build_workspace, target_dir};

/// Every route the HTTP tests exercise, one label each, in the seed's beego syntax.
const WEB: &str = r#"use std::time::{Duration, Instant};

use gp_sdk::{bail, plugin_entry, Context, Result};

#[plugin_entry(
    name = "web",
    driver = "beego",
    route(GET, "/web/echo/:id", label = "echo"),
    route(POST, "/web/echo", label = "echo.post"),
    route(GET, "/web/items/:id:int", label = "item"),
    route(GET, "/web/files/*", label = "files"),
    route(GET, "/web/status/:code", label = "status"),
    route(GET, "/web/empty", label = "empty"),
    route(GET, "/web/bytes", label = "bytes"),
    route(GET, "/web/headers", label = "headers"),
    route(GET, "/web/fail", label = "fail"),
    route(GET, "/web/reject", label = "reject"),
    route(GET, "/web/panic", label = "panic"),
    route(GET, "/web/slow", label = "slow"),
    route(GET, "/web/hang", label = "hang"),
    route(GET, "/web/spin", label = "spin"),
    route(GET, "/web/bad-status", label = "bad.status"),
    route(POST, "/web/json", label = "json"),
    route(GET, "/web/version", label = "version"),
    route(GET, "/web/context/:id", label = "context"),
)]
fn execute(ctx: &mut Context) -> Result {
    let label = ctx.label().unwrap_or_default().to_owned();
    match label.as_str() {
        "echo" | "echo.post" => {
            let r = ctx.request()?;
            let echo = serde_json::json!({
                "label": label,
                "method": r.method(),
                "path": r.path(),
                "route": r.route(),
                "id": r.param("id"),
                "tags": r.query_all("tag"),
                "q": r.query("q"),
                "accept": r.header("Accept"),
                "body": r.text()?,
                "remote_ip_is_loopback": r.remote_addr().starts_with("127.0.0.1:"),
                "request_id": r.id(),
                "json": ctx.get("http.request.json").map(|v| v.to_json()),
            });
            ctx.respond_json(&echo)
        }
        "context" => context(ctx),
        "item" => {
            let id: i64 = ctx.request()?.param("id").unwrap_or_default().parse()?;
            ctx.respond_json(&serde_json::json!({ "id": id }))
        }
        "files" => {
            let splat = ctx.request()?.param("splat").unwrap_or_default().to_owned();
            ctx.respond_text(splat);
            Ok(())
        }
        "status" => {
            let code: u16 = ctx.request()?.param("code").unwrap_or_default().parse()?;
            ctx.respond(code)?;
            ctx.respond_text(format!("status {code}"));
            Ok(())
        }
        "empty" => Ok(()),
        "bytes" => {
            ctx.respond_bytes(vec![0u8, 1, 2, 255]);
            Ok(())
        }
        "headers" => headers(ctx),
        "fail" => bail!("database unreachable"),
        "reject" => Err(ctx.reject(404, "no item 7")),
        "panic" => panic!("the web plugin panicked on purpose"),
        "slow" => {
            // Waits for cancellation (at most 10 s), then leaves a mark where the test said.
            let marker = ctx.request()?.query("marker").unwrap_or_default().to_owned();
            let start = Instant::now();
            while !ctx.is_cancelled() && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if !marker.is_empty() && ctx.is_cancelled() {
                std::fs::write(&marker, format!("cancelled after {} ms", start.elapsed().as_millis()))?;
            }
            Err(gp_sdk::Error::cancelled())
        }
        "hang" => {
            // Ignores cancellation until the file `until` exists (at most 10 s).
            let until = ctx.request()?.query("until").unwrap_or_default().to_owned();
            let start = Instant::now();
            while !std::path::Path::new(&until).exists() && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(5));
            }
            ctx.respond_text("woke up");
            Ok(())
        }
        "spin" => Ok(spin(ctx.get_str("until").unwrap_or_default())),
        "bad.status" => {
            match ctx.request()?.query("what") {
                Some("content-type") => ctx.set("http.response.content_type", 7),
                Some("content-type-value") => ctx.set("http.response.content_type", "a\nb"),
                _ => ctx.set("http.response.status", 42),
            }
            Ok(())
        }
        "json" => {
            #[derive(serde::Deserialize, serde::Serialize)]
            struct Item {
                name: String,
            }
            let item: Item = ctx.request_json()?;
            ctx.respond(201)?;
            ctx.respond_json(&item)
        }
        "version" => {
            ctx.respond_text(env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        other => bail!("no label {other:?}"),
    }
}

/// The `headers` route: headers set twice, dropped ones, and two content types.
fn headers(ctx: &mut Context) -> Result {
    // A content type set twice: the later one is sent.
    ctx.respond_json(&"first")?;
    ctx.set_header("Content-Type", "text/x-last");
    ctx.set_header("x-a", "1");
    ctx.set_header("x-a", "2");
    ctx.set_header("connection", "close");
    ctx.set_header("content-length", "999");
    ctx.set_header("transfer-encoding", "chunked");
    ctx.respond_text("with headers");
    Ok(())
}

/// The request's keys as plain context values: listed, overwritten, removed.
fn context(ctx: &mut Context) -> Result {
    let mut keys = ctx.keys();
    keys.sort();
    ctx.set("http.request.path", "/rewritten");
    let path = ctx.request()?.path().to_owned();
    let removed = ctx.remove("http.request.params").map(|v| v.to_json());
    let after = ctx.get("http.request.params").map(|v| v.to_json());
    let again = ctx.remove("http.request.params").map(|v| v.to_json());
    // The parameter under its own key, which `param` reads: still there without the map.
    let own = ctx.get_str("http.request.param.id").map(str::to_owned);
    let param = ctx.request()?.param("id").map(str::to_owned);
    let missing = ctx.request()?.param("nope").map(str::to_owned);
    ctx.respond_json(&serde_json::json!({
        "keys": keys, "path": path, "removed": removed, "after": after, "again": again,
        "method": ctx.request()?.method(), "own": own, "param": param, "missing": missing,
    }))
}

/// Busy-loops, never asking whether its call is cancelled, until the file `until` exists (at
/// most 60 s).
fn spin(until: &str) {
    let start = Instant::now();
    let mut turns = 0u64;
    while start.elapsed() < Duration::from_secs(60) {
        turns += 1;
        if turns % 100_000 == 0 && std::path::Path::new(until).exists() {
            return;
        }
        std::hint::spin_loop();
    }
}
"#;

/// Conflicts with `web` on one route (same method, an ambiguous pattern), not on the other.
const CLASH: &str = r#"use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(
    driver = "beego",
    route(POST, "/clash/ok", label = "clash.ok"),
    route(GET, "/web/items/:num:int", label = "clash.items"),
)]
fn execute(ctx: &mut Context) -> Result {
    ctx.respond_text("clash");
    Ok(())
}
"#;

/// The HTTP fixtures, by package: `web-v1` (web 1.0.0), `web-v2` (web 2.0.0), `web-clash`.
pub fn web(package: &str) -> &'static Path {
    static BUILT: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    &BUILT.get_or_init(build)[package]
}

fn build() -> HashMap<String, PathBuf> {
    let crates = [
        ("web-v1", "1.0.0", WEB),
        ("web-v2", "2.0.0", WEB),
        ("web-clash", "1.0.0", CLASH),
    ];
    build_workspace(
        &target_dir().join("fixtures/web"),
        &crates,
        "serde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\n",
    )
}
