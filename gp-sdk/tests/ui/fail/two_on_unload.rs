use gp_sdk::{on_unload, plugin_entry, Context, Result};

#[on_unload]
fn close(ctx: &mut Context) {
    ctx.info("close");
}

#[on_unload]
fn flush() -> Result {
    Ok(())
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
