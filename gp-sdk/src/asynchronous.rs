//! `async fn` handlers: the runtime an instance keeps for them, and the call that runs one
//! handler's future on it until it ends, its deadline passes or its call is cancelled.
//!
//! **Where the future runs.** On the calling thread: the host's thread that called the plugin
//! blocks on the future (`Runtime::block_on`), so a handler that does not wait costs one poll
//! and no hand-off. The instance's own runtime (tokio, multi-threaded, one worker named
//! `gp-async`) drives what the future waits on (sockets, timers) and the tasks it spawns. One
//! worker is enough for that: a plugin's concurrency is the host's, one calling thread per
//! call, each polling its own future. A host never runs an async handler's call on the threads
//! that serve its connections (the manifest's details say which labels are async).
//!
//! **How it ends.** At the call's deadline, or within [`CANCEL_CHECK`] of its cancellation
//! (a client that went away), the future is dropped where it waits and the call returns
//! [`Error::cancelled`]: every `Drop` in it runs, an HTTP request it had in flight is
//! abandoned. The runtime is shut down when the instance closes, after its last call.
//!
//! Behind gp-sdk's `async` feature, so a plugin without async handlers never builds tokio.
//! Without it, the generated code still compiles down to [`block_on`], whose trait bound then
//! fails with the one message that says what to add.

use std::future::Future;
use std::time::Duration;

#[cfg(feature = "async")]
use crate::Error;
use crate::{Context, Result};

/// How often a waiting future's call is checked for cancellation (its deadline is exact).
pub const CANCEL_CHECK: Duration = Duration::from_millis(5);

/// The name of the runtime's worker thread.
#[cfg(feature = "async")]
const WORKER: &str = "gp-async";

/// An instance's runtime for its async handlers.
#[cfg(feature = "async")]
pub type Runtime = tokio::runtime::Runtime;

/// An instance's runtime for its async handlers: none without gp-sdk's `async` feature.
#[cfg(not(feature = "async"))]
#[derive(Debug)]
pub enum Runtime {}

/// A runtime a handler's future can run on: tokio's, with gp-sdk's `async` feature.
#[diagnostic::on_unimplemented(
    message = "`async fn` handlers need gp-sdk's `async` feature",
    label = "this plugin has an `async fn` handler",
    note = "in the plugin's Cargo.toml: `gp-sdk = {{ version = \"0.1\", features = [\"async\"] }}`"
)]
pub trait Runs {
    /// Runs `future` to its end, or until `ctx`'s call is cancelled or past its deadline.
    fn run<F: Future>(&self, ctx: &Context<'_>, future: F) -> Result<F::Output>;
}

/// Starts an instance's runtime.
#[cfg(feature = "async")]
pub(crate) fn start() -> std::result::Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(WORKER)
        .enable_all()
        .build()
        .map_err(|e| format!("the plugin could not start its async runtime: {e}"))
}

/// Without the `async` feature there is no runtime to start (and no async handler compiles).
#[cfg(not(feature = "async"))]
pub(crate) fn start() -> std::result::Result<Runtime, String> {
    Err("this plugin has async handlers but gp-sdk was built without its `async` feature".into())
}

/// Enters `runtime`'s context until the guard is dropped: `tokio::spawn` and clients that
/// need a runtime work in `#[on_load]` too.
#[cfg(feature = "async")]
pub(crate) fn enter(runtime: &Runtime) -> tokio::runtime::EnterGuard<'_> {
    runtime.enter()
}

#[cfg(not(feature = "async"))]
pub(crate) fn enter(runtime: &Runtime) {
    match *runtime {}
}

/// Ends an instance's runtime, waiting at most `wait` for the tasks it still runs.
#[cfg(feature = "async")]
pub(crate) fn stop(runtime: Runtime, wait: Duration) {
    runtime.shutdown_timeout(wait);
}

#[cfg(not(feature = "async"))]
pub(crate) fn stop(runtime: Runtime, _wait: Duration) {
    match runtime {}
}

/// The body of an async handler's dispatch arm: runs the handler's future on the instance's
/// runtime (see the module documentation).
#[inline]
pub fn block_on<R: Runs, F: Future>(
    runtime: &R,
    ctx: &Context<'_>,
    future: F,
) -> Result<F::Output> {
    runtime.run(ctx, future)
}

#[cfg(feature = "async")]
impl Runs for tokio::runtime::Runtime {
    fn run<F: Future>(&self, ctx: &Context<'_>, future: F) -> Result<F::Output> {
        use std::pin::{pin, Pin};
        use std::task::Poll;
        use tokio::time::{Instant, Sleep};

        if ctx.is_cancelled() {
            return Err(Error::cancelled());
        }
        let deadline = ctx.remaining().map(|left| Instant::now() + left);
        let next_check = move || {
            let check = Instant::now() + CANCEL_CHECK;
            deadline.map_or(check, |deadline| deadline.min(check))
        };
        // Past its deadline whatever the host says (a host whose cancellation does not
        // include the deadline would otherwise have the watch fire again and again).
        let ended = || ctx.is_cancelled() || deadline.is_some_and(|d| Instant::now() >= d);
        self.block_on(async {
            let mut future = pin!(future);
            // Made when the future first waits: a handler that does not costs no timer.
            let mut watch: Option<Pin<Box<Sleep>>> = None;
            std::future::poll_fn(|cx| {
                // On every poll after the first, not only when the watch fires: a future that
                // spends the task's budget on each poll keeps tokio's timer from firing.
                if watch.is_some() && ended() {
                    return Poll::Ready(Err(Error::cancelled()));
                }
                if let Poll::Ready(out) = future.as_mut().poll(cx) {
                    return Poll::Ready(Ok(out));
                }
                let watch =
                    watch.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(next_check())));
                while watch.as_mut().poll(cx).is_ready() {
                    if ended() {
                        return Poll::Ready(Err(Error::cancelled()));
                    }
                    watch.as_mut().reset(next_check());
                }
                Poll::Pending
            })
            .await
            // The future is dropped here, where it waited, when the call ended first.
        })
    }
}
