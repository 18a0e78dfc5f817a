//! The host's side of an isolated plugin: its runner process, calls over the runner's socket,
//! crashes, restarts and the circuit breaker.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::protocol::{self, Call, FromRunner, Hello, Open, Outcome, ToRunner, PROTOCOL};
use super::{Isolation, MEMORY_ENV, PARENT_ENV, RUNNER_ENV};
use crate::error::Error;
use crate::runtime::context::{Context, LOG_MARK};
use crate::runtime::spec::Spec;
use crate::util::{bounded, MAX_PLUGIN_MESSAGE};

/// How often a waiting call looks at its cancellation and deadline.
const POLL: Duration = Duration::from_millis(5);
/// How long a runner may take to say hello once started.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How a message about a runner that could not start at all begins.
const NOT_STARTED: &str = "cannot start";
/// How the message of a library the runner refused begins.
const REFUSED: &str = "its runner refused it: ";
/// How the message of a runner that died while loading begins.
const DIED_LOADING: &str = "its runner died while loading it ";

/// How many of a runner's last standard-error lines a crash report carries.
const STDERR_LINES: usize = 20;

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
    /// Whether the private copy is this remote's to delete (a pre-flight's is not).
    owns_copy: bool,
}

#[derive(Default)]
struct State {
    runner: Option<Arc<Runner>>,
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
    fn forget(&mut self, runner: &Arc<Runner>) {
        if self.runner.as_ref().is_some_and(|r| Arc::ptr_eq(r, runner)) {
            self.runner = None;
        }
    }
}

/// A running runner process: its control socket and its call connections.
struct Runner {
    child: Mutex<Child>,
    pid: u32,
    control: Mutex<UnixStream>,
    /// Call connections not in use.
    idle: Mutex<Vec<Conn>>,
    /// Signalled when a connection comes back.
    returned: Condvar,
    /// Connections made so far (their ids).
    made: AtomicU32,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// Closed when the stderr reader has read to the end of the pipe.
    stderr_done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// Set by the stderr reader at the end of the pipe: the runner has exited. A call checks
    /// it before using the runner, so a runner that died between calls is replaced rather than
    /// failing the next call.
    exited: Arc<AtomicBool>,
    /// How it ended, once someone saw it end: (status, last stderr lines).
    ended: Mutex<Option<(String, String)>>,
    /// Set once its end has been counted as a crash (every call that was in flight sees it).
    counted: AtomicBool,
}

/// One call connection to a runner.
struct Conn {
    id: u32,
    socket: UnixStream,
}

/// What [`Remote::start`] learnt from the runner.
pub(crate) struct Opened {
    pub has_on_load: bool,
    pub has_on_unload: bool,
}

/// Why a wait for the runner's answer ended without one.
enum Lost {
    /// The socket closed or broke: the runner died (or is dying).
    Gone,
    /// The caller's deadline, or its cancellation, plus the grace period passed.
    GaveUp,
}

impl Remote {
    fn new(spec: &Spec, open: Open, config: Arc<Isolation>, owns_copy: bool) -> Remote {
        Remote {
            plugin: spec.name().to_owned(),
            open,
            source: spec.library.clone(),
            config,
            state: Mutex::default(),
            starting: Mutex::default(),
            calls: AtomicU64::new(0),
            owns_copy,
        }
    }

    /// Starts a runner for version `spec` (its private copy is `open.library`, deleted with
    /// the remote), loads the plugin there and runs its `on_load`.
    pub(crate) fn start(
        spec: &Spec,
        open: Open,
        config: Arc<Isolation>,
    ) -> Result<(Remote, Opened), Error> {
        let remote = Remote::new(spec, open, config, true);
        let (runner, opened) = remote.start_runner()?;
        remote.lock().runner = Some(Arc::new(runner));
        Ok((remote, opened))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the library's private copy if it is missing (a collection may have removed
    /// it), checking that the original is still the build that was loaded.
    fn ensure_copy(&self) -> Result<(), Error> {
        if self.open.library.exists() {
            return Ok(());
        }
        let data = std::fs::read(&self.source).map_err(|e| Error::io(&self.source, e))?;
        let sha256 = format!("{:x}", Sha256::digest(&data));
        if sha256 != self.open.sha256 {
            return Err(self.runner_error(format!(
                "its library {} changed since it was loaded, and its runner needs to load it again: load the plugin again",
                self.source.display()
            )));
        }
        crate::util::write_atomically(&self.open.library, |tmp| std::fs::write(tmp, &data))
    }

    fn runner_error(&self, message: String) -> Error {
        Error::Runner {
            plugin: self.plugin.clone(),
            message,
        }
    }

    /// Starts a runner process and loads the plugin in it.
    fn start_runner(&self) -> Result<(Runner, Opened), Error> {
        self.ensure_copy()?;
        let program = match &self.config.program {
            Some(program) => program.clone(),
            None => std::env::current_exe().map_err(|e| {
                self.runner_error(format!(
                    "{NOT_STARTED} a runner: this program's path is unknown: {e}"
                ))
            })?,
        };
        let (host_end, runner_end) = UnixStream::pair().map_err(|e| {
            self.runner_error(format!("{NOT_STARTED} a runner: no socket pair: {e}"))
        })?;
        let mut command = Command::new(&program);
        command.env_clear();
        for key in &self.config.env {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command
            .env(RUNNER_ENV, PROTOCOL.to_string())
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::from(OwnedFd::from(runner_end)))
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped());
        if let Some(bytes) = self.config.memory_limit {
            command.env(MEMORY_ENV, bytes.to_string());
        }
        // A group of its own: ending the runner ends whatever processes the plugin started.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        // The spawner consumes the command, which holds the runner's end of the socket (the
        // host must not keep it, or it would never see a runner's end).
        let mut child = spawner::spawn(command)
            .map_err(|e| self.runner_error(format!("{NOT_STARTED} {}: {e}", program.display())))?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let exited = Arc::new(AtomicBool::new(false));
        let (done, stderr_done) = std::sync::mpsc::channel::<()>();
        if let Some(pipe) = child.stderr.take() {
            let (tail, plugin, exited) = (
                Arc::clone(&stderr),
                self.plugin.clone(),
                Arc::clone(&exited),
            );
            let _ = std::thread::Builder::new()
                .name(format!("gp-runner-{plugin}-stderr"))
                .spawn(move || {
                    forward_stderr(pipe, &plugin, &tail);
                    exited.store(true, Ordering::Release);
                    drop(done);
                });
        }
        let _ = host_end.set_read_timeout(Some(POLL));
        let runner = Runner {
            pid: child.id(),
            child: Mutex::new(child),
            control: Mutex::new(host_end),
            idle: Mutex::default(),
            returned: Condvar::new(),
            made: AtomicU32::new(0),
            stderr,
            stderr_done: Mutex::new(Some(stderr_done)),
            exited,
            ended: Mutex::default(),
            counted: AtomicBool::new(false),
        };

        let started = Instant::now();
        let control = runner.control.lock().unwrap_or_else(|p| p.into_inner());
        let hello: Hello = match receive(&control, &mut || started.elapsed() < HELLO_TIMEOUT) {
            Ok(hello) => hello,
            Err(lost) => {
                drop(control);
                let how = match lost {
                    Lost::GaveUp => format!("did not answer within {HELLO_TIMEOUT:?}"),
                    Lost::Gone => "exited without answering".to_owned(),
                };
                let (status, stderr) = runner.end();
                return Err(self.runner_error(format!(
                    "its runner {} {how} ({status}){}: a program that isolates plugins calls gp_host::isolation::run_if_runner() first in main, or names a runner with Isolation::program",
                    program.display(),
                    if stderr.is_empty() { String::new() } else { format!("; it wrote:\n{stderr}") }
                )));
            }
        };
        if hello.protocol != PROTOCOL {
            drop(control);
            runner.end();
            return Err(self.runner_error(format!(
                "its runner {} speaks runner protocol {}, this host {PROTOCOL}: use a runner from the same gp-host version",
                program.display(),
                hello.protocol
            )));
        }
        let open = ToRunner::Open(Box::new(self.open.clone()));
        let answer = protocol::send_to(&control, &open)
            .map_err(|_| Lost::Gone)
            .and_then(|()| {
                let limit = Duration::from_millis(self.open.hook_timeout_ms) + HELLO_TIMEOUT;
                receive::<FromRunner>(&control, &mut || started.elapsed() < limit)
            });
        drop(control);
        match answer {
            Ok(FromRunner::Opened {
                has_on_load,
                has_on_unload,
            }) => Ok((
                runner,
                Opened {
                    has_on_load,
                    has_on_unload,
                },
            )),
            Ok(FromRunner::Refused { message }) => {
                runner.end();
                Err(self.runner_error(format!("{REFUSED}{message}")))
            }
            Ok(other) => {
                runner.end();
                Err(self.runner_error(format!("unexpected answer to Open: {other:?}")))
            }
            Err(_) => {
                let (status, stderr) = runner.end();
                Err(self.runner_error(format!(
                    "{DIED_LOADING}({status}){}",
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!("; its last lines on stderr:\n{stderr}")
                    }
                )))
            }
        }
    }

    /// The runner to call now: the running one, or a new one (after the back-off).
    fn runner(&self, ctx: &Context) -> Result<Arc<Runner>, Box<Error>> {
        // The common case: a runner that is running.
        if let Some(runner) = &self.lock().runner {
            if !runner.exited.load(Ordering::Acquire) {
                return Ok(Arc::clone(runner));
            }
        }
        // One restart at a time; the state lock is not held while it sleeps or starts a
        // runner, so `status` and calls that find a runner do not wait for it.
        let _starting = self.starting.lock().unwrap_or_else(|p| p.into_inner());
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
            if !runner.exited.load(Ordering::Acquire) {
                return Ok(Arc::clone(runner));
            }
            // It died between calls (a background thread crashed, the CPU limit): replace it
            // before this call instead of failing the call.
            let runner = state.runner.take().expect("checked above");
            drop(state);
            let (status, _) = runner.end();
            state = self.lock();
            if !runner.counted.swap(true, Ordering::AcqRel) {
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
        let started = self.start_runner();
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
                runner.counted.store(true, Ordering::Release);
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
        let deadline = ctx.deadline();
        let seq = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let call = ToRunner::Call(Call {
            seq,
            label: ctx.label().map(str::to_owned),
            remaining_ms: deadline
                .map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64),
            values: ctx
                .values()
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect(),
            cpu_seconds: self.config.cpu_per_call.map(|d| d.as_secs().max(1)),
        });
        let grace = self.config.grace;
        let watched = Arc::new(Watched {
            deadline,
            cancel: ctx.cancel_token(),
            retiring: Arc::clone(retiring),
            runner: Arc::clone(&runner),
            conn: conn.id,
            seq,
            grace,
            watch: Mutex::default(),
            killed: AtomicBool::new(false),
        });
        let watch = watchdog::watch(&watched);
        let sent = protocol::send_to(&conn.socket, &call);
        if let Err(error) = &sent {
            if error.kind() == std::io::ErrorKind::InvalidData {
                // Refused before anything was written: the caller's values are too large.
                drop(watch);
                runner.put_conn(conn);
                return Err(Box::new(Error::Failed {
                    plugin: self.plugin.clone(),
                    message: format!("the call's values could not be sent to its runner: {error}"),
                }));
            }
        }
        let answer = sent
            .map_err(|_| Lost::Gone)
            .and_then(|()| receive_answer(&conn.socket, self.config.spin));
        // From here the watchdog leaves this call alone, even if it already saw it due.
        watched
            .watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finished = true;
        drop(watch);
        let answer = match answer {
            Err(Lost::Gone) if watched.killed.load(Ordering::Acquire) => Err(Lost::GaveUp),
            other => other,
        };
        match answer {
            Ok(FromRunner::Done { values, outcome }) => {
                runner.put_conn(conn);
                ctx.replace_values(values);
                self.outcome(ctx, outcome, retiring)
            }
            Ok(other) => {
                let error = format!("unexpected answer to a call: {other:?}");
                runner.kill();
                self.forget(&runner);
                Err(Box::new(self.runner_error(error)))
            }
            Err(Lost::GaveUp) => {
                // Killed by the watchdog (which ended the read).
                runner.kill();
                self.forget(&runner);
                tracing::warn!(target: "gp", plugin = self.plugin, "a call did not stop within {grace:?} of its deadline or cancellation: its runner was killed; the next call starts a new one");
                Err(Box::new(self.stopped(ctx, retiring)))
            }
            Err(Lost::Gone) => Err(self.crashed(&runner)),
        }
    }

    /// The runner died under a call: its error (the same for every call that was in flight),
    /// counted once.
    fn crashed(&self, runner: &Arc<Runner>) -> Box<Error> {
        let (status, stderr) = runner.end();
        let mut state = self.lock();
        state.forget(runner);
        if !runner.counted.swap(true, Ordering::AcqRel) {
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
    fn forget(&self, runner: &Arc<Runner>) {
        runner.counted.store(true, Ordering::Release);
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
        runner.counted.store(true, Ordering::Release);
        let started = Instant::now();
        let limit = hook_timeout + self.config.grace;
        let answer = {
            let control = runner.control.lock().unwrap_or_else(|p| p.into_inner());
            protocol::send_to(&control, &ToRunner::Unload)
                .map_err(|_| Lost::Gone)
                .and_then(|()| receive::<FromRunner>(&control, &mut || started.elapsed() < limit))
        };
        let outcome = match answer {
            Ok(FromRunner::Unloaded { error: None }) => Ok(()),
            Ok(FromRunner::Unloaded {
                error: Some(message),
            }) => Err(self.runner_error(message)),
            Ok(other) => Err(self.runner_error(format!("unexpected answer to Unload: {other:?}"))),
            Err(Lost::GaveUp) => Err(self.runner_error(format!(
                "on_unload did not return within {limit:?}: the runner was killed"
            ))),
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
        Some(outcome)
    }

    /// How its runner is doing.
    pub(crate) fn status(&self) -> super::IsolationStatus {
        let state = self.lock();
        super::IsolationStatus {
            runner_pid: state.runner.as_ref().map(|r| r.pid),
            restarts: state.restarts,
            crashes: state.crashes_total,
            circuit_open: state.broken,
        }
    }

    /// The bare channel's round trip: a ping and its answer on a call connection.
    pub(crate) fn ping(&self) -> Result<(), Error> {
        let runner = self.lock().runner.clone();
        let Some(runner) = runner else {
            return Err(self.runner_error("no runner is running".into()));
        };
        let conn = runner
            .take_conn(self.config.concurrency, &Context::new())
            .map_err(|_| self.runner_error("no call connection".into()))?;
        let answer = protocol::send_to(&conn.socket, &ToRunner::Ping)
            .map_err(|_| Lost::Gone)
            .and_then(|()| receive_answer(&conn.socket, self.config.spin));
        match answer {
            Ok(FromRunner::Pong) => {
                runner.put_conn(conn);
                Ok(())
            }
            _ => {
                // The connection is gone: its slot may be made again.
                runner.made.fetch_sub(1, Ordering::Relaxed);
                Err(self.runner_error("no answer to a ping".into()))
            }
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(runner) = self.lock().runner.take() {
            runner.kill();
        }
        if self.owns_copy {
            let _ = std::fs::remove_file(&self.open.library);
        }
    }
}

/// The verdicts of pre-flights so far, by SHA-256: `Err` holds the refusal's message.
fn verdicts() -> MutexGuard<'static, HashMap<String, Result<(), String>>> {
    static VERDICTS: OnceLock<Mutex<HashMap<String, Result<(), String>>>> = OnceLock::new();
    VERDICTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Loads the library at `copy` in a throwaway runner (the loader, abi_stable's checks, the
/// root module; no hook runs) before this process maps it. Once per build and process.
pub(crate) fn preflight(spec: &Spec, copy: &Path, config: &Arc<Isolation>) -> Result<(), Error> {
    let refused = |message: String| Error::Runner {
        plugin: spec.name().to_owned(),
        message,
    };
    if let Some(verdict) = verdicts().get(&spec.sha256) {
        return verdict.clone().map_err(refused);
    }
    let open = Open::new(spec, copy, Duration::ZERO, true, Duration::ZERO);
    let remote = Remote::new(spec, open, Arc::clone(config), false);
    let started = Instant::now();
    let verdict = match remote.start_runner() {
        Ok((runner, _)) => {
            runner.end();
            Ok(())
        }
        // A verdict on the library: it was refused, or its runner died loading it.
        Err(Error::Runner { message, .. })
            if message.starts_with(REFUSED) || message.starts_with(DIED_LOADING) =>
        {
            Err(format!(
                "pre-flight: {message}; it was not loaded into this process"
            ))
        }
        // No verdict (the runner could not start, did not answer in time, is not a runner):
        // refused now, asked again next time.
        Err(Error::Runner { message, .. }) => {
            return Err(refused(format!("pre-flight: {message}")));
        }
        Err(other) => return Err(other),
    };
    tracing::debug!(target: "gp", plugin = spec.name(), "pre-flight in {:?}: {verdict:?}", started.elapsed());
    verdicts().insert(spec.sha256.clone(), verdict.clone());
    verdict.map_err(refused)
}

impl Runner {
    /// Sends a control message (a failure shows on the call connections soon enough).
    fn control(&self, message: &ToRunner) {
        let control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        let _ = protocol::send_to(&control, message);
    }

    /// A call connection: an idle one, a new one (up to `limit`), or the next one returned.
    fn take_conn(&self, limit: usize, ctx: &Context) -> Result<Conn, Lost> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = idle.pop() {
                return Ok(conn);
            }
            if (self.made.load(Ordering::Relaxed) as usize) < limit.max(1) {
                let id = self.made.fetch_add(1, Ordering::Relaxed);
                drop(idle);
                return self.connect(id);
            }
            if ctx.is_cancelled() || ctx.is_past_deadline() {
                return Err(Lost::GaveUp);
            }
            if self
                .ended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
            {
                return Err(Lost::Gone);
            }
            idle = self
                .returned
                .wait_timeout(idle, POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Makes call connection `id` and hands the runner its end.
    fn connect(&self, id: u32) -> Result<Conn, Lost> {
        let (host_end, runner_end) = UnixStream::pair().map_err(|_| Lost::Gone)?;
        let control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        protocol::send_with_fd(
            &control,
            &ToRunner::Connect { conn: id },
            runner_end.as_fd(),
        )
        .map_err(|_| Lost::Gone)?;
        drop(control);
        Ok(Conn {
            id,
            socket: host_end,
        })
    }

    fn put_conn(&self, conn: Conn) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        self.returned.notify_one();
    }

    /// Waits for the process to end (killing it if it has not within a second) and returns
    /// how it ended and its last standard-error lines; the same to every caller.
    fn end(&self) -> (String, String) {
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ended) = &*ended {
            return ended.clone();
        }
        let _ = self
            .control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .shutdown(std::net::Shutdown::Both);
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() < Duration::from_secs(1) => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                _ => {
                    let _ = child.kill();
                    break child.wait().ok();
                }
            }
        };
        // Whatever the plugin started goes with it.
        self.kill_group();
        // The reader ends at the end of the pipe; a process that kept the pipe open (out of
        // reach of the group kill) must not hold this up: half a second, then the last lines
        // are reported as they are.
        if let Some(done) = self
            .stderr_done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = done.recv_timeout(Duration::from_millis(500));
        }
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let stderr = tail.iter().cloned().collect::<Vec<_>>().join("\n");
        let outcome = (
            status.map_or_else(|| "status unknown".into(), describe),
            stderr,
        );
        *ended = Some(outcome.clone());
        self.returned.notify_all();
        outcome
    }

    /// Kills the runner's process group (the runner, and what the plugin started).
    fn kill_group(&self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }

    /// Kills the process and reaps it.
    fn kill(&self) {
        let _ = self.child.lock().unwrap_or_else(|p| p.into_inner()).kill();
        self.end();
    }
}

/// Reads the answer to a call or a ping from a call connection, in one `read` when it fits in
/// 4 KiB (spinning first if `spin` says so).
fn receive_answer(socket: &UnixStream, spin: Duration) -> Result<FromRunner, Lost> {
    let mut input = std::io::BufReader::with_capacity(4096, protocol::SpinRead { socket, spin });
    protocol::receive(&mut input).map_err(|_| Lost::Gone)
}

/// Reads one message, calling `keep_waiting` whenever nothing has come for a while: the wait
/// ends when it returns false.
fn receive<T: serde::de::DeserializeOwned>(
    socket: &UnixStream,
    keep_waiting: &mut dyn FnMut() -> bool,
) -> Result<T, Lost> {
    let mut length = [0u8; 4];
    read_polling(socket, &mut length, keep_waiting)?;
    let length = u32::from_le_bytes(length) as usize;
    if length > protocol::MAX_FRAME {
        return Err(Lost::Gone);
    }
    let mut body = Vec::new();
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 << 10)];
        read_polling(socket, &mut chunk, keep_waiting)?;
        body.extend_from_slice(&chunk);
    }
    postcard::from_bytes(&body).map_err(|_| Lost::Gone)
}

fn read_polling(
    mut socket: &UnixStream,
    buf: &mut [u8],
    keep_waiting: &mut dyn FnMut() -> bool,
) -> Result<(), Lost> {
    let mut filled = 0;
    while filled < buf.len() {
        match socket.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(Lost::Gone);
            }
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if !keep_waiting() {
                    return Err(Lost::GaveUp);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Lost::Gone),
        }
    }
    Ok(())
}

/// "killed by signal 11 (SIGSEGV)", "exited with status 3".
fn describe(status: ExitStatus) -> String {
    if let Some(signal) = status.signal() {
        let name = match signal {
            4 => " (SIGILL)",
            6 => " (SIGABRT)",
            7 => " (SIGBUS)",
            8 => " (SIGFPE)",
            9 => " (SIGKILL)",
            11 => " (SIGSEGV)",
            24 => " (SIGXCPU)",
            _ => "",
        };
        format!("killed by signal {signal}{name}")
    } else {
        format!("exited with status {}", status.code().unwrap_or(-1))
    }
}

/// Logs the runner's standard error through the host's `tracing` (the plugin's log records
/// at their level, anything else at info), keeping the last lines for a crash report.
fn forward_stderr(pipe: impl Read, plugin: &str, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        // A line is cut at 16 KiB; the rest of it reads as further lines.
        match reader
            .by_ref()
            .take(MAX_PLUGIN_MESSAGE as u64)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        if let Some(record) = text.strip_prefix(LOG_MARK) {
            let (level, message) = record.split_once(' ').unwrap_or(("info", record));
            let message = message.replace('\u{1f}', "\n");
            match level {
                "error" => tracing::error!(target: "gp::plugin", plugin, "{message}"),
                "warn" => tracing::warn!(target: "gp::plugin", plugin, "{message}"),
                "debug" => tracing::debug!(target: "gp::plugin", plugin, "{message}"),
                "trace" => tracing::trace!(target: "gp::plugin", plugin, "{message}"),
                _ => tracing::info!(target: "gp::plugin", plugin, "{message}"),
            }
            continue;
        }
        tracing::info!(target: "gp::plugin", plugin, "stderr: {text}");
        // A backtrace's frames would push the message before them out of the crash report.
        let frame = text.trim_start();
        let is_frame = frame.starts_with("at ")
            || frame
                .split_once(": ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_frame {
            continue;
        }
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        if tail.len() == STDERR_LINES {
            tail.pop_front();
        }
        tail.push_back(bounded(text.to_owned(), 512));
    }
}

/// A call in flight, as the watchdog sees it.
struct Watched {
    deadline: Option<Instant>,
    cancel: crate::runtime::context::CancelToken,
    retiring: Arc<AtomicBool>,
    runner: Arc<Runner>,
    conn: u32,
    /// The call's sequence number: a `Cancel` names it, so a late one cannot cancel the next
    /// call on the same connection.
    seq: u64,
    grace: Duration,
    watch: Mutex<WatchState>,
    /// Set before the watchdog kills the runner: the call's read ends then, and the call
    /// reports its deadline or cancellation rather than a crash.
    killed: AtomicBool,
}

/// What the watchdog did to a call, and whether the call is over.
#[derive(Default)]
struct WatchState {
    /// When `Cancel` went to the runner.
    cancel_sent: Option<Instant>,
    /// The call has its answer (or lost its runner): nothing more is done to it.
    finished: bool,
}

/// One thread for the whole process that looks at every isolated call in flight every
/// [`POLL`]: past its deadline, cancelled, or its plugin unloading, a call's runner gets
/// `Cancel`; `grace` later, if the call has not returned, the runner is killed. It parks when
/// no call has been in flight for a second, so steady traffic never has to wake it.
mod watchdog {
    use super::*;

    struct Shared {
        calls: Mutex<Calls>,
        wake: Condvar,
    }

    #[derive(Default)]
    struct Calls {
        next: u64,
        watched: Vec<(u64, Arc<Watched>)>,
        parked: bool,
    }

    fn shared() -> &'static Shared {
        static SHARED: OnceLock<Shared> = OnceLock::new();
        SHARED.get_or_init(|| {
            let shared = Shared {
                calls: Mutex::new(Calls {
                    parked: true,
                    ..Calls::default()
                }),
                wake: Condvar::new(),
            };
            let spawned = std::thread::Builder::new()
                .name("gp-isolation-watchdog".into())
                .spawn(run);
            if let Err(error) = spawned {
                tracing::error!(target: "gp", "cannot start the isolation watchdog: {error}; isolated calls ignore their deadlines");
            }
            shared
        })
    }

    /// Watches `call` until the guard is dropped.
    pub(super) fn watch(call: &Arc<Watched>) -> Guard {
        let shared = shared();
        let mut calls = shared.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.next += 1;
        let id = calls.next;
        calls.watched.push((id, Arc::clone(call)));
        if calls.parked {
            calls.parked = false;
            shared.wake.notify_one();
        }
        Guard { id }
    }

    pub(super) struct Guard {
        id: u64,
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            let mut calls = shared().calls.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = calls.watched.iter().position(|(id, _)| *id == self.id) {
                calls.watched.swap_remove(at);
            }
        }
    }

    fn run() {
        let shared = shared();
        let mut idle_since: Option<Instant> = None;
        loop {
            let due: Vec<Arc<Watched>> = {
                let mut calls = shared.calls.lock().unwrap_or_else(|p| p.into_inner());
                if calls.watched.is_empty() {
                    let idle = *idle_since.get_or_insert_with(Instant::now);
                    if idle.elapsed() > Duration::from_secs(1) {
                        calls.parked = true;
                        while calls.parked {
                            calls = shared.wake.wait(calls).unwrap_or_else(|p| p.into_inner());
                        }
                        idle_since = None;
                    }
                } else {
                    idle_since = None;
                }
                let now = Instant::now();
                calls
                    .watched
                    .iter()
                    .filter(|(_, call)| {
                        call.cancel.is_cancelled()
                            || call.retiring.load(Ordering::Relaxed)
                            || call.deadline.is_some_and(|d| now >= d)
                    })
                    .map(|(_, call)| Arc::clone(call))
                    .collect()
            };
            for call in due {
                let now = Instant::now();
                let mut watch = call.watch.lock().unwrap_or_else(|p| p.into_inner());
                if watch.finished {
                    continue;
                }
                match watch.cancel_sent {
                    None => {
                        watch.cancel_sent = Some(now);
                        call.runner.control(&ToRunner::Cancel {
                            conn: call.conn,
                            seq: call.seq,
                        });
                    }
                    Some(at) if now >= at + call.grace && !call.killed.load(Ordering::Relaxed) => {
                        call.killed.store(true, Ordering::Release);
                        // Not a crash: other calls in flight on it fail, the breaker ignores it.
                        call.runner.counted.store(true, Ordering::Release);
                        let _ = call
                            .runner
                            .child
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .kill();
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Starts runner processes from one thread that lives as long as the process.
///
/// A runner's parent-death signal (`PR_SET_PDEATHSIG`) fires when the *thread* that started it
/// exits, not the process: a runner started from a pool thread (tokio's blocking pool ends
/// idle threads after 10 s) would be killed with it.
mod spawner {
    use std::process::{Child, Command};
    use std::sync::mpsc::{channel, Sender};
    use std::sync::{Mutex, OnceLock};

    type Request = (Command, Sender<std::io::Result<Child>>);

    pub(super) fn spawn(command: Command) -> std::io::Result<Child> {
        static SPAWNER: OnceLock<Mutex<Option<Sender<Request>>>> = OnceLock::new();
        let spawner = SPAWNER.get_or_init(|| {
            let (requests, queue) = channel::<Request>();
            let started = std::thread::Builder::new()
                .name("gp-runner-spawner".into())
                .spawn(move || {
                    for (mut command, answer) in queue {
                        let child = command.spawn();
                        // The runner's end of its socket closes here, in this process.
                        drop(command);
                        let _ = answer.send(child);
                    }
                });
            Mutex::new(started.ok().map(|_| requests))
        });
        let requests = spawner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| std::io::Error::other("the runner spawner thread could not start"))?;
        let (answer, child) = channel();
        requests
            .send((command, answer))
            .map_err(|_| std::io::Error::other("the runner spawner thread ended"))?;
        child
            .recv()
            .map_err(|_| std::io::Error::other("the runner spawner thread ended"))?
    }
}
