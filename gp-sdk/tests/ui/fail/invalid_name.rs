use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(name = "my plugin")]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
