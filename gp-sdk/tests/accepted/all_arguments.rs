use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(
    name = "sample",
    description = "Greets whoever calls",
    maintainers = ["Ann <ann@example.com>", "bob@example.org"],
    home = "https://example.com/sample",
    route(GET, "/api/plugin/sample/:id", label = "plugin.get"),
    route(POST, "/api/plugin/samples", label = "plugin.post"),
)]
fn execute(ctx: &mut Context) -> Result {
    let label = ctx.label().unwrap_or("none").to_owned();
    ctx.set("label", label);
    Ok(())
}
