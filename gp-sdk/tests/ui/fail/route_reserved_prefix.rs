use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(route(GET, "/-/status", label = "status"))]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}

fn main() {}
