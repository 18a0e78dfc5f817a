//! The seed's label-dispatching plugin: one entry point that routes on the call's label.
//!
//! Labels come from the caller (`gp call --label`) or from an HTTP route's `label`.

use gp_sdk::{bail, plugin_entry, Context, Result};

#[plugin_entry(
    route(GET, "/api/counter/:name", label = "counter.get"),
    route(POST, "/api/counter/:name", label = "counter.add")
)]
fn execute(ctx: &mut Context) -> Result {
    let Some(label) = ctx.label() else {
        bail!("label is not set in the plugin context");
    };
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
