//! Plumbing for gp's own benchmarks and tests, not part of the stable API: what they need to
//! measure a plugin as a host runs it, or to see which call protection the process chose.
//! Everything here may change in any release.

use crate::error::Error;

/// Runs `f` with `ctx` seen as a plugin sees it (the ABI trait object), tagged with `plugin`:
/// for benchmarks that compare a plugin call with the same code run in-process. The thread is
/// not inside a call for the host's services ([`gp_core::HostServices`]): a plugin that logs
/// or panics in `f` is treated as outside a call.
pub fn with_host_context<R>(
    ctx: &mut crate::Context,
    plugin: &str,
    f: impl FnOnce(gp_core::HostContextMut<'_>) -> R,
) -> R {
    crate::runtime::context::outside_a_call(ctx, plugin, f)
}

/// [`verify`](crate::verify)s a library and hands it this host's services, as a
/// [`Manager`](crate::Manager) does when it loads one: for benchmarks that call a library's
/// functions directly and must measure the plugin as a host runs it.
pub fn bind_host(path: &std::path::Path) -> Result<(), Error> {
    let (_, module) = crate::library::verified(path)?;
    module.bind_host(crate::runtime::context::SERVICES);
    Ok(())
}

/// How calls are protected in this process: `"membarrier"` (readers pay a compiler fence) or
/// `"fences"` (the fallback: readers pay a full fence).
pub fn call_barrier() -> &'static str {
    crate::runtime::rcu::barrier_name()
}

/// One message to an isolated version's runner and its answer, with no call: the bare
/// channel's round trip, for benchmarks. `None` if the version is not isolated.
#[cfg(feature = "isolate")]
pub fn ping_runner(executor: &crate::Executor) -> Option<Result<(), Error>> {
    executor.ping_runner()
}
