//! A plugin that panics on the label `boom`. The panic is caught inside the plugin and comes
//! back to the host as an error; host and plugin keep working.

use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    if ctx.label() == Some("boom") {
        let items: Vec<i64> = Vec::new();
        panic!("boom: asked for item 3 of {} items", items.len());
    }
    if let Some(other) = ctx.label() {
        gp_sdk::bail!("label `{other}` is not one of panicky's: boom (it panics), or no label");
    }
    ctx.set("status", "still alive");
    Ok(())
}
