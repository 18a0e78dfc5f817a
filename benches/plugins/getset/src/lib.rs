//! Benchmark plugin: reads the integer `n` and stores `n + 1`, the smallest call that does a
//! get and a set through the context.
//!
//! Besides the `#[plugin_entry]` entry point, the library exports `gp_bench_raw_getset`, the
//! same body behind a bare `extern "C"` function, so the benchmarks can call it through a
//! raw function pointer from `libloading` and compare that with the host's `Executor`.

use gp_sdk::{plugin_entry, Context, Result};

mod body;

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    body::getset(ctx)
}

/// The plugin body behind a bare, unmangled `extern "C"` function: what a host would get by
/// looking up a symbol with `libloading` and calling it, without gp's loader or executor. It
/// takes what the generated `call` entry takes (the context and the table of its values).
#[no_mangle]
pub extern "C" fn gp_bench_raw_getset(
    ctx: gp_sdk::__private::HostContextMut<'_>,
    table: gp_sdk::__private::CallTable,
) -> gp_sdk::__private::ExecuteResult {
    // SAFETY: the host hands the table of this call's context with it, as to `call`.
    gp_sdk::__private::execute(
        unsafe { gp_sdk::__private::Tabled::new(ctx, table) },
        body::getset,
    )
}
