//! Benchmark plugin: its entry point does nothing, so a call measures the cost of the call
//! itself (host dispatch, the FFI hop, the SDK's panic guard).

use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    let _ = ctx;
    Ok(())
}
