//! A plugin version that runs in a runner process: the slot's side of it.
//!
//! Each call takes a call connection of its own and waits for the answer in a plain read; the
//! [`watchdog`](super::watchdog) looks after deadlines and cancellation. A runner that dies
//! costs the calls in flight on it (each gets the same [`Error::Crashed`], counted once) and
//! is replaced by the next call after a back-off that doubles with each crash in a row; too
//! many crashes within a window open the circuit breaker, and the plugin stays failed until
//! it is loaded again.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::{Isolation, IsolationStatus};
use super::process::{Opened, RunnerProcess};
use super::protocol::{self, CallFrame, FromRunner, Lost, Open, Outcome, ToRunner};
use super::watchdog::{self, Watched};
use crate::error::{Error, RunnerFailure};
use crate::runtime::context::Context;
use crate::runtime::spec::Spec;
use crate::util::{bounded, lock, MAX_PLUGIN_MESSAGE};

mod batch;

/// A plugin version running in a runner process (a new one after a crash).
pub(crate) struct Remote {
    plugin: String,
    open: Open,
    /// Where the library's private copy comes from, and its SHA-256.
    source: PathBuf,
    config: Arc<Isolation>,
    state: Mutex<State>,
    /// Held while a runner is being started after a crash.
    starting: Mutex<()>,
    /// The sequence number of the last call, which `Cancel` names.
    calls: AtomicU64,
}

#[derive(Default)]
struct State {
    runner: Option<Arc<RunnerProcess>>,
    /// When the runner crashed, within the breaker's window.
    crashes: VecDeque<Instant>,
    /// Crashes since the last call a runner answered: the back-off doubles with each.
    consecutive: u32,
    /// No runner starts before then (the back-off).
    not_before: Option<Instant>,
    /// Set when the breaker opened: the plugin stays failed until it is loaded again.
    broken: bool,
    /// Unloaded: no runner starts any more.
    closed: bool,
    /// Runners started after the first.
    restarts: u64,
    /// Crashes since the version was loaded.
    crashes_total: u64,
}

impl State {
    /// Lets go of `runner` if it is still the current one (a newer one may have replaced it).
    fn forget(&mut self, runner: &Arc<RunnerProcess>) {
        if self.runner.as_ref().is_some_and(|r| Arc::ptr_eq(r, runner)) {
            self.runner = None;
        }
    }
}

/// Makes an [`Error`] of a runner's failure: [`Error::Runner`] at load, [`Error::Restart`]
/// during a call.
type AsError = fn(String, RunnerFailure) -> Error;

impl Remote {
    /// Starts a runner for version `spec` (its private copy is `open.library`, deleted with
    /// the remote), loads the plugin there and runs its `on_load`.
    pub(crate) fn start(
        spec: &Spec,
        open: Open,
        config: Arc<Isolation>,
    ) -> Result<(Remote, Opened), Error> {
        let remote = Remote {
            plugin: spec.name().to_owned(),
            open,
            source: spec.library.clone(),
            config,
            state: Mutex::default(),
            starting: Mutex::default(),
            calls: AtomicU64::new(0),
        };
        let (runner, opened) =
            remote.start_runner(|plugin, reason| Error::Runner { plugin, reason })?;
        remote.lock().runner = Some(Arc::new(runner));
        Ok((remote, opened))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Starts a runner process and loads the plugin in it, writing the library's private
    /// copy again first if it is missing (a collection may have removed it), after checking
    /// that the original is still the build that was loaded.
    fn start_runner(&self, as_error: AsError) -> Result<(RunnerProcess, Opened), Error> {
        if !self.open.library.exists() {
            let data = std::fs::read(&self.source).map_err(|e| Error::io(&self.source, e))?;
            if crate::util::sha256_hex(&data) != self.open.sha256 {
                return Err(as_error(
                    self.plugin.clone(),
                    RunnerFailure::LibraryChanged {
                        path: self.source.clone(),
                    },
                ));
            }
            crate::util::write_atomically(&self.open.library, |tmp| std::fs::write(tmp, &data))?;
        }
        RunnerProcess::start(&self.plugin, &self.open, &self.config)
            .map_err(|reason| as_error(self.plugin.clone(), reason))
    }

    fn restart_error(&self, reason: RunnerFailure) -> Box<Error> {
        Box::new(Error::Restart {
            plugin: self.plugin.clone(),
            reason,
        })
    }

    /// The runner to call now: the running one, or a new one (after the back-off).
    fn runner(&self, ctx: &Context) -> Result<Arc<RunnerProcess>, Box<Error>> {
        // The common case: a runner that is running.
        if let Some(runner) = &self.lock().runner {
            if !runner.exited() {
                return Ok(Arc::clone(runner));
            }
        }
        // One restart at a time; the state lock is not held while it sleeps or starts a
        // runner, so `status` and calls that find a runner do not wait for it.
        let _starting = lock(&self.starting);
        let mut state = self.lock();
        if state.closed {
            return Err(Box::new(Error::Unloaded {
                plugin: self.plugin.clone(),
            }));
        }
        if state.broken {
            return Err(Box::new(self.circuit_open()));
        }
        if let Some(runner) = &state.runner {
            if !runner.exited() {
                return Ok(Arc::clone(runner));
            }
            // It died between calls (a background thread crashed, the CPU limit): replace it
            // before this call instead of failing the call.
            let runner = state.runner.take().expect("checked above");
            drop(state);
            let (status, _) = runner.end();
            state = self.lock();
            if runner.count_once() {
                tracing::info!(target: "gp", plugin = self.plugin, "its runner died between calls ({status})");
                self.count_crash(&mut state);
            }
            if state.broken {
                return Err(Box::new(self.circuit_open()));
            }
        }
        let wait = state.not_before.map_or(Duration::ZERO, |t| {
            t.saturating_duration_since(Instant::now())
        });
        drop(state);
        if ctx.deadline().is_some_and(|d| Instant::now() + wait > d) {
            return Err(Box::new(Error::DeadlineExceeded {
                plugin: self.plugin.clone(),
            }));
        }
        std::thread::sleep(wait);
        let started = self.start_runner(|plugin, reason| Error::Restart { plugin, reason });
        let mut state = self.lock();
        state.restarts += 1;
        match started {
            Ok((runner, _)) if !state.closed => {
                tracing::info!(target: "gp", plugin = self.plugin, "started a new runner");
                let runner = Arc::new(runner);
                state.runner = Some(Arc::clone(&runner));
                Ok(runner)
            }
            Ok((runner, _)) => {
                // Unloaded meanwhile.
                runner.not_a_crash();
                drop(state);
                runner.kill();
                Err(Box::new(Error::Unloaded {
                    plugin: self.plugin.clone(),
                }))
            }
            Err(error) => {
                self.count_crash(&mut state);
                Err(Box::new(error))
            }
        }
    }

    /// The error of a call stopped from outside, as an in-process call reports it: cancelled
    /// by its caller, cancelled by an unload, or past its deadline.
    fn stopped(&self, ctx: &Context, retiring: &AtomicBool) -> Error {
        let plugin = self.plugin.clone();
        if ctx.is_cancelled() {
            Error::Cancelled { plugin }
        } else if retiring.load(Ordering::Relaxed) {
            Error::Unloaded { plugin }
        } else {
            Error::DeadlineExceeded { plugin }
        }
    }

    fn circuit_open(&self) -> Error {
        Error::CircuitOpen {
            plugin: self.plugin.clone(),
            crashes: self.config.max_crashes,
            window: self.config.crash_window,
        }
    }

    /// Runs one call in the runner (starting one if needed), on a call connection of its own.
    ///
    /// The call waits for its answer in a plain blocking read, with no timeout: arming a timer
    /// for every call cost about 7 microseconds on a VM. The [`watchdog`] looks after its
    /// cancellation and deadline instead.
    pub(crate) fn call(
        &self,
        ctx: &mut Context,
        retiring: &Arc<AtomicBool>,
    ) -> Result<(), Box<Error>> {
        let runner = self.runner(ctx)?;
        let conn = match runner.take_conn(self.config.concurrency, ctx) {
            Ok(conn) => conn,
            Err(Lost::GaveUp) => return Err(Box::new(self.stopped(ctx, retiring))),
            Err(Lost::Gone) => return Err(self.crashed(&runner)),
        };
        let (seq, call) = self.call_frame(ctx);
        let watched = self.watched(ctx, retiring, &runner, conn.id, seq);
        let watch = watchdog::watch(&watched);
        let sent = protocol::send_to(&conn.socket, &call);
        if let Err(error) = &sent {
            if error.kind() == std::io::ErrorKind::InvalidData {
                drop(watch);
                runner.put_conn(conn);
                return Err(self.unsendable(error));
            }
        }
        let answer = sent
            .map_err(|_| Lost::Gone)
            .and_then(|()| protocol::receive_answer(&conn.socket, self.config.spin));
        watched.finish();
        drop(watch);
        let (outcome, usable) = self.conclude(&runner, ctx, answer, &watched, retiring);
        if usable {
            runner.put_conn(conn);
        }
        outcome
    }

    /// A call on connection `conn` of `runner`, as the watchdog watches it.
    fn watched(
        &self,
        ctx: &Context,
        retiring: &Arc<AtomicBool>,
        runner: &Arc<RunnerProcess>,
        conn: u32,
        seq: u64,
    ) -> Arc<Watched> {
        Arc::new(Watched::new(
            ctx.deadline(),
            ctx.cancel_token(),
            Arc::clone(retiring),
            Arc::clone(runner),
            conn,
            seq,
            self.config.grace,
        ))
    }

    /// The error of a call refused before anything was written: its values are too large.
    fn unsendable(&self, error: &std::io::Error) -> Box<Error> {
        Box::new(Error::Failed {
            plugin: self.plugin.clone(),
            message: format!("the call's values could not be sent to its runner: {error}"),
        })
    }

    /// Ends a call with its answer, or with how its answer was lost: its outcome, with `ctx`
    /// updated from the runner, and whether its connection may serve another call (only after
    /// an answer; anything else ends the runner).
    fn conclude(
        &self,
        runner: &Arc<RunnerProcess>,
        ctx: &mut Context,
        answer: Result<FromRunner, Lost>,
        watched: &Watched,
        retiring: &Arc<AtomicBool>,
    ) -> (Result<(), Box<Error>>, bool) {
        let failed = match answer {
            Ok(FromRunner::Done {
                values,
                removed,
                outcome,
            }) => {
                ctx.apply_changes(values, removed);
                return (self.outcome(ctx, outcome, retiring), true);
            }
            Ok(other) => {
                let answer = format!("{other:?}");
                runner.kill();
                self.forget(runner);
                self.restart_error(RunnerFailure::Unexpected {
                    asked: "a call",
                    answer,
                })
            }
            Err(_) if watched.killed() => {
                // Killed by the watchdog (which ended the read).
                runner.kill();
                self.forget(runner);
                tracing::warn!(target: "gp", plugin = self.plugin, "a call did not stop within {:?} of its deadline or cancellation: its runner was killed; the next call starts a new one", self.config.grace);
                Box::new(self.stopped(ctx, retiring))
            }
            Err(_) => self.crashed(runner),
        };
        (Err(failed), false)
    }

    /// The frame of `ctx`'s call, under the next sequence number.
    fn call_frame<'c>(&self, ctx: &'c Context) -> (u64, CallFrame<'c>) {
        let seq = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let call = CallFrame {
            seq,
            label: ctx.label(),
            remaining_ms: ctx
                .deadline()
                .map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64),
            values: ctx.values().collect(),
            cpu_seconds: self.config.cpu_per_call.map(|d| d.as_secs().max(1)),
        };
        (seq, call)
    }

    /// The runner died under a call: its error (the same for every call that was in flight),
    /// counted once.
    fn crashed(&self, runner: &Arc<RunnerProcess>) -> Box<Error> {
        let (status, stderr) = runner.end();
        let mut state = self.lock();
        state.forget(runner);
        if runner.count_once() {
            self.count_crash(&mut state);
            tracing::info!(target: "gp", plugin = self.plugin, "its runner died during a call ({status})");
        }
        Box::new(Error::Crashed {
            plugin: self.plugin.clone(),
            status,
            stderr,
        })
    }

    /// Drops the runner the host just killed, without counting a crash.
    fn forget(&self, runner: &Arc<RunnerProcess>) {
        runner.not_a_crash();
        self.lock().forget(runner);
    }

    fn outcome(
        &self,
        ctx: &Context,
        outcome: Outcome,
        retiring: &Arc<AtomicBool>,
    ) -> Result<(), Box<Error>> {
        let plugin = self.plugin.clone();
        Err(Box::new(match outcome {
            Outcome::Ok => {
                self.lock().consecutive = 0;
                return Ok(());
            }
            Outcome::Panicked(message) => {
                tracing::error!(target: "gp::plugin", plugin = %plugin, "plugin panicked: {message}");
                Error::Panicked { plugin, message }
            }
            Outcome::Cancelled if retiring.load(Ordering::Relaxed) && !ctx.is_cancelled() => {
                Error::Unloaded { plugin }
            }
            // Cancelled by the watchdog at its deadline (which the runner may not have seen
            // pass yet): as an in-process call past its deadline reports it.
            Outcome::Cancelled if !ctx.is_cancelled() && ctx.is_past_deadline() => {
                Error::DeadlineExceeded { plugin }
            }
            Outcome::Cancelled => Error::Cancelled { plugin },
            Outcome::DeadlineExceeded => Error::DeadlineExceeded { plugin },
            // Cut by the runner already, which says how much; this bound is for a runner that
            // did not (its suffix fits in the margin).
            Outcome::Failed(message) | Outcome::Other(message) => Error::Failed {
                plugin,
                message: bounded(message, MAX_PLUGIN_MESSAGE + 64),
            },
        }))
    }

    /// Counts a crash: sets the back-off, and opens the breaker after too many.
    fn count_crash(&self, state: &mut State) {
        let now = Instant::now();
        state.crashes_total += 1;
        state.crashes.push_back(now);
        while state
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.config.crash_window)
        {
            state.crashes.pop_front();
        }
        state.consecutive += 1;
        let backoff = self
            .config
            .backoff
            .saturating_mul(1 << state.consecutive.saturating_sub(1).min(10))
            .min(Duration::from_secs(5));
        state.not_before = Some(now + backoff);
        if state.crashes.len() as u32 >= self.config.max_crashes {
            state.broken = true;
            tracing::error!(target: "gp", plugin = self.plugin, "its runner crashed {} times within {:?}: the plugin is marked failed until it is loaded again", state.crashes.len(), self.config.crash_window);
        }
    }

    /// Runs `on_unload` in the runner and ends it. `None` if no runner was running.
    pub(crate) fn unload(&self, hook_timeout: Duration) -> Option<Result<(), Error>> {
        let runner = {
            let mut state = self.lock();
            state.closed = true;
            state.runner.take()?
        };
        runner.not_a_crash();
        let started = Instant::now();
        let limit = hook_timeout + self.config.grace;
        let answer = runner.ask(&ToRunner::Unload, &mut || started.elapsed() < limit);
        let failure = match answer {
            Ok(FromRunner::Unloaded { error: None }) => None,
            Ok(FromRunner::Unloaded {
                error: Some(message),
            }) => Some(RunnerFailure::Unload { message }),
            Ok(other) => Some(RunnerFailure::Unexpected {
                asked: "Unload",
                answer: format!("{other:?}"),
            }),
            Err(Lost::GaveUp) => Some(RunnerFailure::UnloadTimedOut { limit }),
            Err(Lost::Gone) => {
                let (status, stderr) = runner.end();
                return Some(Err(Error::Crashed {
                    plugin: self.plugin.clone(),
                    status: format!("while unloading: {status}"),
                    stderr,
                }));
            }
        };
        runner.end();
        Some(match failure {
            None => Ok(()),
            Some(reason) => Err(Error::Runner {
                plugin: self.plugin.clone(),
                reason,
            }),
        })
    }

    /// How its runner is doing.
    pub(crate) fn status(&self) -> IsolationStatus {
        let state = self.lock();
        IsolationStatus {
            runner_pid: state.runner.as_ref().map(|r| r.pid()),
            restarts: state.restarts,
            crashes: state.crashes_total,
            circuit_open: state.broken,
        }
    }

    /// The bare channel's round trip: a ping and its answer on a call connection.
    pub(crate) fn ping(&self) -> Result<(), Error> {
        let runner = self.lock().runner.clone();
        let Some(runner) = runner else {
            return Err(*self.restart_error(RunnerFailure::NotRunning));
        };
        let conn = runner
            .take_conn(self.config.concurrency, &Context::new())
            .map_err(|_| *self.restart_error(RunnerFailure::NoConnection))?;
        let answer = protocol::send_to(&conn.socket, &ToRunner::Ping)
            .map_err(|_| Lost::Gone)
            .and_then(|()| protocol::receive_answer(&conn.socket, self.config.spin));
        match answer {
            Ok(FromRunner::Pong) => {
                runner.put_conn(conn);
                Ok(())
            }
            _ => {
                runner.drop_conn(conn);
                Err(*self.restart_error(RunnerFailure::NoPong))
            }
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(runner) = self.lock().runner.take() {
            runner.kill();
        }
        let _ = std::fs::remove_file(&self.open.library);
    }
}
