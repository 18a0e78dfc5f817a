use gp_sdk::{on_load, plugin_entry, Context, Result};

struct NotDisplay;

#[on_load]
fn open(ctx: &mut Context) -> std::result::Result<(), NotDisplay> {
    ctx.info("open");
    Err(NotDisplay)
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
