use gp_sdk::{plugin_entry, Result};

#[plugin_entry]
fn execute(ctx: String) -> Result {
    let _ = ctx;
    Ok(())
}

fn main() {}
