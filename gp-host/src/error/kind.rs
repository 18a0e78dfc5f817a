//! [`ErrorKind`]: what an [`Error`] is about, for callers that map errors (to an HTTP status,
//! a retry, a metric) without matching every variant.

use super::Error;

/// What an [`Error`] is about, for callers that map errors (to an HTTP status, a retry, a
/// metric) without matching every variant. [`Error::kind`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file or folder could not be read or written, or a directory could not be watched.
    Io,
    /// Where a plugin comes from is wrong or unreachable: a missing base directory or
    /// `plugin.json`, an invalid manifest, a refused package or key, a git repository, a
    /// download or a registry's transfer that failed, a plugin that must be built first.
    Source,
    /// Building a plugin crate failed.
    Build,
    /// The library is not a loadable gp plugin, or disagrees with its `plugin.json`.
    Verify,
    /// The plugin was built against an incompatible gp-core, or its loader failed (in this
    /// process, in its runner, or in the pre-flight's).
    Abi,
    /// The manager refused a change or a lookup: a duplicate name, an unknown plugin, an
    /// upgrade that is not newer or names another plugin, an install that would downgrade.
    /// (Called `Registry` before 0.2.0; a registry is an OCI registry now, whose failures
    /// are [`Source`](Self::Source).)
    Manager,
    /// A call returned an error, panicked, was cancelled, passed its deadline, was cut short
    /// by an unload, or found no runner it could use.
    Call,
    /// A lifecycle hook (`on_load`, `on_unload`) failed.
    Hook,
}

impl Error {
    /// What the error is about. Stable across releases: a variant keeps its kind, and a
    /// variant that needed another kind was split (0.2.0 split [`Error::Restart`], a call's,
    /// and [`Error::Preflight`] from [`Error::Runner`]); new variants get the kind that fits.
    pub fn kind(&self) -> ErrorKind {
        use Error as E;
        match self {
            E::Io { .. } | E::Watch { .. } => ErrorKind::Io,
            E::MissingBaseDir { .. }
            | E::MissingManifest { .. }
            | E::InvalidManifest { .. }
            | E::NeedsBuild { .. }
            | E::Package { .. }
            | E::Key { .. }
            | E::Git { .. }
            | E::Download { .. }
            | E::Hub { .. }
            | E::Config { .. }
            | E::Transfer { .. } => ErrorKind::Source,
            E::Build { .. } => ErrorKind::Build,
            E::InvalidLibrary { .. }
            | E::NotAPlugin { .. }
            | E::ManifestMismatch { .. }
            | E::Artifact { .. } => ErrorKind::Verify,
            E::Incompatible { .. }
            | E::LoadFailed { .. }
            | E::Runner { .. }
            | E::Preflight { .. } => ErrorKind::Abi,
            E::Duplicate { .. }
            | E::Refused { .. }
            | E::Disabled { .. }
            | E::NotDisabled { .. }
            | E::InvalidName { .. }
            | E::NothingToRollBack { .. }
            | E::NotFound { .. }
            | E::UpgradeRefused { .. }
            | E::NameMismatch { .. }
            | E::NotNewer { .. }
            | E::SameVersion { .. }
            | E::Downgrade { .. }
            | E::RequiredNotLoaded { .. }
            | E::Stopping { .. } => ErrorKind::Manager,
            E::Failed { .. }
            | E::Values { .. }
            | E::Crashed { .. }
            | E::CircuitOpen { .. }
            | E::Restart { .. }
            | E::Panicked { .. }
            | E::Cancelled { .. }
            | E::DeadlineExceeded { .. }
            | E::Unloaded { .. } => ErrorKind::Call,
            E::HookFailed { .. } | E::HookTimedOut { .. } | E::Quarantined { .. } => {
                ErrorKind::Hook
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, ErrorKind};
    use crate::error::RunnerFailure;

    #[test]
    fn kinds_group_variants_by_what_they_are_about() {
        let cases = [
            (
                Error::io("x", std::io::ErrorKind::NotFound.into()),
                ErrorKind::Io,
            ),
            (
                Error::MissingManifest { path: "p".into() },
                ErrorKind::Source,
            ),
            (
                Error::NotAPlugin {
                    path: "l.so".into(),
                    reason: "r".into(),
                },
                ErrorKind::Verify,
            ),
            (
                Error::Incompatible {
                    plugin: "p".into(),
                    path: "l.so".into(),
                    reason: "r".into(),
                },
                ErrorKind::Abi,
            ),
            (
                Error::Runner {
                    plugin: "p".into(),
                    reason: RunnerFailure::NotRunning,
                },
                ErrorKind::Abi,
            ),
            (
                Error::Restart {
                    plugin: "p".into(),
                    reason: RunnerFailure::NotRunning,
                },
                ErrorKind::Call,
            ),
            (Error::NotFound { plugin: "p".into() }, ErrorKind::Manager),
            (
                Error::Downgrade {
                    plugin: "p".into(),
                    installed: semver::Version::new(0, 2, 0),
                    offered: semver::Version::new(0, 1, 0),
                },
                ErrorKind::Manager,
            ),
            // Bytes that miss their digest: the transfer's fault, like a failed download;
            // what a registry holds and is refused stays `Verify`.
            (
                Error::Transfer {
                    reference: "r".into(),
                    digest: None,
                    reason: "m".into(),
                },
                ErrorKind::Source,
            ),
            (
                Error::Artifact {
                    reference: "r".into(),
                    digest: None,
                    reason: "m".into(),
                },
                ErrorKind::Verify,
            ),
            (Error::Cancelled { plugin: "p".into() }, ErrorKind::Call),
            (
                Error::Build {
                    path: "c".into(),
                    reason: "m".into(),
                    source: None,
                },
                ErrorKind::Build,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
    }
}
