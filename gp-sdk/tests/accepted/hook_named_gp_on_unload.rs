use gp_sdk::{on_unload, plugin_entry, Context};

// The items the attribute generates do not shadow a hook that has one of their names.
#[on_unload]
fn gp_on_unload(ctx: &mut Context) {
    ctx.info("close");
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> gp_sdk::Result {
    ctx.set("k", 1);
    Ok(())
}
