use gp_sdk::{on_load, on_unload, plugin_entry, Context};

#[on_load]
fn open() {}

#[on_unload]
fn close() -> Result<(), String> {
    Err("nothing to close".to_owned())
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> gp_sdk::Result {
    ctx.set("k", 1);
    Ok(())
}
