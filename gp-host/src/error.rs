//! The crate's one error type, and the coarse kinds callers branch on.
//!
//! At the bottom of the crate: every layer returns [`Error`], so it imports nothing of gp-host.

use std::path::PathBuf;

use gp_core::manifest::ManifestError;

/// Everything that can go wrong in a host: loading a plugin, finding one, calling one.
///
/// Each message names the plugin or the file it concerns and, where there is one, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The plugin base directory does not exist.
    #[error("{}: the plugin base directory does not exist: create it, or point the manager at the directory that holds the plugin folders", dir.display())]
    MissingBaseDir {
        /// The base directory.
        dir: PathBuf,
    },
    /// A plugin folder has no `plugin.json`.
    #[error("{}: no plugin.json in this plugin folder: generate one with `gp manifest <library> -o {}`", dir.display(), dir.join("plugin.json").display())]
    MissingManifest {
        /// The plugin folder.
        dir: PathBuf,
    },
    /// `plugin.json` is not valid.
    #[error("{}: {source}", path.display())]
    InvalidManifest {
        /// The `plugin.json` file.
        path: PathBuf,
        /// What is wrong with it.
        source: ManifestError,
    },
    /// The plugin is distributed as source and must be built before it can be loaded.
    #[error("plugin `{name}` ({}) has source.mode remote_git ({repository}), and this host does not build plugins (gp-host's `git` feature and `ManagerBuilder::remote_git`): build it with `gp build` and load the built folder", path.display())]
    NeedsBuild {
        /// The plugin's name.
        name: String,
        /// The repository in `source.path`.
        repository: String,
        /// The `plugin.json` file.
        path: PathBuf,
    },
    /// The library file is not a loadable library for this host (empty, truncated, not a
    /// shared library, built for another platform).
    #[error("{}: not a loadable library: {reason}", path.display())]
    InvalidLibrary {
        /// The library file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The library is a shared library but not a gp plugin.
    #[error("{}: not a gp plugin: {reason}", path.display())]
    NotAPlugin {
        /// The library file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The plugin was built against a `gp-core` this host cannot use.
    #[error("plugin `{plugin}` ({}) was built against an incompatible gp-core: {reason}", path.display())]
    Incompatible {
        /// The plugin's name.
        plugin: String,
        /// The library file.
        path: PathBuf,
        /// The mismatch, in a few lines (the full layout report is logged at debug level).
        reason: String,
    },
    /// `plugin.json` and the manifest embedded in the library disagree.
    #[error("{}: {field} is {in_file} but the library {} says {in_library}: regenerate plugin.json with `gp manifest {} -o {}`", path.display(), library.display(), library.display(), path.display())]
    ManifestMismatch {
        /// The `plugin.json` file.
        path: PathBuf,
        /// The library file.
        library: PathBuf,
        /// The field that differs.
        field: &'static str,
        /// Its value in `plugin.json`, as JSON.
        in_file: String,
        /// Its value in the library, as JSON.
        in_library: String,
    },
    /// A plugin of the same name is already loaded from another folder.
    #[error("plugin `{name}` in {} is already loaded from {}: plugin names must be unique, remove or rename one", second.display(), first.display())]
    Duplicate {
        /// The plugin's name.
        name: String,
        /// The folder of the plugin already loaded.
        first: PathBuf,
        /// The folder of the refused one.
        second: PathBuf,
    },
    /// A check the application registered ([`Manager::admit`](crate::Manager::admit)), such as
    /// the HTTP layer's route-conflict check, refused the plugin.
    #[error("plugin `{plugin}` ({}) refused: {reason}", path.display())]
    Refused {
        /// The plugin's name.
        plugin: String,
        /// Its folder or package.
        path: PathBuf,
        /// Why, as the check said it.
        reason: String,
    },
    /// The plugin is disabled ([`Manager::disable`](crate::Manager::disable)); it loads again
    /// once enabled.
    #[error("plugin `{name}` ({}) is disabled ({reason}): enable it to load it (Manager::enable, or the management API's POST /api/v1/plugins/{name}/enable)", origin.display())]
    Disabled {
        /// The plugin's name.
        name: String,
        /// Its folder or package.
        origin: PathBuf,
        /// Why it was disabled.
        reason: String,
    },
    /// [`Manager::roll_back`](crate::Manager::roll_back) with nothing kept to go back to.
    #[error("plugin `{name}` has no previous version kept to roll back to: only a replacement by an uploaded package (the management API's upgrade) keeps one")]
    NothingToRollBack {
        /// The plugin's name.
        name: String,
    },
    /// [`Manager::enable`](crate::Manager::enable) on a plugin that is not disabled.
    #[error("plugin `{name}` is not disabled")]
    NotDisabled {
        /// The plugin's name.
        name: String,
    },
    /// The library's code refused to load (its root module returned an error or panicked).
    #[error("plugin `{plugin}` ({}) failed while loading: {reason}", path.display())]
    LoadFailed {
        /// The plugin's name.
        plugin: String,
        /// The library file.
        path: PathBuf,
        /// What happened.
        reason: String,
    },
    /// No plugin of that name is loaded.
    #[error("no plugin named `{name}` is loaded")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// The plugin returned an error.
    #[error("plugin `{plugin}` failed: {message}")]
    Failed {
        /// The plugin's name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// The plugin panicked. The panic was caught inside the plugin; host and plugin carry on.
    #[error("plugin `{plugin}` panicked: {message}")]
    Panicked {
        /// The plugin's name.
        plugin: String,
        /// The panic message and where it happened.
        message: String,
    },
    /// An isolated plugin's runner process died during the call (a crash, an abort, `exit`, a
    /// stack overflow, the memory or CPU limit). The host is unharmed; the next call starts a
    /// new runner.
    #[error("plugin `{plugin}` crashed: its runner process {status}; the next call starts a new one{}", if stderr.is_empty() { String::new() } else { format!(". Its last lines on stderr:\n{stderr}") })]
    Crashed {
        /// The plugin's name.
        plugin: String,
        /// How the runner ended: "killed by signal 11 (SIGSEGV)", "exited with status 3".
        status: String,
        /// The runner's last lines on standard error (at most 20).
        stderr: String,
    },
    /// An isolated plugin crashed too often: it is failed until it is loaded again.
    #[error("plugin `{plugin}` is failed: its runner crashed {crashes} times within {}; load it again (unload and load, or upgrade) once it is fixed", humantime_short(*window))]
    CircuitOpen {
        /// The plugin's name.
        plugin: String,
        /// The crashes that opened the breaker.
        crashes: u32,
        /// Within this window.
        window: std::time::Duration,
    },
    /// A runner process (an isolated plugin's, or a pre-flight's) could not be started, or
    /// could not load the plugin.
    #[error("plugin `{plugin}`: {message}")]
    Runner {
        /// The plugin's name.
        plugin: String,
        /// What went wrong, as the runner or the host saw it.
        message: String,
    },
    /// The call was cancelled through its [`CancelToken`](crate::CancelToken) and the plugin
    /// stopped.
    #[error("call to plugin `{plugin}` was cancelled")]
    Cancelled {
        /// The plugin's name.
        plugin: String,
    },
    /// The call passed its deadline and the plugin stopped.
    #[error("call to plugin `{plugin}` passed its deadline")]
    DeadlineExceeded {
        /// The plugin's name.
        plugin: String,
    },
    /// The call was running when its plugin was unloaded: the plugin saw itself cancelled
    /// and stopped.
    #[error("plugin `{plugin}` was unloaded while this call ran; the call was cancelled")]
    Unloaded {
        /// The plugin's name.
        plugin: String,
    },
    /// A plugin's `#[on_load]` hook refused to load it, or its `#[on_unload]` hook failed.
    #[error("plugin `{plugin}` {version}: its {hook} hook {}: {message}", if *panicked { "panicked" } else { "failed" })]
    HookFailed {
        /// The plugin's name.
        plugin: String,
        /// The version whose hook ran.
        version: semver::Version,
        /// `on_load` or `on_unload`.
        hook: &'static str,
        /// Whether the hook panicked rather than returning an error.
        panicked: bool,
        /// The hook's message.
        message: String,
    },
    /// A lifecycle hook did not return within the manager's hook timeout: abandoned on its
    /// thread, and its build quarantined until it returns.
    #[error("plugin `{plugin}` {version}: its {hook} hook did not return within {}: it was abandoned (still running on its own thread), and this build is refused until it returns or the process restarts", humantime_short(*timeout))]
    HookTimedOut {
        /// The plugin's name.
        plugin: String,
        /// The version whose hook ran.
        version: semver::Version,
        /// `on_load` or `on_unload`.
        hook: &'static str,
        /// The timeout it ran past.
        timeout: std::time::Duration,
    },
    /// The build's hook from an earlier load or unload ran past its timeout and has not
    /// returned: the build's statics may be mid-change, so it is not loaded again until then.
    #[error("plugin `{plugin}` ({}): this build is quarantined: its {hook} ran past its timeout and has not returned yet; it can be loaded again once that hook returns, or after a restart", path.display())]
    Quarantined {
        /// The plugin's name.
        plugin: String,
        /// Its folder or package.
        path: PathBuf,
        /// The hook still running.
        hook: &'static str,
    },
    /// An upgrade was refused; the running version keeps serving.
    #[error("upgrade of plugin `{name}` refused, {running} keeps serving: {reason}")]
    UpgradeRefused {
        /// The plugin's name.
        name: String,
        /// The version that keeps serving.
        running: semver::Version,
        /// Why.
        reason: Box<Error>,
    },
    /// An upgrade offered a library of another plugin.
    #[error("{} is plugin `{found}`, not `{expected}`", path.display())]
    NameMismatch {
        /// The plugin being upgraded.
        expected: String,
        /// The plugin the library is.
        found: String,
        /// The library (or plugin folder) offered.
        path: PathBuf,
    },
    /// An upgrade offered a version that is not newer than the running one.
    #[error("version {offered} is not newer than the running {running}: bump the version in the plugin's Cargo.toml, or force the upgrade")]
    NotNewer {
        /// The version serving now.
        running: semver::Version,
        /// The version offered.
        offered: semver::Version,
    },
    /// An upgrade offered another build of the version already running, and the manager does
    /// not reload rebuilds of one version.
    #[error("version {version} is already running, from another build: bump the version in the plugin's Cargo.toml, force the upgrade, or reload rebuilds of one version (`gp serve --dev`, `ManagerBuilder::reload_same_version(true)`)")]
    SameVersion {
        /// The version running and offered.
        version: semver::Version,
    },
    /// A package was refused: malformed, hostile, too large, or failing its checksums or
    /// signature. Nothing of it was kept.
    #[error("{}: package refused: {reason}", path.display())]
    Package {
        /// The package file.
        path: PathBuf,
        /// Why, naming the entry concerned.
        reason: String,
    },
    /// A signing or public key could not be read or made.
    #[error("{key}: not a usable key: {reason}")]
    Key {
        /// The key's file or text.
        key: String,
        /// Why.
        reason: String,
    },
    /// A `remote_git` plugin's repository could not be cloned, fetched or checked out.
    #[error("git repository {repository}: {reason}")]
    Git {
        /// The repository (`source.path` without the revision).
        repository: String,
        /// What git said.
        reason: String,
    },
    /// Downloading a package failed or was refused.
    #[error("{url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Talking to an OCI registry failed: it cannot be reached, refuses the credentials, has
    /// no such name, tag or version, or answered an error (feature `hub`). Trying again later
    /// may succeed.
    #[error("{reference}: {reason}")]
    Hub {
        /// The reference, repository or registry concerned (never with credentials).
        reference: String,
        /// Why, and what to do.
        reason: String,
    },
    /// What an OCI registry holds or sent under a reference is refused: not a gp plugin, not
    /// the bytes its digests name, larger than the limit, or another plugin or version than
    /// its name and tag say (feature `hub`). Asking again gets the same answer.
    #[error("{reference}: {reason}")]
    Artifact {
        /// The reference, with the manifest's digest when it is known.
        reference: String,
        /// Why.
        reason: String,
    },
    /// Watching the plugin base directory failed.
    #[error("{}: cannot watch for changes: {reason}", path.display())]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The watcher's error.
        reason: String,
    },
    /// Building a plugin crate failed.
    #[error("building {} failed: {message}", path.display())]
    Build {
        /// The crate's manifest or folder.
        path: PathBuf,
        /// Cargo's message.
        message: String,
    },
}

/// What an [`Error`] is about, for callers that map errors (to an HTTP status, a retry, a
/// metric) without matching every variant. [`Error::kind`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file or folder could not be read or written, or a directory could not be watched.
    Io,
    /// Where a plugin comes from is wrong or unreachable: a missing base directory or
    /// `plugin.json`, an invalid manifest, a refused package or key, a git repository or a
    /// download that failed, a plugin that must be built first.
    Source,
    /// Building a plugin crate failed.
    Build,
    /// The library is not a loadable gp plugin, or disagrees with its `plugin.json`.
    Verify,
    /// The plugin was built against an incompatible gp-core, or its loader failed.
    Abi,
    /// The registry refused a change or a lookup: a duplicate name, an unknown plugin, an
    /// upgrade that is not newer or names another plugin.
    Registry,
    /// A call returned an error, panicked, was cancelled, passed its deadline or was cut short
    /// by an unload.
    Call,
    /// A lifecycle hook (`on_load`, `on_unload`) failed.
    Hook,
}

/// `1.5s`, `200ms`: a duration as messages show it.
fn humantime_short(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Error {
    /// What the error is about. Stable across releases for the variants that exist today;
    /// new variants get the kind that fits them.
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
            | E::Hub { .. } => ErrorKind::Source,
            E::Build { .. } => ErrorKind::Build,
            E::InvalidLibrary { .. }
            | E::NotAPlugin { .. }
            | E::ManifestMismatch { .. }
            | E::Artifact { .. } => ErrorKind::Verify,
            E::Incompatible { .. } | E::LoadFailed { .. } | E::Runner { .. } => ErrorKind::Abi,
            E::Duplicate { .. }
            | E::Refused { .. }
            | E::Disabled { .. }
            | E::NotDisabled { .. }
            | E::NothingToRollBack { .. }
            | E::NotFound { .. }
            | E::UpgradeRefused { .. }
            | E::NameMismatch { .. }
            | E::NotNewer { .. }
            | E::SameVersion { .. } => ErrorKind::Registry,
            E::Failed { .. }
            | E::Crashed { .. }
            | E::CircuitOpen { .. }
            | E::Panicked { .. }
            | E::Cancelled { .. }
            | E::DeadlineExceeded { .. }
            | E::Unloaded { .. } => ErrorKind::Call,
            E::HookFailed { .. } | E::HookTimedOut { .. } | E::Quarantined { .. } => {
                ErrorKind::Hook
            }
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Error, ErrorKind};

    #[test]
    fn kinds_group_variants_by_what_they_are_about() {
        let cases = [
            (
                Error::io("x", std::io::ErrorKind::NotFound.into()),
                ErrorKind::Io,
            ),
            (
                Error::MissingManifest { dir: "p".into() },
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
            (Error::NotFound { name: "p".into() }, ErrorKind::Registry),
            (Error::Cancelled { plugin: "p".into() }, ErrorKind::Call),
            (
                Error::Build {
                    path: "c".into(),
                    message: "m".into(),
                },
                ErrorKind::Build,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
    }
}
