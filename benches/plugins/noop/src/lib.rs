//! Benchmark plugin: its entry point does nothing, so a call measures the cost of the call
//! itself (host dispatch, the FFI hop, the SDK's panic guard).
//!
//! `gp_bench_raw_noop` is the same entry behind a bare `extern "C"` function, the floor of an
//! empty call through a raw function pointer.

use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    noop(ctx)
}

fn noop(ctx: &mut Context) -> Result {
    let _ = ctx;
    Ok(())
}

/// The empty body behind a bare, unmangled `extern "C"` function, wrapped in the same guard
/// as the `#[plugin_entry]` shim, taking what its `call` entry takes.
#[no_mangle]
pub extern "C" fn gp_bench_raw_noop(
    ctx: gp_sdk::__private::HostContextMut<'_>,
    table: gp_sdk::__private::CallTable,
) -> gp_sdk::__private::ExecuteResult {
    // SAFETY: the host hands the table of this call's context with it, as to `call`.
    gp_sdk::__private::execute(unsafe { gp_sdk::__private::Tabled::new(ctx, table) }, noop)
}
