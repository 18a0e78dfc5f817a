use gp_sdk::{plugin_entry, Result};
use std::task::Context;

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    let _ = ctx.waker();
    Ok(())
}

fn main() {}
