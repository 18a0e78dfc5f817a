//! A version mapped into this process by the dynamic loader: its hooks, bracketing the
//! build's life rather than the instance's, and the call into it.
//!
//! Both an in-process host's [`Loaded`](super::loaded::Loaded) and an isolated plugin's
//! runner hold one, so the runner loads a plugin exactly as a host does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use abi_stable::std_types::{RResult, RStr};
use gp_core::{
    CallError, CallErrorKind, CallInfo, CloseFn, ExecuteFn, HostContextMut, StateHandle,
};

use crate::error::{Error, Hook};
use crate::library::{Entry, Module};
use crate::runtime::activity;
use crate::runtime::config::{Config, Scrub};
use crate::runtime::context::Context;
use crate::runtime::redact::Redacting;
use crate::runtime::scope;
use crate::runtime::spec::Spec;
use crate::util::{bounded, lock, MAX_PLUGIN_MESSAGE};

/// How many [`InProcess`] instances of each build (by SHA-256) are alive in this process.
///
/// The dynamic loader maps a build once per process, so every instance of a build shares its
/// code *and its statics*: an unload that times out, followed by a reload of the same build,
/// gives two instances over one set of statics. The hooks therefore bracket the build's life,
/// not the instance's: `on_load` runs when the first instance appears, `on_unload` when the
/// last one goes. Each build has a mutex of its own, held while its hook runs, so two
/// managers loading the same build agree on which one runs `on_load`.
fn live_builds(sha256: &str) -> Arc<Mutex<usize>> {
    static LIVE: OnceLock<Mutex<HashMap<String, Arc<Mutex<usize>>>>> = OnceLock::new();
    let mut live = lock(LIVE.get_or_init(Default::default));
    Arc::clone(live.entry(sha256.to_owned()).or_default())
}

/// Builds (by SHA-256) whose hook ran past its timeout and has not returned, with that hook.
/// Their statics may be mid-change: no instance of them is made until the hook returns.
fn quarantine() -> std::sync::MutexGuard<'static, HashMap<String, Hook>> {
    static QUARANTINE: OnceLock<Mutex<HashMap<String, Hook>>> = OnceLock::new();
    lock(QUARANTINE.get_or_init(Default::default))
}

fn refuse_quarantined(spec: &Spec) -> Result<(), Error> {
    match quarantine().get(&spec.sha256) {
        Some(&hook) => Err(Error::Quarantined {
            plugin: spec.name().to_owned(),
            path: spec.origin.clone(),
            hook,
        }),
        None => Ok(()),
    }
}

/// A version mapped into this process by the dynamic loader.
pub(crate) struct InProcess {
    entry: Entry,
    /// The plugin's name, interned: what the host's services say is calling.
    name: &'static scope::PluginName,
    on_unload: Option<ExecuteFn>,
    /// This instance's state, as the plugin's `open` made it ([`StateHandle::NONE`] if the
    /// plugin keeps none).
    state: StateHandle,
    /// The plugin's `close`, which drops `state` once, in [`InProcess::run_unload_hook`].
    close: Option<CloseFn>,
    /// The configuration's secrets, scrubbed from the plugin's errors.
    scrub: Scrub,
    /// Keeps them scrubbed from the plugin's log lines while this instance lives.
    _redacting: Option<Redacting>,
    /// This build's instance count; decremented once, by [`InProcess::run_unload_hook`].
    build: Arc<Mutex<usize>>,
    counted: AtomicBool,
    /// How long `on_unload` may run before it is abandoned.
    hook_timeout: Duration,
}

/// What [`InProcess::run_unload_hook`] did.
pub(crate) enum UnloadHookRun {
    /// The plugin has no `on_unload`, or the hook had run already.
    Nothing,
    /// Another instance of the same build is still loaded: the hook waits for the last one.
    Shared,
    /// The hook ran.
    Ran(Result<(), Error>),
}

impl InProcess {
    /// Binds the host's services, runs the plugin's `on_load` hook (if any, and if no other
    /// instance of the same build is alive), builds this instance's state with the plugin's
    /// `open` (if it keeps one) from the configuration in the plugin's folder, and returns the
    /// version ready to serve, with `spec` saying which hooks it has.
    pub(crate) fn activate(
        spec: Spec,
        module: Module,
        hook_timeout: Duration,
    ) -> Result<(Spec, InProcess), Error> {
        // Before any of the plugin's code runs: a configuration that cannot be read is
        // refused without loading anything.
        // Not read at all for an instance that takes none (its details say so).
        let config = match (module.state(), spec.details.configured) {
            (Some(_), Some(false)) => Some(Config::none()),
            (Some(_), _) => Some(Config::read(spec.name(), &spec.config_path())?),
            (None, _) => None,
        };
        refuse_quarantined(&spec)?;
        // Before any of the plugin's code runs in a call or hook.
        module.bind_host(scope::SERVICES);
        let on_load = module.on_load();
        let on_unload = module.on_unload();
        let spec = Spec {
            has_on_load: on_load.is_some(),
            has_on_unload: on_unload.is_some(),
            ..spec
        };
        let build = live_builds(&spec.sha256);
        {
            let mut instances = lock(&build);
            // Again under the build's lock: a load that waited for it may find the build
            // quarantined by the one that held it.
            refuse_quarantined(&spec)?;
            match on_load {
                Some(hook) if *instances == 0 => {
                    run_hook_bounded(&spec, Hook::OnLoad, move |host| hook(host), hook_timeout)?
                }
                Some(_) => {
                    tracing::debug!(target: "gp", plugin = spec.name(), "this build is already loaded; its on_load ran then")
                }
                None => {}
            }
            *instances += 1;
        }
        let name = scope::PluginName::intern(spec.name());
        let mut instance = InProcess {
            entry: module.entry(),
            name,
            on_unload,
            state: StateHandle::NONE,
            close: None,
            scrub: Scrub::default(),
            _redacting: None,
            build,
            counted: AtomicBool::new(true),
            hook_timeout,
        };
        if let (Some((open, close)), Some(config)) = (module.state(), config) {
            // The author's `#[on_load]` in the typed form: hence its name in errors.
            let Config { text, scrub } = config;
            // Before `open` runs: it may log what it was given.
            instance._redacting = scrub.for_logs_of(spec.name());
            let scrubbing = scrub.clone();
            let opened = run_hook_bounded(
                &spec,
                Hook::OnLoad,
                move |host| scrubbed(open(host, RStr::from_str(&text)), &scrubbing),
                hook_timeout,
            );
            match opened {
                Ok(state) => {
                    instance.state = state;
                    instance.close = Some(close);
                    instance.scrub = scrub;
                }
                Err(error @ Error::HookTimedOut { .. }) => {
                    // `open` still runs on its thread: the build is quarantined, and
                    // `on_unload` must not run under it. Out of the instance count only. A
                    // state it returns later is never closed (leaked, as a hook's effects are).
                    instance.leave_count();
                    return Err(error);
                }
                Err(error) => {
                    // Out of the build's instance count again (and `on_unload` if it was the
                    // only one): the version never served.
                    instance.run_unload_hook(&spec);
                    return Err(error);
                }
            }
        }
        Ok((spec, instance))
    }

    /// Calls the plugin. `retiring` is what the plugin reads as its cancellation by an
    /// unload. The error is boxed so that a successful call returns one word (see
    /// [`Loaded::call`](super::loaded::Loaded::call)).
    #[inline(always)]
    pub(crate) fn call(
        &self,
        spec: &Spec,
        ctx: &mut Context,
        retiring: &AtomicBool,
    ) -> Result<(), Box<Error>> {
        let (entry, state) = (self.entry, self.state);
        let outcome =
            scope::with_scope(
                ctx,
                self.name,
                Some(retiring),
                |host, table, label| match entry {
                    Entry::Info(call_with) => call_with(host, table, &CallInfo { label, state }),
                    Entry::Table(call) => call(host, table),
                    Entry::Context(execute) => execute(host),
                },
            );
        match outcome {
            RResult::ROk(()) => Ok(()),
            RResult::RErr(error) => Err(call_error(spec, ctx, retiring, error, &self.scrub)),
        }
    }

    /// Leaves the build's instance count, once, without running any hook.
    fn leave_count(&self) {
        if self.counted.swap(false, Ordering::AcqRel) {
            let mut instances = lock(&self.build);
            *instances = instances.saturating_sub(1);
        }
    }

    /// Leaves the build's instance count, once, and runs `on_unload` if this was the last
    /// instance of the build.
    ///
    /// First, this instance's state is dropped with the plugin's `close` (every instance has
    /// its own): its failure is reported as the unload hook's.
    pub(crate) fn run_unload_hook(&self, spec: &Spec) -> UnloadHookRun {
        if !self.counted.swap(false, Ordering::AcqRel) {
            return UnloadHookRun::Nothing;
        }
        let closed = self.close.map(|close| {
            let (state, scrub) = (self.state, self.scrub.clone());
            run_hook_bounded(
                spec,
                Hook::OnUnload,
                move |host| scrubbed(close(host, state), &scrub),
                self.hook_timeout,
            )
        });
        let mut instances = lock(&self.build);
        *instances = instances.saturating_sub(1);
        let unloaded = match self.on_unload {
            None => UnloadHookRun::Nothing,
            Some(_) if *instances > 0 => UnloadHookRun::Shared,
            Some(hook) => UnloadHookRun::Ran(run_hook_bounded(
                spec,
                Hook::OnUnload,
                move |host| hook(host),
                self.hook_timeout,
            )),
        };
        match (closed, unloaded) {
            (None, unloaded) | (Some(Ok(())), unloaded @ UnloadHookRun::Ran(_)) => unloaded,
            (Some(Err(error)), _) => UnloadHookRun::Ran(Err(error)),
            (Some(Ok(())), UnloadHookRun::Nothing | UnloadHookRun::Shared) => {
                UnloadHookRun::Ran(Ok(()))
            }
        }
    }
}

/// `outcome` with the configuration's secrets scrubbed from its error, before anything cuts
/// or copies the message.
fn scrubbed<T>(outcome: RResult<T, CallError>, scrub: &Scrub) -> RResult<T, CallError> {
    match outcome {
        RResult::RErr(mut error) if !scrub.is_empty() => {
            error.message = scrub.apply(error.message.as_str()).into();
            RResult::RErr(error)
        }
        outcome => outcome,
    }
}

#[cold]
fn call_error(
    spec: &Spec,
    ctx: &Context,
    retiring: &AtomicBool,
    error: gp_core::CallError,
    scrub: &Scrub,
) -> Box<Error> {
    let plugin = spec.manifest.name.clone();
    let message = scrub.apply(error.message.as_str());
    let message = bounded(message, MAX_PLUGIN_MESSAGE);
    if error.kind == CallErrorKind::PANICKED {
        tracing::error!(target: "gp::plugin", plugin = %plugin, "plugin panicked: {message}");
        Box::new(Error::Panicked { plugin, message })
    } else if ctx.is_cancelled() {
        Box::new(Error::Cancelled { plugin })
    } else if ctx.is_past_deadline() {
        Box::new(Error::DeadlineExceeded { plugin })
    } else if retiring.load(Ordering::Relaxed) {
        Box::new(Error::Unloaded { plugin })
    } else {
        Box::new(Error::Failed { plugin, message })
    }
}

/// Runs a lifecycle hook on a thread of its own and waits at most `timeout` for it. A hook
/// that does not return in time is abandoned (a thread cannot be stopped): the call gives
/// [`Error::HookTimedOut`], and the build is quarantined until the hook returns, since its
/// statics may be mid-change.
fn run_hook_bounded<T, F>(spec: &Spec, hook: Hook, f: F, timeout: Duration) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce(HostContextMut<'_>) -> RResult<T, CallError> + Clone + Send + 'static,
{
    let (done, outcome) = std::sync::mpsc::channel();
    let owned = spec.clone();
    let run = f.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("gp-{hook}"))
        .spawn(move || {
            let started = std::time::Instant::now();
            let result = run_hook(&owned, hook, run);
            if done.send(result).is_err() {
                // Abandoned: nobody waits for the result any more. The build may load again.
                quarantine().remove(&owned.sha256);
                tracing::warn!(target: "gp", plugin = owned.name(), "its {hook} returned after {:?}, past its timeout; the build is no longer quarantined", started.elapsed());
            }
        });
    let Ok(_thread) = spawned else {
        // No thread to spare: run it here, unbounded, rather than not at all.
        return run_hook(spec, hook, f);
    };
    match outcome.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => {
            // Quarantined while the receiver is still alive: the hook's thread sees the send
            // fail, and lifts it, only after this (the receiver drops on return).
            quarantine().insert(spec.sha256.clone(), hook);
            if let Ok(result) = outcome.try_recv() {
                // It returned in between: nothing to quarantine after all.
                quarantine().remove(&spec.sha256);
                return result;
            }
            tracing::error!(target: "gp", plugin = spec.name(), "its {hook} did not return within {timeout:?}: abandoned, build quarantined");
            Err(Error::HookTimedOut {
                plugin: spec.name().to_owned(),
                version: spec.version().clone(),
                hook,
                timeout,
            })
        }
    }
}

/// Runs a lifecycle hook with an empty context (the plugin can log through it).
fn run_hook<T>(
    spec: &Spec,
    hook: Hook,
    f: impl FnOnce(HostContextMut<'_>) -> RResult<T, CallError>,
) -> Result<T, Error> {
    let _running = activity::doing(format!("running plugin `{}`'s {hook}", spec.name()));
    let mut ctx = Context::new();
    let plugin = scope::PluginName::intern(spec.name());
    let outcome = scope::with_scope(&mut ctx, plugin, None, |host, _, _| f(host));
    match outcome {
        RResult::ROk(value) => Ok(value),
        RResult::RErr(error) if error.kind == CallErrorKind::CONFIG => Err(Error::Config {
            plugin: spec.name().to_owned(),
            path: spec.config_path(),
            reason: bounded(error.message.into_string(), MAX_PLUGIN_MESSAGE),
        }),
        RResult::RErr(error) => Err(Error::HookFailed {
            plugin: spec.name().to_owned(),
            version: spec.version().clone(),
            hook,
            panicked: error.kind == CallErrorKind::PANICKED,
            message: bounded(error.message.into_string(), MAX_PLUGIN_MESSAGE),
        }),
    }
}
