use gp_sdk::{plugin_entry, Context, Result};

// The items the attribute generates do not shadow an entry that has one of their names.
#[plugin_entry]
fn gp_root_module(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}
