//! The crate's one error type, the coarse kinds callers branch on, and the typed causes some
//! of its variants carry.
//!
//! At the bottom of the crate: every layer returns [`Error`], so it imports nothing of gp-host.
//!
//! - [`kind`]: [`ErrorKind`] and the variant → kind table;
//! - [`hook`]: [`Hook`], which lifecycle hook an error is about;
//! - [`runner`]: [`RunnerFailure`], why a runner process failed;
//! - [`hub`]: [`HubFailure`], why talking to an OCI registry failed.

use std::path::PathBuf;
use std::time::Duration;

use gp_core::manifest::ManifestError;

mod hook;
mod hub;
mod kind;
mod runner;

use hook::humantime_short;
pub use hook::Hook;
pub use hub::HubFailure;
pub use kind::ErrorKind;
pub use runner::RunnerFailure;

/// A cause carried for code that inspects it (`source()`); its message is already in the
/// error's.
pub(crate) type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a host: loading a plugin, finding one, calling one.
///
/// Each message names the plugin or the file it concerns and, where there is one, what to do.
/// Fields use one vocabulary: `plugin` is the plugin's name, `path` the file or folder the
/// error is about, `reason` why (in gp's words), `message` what the plugin itself said.
///
/// Each message is complete on its own: where a variant has a cause (`source()`: an I/O
/// error, the HTTP client's, a [`RunnerFailure`], a [`HubFailure`]), its text is already in
/// the message, and `source()` hands it over as a value for code that inspects it. Print an
/// `Error` with `{}`; a reporter that also prints the chain shows each cause twice.
///
/// An application reports its own failures with its own error type: wrap this one in it
/// (`Error` is `Send + Sync + 'static`, so `?` turns it into a `Box<dyn std::error::Error>`,
/// an `anyhow::Error`, or a variant of the application's enum). gp's variants stay gp's, so
/// that [`kind`](Self::kind) and every message keep meaning what they say. The one place
/// an application's own failure enters gp is a check it registers with
/// [`Manager::admit`](crate::Manager::admit): its error becomes [`Error::Refused`]'s `reason`.
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
    #[error("{}: the plugin base directory does not exist: create it, or point the manager at the directory that holds the plugin folders", path.display())]
    MissingBaseDir {
        /// The base directory.
        path: PathBuf,
    },
    /// A plugin folder has no `plugin.json`.
    #[error("{}: no plugin.json in this plugin folder: generate one with `gp manifest <library> -o {}`", path.display(), path.join("plugin.json").display())]
    MissingManifest {
        /// The plugin folder.
        path: PathBuf,
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
    #[error("plugin `{plugin}` ({}) has source.mode remote_git ({repository}), and this host does not build plugins (gp-host's `git` feature and `ManagerBuilder::remote_git`): build it with `gp build` and load the built folder", path.display())]
    NeedsBuild {
        /// The plugin's name.
        plugin: String,
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
    #[error("plugin `{plugin}` in {} is already loaded from {}: plugin names must be unique, remove or rename one", path.display(), loaded_from.display())]
    Duplicate {
        /// The plugin's name.
        plugin: String,
        /// The folder or package refused.
        path: PathBuf,
        /// The folder or package of the plugin already loaded.
        loaded_from: PathBuf,
    },
    /// A check the application registered ([`Manager::admit`](crate::Manager::admit)), such as
    /// the HTTP layer's route-conflict check, refused the plugin.
    #[error("plugin `{plugin}` ({}) refused: {reason}", path.display())]
    Refused {
        /// The plugin's name.
        plugin: String,
        /// Its folder or package.
        path: PathBuf,
        /// Why, as the check said it: the check's own error.
        #[source]
        reason: Cause,
    },
    /// The plugin is disabled ([`Manager::disable`](crate::Manager::disable)); it loads again
    /// once enabled.
    #[error("plugin `{plugin}` ({}) is disabled ({reason}): enable it to load it (Manager::enable, or the management API's POST /api/v1/plugins/{plugin}/enable)", path.display())]
    Disabled {
        /// The plugin's name.
        plugin: String,
        /// Its folder or package.
        path: PathBuf,
        /// Why it was disabled, as the operator said it.
        reason: String,
    },
    /// [`Manager::roll_back`](crate::Manager::roll_back) with nothing kept to go back to.
    #[error("plugin `{plugin}` has no previous version kept to roll back to: only a replacement by an uploaded package (the management API's upgrade) keeps one")]
    NothingToRollBack {
        /// The plugin's name.
        plugin: String,
    },
    /// A plugin name (from a URL, a marker file, a command line) that is not one: see
    /// [`PluginName`](crate::PluginName). Nothing was looked up with it.
    #[error("{reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is not a plugin name.
        reason: String,
    },
    /// [`Manager::enable`](crate::Manager::enable) on a plugin that is not disabled.
    #[error("plugin `{plugin}` is not disabled")]
    NotDisabled {
        /// The plugin's name.
        plugin: String,
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
    #[error("no plugin named `{plugin}` is loaded")]
    NotFound {
        /// The name asked for.
        plugin: String,
    },
    /// The plugin returned an error.
    #[error("plugin `{plugin}` failed: {message}")]
    Failed {
        /// The plugin's name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
    /// A typed call's input could not be written as the call's values, or its output not read
    /// back from them ([`Executor::call`](crate::Executor::call)): host and plugin disagree on
    /// the label's types.
    #[error("plugin `{plugin}`, label `{label}`: {message}")]
    Values {
        /// The plugin's name.
        plugin: String,
        /// The call's label.
        label: String,
        /// What did not fit, and where.
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
        window: Duration,
    },
    /// An isolated plugin's runner could not be started or could not load the plugin, at
    /// load or upgrade, or failed its `on_unload`.
    #[error("plugin `{plugin}`: {reason}")]
    Runner {
        /// The plugin's name.
        plugin: String,
        /// What went wrong.
        #[source]
        reason: RunnerFailure,
    },
    /// The pre-flight ([`ManagerBuilder::preflight`](crate::ManagerBuilder::preflight)) refused
    /// the build: its runner refused it or died loading it (a verdict, kept for this build),
    /// or the runner could not be asked (tried again at the next load).
    #[error("plugin `{plugin}`: pre-flight: {reason}{}", if reason.is_verdict() { "; it was not loaded into this process" } else { "" })]
    Preflight {
        /// The plugin's name.
        plugin: String,
        /// What the runner did.
        #[source]
        reason: RunnerFailure,
    },
    /// A call to an isolated plugin found no runner it could use: the one it needed (the
    /// first call after a crash or a kill) could not be started or could not load the plugin,
    /// or the runner broke the protocol and was ended. The next call tries again.
    #[error("plugin `{plugin}`: {reason}")]
    Restart {
        /// The plugin's name.
        plugin: String,
        /// What went wrong.
        #[source]
        reason: RunnerFailure,
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
        /// Which hook.
        hook: Hook,
        /// Whether the hook panicked rather than returning an error.
        panicked: bool,
        /// The hook's message.
        message: String,
    },
    /// The plugin's configuration (`config.json` beside its `plugin.json`) was refused: it is
    /// not JSON, a secret it names cannot be read, or it does not fit the type the plugin's
    /// `#[on_load]` takes (the field and the type it expected are in `reason`). Secret values
    /// never appear in the message.
    #[error("plugin `{plugin}`: its configuration {} was refused: {reason}", path.display())]
    Config {
        /// The plugin's name.
        plugin: String,
        /// The configuration file.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// A lifecycle hook did not return within the manager's hook timeout: abandoned on its
    /// thread, and its build quarantined until it returns.
    #[error("plugin `{plugin}` {version}: its {hook} hook did not return within {}: it was abandoned (still running on its own thread), and this build is refused until it returns or the process restarts", humantime_short(*timeout))]
    HookTimedOut {
        /// The plugin's name.
        plugin: String,
        /// The version whose hook ran.
        version: semver::Version,
        /// Which hook.
        hook: Hook,
        /// The timeout it ran past.
        timeout: Duration,
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
        hook: Hook,
    },
    /// An upgrade was refused; the running version keeps serving.
    #[error("upgrade of plugin `{plugin}` refused, {running} keeps serving: {source}")]
    UpgradeRefused {
        /// The plugin's name.
        plugin: String,
        /// The version that keeps serving.
        running: semver::Version,
        /// Why.
        source: Box<Error>,
    },
    /// An upgrade offered a library of another plugin.
    #[error("{} is plugin `{found}`, not `{plugin}`", path.display())]
    NameMismatch {
        /// The plugin being upgraded.
        plugin: String,
        /// The plugin the library is.
        found: String,
        /// The library (or plugin folder) offered.
        path: PathBuf,
    },
    /// An upgrade offered a version that is not newer than the running one.
    #[error("version {offered} is not newer than the running {running}: bump the version in the plugin's Cargo.toml, or force the upgrade")]
    NotNewer {
        /// The plugin being upgraded.
        plugin: String,
        /// The version serving now.
        running: semver::Version,
        /// The version offered.
        offered: semver::Version,
    },
    /// An upgrade offered another build of the version already running, and the manager does
    /// not reload rebuilds of one version.
    #[error("version {version} is already running, from another build: bump the version in the plugin's Cargo.toml, force the upgrade, or reload rebuilds of one version (`gp serve --dev`, `ManagerBuilder::reload_same_version(true)`)")]
    SameVersion {
        /// The plugin being upgraded.
        plugin: String,
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
        /// The archive reader's or the system's error, where there is one.
        #[source]
        source: Option<Cause>,
    },
    /// A signing or public key could not be read or made.
    #[error("{key}: not a usable key: {reason}")]
    Key {
        /// The key's file or text.
        key: String,
        /// Why.
        reason: String,
        /// The decoder's or the random generator's error, where there is one.
        #[source]
        source: Option<Cause>,
    },
    /// A `remote_git` plugin's repository could not be cloned, fetched or checked out.
    #[error("git repository {repository}: {reason}")]
    Git {
        /// The repository (`source.path` without the revision).
        repository: String,
        /// What git said.
        reason: String,
        /// The system's error when git could not be run at all.
        #[source]
        source: Option<std::io::Error>,
    },
    /// Downloading a package failed or was refused.
    #[error("{url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
        /// The HTTP client's or the system's error, where there is one.
        #[source]
        source: Option<Cause>,
    },
    /// Talking to an OCI registry failed: it cannot be reached, refuses the credentials, has
    /// no such name, tag or version, or answered an error (feature `hub`). Trying again later
    /// may succeed.
    #[error("{reference}: {reason}")]
    Hub {
        /// The reference, repository or registry concerned (never with credentials).
        reference: String,
        /// Why, and what to do.
        #[source]
        reason: HubFailure,
    },
    /// What an OCI registry holds under a reference is refused: not a gp plugin, larger than
    /// the limit, a package that does not verify, or another plugin or version than its name,
    /// tag and annotations say (feature `hub`). Asking again gets the same answer: what
    /// the registry holds is at fault, not the transfer (that is [`Error::Transfer`]).
    #[error("{reference}: {reason}")]
    Artifact {
        /// The reference, with the manifest's digest when it is known.
        reference: String,
        /// The manifest's digest (`sha256:…`), when it is known: what a follower remembers
        /// as refused.
        digest: Option<String>,
        /// Why.
        reason: String,
    },
    /// What an OCI registry sent is not the bytes its digests and sizes name: a manifest or
    /// a package that does not hash to its digest, or is longer or shorter than declared
    /// (feature `hub`). Nothing was installed. The transfer or the registry's storage is at
    /// fault, not the artifact: asking again may get the right bytes, so a follower retries.
    #[error("{reference}: {reason}")]
    Transfer {
        /// The reference, with the manifest's digest when it is known.
        reference: String,
        /// The manifest's digest (`sha256:…`), when it is known.
        digest: Option<String>,
        /// What was sent, and what was expected.
        reason: String,
    },
    /// [`Manager::install`](crate::Manager::install) of an older version than the one
    /// installed, without [`InstallOptions::allow_downgrade`](crate::InstallOptions).
    #[error("installing {plugin} {offered} over the installed {installed} is a downgrade: pass --allow-downgrade (InstallOptions::allow_downgrade) to install it anyway")]
    Downgrade {
        /// The plugin's name.
        plugin: String,
        /// The version installed (loaded, or in the package it would replace).
        installed: semver::Version,
        /// The version offered.
        offered: semver::Version,
    },
    /// A change asked for after [`Manager::stop_loading`](crate::Manager::stop_loading) (an
    /// install whose download ended then, a watched change, an upload): the host is shutting
    /// down, and nothing more loads. `plugin` is the plugin's name, or its folder's or
    /// package's where the name is not read yet.
    #[error("plugin `{plugin}` was not loaded: the host is shutting down")]
    Stopping {
        /// The plugin's name.
        plugin: String,
    },
    /// [`Manager::init`](crate::Manager::init): plugins the host requires
    /// ([`ManagerBuilder::require`](crate::ManagerBuilder::require)) do not serve after the
    /// first load.
    #[error("required plugin(s) not loaded: {}", required_list(plugins))]
    RequiredNotLoaded {
        /// Each required plugin that does not serve, with why.
        plugins: Vec<(String, String)>,
    },
    /// Watching the plugin base directory failed.
    #[error("{}: cannot watch for changes: {reason}", path.display())]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The watcher's error, in words.
        reason: String,
        /// The watcher's error.
        #[source]
        source: Option<Cause>,
    },
    /// Building a plugin crate failed.
    #[error("building {} failed: {reason}", path.display())]
    Build {
        /// The crate's manifest or folder.
        path: PathBuf,
        /// What cargo said, or why it could not run.
        reason: String,
        /// The system's error when cargo could not be run at all.
        #[source]
        source: Option<std::io::Error>,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The plugin this error is about, when it names one.
    pub fn plugin(&self) -> Option<&str> {
        use Error as E;
        match self {
            E::NeedsBuild { plugin, .. }
            | E::Incompatible { plugin, .. }
            | E::Duplicate { plugin, .. }
            | E::Refused { plugin, .. }
            | E::Disabled { plugin, .. }
            | E::NothingToRollBack { plugin }
            | E::NotDisabled { plugin }
            | E::LoadFailed { plugin, .. }
            | E::NotFound { plugin }
            | E::Failed { plugin, .. }
            | E::Values { plugin, .. }
            | E::Config { plugin, .. }
            | E::Panicked { plugin, .. }
            | E::Crashed { plugin, .. }
            | E::CircuitOpen { plugin, .. }
            | E::Runner { plugin, .. }
            | E::Preflight { plugin, .. }
            | E::Restart { plugin, .. }
            | E::Cancelled { plugin }
            | E::DeadlineExceeded { plugin }
            | E::Unloaded { plugin }
            | E::HookFailed { plugin, .. }
            | E::HookTimedOut { plugin, .. }
            | E::Quarantined { plugin, .. }
            | E::UpgradeRefused { plugin, .. }
            | E::NameMismatch { plugin, .. }
            | E::NotNewer { plugin, .. }
            | E::SameVersion { plugin, .. }
            | E::Stopping { plugin }
            | E::Downgrade { plugin, .. } => Some(plugin),
            E::Io { .. }
            | E::RequiredNotLoaded { .. }
            | E::MissingBaseDir { .. }
            | E::MissingManifest { .. }
            | E::InvalidManifest { .. }
            | E::InvalidLibrary { .. }
            | E::NotAPlugin { .. }
            | E::ManifestMismatch { .. }
            | E::Package { .. }
            | E::Key { .. }
            | E::Git { .. }
            | E::Download { .. }
            | E::Hub { .. }
            | E::Artifact { .. }
            | E::Transfer { .. }
            | E::Watch { .. }
            | E::InvalidName { .. }
            | E::Build { .. } => None,
        }
    }
}

/// `` `a` (why), `b` (why) `` for [`Error::RequiredNotLoaded`].
fn required_list(plugins: &[(String, String)]) -> String {
    plugins
        .iter()
        .map(|(name, why)| format!("`{name}` ({why})"))
        .collect::<Vec<_>>()
        .join("; ")
}
