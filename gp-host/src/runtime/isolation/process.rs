//! One runner process: started from the spawner thread in a process group of its own with a
//! cleared environment, greeted and handed the library; its control socket, its call
//! connections, and its end.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::config::{Isolation, MEMORY_ENV, PARENT_ENV, RUNNER_ENV};
use super::protocol::{self, FromRunner, Hello, Lost, Open, ToRunner, PROTOCOL};
use super::spawner;
use super::stderr::Stderr;
use crate::error::RunnerFailure;
use crate::runtime::context::Context;
use crate::util::{lock, wait_timeout};

/// How often a waiting call looks at its cancellation and deadline, and how often the
/// watchdog looks at the calls in flight.
pub(super) const POLL: Duration = Duration::from_millis(5);
/// How long a runner may take to say hello once started.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running runner process: its control socket and its call connections.
pub(super) struct RunnerProcess {
    child: Mutex<Child>,
    pid: u32,
    control: Mutex<UnixStream>,
    /// Call connections not in use.
    idle: Mutex<Vec<Conn>>,
    /// Signalled when a connection comes back.
    returned: Condvar,
    /// Connections made so far (their ids).
    made: AtomicU32,
    stderr: Stderr,
    /// How it ended, once someone saw it end: (status, last stderr lines).
    ended: Mutex<Option<(String, String)>>,
    /// Its exit status, once reaped, and whether the host had to kill it first.
    exit: Mutex<Option<(Option<ExitStatus>, bool)>>,
    /// Set once its end has been counted as a crash, or ruled not to be one (every call that
    /// was in flight sees the same end).
    counted: AtomicBool,
}

/// One call connection to a runner.
pub(super) struct Conn {
    pub(super) id: u32,
    pub(super) socket: UnixStream,
}

/// What the runner said about the library it loaded.
pub(crate) struct Opened {
    pub has_on_load: bool,
    pub has_on_unload: bool,
}

impl RunnerProcess {
    /// Starts a runner for `plugin` and has it open `open` (the loader, abi_stable's checks
    /// and, unless it is a pre-flight, `on_load`). On any failure the process is ended.
    pub(super) fn start(
        plugin: &str,
        open: &Open,
        config: &Isolation,
    ) -> Result<(RunnerProcess, Opened), RunnerFailure> {
        let program = match &config.program {
            Some(program) => program.clone(),
            None => std::env::current_exe().map_err(|e| RunnerFailure::NoProgram {
                source: Arc::new(e),
            })?,
        };
        let (host_end, runner_end) = UnixStream::pair().map_err(|e| RunnerFailure::NoSocket {
            source: Arc::new(e),
        })?;
        let mut command = Command::new(&program);
        // A pre-flight's runner sees the host's environment, as the in-process load it
        // stands for will (start-up code that reads it must behave the same); an isolated
        // plugin's runner sees only `Isolation::env`, so that what is meant for the host
        // never reaches it.
        if !open.check_only {
            command.env_clear();
            for key in &config.env {
                if let Some(value) = std::env::var_os(key) {
                    command.env(key, value);
                }
            }
        }
        command
            .env(RUNNER_ENV, PROTOCOL.to_string())
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::from(OwnedFd::from(runner_end)))
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped());
        if let Some(bytes) = config.memory_limit {
            command.env(MEMORY_ENV, bytes.to_string());
            // The limit is on address space (RLIMIT_AS), and mimalloc (the `gp` binary's
            // allocator, when it is the runner) reserves 1 GiB of it up front by default;
            // reserving 16 MiB at a time leaves the limit to what is used. Other programs
            // ignore the variable.
            command.env("MIMALLOC_ARENA_RESERVE", "16MiB");
        }
        // A group of its own: ending the runner ends whatever processes the plugin started.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        // The spawner consumes the command, which holds the runner's end of the socket.
        let mut child = spawner::spawn(command).map_err(|e| RunnerFailure::Spawn {
            program: program.clone(),
            source: Arc::new(e),
        })?;
        let stderr = Stderr::forward(child.stderr.take(), plugin);
        let _ = host_end.set_read_timeout(Some(POLL));
        let runner = RunnerProcess {
            pid: child.id(),
            child: Mutex::new(child),
            control: Mutex::new(host_end),
            idle: Mutex::default(),
            returned: Condvar::new(),
            made: AtomicU32::new(0),
            stderr,
            ended: Mutex::default(),
            exit: Mutex::default(),
            counted: AtomicBool::new(false),
        };
        let opened = runner.open(&program, open)?;
        Ok((runner, opened))
    }

    /// Waits for the runner's hello, sends `Open` and waits for the answer, ending the
    /// runner on any failure.
    fn open(&self, program: &Path, open: &Open) -> Result<Opened, RunnerFailure> {
        let started = Instant::now();
        let control = lock(&self.control);
        let hello: Hello =
            match protocol::receive_polling(&control, &mut || started.elapsed() < HELLO_TIMEOUT) {
                Ok(hello) => hello,
                Err(lost) => {
                    drop(control);
                    let (status, stderr) = self.end();
                    return Err(RunnerFailure::NoHello {
                        program: program.to_owned(),
                        waited: matches!(lost, Lost::GaveUp).then_some(HELLO_TIMEOUT),
                        status,
                        stderr,
                    });
                }
            };
        if hello.protocol != PROTOCOL {
            drop(control);
            self.end();
            return Err(RunnerFailure::Protocol {
                program: program.to_owned(),
                runner: hello.protocol,
                host: PROTOCOL,
            });
        }
        let answer = protocol::send_to(&control, &ToRunner::Open(Box::new(open.clone())))
            .map_err(|_| Lost::Gone)
            .and_then(|()| {
                let limit = Duration::from_millis(open.hook_timeout_ms) + HELLO_TIMEOUT;
                protocol::receive_polling::<FromRunner>(&control, &mut || started.elapsed() < limit)
            });
        drop(control);
        match answer {
            Ok(FromRunner::Opened {
                has_on_load,
                has_on_unload,
            }) => Ok(Opened {
                has_on_load,
                has_on_unload,
            }),
            Ok(FromRunner::Refused { message }) => {
                self.end();
                Err(RunnerFailure::Refused { message })
            }
            Ok(other) => {
                self.end();
                Err(RunnerFailure::Unexpected {
                    asked: "Open",
                    answer: format!("{other:?}"),
                })
            }
            Err(_) => {
                let (status, stderr) = self.end();
                Err(RunnerFailure::DiedLoading { status, stderr })
            }
        }
    }

    /// The runner's process id.
    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether its standard error has ended: the runner has exited (seen between calls).
    pub(super) fn exited(&self) -> bool {
        self.stderr.ended()
    }

    /// Marks its end as counted; `true` if it was not already (count the crash then).
    pub(super) fn count_once(&self) -> bool {
        !self.counted.swap(true, Ordering::AcqRel)
    }

    /// Marks its end as not a crash: the host ends it on purpose.
    pub(super) fn not_a_crash(&self) {
        self.counted.store(true, Ordering::Release);
    }

    /// Sends a control message (a failure shows on the call connections soon enough).
    pub(super) fn control(&self, message: &ToRunner) {
        let _ = protocol::send_to(&lock(&self.control), message);
    }

    /// Sends a control message and waits for the answer while `keep_waiting` says so.
    pub(super) fn ask(
        &self,
        message: &ToRunner,
        keep_waiting: &mut dyn FnMut() -> bool,
    ) -> Result<FromRunner, Lost> {
        let control = lock(&self.control);
        protocol::send_to(&control, message)
            .map_err(|_| Lost::Gone)
            .and_then(|()| protocol::receive_polling(&control, keep_waiting))
    }

    /// A call connection: an idle one, a new one (up to `limit`), or the next one returned.
    pub(super) fn take_conn(&self, limit: usize, ctx: &Context) -> Result<Conn, Lost> {
        let mut idle = lock(&self.idle);
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
            if lock(&self.ended).is_some() {
                return Err(Lost::Gone);
            }
            idle = wait_timeout(&self.returned, idle, POLL);
        }
    }

    /// Makes call connection `id` and hands the runner its end.
    fn connect(&self, id: u32) -> Result<Conn, Lost> {
        let (host_end, runner_end) = UnixStream::pair().map_err(|_| Lost::Gone)?;
        protocol::send_with_fd(
            &lock(&self.control),
            &ToRunner::Connect { conn: id },
            runner_end.as_fd(),
        )
        .map_err(|_| Lost::Gone)?;
        Ok(Conn {
            id,
            socket: host_end,
        })
    }

    /// Gives a connection back for the next call.
    pub(super) fn put_conn(&self, conn: Conn) {
        lock(&self.idle).push(conn);
        self.returned.notify_one();
    }

    /// Forgets a connection that broke: its place may be made again.
    pub(super) fn drop_conn(&self, conn: Conn) {
        drop(conn);
        self.made.fetch_sub(1, Ordering::Relaxed);
    }

    /// Waits for the process to end (killing it if it has not within a second) and returns
    /// how it ended and its last standard-error lines; the same to every caller.
    pub(super) fn end(&self) -> (String, String) {
        self.end_within(Duration::from_secs(1))
    }

    /// [`end`](Self::end), waiting up to `limit` before killing it.
    pub(super) fn end_within(&self, limit: Duration) -> (String, String) {
        let mut ended = lock(&self.ended);
        if let Some(ended) = &*ended {
            return ended.clone();
        }
        let _ = lock(&self.control).shutdown(std::net::Shutdown::Both);
        let mut child = lock(&self.child);
        let started = Instant::now();
        let (status, killed) = loop {
            match child.try_wait() {
                Ok(Some(status)) => break (Some(status), false),
                Ok(None) if started.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                _ => {
                    let _ = child.kill();
                    break (child.wait().ok(), true);
                }
            }
        };
        *lock(&self.exit) = Some((status, killed));
        // Whatever the plugin started goes with it.
        self.kill_group();
        let outcome = (
            status.map_or_else(|| "status unknown".into(), describe),
            self.stderr.last_lines(),
        );
        *ended = Some(outcome.clone());
        self.returned.notify_all();
        outcome
    }

    /// Its exit status once [`end`](Self::end) reaped it (`None` before, or if it could not be
    /// read), and whether the host killed it because it had not exited in time.
    pub(super) fn exit_status(&self) -> (Option<ExitStatus>, bool) {
        lock(&self.exit).unwrap_or((None, false))
    }

    /// Kills the runner's process group (the runner, and what the plugin started).
    fn kill_group(&self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }

    /// Sends the process `SIGKILL` without waiting: the calls reading from it see it end.
    pub(super) fn signal_kill(&self) {
        let _ = lock(&self.child).kill();
    }

    /// Kills the process and reaps it.
    pub(super) fn kill(&self) {
        self.signal_kill();
        self.end();
    }
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
