//! The runner: the child process an isolated plugin runs in.
//!
//! It is the host's own executable (or the program the embedder named), started with
//! [`RUNNER_ENV`] set and its standard input a Unix socket to the host. Before anything else
//! it hardens itself: it dies with its parent, gains no privileges, writes no core dump, and
//! takes the memory limit the host asked for. Then it answers the host's frames: it loads the
//! library with the same checks as an in-process host (the ELF and abi_stable layout checks,
//! the version and the manifest), runs `on_load`, serves calls on the connections the host
//! hands it (each on a thread of its own), cancels a call on request, and on `Unload` runs
//! `on_unload` and exits.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::atomic::AtomicBool;

use super::config::{MEMORY_ENV, PARENT_ENV, RUNNER_ENV};
use super::protocol::{self, Call, FromRunner, Hello, Open, Outcome, ToRunner, PROTOCOL};
use crate::error::Error;
use crate::library;
use crate::runtime::context::{self, CancelToken, Context};
use crate::runtime::inprocess::{InProcess, UnloadHookRun};
use crate::runtime::spec::Spec;
use crate::util::lock;

/// The plugin a runner serves, loaded as an in-process host loads it.
struct Loaded {
    spec: Spec,
    instance: InProcess,
    /// Never set: a runner's plugin is unloaded by ending the runner, and a call is cancelled
    /// through its own token.
    retiring: AtomicBool,
}

impl Loaded {
    fn call(&self, ctx: &mut Context) -> Result<(), Box<Error>> {
        self.instance.call(&self.spec, ctx, &self.retiring)
    }
}

/// Turns this process into a plugin runner if the host started it as one, and never returns
/// then; does nothing otherwise. Call it first thing in `main` of any program whose
/// [`Manager`](crate::Manager) isolates plugins: the host starts runners by executing its own
/// program again (see [`Isolation`](crate::isolation::Isolation)).
///
/// ```no_run
/// # #[allow(clippy::needless_doctest_main)]
/// fn main() {
///     gp_host::isolation::run_if_runner();
///     // ... the application, as before.
/// }
/// ```
pub fn run_if_runner() {
    let Some(protocol) = std::env::var_os(RUNNER_ENV) else {
        return;
    };
    if protocol.to_str() != Some(&PROTOCOL.to_string()) {
        eprintln!(
            "gp runner: the host speaks runner protocol {}, this program {PROTOCOL}: start runners from the same gp-host version",
            protocol.to_string_lossy()
        );
        std::process::exit(70);
    }
    std::process::exit(match serve() {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("gp runner: {message}");
            71
        }
    });
}

/// Dies with the host, gains no privileges, writes no core dump, takes the memory limit.
fn harden() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{self as p, Resource, Rlimit};
        p::set_parent_process_death_signal(Some(p::Signal::KILL))
            .map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
        // The parent may have died before the line above: then we were re-parented already.
        let parent = std::env::var(PARENT_ENV).ok();
        let now = p::getppid().map(|pid| pid.as_raw_nonzero().get().to_string());
        if parent.is_some() && parent != now {
            return Err("the host exited before this runner started".into());
        }
        rustix::thread::set_no_new_privs(true).map_err(|e| format!("no_new_privs: {e}"))?;
        let none = Rlimit {
            current: Some(0),
            maximum: Some(0),
        };
        p::setrlimit(Resource::Core, none).map_err(|e| format!("RLIMIT_CORE: {e}"))?;
        if let Some(bytes) = std::env::var(MEMORY_ENV)
            .ok()
            .and_then(|b| b.parse::<u64>().ok())
        {
            let limit = Rlimit {
                current: Some(bytes),
                maximum: Some(bytes),
            };
            p::setrlimit(Resource::As, limit).map_err(|e| format!("RLIMIT_AS: {e}"))?;
        }
    }
    Ok(())
}

/// Moves the soft CPU-time limit to `seconds` past what the runner has used so far (a call that
/// spins past it gets `SIGXCPU`, which ends the runner); `None` lifts it to the hard limit.
/// Two system calls or more: only for managers that set `cpu_per_call`.
#[cfg(target_os = "linux")]
fn limit_cpu_from_now(seconds: Option<u64>) {
    use rustix::process::{self as p, Resource, Rlimit};
    let hard = p::getrlimit(Resource::Cpu).maximum;
    let Some(seconds) = seconds else {
        let _ = p::setrlimit(
            Resource::Cpu,
            Rlimit {
                current: hard,
                maximum: hard,
            },
        );
        return;
    };
    let used = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name's closing parenthesis; utime and stime are the
            // 14th and 15th fields of the line, in clock ticks (100 a second on Linux).
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split(' ').collect();
            let ticks: u64 =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some(ticks / 100)
        })
        .unwrap_or(0);
    let soft = (used + seconds + 1).min(hard.unwrap_or(u64::MAX));
    if let Err(error) = p::setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(soft),
            maximum: hard,
        },
    ) {
        eprintln!("gp runner: cannot set the CPU limit of this call (RLIMIT_CPU): {error}");
    }
}

#[cfg(not(target_os = "linux"))]
fn limit_cpu_from_now(_seconds: Option<u64>) {}

fn serve() -> Result<(), String> {
    harden()?;
    let control = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(|e| format!("standard input is not the host's socket: {e}"))?;
    // The copy above is close-on-exec; standard input becomes /dev/null, so that a process
    // the plugin starts does not inherit the control socket.
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    rustix::stdio::dup2_stdin(&null).map_err(|e| format!("replacing standard input: {e}"))?;
    let send = |message: &dyn Fn(&mut &UnixStream) -> std::io::Result<()>| {
        message(&mut &control).map_err(|e| format!("writing to the host: {e}"))
    };
    send(&|out| {
        protocol::send(
            out,
            &Hello {
                protocol: PROTOCOL,
                pid: std::process::id(),
            },
        )
    })?;
    context::log_to_stderr();

    let open = match protocol::receive_with_fd::<ToRunner>(&control) {
        Ok((ToRunner::Open(open), _)) => open,
        Ok((other, _)) => return Err(format!("expected Open first, got {other:?}")),
        Err(e) => return Err(format!("reading from the host: {e}")),
    };
    if open.check_only {
        let answer = match check_library(&open) {
            Ok((has_on_load, has_on_unload)) => FromRunner::Opened {
                has_on_load,
                has_on_unload,
            },
            Err(error) => FromRunner::Refused {
                message: error.to_string(),
            },
        };
        return send(&|out| protocol::send(out, &answer));
    }
    let loaded = match open_library(&open) {
        Ok(loaded) => Arc::new(loaded),
        Err(error) => {
            let answer = FromRunner::Refused {
                message: error.to_string(),
            };
            return send(&|out| protocol::send(out, &answer));
        }
    };
    let opened = FromRunner::Opened {
        has_on_load: loaded.spec.has_on_load,
        has_on_unload: loaded.spec.has_on_unload,
    };
    send(&|out| protocol::send(out, &opened))?;

    // The cancel token of the call running on each connection, for `Cancel`.
    let running: Arc<Mutex<HashMap<u32, ConnState>>> = Arc::default();
    loop {
        let (message, fd) = match protocol::receive_with_fd::<ToRunner>(&control) {
            Ok(received) => received,
            // The host went away: nothing to answer to.
            Err(_) => return Ok(()),
        };
        match message {
            ToRunner::Connect { conn } => {
                let Some(fd) = fd else {
                    return Err("Connect came without its socket".into());
                };
                let (loaded, running) = (Arc::clone(&loaded), Arc::clone(&running));
                let spin = Duration::from_micros(open.spin_us);
                std::thread::Builder::new()
                    .name(format!("gp-runner-conn-{conn}"))
                    .spawn(move || serve_conn(conn, UnixStream::from(fd), spin, &loaded, &running))
                    .map_err(|e| format!("starting a call thread: {e}"))?;
            }
            ToRunner::Cancel { conn, seq } => {
                let mut running = lock(&running);
                let state = running.entry(conn).or_default();
                if state.seq == seq {
                    if let Some(token) = &state.token {
                        token.cancel();
                    }
                } else if seq > state.seq {
                    // Sent before the call reached its thread: cancelled as it starts.
                    state.pending = Some(seq);
                }
            }
            ToRunner::Unload => {
                let error = match loaded.instance.run_unload_hook(&loaded.spec) {
                    UnloadHookRun::Ran(Err(error)) => Some(error.to_string()),
                    _ => None,
                };
                return send(&|out| {
                    protocol::send(
                        out,
                        &FromRunner::Unloaded {
                            error: error.clone(),
                        },
                    )
                });
            }
            other => return Err(format!("unexpected on the control socket: {other:?}")),
        }
    }
}

/// What `Cancel` needs to know about a call connection.
#[derive(Default)]
struct ConnState {
    /// The sequence number of the call running or last run on it.
    seq: u64,
    /// The running call's cancel token.
    token: Option<CancelToken>,
    /// A `Cancel` for a call that has not started yet.
    pending: Option<u64>,
}

/// Serves one call connection: each call runs on this thread, inline, and is answered here.
fn serve_conn(
    conn: u32,
    socket: UnixStream,
    spin: Duration,
    loaded: &Loaded,
    running: &Mutex<HashMap<u32, ConnState>>,
) {
    let mut input = BufReader::new(protocol::SpinRead {
        socket: &socket,
        spin,
    });
    let mut output = BufWriter::new(&socket);
    loop {
        let answer = match protocol::receive::<ToRunner>(&mut input) {
            Ok(ToRunner::Call(call)) => run_call(conn, loaded, running, call),
            Ok(ToRunner::Ping) => FromRunner::Pong,
            // The host closed the connection, or sent what does not belong here.
            Ok(_) | Err(_) => return,
        };
        let mut sent = protocol::send(&mut output, &answer);
        if sent
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::InvalidData)
        {
            // Refused before anything was written: too large to send back.
            let too_large = FromRunner::Done {
                values: Vec::new(),
                outcome: Outcome::Other(format!(
                    "the values the plugin left in the context are too large to send back to the host (over {} MiB)",
                    protocol::MAX_FRAME >> 20
                )),
            };
            sent = protocol::send(&mut output, &too_large);
        }
        if sent.and_then(|()| output.flush()).is_err() {
            return;
        }
    }
}

/// The spec the host sent, and the library loaded as a host loads it (the loader,
/// abi_stable's checks, the root module). No hook runs.
fn load(open: &Open) -> Result<(Spec, library::Module), Error> {
    let spec = open.spec()?;
    let module = library::load(&open.library, &open.origin, spec.name(), &spec.abi_version)?;
    Ok((spec, module))
}

/// Loads the library and says which hooks it has, without running any (the pre-flight).
fn check_library(open: &Open) -> Result<(bool, bool), Error> {
    let (_, module) = load(open)?;
    Ok((module.on_load().is_some(), module.on_unload().is_some()))
}

/// Loads the library and runs its `on_load`.
fn open_library(open: &Open) -> Result<Loaded, Error> {
    let (spec, module) = load(open)?;
    let (spec, instance) =
        InProcess::activate(spec, module, Duration::from_millis(open.hook_timeout_ms))?;
    Ok(Loaded {
        spec,
        instance,
        retiring: AtomicBool::new(false),
    })
}

fn run_call(
    conn: u32,
    loaded: &Loaded,
    running: &Mutex<HashMap<u32, ConnState>>,
    call: Call,
) -> FromRunner {
    let mut ctx = Context::new();
    for (key, value) in call.values {
        ctx.set(key, value);
    }
    ctx.set_label(call.label);
    if let Some(ms) = call.remaining_ms {
        ctx = ctx.with_timeout(Duration::from_millis(ms));
    }
    {
        let mut running = lock(running);
        let state = running.entry(conn).or_default();
        let token = ctx.cancel_token();
        if state.pending.take() == Some(call.seq) {
            token.cancel();
        }
        state.seq = call.seq;
        state.token = Some(token);
    }
    if call.cpu_seconds.is_some() {
        limit_cpu_from_now(call.cpu_seconds);
    }
    let outcome = match loaded.call(&mut ctx) {
        Ok(()) => Outcome::Ok,
        Err(error) => match *error {
            Error::Failed { message, .. } => Outcome::Failed(message),
            Error::Panicked { message, .. } => Outcome::Panicked(message),
            Error::Cancelled { .. } | Error::Unloaded { .. } => Outcome::Cancelled,
            Error::DeadlineExceeded { .. } => Outcome::DeadlineExceeded,
            other => Outcome::Other(other.to_string()),
        },
    };
    {
        let mut running = lock(running);
        if let Some(state) = running.get_mut(&conn) {
            state.token = None;
        }
        // No call left running: no CPU limit on the idle runner's own threads.
        if call.cpu_seconds.is_some() && running.values().all(|s| s.token.is_none()) {
            limit_cpu_from_now(None);
        }
    }
    let values = ctx
        .values()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    FromRunner::Done { values, outcome }
}
