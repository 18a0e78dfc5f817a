use gp_sdk::{plugin_entry, Context};

#[plugin_entry]
fn execute(ctx: &mut Context) -> gp_sdk::Result {
    ctx.set("k", 1);
    Ok(())
}
