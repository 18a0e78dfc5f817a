use gp_sdk::{on_load, plugin_entry, Context, Result};

#[on_load]
unsafe fn open(ctx: &mut Context) -> Result {
    ctx.info("open");
    Ok(())
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
