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
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::config::RUNNER_ENV;
use super::protocol::{self, FromRunner, Hello, Open, ToRunner, PROTOCOL};
use crate::error::Error;
use crate::library;
use crate::runtime::activity;
use crate::runtime::context::Context;
use crate::runtime::inprocess::{InProcess, UnloadHookRun};
use crate::runtime::scope;
use crate::runtime::spec::Spec;
use crate::util::lock;

mod calls;
mod harden;

use calls::ConnState;

/// Why the runner gives up: printed as `gp runner: <it>` before it exits with status 71.
#[derive(Debug, thiserror::Error)]
enum Exit {
    /// A system call of its set-up, or talking to the host, failed.
    #[error("{what}: {source}")]
    System {
        what: &'static str,
        source: std::io::Error,
    },
    /// Its parent is already another process: the host exited before the runner started.
    #[error("the host exited before this runner started")]
    Orphaned,
    /// The host's first message was not `Open`.
    #[error("expected Open first, got {0}")]
    NotOpen(String),
    /// A `Connect` without the socket it hands over.
    #[error("Connect came without its socket")]
    NoSocket,
    /// Something that does not belong on the control socket.
    #[error("unexpected on the control socket: {0}")]
    Unexpected(String),
}

impl Exit {
    fn system(what: &'static str, error: impl Into<std::io::Error>) -> Exit {
        Exit::System {
            what,
            source: error.into(),
        }
    }
}

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

/// The last holder of the plugin ends its instance, as an in-process host's version ends:
/// `on_unload` runs if it has not. A runner whose host goes away without an `Unload` gets
/// here only if no call connection was opened: the process exits without waiting for the
/// connections' threads, which hold the plugin too.
impl Drop for Loaded {
    fn drop(&mut self) {
        if let UnloadHookRun::Ran(Err(error)) = self.instance.run_unload_hook(&self.spec) {
            tracing::warn!(target: "gp", plugin = self.spec.name(), "{error}");
        }
    }
}

/// Set once [`run_if_runner`] was called: this program can be started again as a runner, so a
/// manager pre-flights by default.
static CALLED: AtomicBool = AtomicBool::new(false);

/// Whether this process called [`run_if_runner`] (so it can serve as its own runner).
pub(crate) fn called() -> bool {
    CALLED.load(std::sync::atomic::Ordering::Relaxed)
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
    CALLED.store(true, std::sync::atomic::Ordering::Relaxed);
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
        Err(exit) => {
            eprintln!("gp runner: {exit}");
            71
        }
    });
}

/// The runner's life: hardened, connected, the plugin opened, then the control socket served
/// until the host unloads the plugin or goes away.
fn serve() -> Result<(), Exit> {
    harden::harden()?;
    let control = connect()?;
    let open = match protocol::receive_with_fd::<ToRunner>(&control) {
        Ok((ToRunner::Open(open), _)) => open,
        Ok((other, _)) => return Err(Exit::NotOpen(format!("{other:?}"))),
        Err(e) => return Err(Exit::system("reading from the host", e)),
    };
    match open_as_asked(&open) {
        Opening::Serve(loaded) => {
            let opened = FromRunner::Opened {
                has_on_load: loaded.spec.has_on_load,
                has_on_unload: loaded.spec.has_on_unload,
            };
            answer(&control, &opened)?;
            serve_control(&control, &open, loaded)
        }
        Opening::AnswerAndExit(last) => answer(&control, &last),
    }
}

/// The control socket (standard input), after replacing standard input with `/dev/null` (so
/// that a process the plugin starts does not inherit it) and saying hello.
fn connect() -> Result<UnixStream, Exit> {
    let control = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(|e| Exit::system("standard input is not the host's socket", e))?;
    // The copy above is close-on-exec.
    let null = std::fs::File::open("/dev/null").map_err(|e| Exit::system("/dev/null", e))?;
    rustix::stdio::dup2_stdin(&null).map_err(|e| Exit::system("replacing standard input", e))?;
    let hello = Hello {
        protocol: PROTOCOL,
        pid: std::process::id(),
    };
    answer(&control, &hello)?;
    scope::log_to_stderr();
    Ok(control)
}

/// Writes one message to the host.
fn answer(control: &UnixStream, message: &impl serde::Serialize) -> Result<(), Exit> {
    protocol::send(&mut &*control, message).map_err(|e| Exit::system("writing to the host", e))
}

/// What the runner does once it has opened the library.
enum Opening {
    /// Serve the plugin, loaded with its `on_load`.
    Serve(Arc<Loaded>),
    /// Send this and exit: a refusal, or a pre-flight's verdict (the library loads; no hook
    /// ran).
    AnswerAndExit(FromRunner),
}

/// Opens the library as `open` asks: checked only (the pre-flight), or loaded and activated.
fn open_as_asked(open: &Open) -> Opening {
    let refused = |error: Error| {
        Opening::AnswerAndExit(FromRunner::Refused {
            message: error.to_string(),
        })
    };
    if open.check_only {
        return match check_library(open) {
            Ok((has_on_load, has_on_unload)) => Opening::AnswerAndExit(FromRunner::Opened {
                has_on_load,
                has_on_unload,
            }),
            Err(error) => refused(error),
        };
    }
    match open_library(open) {
        Ok(loaded) => Opening::Serve(Arc::new(loaded)),
        Err(error) => refused(error),
    }
}

/// Serves the control socket: call connections, cancellations, and the unload that ends it.
fn serve_control(control: &UnixStream, open: &Open, loaded: Arc<Loaded>) -> Result<(), Exit> {
    // The cancel token of the call running on each connection, for `Cancel`.
    let running: Arc<Mutex<HashMap<u32, ConnState>>> = Arc::default();
    loop {
        let (message, fd) = match protocol::receive_with_fd::<ToRunner>(control) {
            Ok(received) => received,
            // The host went away: nothing to answer to.
            Err(_) => return Ok(()),
        };
        match message {
            ToRunner::Connect { conn } => {
                let fd = fd.ok_or(Exit::NoSocket)?;
                let (loaded, running) = (Arc::clone(&loaded), Arc::clone(&running));
                let spin = Duration::from_micros(open.spin_us);
                std::thread::Builder::new()
                    .name(format!("gp-runner-conn-{conn}"))
                    .spawn(move || {
                        calls::serve_conn(conn, UnixStream::from(fd), spin, &loaded, &running)
                    })
                    .map_err(|e| Exit::system("starting a call thread", e))?;
            }
            ToRunner::Cancel { conn, seq } => {
                let mut running = lock(&running);
                let state = running.entry(conn).or_default();
                if state.seq == seq {
                    if let Some(token) = &state.token {
                        token.cancel();
                    }
                } else if seq > state.seq && !state.pending.contains(&seq) {
                    // Sent before the call reached its thread (it waits behind others of its
                    // batch): cancelled as it starts. A batch is at most a few hundred calls.
                    state.pending.push(seq);
                }
            }
            ToRunner::Unload => {
                let error = match loaded.instance.run_unload_hook(&loaded.spec) {
                    UnloadHookRun::Ran(Err(error)) => Some(error.to_string()),
                    _ => None,
                };
                return answer(control, &FromRunner::Unloaded { error });
            }
            other => return Err(Exit::Unexpected(format!("{other:?}"))),
        }
    }
}

/// The spec the host sent, and the library loaded as a host loads it (the loader,
/// abi_stable's checks, the root module). No hook runs.
fn load(open: &Open) -> Result<(Spec, library::Module), Error> {
    let spec = open.spec()?;
    // On a thread started for it, as the host loads (see `activity::on_a_thread_of_its_own`).
    let module = activity::on_a_thread_of_its_own("gp-dlopen", || {
        library::load(&open.library, &open.origin, spec.name(), &spec.abi_version)
    })?;
    Ok((spec, module))
}

/// Loads the library, binds the host's services, and says which hooks it has, without running
/// any (the pre-flight).
fn check_library(open: &Open) -> Result<(bool, bool), Error> {
    let (_, module) = load(open)?;
    // The plugin's code a host runs next, before any hook (`InProcess::activate`): run here
    // too, so that the two loads differ only by the hook, which a pre-flight never runs.
    module.bind_host(scope::SERVICES);
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
