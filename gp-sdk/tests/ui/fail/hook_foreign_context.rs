use gp_sdk::{on_unload, plugin_entry, Result};
use std::task::Context;

#[on_unload]
fn close(ctx: &mut Context) {
    let _ = ctx.waker();
}

#[plugin_entry]
fn execute(ctx: &mut gp_sdk::Context) -> Result {
    ctx.set("k", 1);
    Ok(())
}

fn main() {}
