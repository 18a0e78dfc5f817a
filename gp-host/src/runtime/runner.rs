//! The runner: the child process an isolated plugin runs in.
//!
//! It is the host's own executable (or the program the embedder named), started with
//! [`RUNNER_ENV`] set and its standard input a Unix socket to the host. Before anything else
//! it hardens itself: it dies with its parent, gains no privileges, writes no core dump, and
//! takes the memory limit the host asked for. Then it answers the host's frames: it loads the
//! library with the same checks as an in-process host (the ELF and abi_stable layout checks,
//! the version and the manifest), runs `on_load`, serves calls one at a time, cancels the
//! running one on request, and on `Unload` runs `on_unload` and exits.

use std::io::{BufWriter, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Error;
use crate::library;
use crate::runtime::context::{self, CancelToken, Context};
use crate::runtime::isolated::protocol::{
    self, Call, FromRunner, Hello, Open, Outcome, ToRunner, PROTOCOL,
};
use crate::runtime::isolated::{MEMORY_ENV, PARENT_ENV, RUNNER_ENV};
use crate::runtime::loaded::Loaded;
use crate::runtime::spec::Spec;

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

/// Moves the soft CPU-time limit to `seconds` past what the runner has used so far: a call
/// that spins past it gets `SIGXCPU`, which ends the runner.
#[cfg(target_os = "linux")]
fn limit_cpu_from_now(seconds: Option<u64>) {
    use rustix::process::{self as p, Resource, Rlimit};
    let Some(seconds) = seconds else { return };
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
    let _ = p::setrlimit(
        Resource::Cpu,
        Rlimit {
            current: Some(used + seconds + 1),
            maximum: None,
        },
    );
}

#[cfg(not(target_os = "linux"))]
fn limit_cpu_from_now(_seconds: Option<u64>) {}

fn serve() -> Result<(), String> {
    harden()?;
    let socket = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(|e| format!("standard input is not the host's socket: {e}"))?;
    let mut input = socket.try_clone().map_err(|e| e.to_string())?;
    let output = Arc::new(Mutex::new(BufWriter::new(socket)));
    let send = |message: &FromRunner| -> Result<(), String> {
        let mut out = output.lock().unwrap_or_else(|p| p.into_inner());
        protocol::send(&mut *out, message)
            .and_then(|()| out.flush())
            .map_err(|e| format!("writing to the host: {e}"))
    };
    {
        let mut out = output.lock().unwrap_or_else(|p| p.into_inner());
        protocol::send(
            &mut *out,
            &Hello {
                protocol: PROTOCOL,
                pid: std::process::id(),
            },
        )
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing to the host: {e}"))?;
    }
    context::log_to_stderr();

    let open = match protocol::receive::<ToRunner>(&mut input) {
        Ok(ToRunner::Open(open)) => open,
        Ok(other) => return Err(format!("expected Open first, got {other:?}")),
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
        return send(&answer);
    }
    let loaded = match open_library(&open) {
        Ok(loaded) => Arc::new(loaded),
        Err(error) => {
            send(&FromRunner::Refused {
                message: error.to_string(),
            })?;
            return Ok(());
        }
    };
    send(&FromRunner::Opened {
        has_on_load: loaded.spec.has_on_load,
        has_on_unload: loaded.spec.has_on_unload,
    })?;

    // Calls run on their own thread, so that this one can read a `Cancel` meanwhile.
    let running: Arc<Mutex<Option<CancelToken>>> = Arc::default();
    let (calls, queued) = mpsc::channel::<Call>();
    let worker = {
        let (loaded, running, output) = (
            Arc::clone(&loaded),
            Arc::clone(&running),
            Arc::clone(&output),
        );
        std::thread::Builder::new()
            .name("gp-runner-call".into())
            .spawn(move || {
                for call in queued {
                    let done = run_call(&loaded, &running, call);
                    let mut out = output.lock().unwrap_or_else(|p| p.into_inner());
                    if protocol::send(&mut *out, &done)
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        return;
                    }
                }
            })
            .map_err(|e| format!("starting the call thread: {e}"))?
    };
    loop {
        let message = match protocol::receive::<ToRunner>(&mut input) {
            Ok(message) => message,
            // The host went away: nothing to answer to.
            Err(_) => return Ok(()),
        };
        match message {
            ToRunner::Call(call) => {
                if calls.send(call).is_err() {
                    return Err("the call thread ended".into());
                }
            }
            ToRunner::Cancel => {
                if let Some(token) = &*running.lock().unwrap_or_else(|p| p.into_inner()) {
                    token.cancel();
                }
            }
            ToRunner::Ping => send(&FromRunner::Pong)?,
            ToRunner::Unload => {
                drop(calls);
                let _ = worker.join();
                let error = match loaded.run_unload_hook() {
                    crate::runtime::loaded::UnloadHookRun::Ran(Err(error)) => {
                        Some(error.to_string())
                    }
                    _ => None,
                };
                send(&FromRunner::Unloaded { error })?;
                return Ok(());
            }
            ToRunner::Open(_) => return Err("opened twice".into()),
        }
    }
}

/// Loads the library as a host would (the loader, abi_stable's checks, the root module) and
/// says which hooks it has, without running any.
fn check_library(open: &Open) -> Result<(bool, bool), Error> {
    let manifest: gp_core::manifest::Manifest =
        serde_json::from_str(&open.manifest).map_err(|e| Error::Runner {
            plugin: String::new(),
            message: format!("the host sent a manifest this runner cannot read: {e}"),
        })?;
    let module = library::load(
        &open.library,
        &open.origin,
        &manifest.name,
        &open.abi_version,
    )?;
    Ok((module.on_load().is_some(), module.on_unload().is_some()))
}

fn open_library(open: &Open) -> Result<Loaded, Error> {
    let spec = Spec {
        manifest: serde_json::from_str(&open.manifest).map_err(|e| Error::Runner {
            plugin: String::new(),
            message: format!("the host sent a manifest this runner cannot read: {e}"),
        })?,
        dir: open.dir.clone(),
        origin: open.origin.clone(),
        library: open.library.clone(),
        sha256: open.sha256.clone(),
        abi_version: open.abi_version.clone(),
        has_on_load: false,
        has_on_unload: false,
    };
    let module = library::load(&open.library, &open.origin, spec.name(), &spec.abi_version)?;
    Loaded::activate(spec, module, Duration::from_millis(open.hook_timeout_ms))
}

fn run_call(loaded: &Loaded, running: &Mutex<Option<CancelToken>>, call: Call) -> FromRunner {
    let mut ctx = Context::new();
    for (key, value) in call.values {
        ctx.set(key, value);
    }
    ctx.set_label(call.label);
    if let Some(ms) = call.remaining_ms {
        ctx = ctx.with_timeout(Duration::from_millis(ms));
    }
    *running.lock().unwrap_or_else(|p| p.into_inner()) = Some(ctx.cancel_token());
    limit_cpu_from_now(call.cpu_seconds);
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
    *running.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let values = ctx
        .values()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    FromRunner::Done { values, outcome }
}
