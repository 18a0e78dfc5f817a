use gp_sdk::{on_load, on_unload, plugin_entry, Context, Result};

#[on_load]
fn open(ctx: &mut Context<'static>) -> Result {
    ctx.info("open");
    Ok(())
}

#[on_unload]
fn close(ctx: &'static mut Context) {
    ctx.info("close");
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
