use gp_sdk::{on_load, plugin_entry, Context, Result};

#[on_load]
fn open(ctx: &mut Context) -> Result<u32> {
    ctx.info("open");
    Ok(3)
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
