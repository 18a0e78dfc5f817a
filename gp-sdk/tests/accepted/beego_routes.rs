use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry(
    driver = "beego",
    route(GET, "/api/plugin/sample/:id:int", label = "plugin.get"),
    route(GET, "/files/*", label = "files")
)]
fn execute(_ctx: &mut Context) -> Result {
    Ok(())
}
