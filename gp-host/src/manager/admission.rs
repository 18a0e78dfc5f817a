//! Checks an application registers to refuse a plugin before it loads: the manager runs
//! them without knowing what they check (the HTTP layer's route conflicts, for one), so no
//! layer above the manager has to be imported by it.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::error::{Cause, Error};
use crate::manager::Manager;
use crate::runtime::spec::Spec;
use crate::util::{read, write};

/// A check run before a plugin version is loaded or swapped in: `candidate` is the version
/// about to serve, `serving` every other plugin serving now (not the version `candidate`
/// replaces), every one whose load is under way (its place reserved: see
/// [`loading`](super::loading)), and every disabled one (with its manifest, an empty `library`
/// and `sha256`). `Err(reason)` refuses the candidate: the check's own error, which becomes
/// [`Error::Refused`]'s `reason` (and its `source()`).
///
/// The specs are borrowed from the manager's own: a load costs the checks a pointer per
/// plugin, not a copy of every manifest (which made a 256-plugin start-up quadratic).
pub(crate) type Admission = dyn Fn(&Spec, &[&Spec]) -> Result<(), Cause> + Send + Sync;

/// Identifies a check registered with [`Manager::admit`], to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdmissionId(u64);

/// The checks of one manager.
#[derive(Default)]
pub(crate) struct Admissions {
    checks: RwLock<Checks>,
}

/// The last id given, and each check with its id.
#[derive(Default)]
struct Checks(u64, Vec<(u64, Arc<Admission>)>);

impl Manager {
    /// The disabled plugins as specs of their manifests (an empty `library` and `sha256`):
    /// they keep their place (their routes stay reserved), so checks count them too.
    fn disabled_specs(&self) -> Vec<Spec> {
        self.disabled()
            .into_iter()
            .map(|d| Spec {
                manifest: d.manifest,
                dir: d.origin.clone(),
                origin: d.origin,
                library: PathBuf::new(),
                sha256: String::new(),
                abi_version: String::new(),
                has_on_load: false,
                has_on_unload: false,
                config_sha256: None,
                details: Default::default(),
            })
            .collect()
    }

    /// Registers `check`, run (with the change lock held, so checks see a settled set of
    /// plugins) before every load and upgrade, after the library was verified and before its
    /// `on_load` runs. `check` gets the candidate and every other plugin serving, loading or
    /// disabled; its error refuses the candidate: a load fails with [`Error::Refused`], whose
    /// `reason` is that error (a `String` or `&str` converts with `.into()`); an upgrade fails
    /// with [`Error::UpgradeRefused`], and the running version keeps serving. A plugin whose
    /// load is under way when the check is registered meets it before it starts serving.
    ///
    /// Plugins already loaded when the check is registered are checked now, in name order,
    /// each against the ones before it that the check let stay (and the disabled ones), as a
    /// `load_plugins` would have checked them: one it refuses is unloaded and reported as a
    /// load failure ([`Event::LoadFailed`](crate::Event::LoadFailed) with [`Error::Refused`]).
    /// So a check registered after the first load leaves the plugins as if it had been
    /// registered before: an application need not order the two (a
    /// [`PluginServer`](crate::http::PluginServer), which registers its route check, may be
    /// built before or after `load_plugins`).
    ///
    /// ```
    /// let manager = gp_host::Manager::new("plugins");
    /// manager.admit(|candidate, _serving| {
    ///     if candidate.name().starts_with("experimental-") {
    ///         return Err("experimental plugins are not loaded in production".into());
    ///     }
    ///     Ok(())
    /// });
    /// ```
    pub fn admit(
        &self,
        check: impl Fn(&Spec, &[Spec]) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
            + Send
            + Sync
            + 'static,
    ) -> AdmissionId {
        // An application's check gets the specs as its own (a copy of each, on each load).
        self.admit_borrowing(move |candidate: &Spec, serving: &[&Spec]| {
            let serving: Vec<Spec> = serving.iter().copied().cloned().collect();
            check(candidate, &serving)
        })
    }

    /// [`admit`](Self::admit) for gp's own checks, which borrow the specs.
    pub(crate) fn admit_borrowing(
        &self,
        check: impl Fn(&Spec, &[&Spec]) -> Result<(), Cause> + Send + Sync + 'static,
    ) -> AdmissionId {
        let check: Arc<Admission> = Arc::new(check);
        let (id, refused) = {
            let _changes = self.lock_changes();
            let mut checks = write(&self.inner.admissions.checks);
            checks.0 += 1;
            let id = checks.0;
            checks.1.push((id, Arc::clone(&check)));
            drop(checks);
            // Taken out while the lock is held, so that what leaves is the version refused.
            let refused: Vec<_> = self
                .refused_by(&*check)
                .into_iter()
                .filter_map(|(spec, error)| Some((self.take_out(spec.name())?, spec, error)))
                .collect();
            (id, refused)
        };
        for (old, spec, error) in refused {
            self.drain_unloaded(spec.name(), old, self.inner.config.drain_timeout);
            self.report_failure(&spec.origin, &error);
        }
        AdmissionId(id)
    }

    /// The plugins loaded now that `check` refuses, in name order, each checked against the
    /// disabled plugins and the ones before it that it lets stay. Called with the change lock
    /// held.
    fn refused_by(&self, check: &Admission) -> Vec<(Spec, Error)> {
        let loaded = self.serving_specs();
        if loaded.is_empty() {
            return Vec::new();
        }
        let disabled = self.disabled_specs();
        // A plugin loading holds its place; it meets `check` when it goes into its slot.
        let loading = self.loading_specs();
        let mut kept: Vec<&Spec> = disabled
            .iter()
            .chain(loading.iter().map(|s| &**s))
            .collect();
        let mut refused = Vec::new();
        for spec in &loaded {
            match check(spec, &kept) {
                Ok(()) => kept.push(spec),
                Err(reason) => {
                    let error = refusal(spec, reason);
                    refused.push((Spec::clone(spec), error));
                }
            }
        }
        refused
    }

    /// Removes a check registered with [`admit`](Self::admit); `false` if it was gone.
    pub fn remove_admission(&self, id: AdmissionId) -> bool {
        let mut checks = write(&self.inner.admissions.checks);
        let before = checks.1.len();
        checks.1.retain(|(i, _)| *i != id.0);
        checks.1.len() != before
    }

    /// Runs every check on `candidate`. Called with the change lock held.
    pub(crate) fn run_admissions(&self, candidate: &Spec) -> Result<(), Error> {
        let checks: Vec<Arc<Admission>> = {
            let checks = read(&self.inner.admissions.checks);
            checks.1.iter().map(|(_, c)| Arc::clone(c)).collect()
        };
        if checks.is_empty() {
            return Ok(());
        }
        let loaded = self.serving_specs();
        let loading = self.loading_specs();
        let disabled = self.disabled_specs();
        let serving: Vec<&Spec> = loaded
            .iter()
            .chain(&loading)
            .map(|s| &**s)
            .chain(&disabled)
            .filter(|s| s.name() != candidate.name())
            .collect();
        for check in checks {
            check(candidate, &serving).map_err(|reason| refusal(candidate, reason))?;
        }
        Ok(())
    }
}

/// `spec` refused by a check, for `reason`.
fn refusal(spec: &Spec, reason: Cause) -> Error {
    Error::Refused {
        plugin: spec.name().to_owned(),
        path: spec.origin.clone(),
        reason,
    }
}
