use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(route(GET, "/items/:id:int", label = "items.get"))]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}

fn main() {}
