//! [`RunnerFailure`]: why a runner process could not do what the host asked, as a type.
//!
//! The pre-flight tells a verdict on the library (refused, or died loading it) from a runner
//! that could not be asked at all; it reads the variant, never the message. Here, beside
//! [`Error`](super::Error), because the error carries it whatever features are on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a runner process (an isolated plugin's, or a pre-flight's) could not start, load the
/// plugin, serve a call or unload it. Carried by [`Error::Runner`](crate::Error::Runner),
/// [`Error::Preflight`](crate::Error::Preflight) and [`Error::Restart`](crate::Error::Restart).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerFailure {
    /// This program's own path is unknown, so it cannot be started again as a runner.
    #[error("cannot start a runner: this program's path is unknown: {source}")]
    NoProgram {
        /// Why `std::env::current_exe` failed.
        source: Arc<std::io::Error>,
    },
    /// The socket pair to talk to a runner could not be made.
    #[error("cannot start a runner: no socket pair: {source}")]
    NoSocket {
        /// The system's error.
        source: Arc<std::io::Error>,
    },
    /// The runner program could not be started.
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        /// The runner program.
        program: PathBuf,
        /// The system's error.
        source: Arc<std::io::Error>,
    },
    /// The program started but never said hello: it is not a runner (its `main` does not call
    /// `run_if_runner` first), or it died at once.
    #[error("its runner {} {} ({status}){}: a program that isolates plugins calls gp_host::isolation::run_if_runner() first in main, or names a runner with Isolation::program",
        program.display(),
        match waited { Some(waited) => format!("did not answer within {waited:?}"), None => "exited without answering".to_owned() },
        if stderr.is_empty() { String::new() } else { format!("; it wrote:\n{stderr}") })]
    NoHello {
        /// The runner program.
        program: PathBuf,
        /// How long the host waited, if the runner was still running then (`None`: it exited).
        waited: Option<Duration>,
        /// How it ended: "killed by signal 11 (SIGSEGV)", "exited with status 3".
        status: String,
        /// Its last lines on standard error.
        stderr: String,
    },
    /// The runner speaks another version of the runner protocol.
    #[error("its runner {} speaks runner protocol {runner}, this host {host}: use a runner from the same gp-host version", program.display())]
    Protocol {
        /// The runner program.
        program: PathBuf,
        /// The protocol version it speaks.
        runner: u32,
        /// The protocol version this host speaks.
        host: u32,
    },
    /// The runner refused the library: the loader or one of gp's or abi_stable's checks, or
    /// its `on_load`, failed there. A verdict on the library.
    #[error("its runner refused it: {message}")]
    Refused {
        /// The runner's error, as it said it.
        message: String,
    },
    /// The runner died while loading the library. A verdict on the library.
    #[error("its runner died while loading it ({status}){}", if stderr.is_empty() { String::new() } else { format!("; its last lines on stderr:\n{stderr}") })]
    DiedLoading {
        /// How it ended.
        status: String,
        /// Its last lines on standard error.
        stderr: String,
    },
    /// The pre-flight's runner loaded the library and answered, then did not exit cleanly: a
    /// finaliser of the library (`.fini_array`, a static's destructor) or an exit handler it
    /// registered crashed, exited with a status of its own, or hung. The host would do the
    /// same at its own exit. A verdict on the library.
    #[error("it {} at exit ({status}): its finalisers or exit handlers{}",
        if *signal { "crashed" } else { "failed" },
        if stderr.is_empty() { String::new() } else { format!("; its runner's last lines on stderr:\n{stderr}") })]
    FailedAtExit {
        /// How the runner ended: "killed by signal 11 (SIGSEGV)", "exited with status 7",
        /// "did not exit within 10s (killed)".
        status: String,
        /// Whether a signal ended it (a crash), rather than an exit status or a hang.
        signal: bool,
        /// Its last lines on standard error.
        stderr: String,
    },
    /// A new runner needs the library again, and it is no longer the build that was loaded.
    #[error("its library {} changed since it was loaded, and its runner needs to load it again: load the plugin again", path.display())]
    LibraryChanged {
        /// The library the version was loaded from.
        path: PathBuf,
    },
    /// The host sent a manifest the runner cannot read (a host and runner of different
    /// builds).
    #[error("the host sent a manifest this runner cannot read: {source}")]
    HostManifest {
        /// The parser's error.
        source: Arc<serde_json::Error>,
    },
    /// The runner answered something that does not belong there; it was ended.
    #[error("unexpected answer to {asked}: {answer}")]
    Unexpected {
        /// What the host had sent: `Open`, `a call`, `Unload`.
        asked: &'static str,
        /// What came back.
        answer: String,
    },
    /// `on_unload` failed in the runner.
    #[error("{message}")]
    Unload {
        /// The runner's error, as it said it.
        message: String,
    },
    /// `on_unload` did not return in time in the runner, which was killed.
    #[error("on_unload did not return within {limit:?}: the runner was killed")]
    UnloadTimedOut {
        /// The hook timeout and the grace period.
        limit: Duration,
    },
    /// No runner runs now (between a crash and the next call).
    #[error("no runner is running")]
    NotRunning,
    /// No call connection to the runner could be had.
    #[error("no call connection")]
    NoConnection,
    /// The runner did not answer a ping.
    #[error("no answer to a ping")]
    NoPong,
}

impl RunnerFailure {
    /// Whether this is a verdict on the library (refused, or its runner died loading it),
    /// which holds for every later load of the same build, rather than a failure to ask.
    pub fn is_verdict(&self) -> bool {
        matches!(
            self,
            RunnerFailure::Refused { .. }
                | RunnerFailure::DiedLoading { .. }
                | RunnerFailure::FailedAtExit { .. }
        )
    }
}
