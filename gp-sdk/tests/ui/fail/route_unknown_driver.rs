use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(driver = "gin", route(GET, "/items/:id", label = "items.get"))]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}

fn main() {}
