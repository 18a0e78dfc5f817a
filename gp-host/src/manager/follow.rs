//! Following a registry (feature `hub`): a plugin kept at the version a moving tag
//! (`oci://…/sample:stable`) or a semver range (`sample@^1`) names, checked every interval,
//! verified and upgraded like any install.
//!
//! Robust by construction: a check that fails on the way (the registry down, a 401, bytes
//! that do not match their digest, a full disk) is logged once per distinct error and retried
//! with back-off (after 1 s, 2 s, 4 s… up to the interval); a version that is refused (it does
//! not verify, it is not a gp plugin, its version lies, it is older than what is loaded) is
//! logged once and not tried again until the tag or range points elsewhere; what is loaded
//! keeps serving throughout. Which is which is read from the error's variant
//! ([`Error::Transfer`] is retried, [`Error::Artifact`] is a verdict), never its text.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use semver::VersionReq;

use crate::error::Error;
use crate::hub::{Client, Namespace, Reference, Resolved};
use crate::manager::install::InstallOptions;
use crate::manager::readiness::{Refusal, RefusalProbe};
use crate::manager::Manager;
use crate::util::{lock, wait_timeout_while};

/// What to follow.
#[derive(Debug, Clone)]
pub enum Follow {
    /// Whatever this reference's tag points at (`oci://HOST/NS/NAME:stable`).
    Tag(Reference),
    /// The highest version of `name` under `namespace` that `range` accepts.
    Range {
        /// Where the plugin is published.
        namespace: Namespace,
        /// The plugin's name.
        name: String,
        /// The versions accepted.
        range: VersionReq,
    },
}

impl Follow {
    /// The plugin followed.
    pub fn name(&self) -> &str {
        match self {
            Follow::Tag(reference) => reference.name(),
            Follow::Range { name, .. } => name,
        }
    }
}

impl fmt::Display for Follow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Follow::Tag(reference) => write!(f, "{reference}"),
            Follow::Range {
                namespace,
                name,
                range,
            } => write!(f, "{name}@{range} in {namespace}"),
        }
    }
}

/// What a [`Following`] has seen so far.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FollowStatus {
    /// Checks made.
    pub checks: u64,
    /// The version installed or found already loaded, with its digest.
    pub current: Option<Resolved>,
    /// Why the last check failed, if it did.
    pub last_error: Option<String>,
    /// Versions refused (digest and why), not tried again.
    pub refused: Vec<(String, String)>,
    /// The refused version the target names now (digest and why), if it names one: what is
    /// loaded keeps serving, and [`Manager::readiness`] lists it.
    pub refusing: Option<(String, String)>,
}

/// How a [`Following`] checks: how often, with how much jitter, and whether a tag that moves
/// back to an older version is followed there.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FollowOptions {
    /// How long from one check to the next.
    pub interval: Duration,
    /// Up to this much more, chosen at random for each wait, so that a fleet of followers
    /// does not ask the registry at the same moment (default: none).
    pub jitter: Duration,
    /// Follow a tag that moves to an older version than the one loaded (a rollback by
    /// moving the tag back). Without it, that version is refused: a follower never
    /// downgrades unless told to. A range always names its highest version, so this is
    /// for tags only.
    pub allow_downgrade: bool,
}

impl FollowOptions {
    /// Checks every `interval`, no jitter, no downgrades.
    pub fn every(interval: Duration) -> FollowOptions {
        FollowOptions {
            interval,
            jitter: Duration::ZERO,
            allow_downgrade: false,
        }
    }

    /// With up to `jitter` more before each check.
    pub fn jitter(mut self, jitter: Duration) -> FollowOptions {
        self.jitter = jitter;
        self
    }

    /// Whether a tag moved back to an older version is followed there.
    pub fn allow_downgrade(mut self, allow: bool) -> FollowOptions {
        self.allow_downgrade = allow;
        self
    }
}

/// A plugin being followed; stops (and waits for its thread) when dropped.
#[must_use = "dropping Following stops following: keep it for as long as the plugin should follow its target"]
pub struct Following {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// What `Manager::readiness` asks for this follower's refusal; gone with it.
    _probe: Arc<RefusalProbe>,
}

struct Shared {
    /// The plugin followed, and the target as it is shown.
    plugin: String,
    target: String,
    stop: Mutex<bool>,
    wake: Condvar,
    status: Mutex<FollowStatus>,
}

impl Following {
    /// Asks it to stop without waiting: the check in progress installs nothing more. Dropping
    /// it waits for its thread. (Stop every follower first, then drop them, to stop them all
    /// at once.)
    pub fn stop(&self) {
        *lock(&self.shared.stop) = true;
        self.shared.wake.notify_all();
    }

    /// What it follows, as it is shown (`oci://…:stable`, `name@^1 in …`).
    pub fn target(&self) -> &str {
        &self.shared.target
    }

    /// What it has seen so far.
    pub fn status(&self) -> FollowStatus {
        lock(&self.shared.status).clone()
    }

    /// Stops it and waits up to `limit` for its thread to end; `true` if it did. A follower
    /// still busy after that (a download: the registry client allows it minutes) is left to
    /// end with the process. For a shutdown, after [`Manager::stop_loading`]: from then on,
    /// nothing a follower downloads is installed ([`Error::Stopping`]).
    pub fn stop_within(mut self, limit: std::time::Duration) -> bool {
        self.stop();
        match self.thread.take() {
            Some(thread) => crate::util::join_until(thread, std::time::Instant::now() + limit),
            None => true,
        }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Manager {
    /// Follows `target` in its registry through `client`: checks now and then every
    /// `interval`, and installs what it names when that changes ([`Manager::install`], so `<name>.plg` in the base directory, verified
    /// completely, upgraded in place). Logs through the `tracing` subscriber current here.
    pub fn follow(&self, target: Follow, client: Client, interval: Duration) -> Following {
        self.follow_with(target, client, FollowOptions::every(interval))
    }

    /// [`follow`](Self::follow), with options: jitter, downgrades.
    pub fn follow_with(&self, target: Follow, client: Client, options: FollowOptions) -> Following {
        let shared = Arc::new(Shared {
            plugin: target.name().to_owned(),
            target: target.to_string(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            status: Mutex::new(FollowStatus::default()),
        });
        let probe: Arc<RefusalProbe> = {
            let shared = Arc::clone(&shared);
            Arc::new(move || {
                let (digest, reason) = lock(&shared.status).refusing.clone()?;
                Some(Refusal {
                    plugin: shared.plugin.clone(),
                    target: shared.target.clone(),
                    digest,
                    reason,
                })
            })
        };
        self.inner.refusals.add(&probe);
        let manager = self.clone();
        let inner = Arc::clone(&shared);
        let dispatch = tracing::dispatcher::get_default(|d| d.clone());
        let target_kind = match target {
            Follow::Tag(_) => TargetKind::Tag,
            Follow::Range { .. } => TargetKind::Range,
        };
        let thread = std::thread::Builder::new()
            .name(format!("gp-follow-{}", target.name()))
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let mut follower = Follower {
                        manager,
                        target,
                        client,
                        refused: HashSet::new(),
                        last_error: None,
                        failures: 0,
                        allow_downgrade: options.allow_downgrade
                            && matches!(target_kind, TargetKind::Tag),
                    };
                    loop {
                        follower.check(&inner);
                        let wait = follower.next_check(options.interval) + jitter(options.jitter);
                        let stop = lock(&inner.stop);
                        let stop = wait_timeout_while(&inner.wake, stop, wait, |stop| !*stop);
                        if *stop {
                            return;
                        }
                    }
                })
            })
            .expect("a thread for following a registry");
        Following {
            shared,
            thread: Some(thread),
            _probe: probe,
        }
    }
}

enum TargetKind {
    Tag,
    Range,
}

/// A random wait between zero and `most`.
fn jitter(most: Duration) -> Duration {
    if most.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(most.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

struct Follower {
    manager: Manager,
    target: Follow,
    client: Client,
    refused: HashSet<String>,
    last_error: Option<String>,
    /// Checks failed in a row on the way (reset by one that succeeds or reaches a verdict).
    failures: u32,
    /// A tag moved back to an older version is installed (`FollowOptions::allow_downgrade`).
    allow_downgrade: bool,
}

/// The first retry after a check failed on the way; each further one waits twice as long, up
/// to the interval.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Whether an install that failed with `error` may succeed at a later check: the registry,
/// the disk, a runner or a hook failed, or the plugin is disabled. Everything else is about
/// what the registry holds, and refused.
fn retry_later(error: &Error) -> bool {
    match error {
        Error::UpgradeRefused { source, .. } => retry_later(source),
        Error::Stopping { .. }
        | Error::Hub { .. }
        | Error::Transfer { .. }
        | Error::Download { .. }
        | Error::Io { .. }
        | Error::Disabled { .. }
        | Error::MissingBaseDir { .. }
        | Error::Runner { .. }
        | Error::Preflight { .. }
        | Error::Restart { .. }
        | Error::HookTimedOut { .. }
        | Error::Quarantined { .. } => true,
        _ => false,
    }
}

/// How long to wait for the next check after `failures` checks failed in a row on the way:
/// the interval, or after a failure [`FIRST_RETRY`], doubling with each one, up to the
/// interval.
fn backoff(failures: u32, interval: Duration) -> Duration {
    match failures {
        0 => interval,
        n => interval.min(FIRST_RETRY.saturating_mul(1u32 << (n - 1).min(16))),
    }
}

/// Where a check failed.
enum Stage<'a> {
    /// Asking the registry what the target names now.
    Check,
    /// Installing what it names.
    Install(&'a Reference),
}

impl Follower {
    /// How long to wait for the next check (see [`backoff`]).
    fn next_check(&self, interval: Duration) -> Duration {
        backoff(self.failures, interval)
    }

    /// The check failed at `stage` and may succeed later: remembered, and said once per
    /// distinct reason.
    fn failed(&mut self, status: &Mutex<FollowStatus>, stage: Stage<'_>, why: String) {
        if self.last_error.as_deref() != Some(why.as_str()) {
            match stage {
                Stage::Check => {
                    tracing::warn!(target: "gp", follow = %self.target, error = %why, "cannot check the registry; what is loaded keeps serving");
                }
                Stage::Install(reference) => {
                    tracing::warn!(target: "gp", follow = %self.target, %reference, error = %why, "cannot install it now; the next check tries again, and what is loaded keeps serving");
                }
            }
        }
        self.last_error = Some(why.clone());
        self.failures = self.failures.saturating_add(1);
        lock(status).last_error = Some(why);
    }

    /// The check succeeded: no error stands.
    fn succeeded(&mut self, status: &Mutex<FollowStatus>) {
        self.last_error = None;
        self.failures = 0;
        lock(status).last_error = None;
    }

    /// `digest` (at `reference`) is refused for `why`: said once, never tried again.
    fn refuse(
        &mut self,
        status: &Mutex<FollowStatus>,
        digest: String,
        reference: &dyn std::fmt::Display,
        why: String,
    ) {
        self.succeeded(status);
        let mut status = lock(status);
        status.refusing = Some((digest.clone(), why.clone()));
        if self.refused.insert(digest.clone()) {
            tracing::warn!(target: "gp", follow = %self.target, %reference, reason = %why, "not installed; what is loaded keeps serving");
            status.refused.push((digest, why));
        }
    }

    /// Whether `digest` needs nothing done: it is the version current, or one refused. Clears
    /// the last error if so (the check succeeded).
    fn settled(&mut self, status: &Mutex<FollowStatus>, digest: &str) -> bool {
        let current = lock(status)
            .current
            .as_ref()
            .is_some_and(|c| c.reference.digest.as_deref() == Some(digest));
        if !current && !self.refused.contains(digest) {
            return false;
        }
        self.succeeded(status);
        let mut status = lock(status);
        status.refusing = if current {
            None
        } else {
            status.refused.iter().find(|(d, _)| d == digest).cloned()
        };
        true
    }

    fn check(&mut self, shared: &Shared) {
        let status = &shared.status;
        lock(status).checks += 1;
        // A tag: a HEAD says whether it moved, before anything is downloaded.
        if let Follow::Tag(reference) = &self.target {
            if let Ok(Some(digest)) = self.client.digest(reference) {
                if self.settled(status, &digest) {
                    return;
                }
            }
        }
        let Some(resolved) = self.resolve(status) else {
            return;
        };
        let digest = resolved.reference.digest.clone().unwrap_or_default();
        if self.settled(status, &digest) || self.loaded_is_current(status, &resolved, &digest) {
            return;
        }
        // The target names something new: whatever it named before and was refused, it no
        // longer does.
        lock(status).refusing = None;
        // Stopped while asking the registry: install nothing.
        if *lock(&shared.stop) {
            return;
        }
        self.install(status, resolved, digest);
    }

    /// The version the target names now, or `None` with the failure recorded.
    fn resolve(&mut self, status: &Mutex<FollowStatus>) -> Option<Resolved> {
        let resolved = match &self.target {
            Follow::Tag(reference) => self.client.inspect(reference),
            Follow::Range {
                namespace,
                name,
                range,
            } => self.client.resolve(namespace, name, range),
        };
        match resolved {
            Ok(resolved) => Some(resolved),
            Err(Error::Artifact {
                reference,
                digest,
                reason,
            }) => {
                match digest {
                    // The registry holds something refused (not a gp plugin, no version):
                    // said of its digest, refused like a version that does not verify. (Bytes
                    // that are not what their digest says are an `Error::Transfer`, below:
                    // retried.)
                    Some(digest) => self.refuse(status, digest, &reference, reason),
                    None => self.failed(status, Stage::Check, format!("{reference}: {reason}")),
                }
                None
            }
            Err(error) => {
                self.failed(status, Stage::Check, error.to_string());
                None
            }
        }
    }

    /// Whether the plugin loaded already is what the target names (at the first look) or
    /// newer (refused: a follower never downgrades).
    fn loaded_is_current(
        &mut self,
        status: &Mutex<FollowStatus>,
        resolved: &Resolved,
        digest: &str,
    ) -> bool {
        let first_look = lock(status).current.is_none();
        let loaded = self
            .manager
            .get_plugin(self.target.name())
            .ok()
            .map(|(spec, _)| spec.version().clone());
        match loaded {
            // The first look: the version the registry names is the one loaded.
            Some(version) if first_look && version == resolved.version => {
                tracing::info!(target: "gp", follow = %self.target, version = %version, "following; the version loaded is current");
                self.succeeded(status);
                let mut status = lock(status);
                status.current = Some(resolved.clone());
                status.refusing = None;
                true
            }
            Some(version) if version > resolved.version && !self.allow_downgrade => {
                let why = format!(
                    "it is version {}, older than the {version} loaded",
                    resolved.version
                );
                self.refuse(status, digest.to_owned(), &resolved.reference, why);
                true
            }
            _ => false,
        }
    }

    /// Installs what the target names, unless the plugin is disabled.
    fn install(&mut self, status: &Mutex<FollowStatus>, resolved: Resolved, digest: String) {
        let name = self.target.name().to_owned();
        // Disabled by an operator: nothing is downloaded until it is enabled again.
        if let Some(disabled) = self.manager.disabled_plugin(&name) {
            let why = format!(
                "plugin `{name}` is disabled ({}): enable it to install {}",
                disabled.reason, resolved.reference
            );
            self.failed(status, Stage::Install(&resolved.reference), why);
            return;
        }
        let installed = self.manager.install(
            &resolved.reference.to_string(),
            &InstallOptions {
                hub: Some(&self.client),
                allow_downgrade: self.allow_downgrade,
                ..Default::default()
            },
        );
        match installed {
            Ok(spec) => {
                tracing::info!(target: "gp", follow = %self.target, plugin = spec.name(), version = %spec.version(), reference = %resolved.reference, "following: installed");
                self.succeeded(status);
                lock(status).current = Some(resolved);
            }
            // The registry, the disk or a hook failed on the way: the next check tries again.
            Err(error) if retry_later(&error) => {
                self.failed(
                    status,
                    Stage::Install(&resolved.reference),
                    error.to_string(),
                );
            }
            // What the registry holds is refused: not tried again until it changes.
            Err(error) => {
                let why = error.to_string();
                self.refuse(status, digest, &resolved.reference, why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_on_the_way_are_retried_sooner_backing_off_to_the_interval() {
        let minute = Duration::from_secs(60);
        let waits: Vec<u64> = (0..9).map(|n| backoff(n, minute).as_secs()).collect();
        assert_eq!(waits, [60, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(u32::MAX, minute), minute);
        let short = Duration::from_millis(100);
        assert_eq!(backoff(1, short), short);
    }

    #[test]
    fn jitter_stays_within_its_bound_and_varies() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        let most = Duration::from_secs(5);
        let waits: Vec<Duration> = (0..100).map(|_| jitter(most)).collect();
        assert!(waits.iter().all(|w| *w <= most));
        assert!(waits.iter().any(|w| *w != waits[0]), "{waits:?}");
    }
}
