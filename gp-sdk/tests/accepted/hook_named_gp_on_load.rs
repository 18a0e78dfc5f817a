use gp_sdk::{on_load, plugin_entry, Context};

// The items the attribute generates do not shadow a hook that has one of their names.
#[on_load]
fn gp_on_load(ctx: &mut Context) -> gp_sdk::Result {
    ctx.info("open");
    Ok(())
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> gp_sdk::Result {
    ctx.set("k", 1);
    Ok(())
}
