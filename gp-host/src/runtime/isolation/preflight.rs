//! The pre-flight: a build this process has not loaded yet is first loaded in a throwaway
//! runner (the loader, abi_stable's checks, the root module; no hook runs), which then exits
//! through the library's finalisers, so that a library that crashes the loader, or crashes
//! at exit, costs that runner and not the host. The runner gets the host's environment, as
//! the load it stands for does.
//!
//! A verdict on the library (its runner refused it, died loading it, or did not exit cleanly)
//! is kept per SHA-256 for the process's life; a runner that could not be asked at all (it
//! could not start, or is not a runner) gives no verdict, and the next load asks again. A
//! pass is also kept in the runtime directory (`preflight/<sha256>-gp-<version>-<protocol>`), so
//! that a restart pre-flights only new builds: it is trusted only for the same file (the same
//! SHA-256) and the same gp-host version. Refusals are not kept across restarts: they are
//! rare, and asked again.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::config::Isolation;
use super::process::RunnerProcess;
use super::protocol::{Open, Purpose};
use crate::error::{Error, RunnerFailure};
use crate::runtime::spec::Spec;
use crate::util::lock;

/// How long a pre-flight's runner may take to exit once it answered (its finalisers run).
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// The verdicts of pre-flights so far, by SHA-256: `Some` holds the refusal.
fn verdicts() -> MutexGuard<'static, HashMap<String, Option<RunnerFailure>>> {
    static VERDICTS: OnceLock<Mutex<HashMap<String, Option<RunnerFailure>>>> = OnceLock::new();
    lock(VERDICTS.get_or_init(Default::default))
}

/// Where a pass of build `sha256` by this gp-host version is recorded.
fn passed_mark(runtime_dir: &Path, sha256: &str) -> std::path::PathBuf {
    runtime_dir.join(PASSED_DIR).join(format!(
        "{sha256}-gp-{}-{}",
        env!("CARGO_PKG_VERSION"),
        super::protocol::PROTOCOL
    ))
}

/// Records in `runtime_dir` that build `sha256` passed (another manager of this process may
/// have asked), unless it is recorded. Best effort: without the mark, the next start asks
/// again.
fn mark_passed(runtime_dir: &Path, sha256: &str) {
    let mark = passed_mark(runtime_dir, sha256);
    if !mark.is_file() {
        let _ = std::fs::create_dir_all(runtime_dir.join(PASSED_DIR))
            .and_then(|()| std::fs::write(&mark, b""));
    }
}

/// The runtime directory's folder of passes.
const PASSED_DIR: &str = "preflight";

/// Loads the library at `copy` in a throwaway runner before this process maps it. Once per
/// build and process, and for a build that passed, once per runtime directory.
pub(crate) fn preflight(
    spec: &Spec,
    copy: &Path,
    config: &Arc<Isolation>,
    runtime_dir: &Path,
) -> Result<(), Error> {
    let refused = |reason: RunnerFailure| Error::Preflight {
        plugin: spec.name().to_owned(),
        reason,
    };
    let known = verdicts().get(&spec.sha256).cloned();
    if let Some(verdict) = known {
        if verdict.is_none() {
            mark_passed(runtime_dir, &spec.sha256);
        }
        return verdict.map_or(Ok(()), |reason| Err(refused(reason)));
    }
    let mark = passed_mark(runtime_dir, &spec.sha256);
    if mark.is_file() {
        verdicts().insert(spec.sha256.clone(), None);
        return Ok(());
    }
    let open = Open::new(spec, copy, Purpose::Preflight);
    let started = Instant::now();
    let verdict = match RunnerProcess::start(spec.name(), &open, config) {
        // Loaded and answered: the runner exits now, through the finalisers of the library
        // and the exit handlers it registered, as this process will. How it exits is part
        // of the verdict.
        Ok((runner, _)) => {
            let (status, stderr) = runner.end_within(EXIT_LIMIT);
            match runner.exit_status() {
                (Some(exit), false) if exit.success() => None,
                (Some(exit), false) => Some(RunnerFailure::FailedAtExit {
                    signal: exit.signal().is_some(),
                    status,
                    stderr,
                }),
                (_, true) => Some(RunnerFailure::FailedAtExit {
                    status: format!("did not exit within {EXIT_LIMIT:?} (killed)"),
                    signal: false,
                    stderr,
                }),
                // Not reaped (an error of waitpid): no verdict on the library.
                (None, false) => {
                    return Err(refused(RunnerFailure::DiedLoading { status, stderr }));
                }
            }
        }
        Err(failure) if failure.is_verdict() => Some(failure),
        // No verdict: refused now, asked again next time.
        Err(failure) => return Err(refused(failure)),
    };
    tracing::debug!(target: "gp", plugin = spec.name(), "pre-flight in {:?}: {verdict:?}", started.elapsed());
    verdicts().insert(spec.sha256.clone(), verdict.clone());
    if verdict.is_none() {
        mark_passed(runtime_dir, &spec.sha256);
    }
    verdict.map_or(Ok(()), |reason| Err(refused(reason)))
}

/// How many pre-flights run at once ahead of a batch of loads (each is a process start and a
/// `dlopen`, mostly waiting on the kernel and the disk).
pub(crate) const AHEAD: usize = 4;

/// Whether build `sha256` has no verdict yet, in this process or in `runtime_dir`.
pub(crate) fn needed(sha256: &str, runtime_dir: &Path) -> bool {
    !verdicts().contains_key(sha256) && !passed_mark(runtime_dir, sha256).is_file()
}
