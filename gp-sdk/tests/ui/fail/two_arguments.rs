use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute(ctx: &mut Context, n: i64) -> Result {
    ctx.set("k", n);
    Ok(())
}

fn main() {}
