#![allow(non_snake_case)]

use gp_sdk::{on_load, on_unload, plugin_entry, Context};

// Neither do the generated statics, nor the shims when the function is named as a raw
// identifier.
#[plugin_entry]
fn GP_MANIFEST(ctx: &mut Context) -> gp_sdk::Result {
    ctx.set("k", 1);
    Ok(())
}

#[on_load]
fn HOOK(ctx: &mut Context) -> gp_sdk::Result {
    ctx.info("open");
    Ok(())
}

#[on_unload]
fn r#gp_on_unload() {}
