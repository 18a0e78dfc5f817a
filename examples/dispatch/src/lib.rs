//! The seed's label-dispatching plugin: one entry point that routes on the call's label.
//!
//! Labels come from the caller (`gp call --label`) or from an HTTP route's `label`. Called
//! directly it works on the context's `count`; served over HTTP it keeps named counters:
//! `GET /api/counter/hits` reads one, `POST /api/counter/hits` with `{"by": 2}` (or no body)
//! adds to it.

use std::collections::HashMap;
use std::sync::Mutex;

use gp_sdk::{bail, plugin_entry, Context, Result};

/// The named counters of the HTTP routes. Statics live as long as this build is loaded.
static COUNTERS: Mutex<Option<HashMap<String, i64>>> = Mutex::new(None);

#[plugin_entry(
    route(GET, "/api/counter/:name", label = "counter.get"),
    route(POST, "/api/counter/:name", label = "counter.add")
)]
fn execute(ctx: &mut Context) -> Result {
    let Some(label) = ctx.label() else {
        bail!("label is not set in the plugin context");
    };
    if ctx.request().is_ok() {
        return serve(ctx);
    }
    match label {
        "counter.get" => get(ctx),
        "counter.add" => add(ctx),
        other => bail!("label {other:?} is not supported: use counter.get or counter.add"),
    }
}

/// Echoes `count` (0 when unset) as `result`.
fn get(ctx: &mut Context) -> Result {
    let count = ctx.get_i64("count").unwrap_or(0);
    ctx.set("result", count);
    Ok(())
}

/// Adds `by` (default 1) to `count`.
fn add(ctx: &mut Context) -> Result {
    let count = ctx.get_i64("count").unwrap_or(0);
    let by = ctx.get_i64("by").unwrap_or(1);
    let Some(sum) = count.checked_add(by) else {
        bail!("count {count} + {by} overflows");
    };
    ctx.set("count", sum);
    ctx.set("result", sum);
    Ok(())
}

/// The HTTP routes: a named counter, read or added to.
fn serve(ctx: &mut Context) -> Result {
    let request = ctx.request()?;
    let name = request.param("name").unwrap_or_default().to_owned();
    let by = if request.body().is_empty() {
        1
    } else {
        let body: serde_json::Value = request.json()?;
        match body.get("by").and_then(serde_json::Value::as_i64) {
            Some(by) => by,
            None => return Err(ctx.reject(400, "send {\"by\": <integer>}, or no body to add 1")),
        }
    };
    let adding = ctx.label() == Some("counter.add");
    let count = {
        let mut counters = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
        let count = counters
            .get_or_insert_with(HashMap::new)
            .entry(name.clone())
            .or_insert(0);
        if adding {
            let Some(sum) = count.checked_add(by) else {
                return Err(ctx.reject(422, format!("count {count} + {by} overflows")));
            };
            *count = sum;
        }
        *count
    };
    ctx.respond_json(&serde_json::json!({ "name": name, "count": count }))
}
