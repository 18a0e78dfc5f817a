use gp_sdk::{on_load, on_unload, plugin_entry, Context};

#[on_load]
fn open(ctx: &mut Context) -> gp_sdk::Result {
    ctx.info("connecting");
    Ok(())
}

#[on_unload]
fn close(ctx: &mut Context) {
    ctx.info("closing");
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> gp_sdk::Result {
    ctx.set("k", 1);
    Ok(())
}
