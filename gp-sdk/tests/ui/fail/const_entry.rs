use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
const fn execute(ctx: &mut Context) -> Result {
    let _ = ctx;
    Ok(())
}

fn main() {}
