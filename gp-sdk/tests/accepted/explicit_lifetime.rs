use gp_sdk::{plugin_entry, Context};

#[plugin_entry]
fn e<'a>(ctx: &mut Context<'a>) -> gp_sdk::Result {
    ctx.set("k", 1);
    Ok(())
}
