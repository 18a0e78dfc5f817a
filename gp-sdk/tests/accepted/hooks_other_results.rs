use gp_sdk::{on_load, on_unload, plugin_entry, Context};

#[on_load]
fn open() -> Result<(), Box<dyn std::error::Error>> {
    let _: u16 = "8080".parse()?;
    Ok(())
}

#[allow(clippy::unused_unit)]
#[on_unload]
fn close(ctx: &mut Context) -> () {
    ctx.info("close");
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> gp_sdk::Result {
    ctx.set("k", 1);
    Ok(())
}
