use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute(ctx: &mut Context, args: ...) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
