//! The pre-flight: a build this process has not loaded yet is first loaded in a throwaway
//! runner (the loader, abi_stable's checks, the root module; no hook runs), so that a library
//! that crashes the loader costs that runner and not the host.
//!
//! A verdict on the library (its runner refused it, or died loading it) is kept per SHA-256
//! for the process's life; a runner that could not be asked at all (it could not start, or is
//! not a runner) gives no verdict, and the next load asks again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use super::config::Isolation;
use super::process::RunnerProcess;
use super::protocol::{Open, Purpose};
use crate::error::{Error, RunnerFailure};
use crate::runtime::spec::Spec;
use crate::util::lock;

/// The verdicts of pre-flights so far, by SHA-256: `Some` holds the refusal.
fn verdicts() -> MutexGuard<'static, HashMap<String, Option<RunnerFailure>>> {
    static VERDICTS: OnceLock<Mutex<HashMap<String, Option<RunnerFailure>>>> = OnceLock::new();
    lock(VERDICTS.get_or_init(Default::default))
}

/// Loads the library at `copy` in a throwaway runner before this process maps it. Once per
/// build and process.
pub(crate) fn preflight(spec: &Spec, copy: &Path, config: &Arc<Isolation>) -> Result<(), Error> {
    let refused = |reason: RunnerFailure| Error::Preflight {
        plugin: spec.name().to_owned(),
        reason,
    };
    if let Some(verdict) = verdicts().get(&spec.sha256) {
        return verdict
            .clone()
            .map_or(Ok(()), |reason| Err(refused(reason)));
    }
    let open = Open::new(spec, copy, Purpose::Preflight);
    let started = Instant::now();
    let verdict = match RunnerProcess::start(spec.name(), &open, config) {
        Ok((runner, _)) => {
            runner.end();
            None
        }
        Err(failure) if failure.is_verdict() => Some(failure),
        // No verdict: refused now, asked again next time.
        Err(failure) => return Err(refused(failure)),
    };
    tracing::debug!(target: "gp", plugin = spec.name(), "pre-flight in {:?}: {verdict:?}", started.elapsed());
    verdicts().insert(spec.sha256.clone(), verdict.clone());
    verdict.map_or(Ok(()), |reason| Err(refused(reason)))
}
