use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(
    route(GET, "/items/:id", label = "items.get"),
    route(POST, "/items/:id", label = "items.update"),
    route(GET, "/items/:id", label = "items.read")
)]
fn execute(ctx: &mut Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
