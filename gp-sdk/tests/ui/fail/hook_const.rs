use gp_sdk::{on_unload, plugin_entry, Context, Result};

#[on_unload]
const fn close() {}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
