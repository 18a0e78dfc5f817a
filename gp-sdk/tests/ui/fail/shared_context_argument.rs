use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute(ctx: &Context) -> Result {
    let _ = ctx.get("k");
    Ok(())
}

fn main() {}
