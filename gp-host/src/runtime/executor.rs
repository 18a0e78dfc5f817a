//! Calling a plugin: the handle an application holds, and the call path itself.
//!
//! A call loads the slot's current version (no lock), runs it, and records metrics and events
//! only when they are on. Everything else a call might need is kept off this path.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::error::Error;
use crate::metrics::recorder::Timestamp;
use crate::runtime::context::Context;
use crate::runtime::events::Event;
use crate::runtime::loaded::Loaded;
use crate::runtime::rcu::{self, Record};
use crate::runtime::slot::Slot;
use crate::runtime::spec::Spec;

/// One call of [`Executor::execute_batch_if`]: its context, and whether to run it on a
/// version's spec.
#[cfg_attr(not(all(feature = "http", feature = "isolate")), allow(dead_code))]
pub(crate) type BatchCall<'a> = (&'a mut Context, &'a dyn Fn(&Spec) -> bool);

/// Calls one plugin. Cheap to clone, `Send + Sync`, and callable from many threads at once:
/// a call takes no lock.
///
/// An executor follows its plugin: after an upgrade, its next call runs the new version; after
/// an unload, its calls fail with [`Error::NotFound`] (and work again if a plugin of the same
/// name is loaded later).
///
/// ```no_run
/// # fn main() -> Result<(), gp_host::Error> {
/// let manager = gp_host::Manager::new("plugins");
/// print!("{}", manager.load_plugins());
/// let (_spec, executor) = manager.get_plugin("sample")?;
/// let mut ctx = gp_host::Context::new();
/// ctx.set("sample", "hello");
/// executor.execute(&mut ctx)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Executor {
    slot: Arc<Slot>,
}

impl Executor {
    pub(crate) fn new(slot: Arc<Slot>) -> Executor {
        Executor { slot }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// The spec of the version serving now, or `None` if the plugin is unloaded.
    pub fn spec(&self) -> Option<Arc<Spec>> {
        self.slot.spec()
    }

    /// How the runner of the version serving now is doing, if it runs isolated; `None` for a
    /// version in this process or an unloaded plugin.
    #[cfg(feature = "isolate")]
    pub fn isolation(&self) -> Option<crate::runtime::isolation::IsolationStatus> {
        let thread = rcu::thread();
        self.slot
            .current
            .with(thread, |plugin| plugin.and_then(|p| p.isolation()))
    }

    /// One message to the isolated version's runner and its answer, with no call: the bare
    /// channel's round trip, for benchmarks. `None` if the version is not isolated.
    #[cfg(feature = "isolate")]
    pub(crate) fn ping_runner(&self) -> Option<Result<(), Error>> {
        let thread = rcu::thread();
        self.slot
            .current
            .with(thread, |plugin| plugin.and_then(|p| p.ping()))
    }

    /// Calls the plugin's entry point with `ctx`, on the version serving now.
    ///
    /// A plugin that returns an error gives [`Error::Failed`]; one that panics gives
    /// [`Error::Panicked`] (the panic is caught inside the plugin, logged here, and both
    /// carry on); one that stops because `ctx` was cancelled or passed its deadline gives
    /// [`Error::Cancelled`] or [`Error::DeadlineExceeded`], and one that stops because it was
    /// unloaded meanwhile gives [`Error::Unloaded`]. If the plugin is not loaded, the call
    /// gives [`Error::NotFound`].
    #[inline]
    pub fn execute(&self, ctx: &mut Context) -> Result<(), Error> {
        let slot = &*self.slot;
        let thread = rcu::thread();
        // The version stays alive, and its on_unload waits, until the closure returns, even if
        // it is swapped out meanwhile.
        let outcome = slot.current.with(thread, |plugin| match plugin {
            Some(plugin) => self.run(plugin, thread, ctx),
            None => Err(self.not_loaded()),
        });
        // Boxed until here: a successful call moves one word, not a whole `Error`.
        outcome.map_err(|error| *error)
    }

    /// [`execute`](Self::execute) on the version serving now if `accept` accepts its spec;
    /// `None`, without calling, if it does not or if the plugin is unloaded.
    ///
    /// The version `accept` sees is the one that runs, even if an upgrade swaps it out in
    /// between: the HTTP layer checks that the version still declares the route it is about
    /// to serve.
    pub fn execute_if(
        &self,
        ctx: &mut Context,
        accept: impl FnOnce(&Spec) -> bool,
    ) -> Option<Result<(), Error>> {
        let slot = &*self.slot;
        let thread = rcu::thread();
        let outcome = slot.current.with(thread, |plugin| {
            let plugin = plugin.filter(|p| accept(&p.spec))?;
            Some(self.run(plugin, thread, ctx))
        });
        outcome.map(|o| o.map_err(|error| *error))
    }

    /// Runs a call on `plugin`, a version protected for as long as this runs. The common cases
    /// stay inline: metrics off, or a call counted in the thread's own shard and not timed.
    #[inline(always)]
    fn run(&self, plugin: &Loaded, thread: &Record, ctx: &mut Context) -> Result<(), Box<Error>> {
        let slot = &*self.slot;
        if !slot.subscribers.watches_calls() {
            if !slot.record_calls {
                return plugin.call(ctx);
            }
            if let Some(recorder) = slot.metrics.untimed(thread.index()) {
                let outcome = plugin.call(ctx);
                slot.metrics.finish(
                    recorder,
                    Timestamp::UNTIMED,
                    outcome.as_ref().err().map(|e| &**e),
                );
                return outcome;
            }
        }
        self.run_counted(plugin, thread, ctx)
    }

    /// [`run`](Self::run) for a call that is timed, observed by subscribers, counted in the
    /// shared shard, or its shard's first in this tick (about a second).
    #[inline(never)]
    fn run_counted(
        &self,
        plugin: &Loaded,
        thread: &Record,
        ctx: &mut Context,
    ) -> Result<(), Box<Error>> {
        let slot = &*self.slot;
        if slot.subscribers.watches_calls() {
            return self.execute_observed(plugin, thread, ctx);
        }
        // Read again: the last subscriber may have gone since `run` looked.
        if !slot.record_calls {
            return plugin.call(ctx);
        }
        let (recorder, start) = slot.metrics.start(thread.index());
        let outcome = plugin.call(ctx);
        slot.metrics
            .finish(recorder, start, outcome.as_ref().err().map(|e| &**e));
        outcome
    }

    /// [`execute`](Self::execute) with call events for subscribers.
    #[cold]
    #[inline(never)]
    fn execute_observed(
        &self,
        plugin: &Loaded,
        thread: &Record,
        ctx: &mut Context,
    ) -> Result<(), Box<Error>> {
        let slot = &*self.slot;
        slot.subscribers.emit(&Event::BeforeCall {
            spec: &plugin.spec,
            ctx,
        });
        let started = slot
            .record_calls
            .then(|| slot.metrics.start(thread.index()));
        // The event reports a duration even for calls the metrics do not time.
        let untimed = started.as_ref().is_none_or(|(_, start)| !start.is_timed());
        let clock = untimed.then(Instant::now);
        let outcome = plugin.call(ctx).map_err(|error| *error);
        let timed = started.and_then(|(recorder, start)| {
            slot.metrics.finish(recorder, start, outcome.as_ref().err())
        });
        let duration = timed
            .or_else(|| clock.map(|c| c.elapsed()))
            .unwrap_or_default();
        slot.subscribers.emit(&Event::AfterCall {
            spec: &plugin.spec,
            ctx,
            outcome: &outcome,
            duration,
        });
        outcome.map_err(Box::new)
    }

    /// [`execute_if`](Self::execute_if) for several calls at once, on one version (the one
    /// serving now): each whose `accept` accepts the version's spec runs, the others get
    /// `None`. An isolated version runs them as one batch on one call connection (one wake-up
    /// each side for all of them: see `Remote::call_many`); an in-process one, one after
    /// another. Every call is counted as [`execute`](Self::execute) counts it, and with
    /// subscribers watching calls each runs on its own, with its events.
    #[cfg_attr(not(all(feature = "http", feature = "isolate")), allow(dead_code))]
    pub(crate) fn execute_batch_if(
        &self,
        calls: &mut [BatchCall<'_>],
    ) -> Vec<Option<Result<(), Error>>> {
        let slot = &*self.slot;
        let thread = rcu::thread();
        slot.current.with(thread, |plugin| {
            let Some(plugin) = plugin else {
                return calls.iter().map(|_| None).collect();
            };
            let accepted: Vec<bool> = calls
                .iter()
                .map(|(_, accept)| accept(&plugin.spec))
                .collect();
            if slot.subscribers.watches_calls() {
                return calls
                    .iter_mut()
                    .zip(&accepted)
                    .map(|((ctx, _), ok)| ok.then(|| self.run(plugin, thread, ctx).map_err(|e| *e)))
                    .collect();
            }
            let mut ctxs: Vec<&mut Context> = calls
                .iter_mut()
                .zip(&accepted)
                .filter(|(_, ok)| **ok)
                .map(|((ctx, _), _)| &mut **ctx)
                .collect();
            let started: Vec<_> = match slot.record_calls {
                true => ctxs
                    .iter()
                    .map(|_| slot.metrics.start(thread.index()))
                    .collect(),
                false => Vec::new(),
            };
            let outcomes = plugin.call_many(&mut ctxs);
            let mut outcomes = outcomes.into_iter();
            let mut started = started.into_iter();
            accepted
                .iter()
                .map(|ok| {
                    ok.then(|| {
                        let outcome = outcomes.next().expect("an outcome for every call");
                        if let Some((recorder, start)) = started.next() {
                            slot.metrics.finish(
                                recorder,
                                start,
                                outcome.as_ref().err().map(|e| &**e),
                            );
                        }
                        outcome.map_err(|e| *e)
                    })
                })
                .collect()
        })
    }

    #[cold]
    fn not_loaded(&self) -> Box<Error> {
        Box::new(Error::NotFound {
            plugin: self.slot.name.clone(),
        })
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = self.spec().map(|s| s.version().to_string());
        f.debug_struct("Executor")
            .field("plugin", &self.slot.name)
            .field("version", &version)
            .finish()
    }
}
