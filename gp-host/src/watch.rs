//! Keeping a manager in line with its base directory as files change (feature `watch`).
//!
//! Above the manager: the watcher maps changed paths to plugin folders and calls
//! [`Manager::sync`] for each, retrying while files settle.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher as _};

use crate::error::Error;
use crate::manager::report::Synced;
use crate::manager::Manager;
use crate::source;

/// How a [`Manager::watch_with`] watcher behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// How long a folder must be quiet before its changes are acted on, and the pause before
    /// another attempt at a folder that failed (default 300 ms).
    pub settle: Duration,
    /// How many times a failing folder is tried before the failure is reported (default 5).
    pub attempts: u32,
}

impl Default for WatchOptions {
    fn default() -> WatchOptions {
        WatchOptions {
            settle: Duration::from_millis(300),
            attempts: 5,
        }
    }
}

impl Manager {
    /// Watches the base directory and keeps the manager in line with it: a new plugin
    /// folder loads, a changed library or `plugin.json` upgrades (newer versions only), a
    /// removed folder unloads. See [`watch_with`](Self::watch_with).
    pub fn watch(&self) -> Result<Watcher, Error> {
        self.watch_with(WatchOptions::default())
    }

    /// [`watch`](Self::watch) with options.
    ///
    /// Changes are handled once the folder has been quiet for `options.settle`. A folder that
    /// fails (a library still being copied, a `plugin.json` written before its library) is
    /// tried again after each further `settle`, up to `options.attempts` times; the running
    /// version keeps serving meanwhile. Only the last failure is reported (logged, and sent
    /// as an event). Stops when the returned [`Watcher`] is dropped.
    pub fn watch_with(&self, options: WatchOptions) -> Result<Watcher, Error> {
        Watcher::start(self.clone(), options)
    }
}

enum Message {
    Change(notify::Result<notify::Event>),
    Stop,
}

/// A running watch over a manager's base directory; stops when dropped.
#[must_use = "dropping the Watcher stops watching: keep it for as long as the base directory should be followed"]
pub struct Watcher {
    messages: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
    _watcher: notify::RecommendedWatcher,
}

impl Watcher {
    pub(crate) fn start(manager: Manager, options: WatchOptions) -> Result<Watcher, Error> {
        let base = manager.base_dir().to_owned();
        let watch_error = |e: notify::Error| Error::Watch {
            path: base.clone(),
            reason: e.to_string(),
            source: Some(Box::new(e)),
        };
        let (sender, receiver) = mpsc::channel();
        let changes = sender.clone();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = changes.send(Message::Change(event));
        })
        .map_err(watch_error)?;
        watcher
            .watch(&base, RecursiveMode::Recursive)
            .map_err(watch_error)?;
        let thread = std::thread::Builder::new()
            .name("gp-watch".into())
            .spawn(move || run(&manager, options, &receiver))
            .map_err(|e| Error::io(&base, e))?;
        tracing::info!(target: "gp", dir = %base.display(), "watching for plugin changes");
        Ok(Watcher {
            messages: sender,
            thread: Some(thread),
            _watcher: watcher,
        })
    }

    /// Stops watching and waits for the change being handled, if any, to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Stops watching and waits up to `limit` for the change being handled, if any, to
    /// finish; `true` if it did. A watcher still busy after that is left to end with the
    /// process. For a shutdown, after [`Manager::stop_loading`](crate::Manager::stop_loading):
    /// the changes it has not started are refused ([`Error::Stopping`]).
    pub fn stop_within(mut self, limit: std::time::Duration) -> bool {
        let _ = self.messages.send(Message::Stop);
        match self.thread.take() {
            // On the watch thread itself (a subscriber): it stops after this change.
            Some(thread) if thread.thread().id() == std::thread::current().id() => true,
            Some(thread) => crate::util::join_until(thread, Instant::now() + limit),
            None => true,
        }
    }

    fn shutdown(&mut self) {
        let _ = self.messages.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            // Dropped by a subscriber running on the watch thread itself: it stops after the
            // change it is handling, without waiting for itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watcher")
    }
}

fn run(manager: &Manager, options: WatchOptions, messages: &mpsc::Receiver<Message>) {
    // Folders to sync: the attempts made so far, and when the next is due. A change (re)starts
    // a folder's settle time and its count of attempts.
    let mut pending: BTreeMap<PathBuf, (u32, Instant)> = BTreeMap::new();
    loop {
        let next_due = pending.values().map(|(_, due)| *due).min();
        let message = match next_due {
            None => messages
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(due) => messages.recv_timeout(due.saturating_duration_since(Instant::now())),
        };
        match message {
            Ok(Message::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Ok(Message::Change(Ok(event))) => {
                if !changes_contents(&event.kind) {
                    continue;
                }
                let due = Instant::now() + options.settle;
                for folder in event
                    .paths
                    .iter()
                    .filter_map(|path| plugin_folder(manager.base_dir(), path))
                    .flat_map(|folder| package_configured(manager, &folder).unwrap_or(vec![folder]))
                {
                    pending.insert(folder, (0, due));
                }
            }
            Ok(Message::Change(Err(error))) => {
                tracing::warn!(target: "gp", dir = %manager.base_dir().display(), "watching for plugin changes: {error}");
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                let due: Vec<(PathBuf, u32)> = pending
                    .iter()
                    .filter(|(_, (_, at))| *at <= now)
                    .map(|(folder, (attempts, _))| (folder.clone(), *attempts + 1))
                    .collect();
                for (folder, attempt) in due {
                    sync(manager, &options, &mut pending, folder, attempt);
                }
            }
        }
    }
}

/// Whether an event can mean that a file's contents, name or presence changed. Opening or
/// reading a file is not a change: the manager reads `plugin.json` and libraries on every
/// sync, and taking its own reads for changes would sync a folder forever (and restart the
/// attempts of a failing one, so that its failure was never reported).
fn changes_contents(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

fn sync(
    manager: &Manager,
    options: &WatchOptions,
    pending: &mut BTreeMap<PathBuf, (u32, Instant)>,
    folder: PathBuf,
    attempt: u32,
) {
    if folder.exists() && !folder.is_dir() && !source::is_package(&folder) {
        pending.remove(&folder);
        return; // a file beside the plugin folders that is not a package
    }
    match manager.sync(&folder) {
        Ok(synced) => {
            pending.remove(&folder);
            if let Synced::Unchanged(spec) = synced {
                tracing::debug!(target: "gp", plugin = spec.name(), "folder touched, plugin unchanged");
            }
        }
        Err(Error::Disabled { plugin: name, .. }) => {
            // Left alone until enabled: not a failure.
            pending.remove(&folder);
            tracing::debug!(target: "gp", plugin = name, "folder changed, plugin disabled: left alone");
        }
        Err(Error::Stopping { .. }) => {
            // The host is shutting down: nothing more loads, and that is no failure.
            pending.remove(&folder);
        }
        Err(error) if attempt < options.attempts && is_transient(&error) => {
            tracing::debug!(target: "gp", dir = %folder.display(), "attempt {attempt} of {}: {error}; trying again in {:?}", options.attempts, options.settle);
            pending.insert(folder, (attempt, Instant::now() + options.settle));
        }
        Err(error) => {
            pending.remove(&folder);
            manager.report_failure(&folder, &error);
        }
    }
}

/// Whether `error` may come from files still being written (and so is worth another try once
/// they settle), rather than from what the files say once complete.
fn is_transient(error: &Error) -> bool {
    match error {
        Error::UpgradeRefused { source, .. } => is_transient(source),
        Error::Io { .. }
        | Error::MissingManifest { .. }
        | Error::InvalidManifest { .. }
        | Error::InvalidLibrary { .. }
        | Error::ManifestMismatch { .. }
        | Error::Package { .. } => true,
        _ => false,
    }
}

/// For `base/<name>.config.json`, the configuration of a plugin loaded from a package (or a
/// bare library) beside it: that package, whose sync then reconfigures the plugin. With no
/// such plugin loaded (its load may have failed on this very file), every package beside it:
/// a sync loads the one that was not loaded and leaves the others unchanged.
fn package_configured(manager: &Manager, changed: &Path) -> Option<Vec<PathBuf>> {
    let file = changed.file_name()?.to_str()?;
    let name = file.strip_suffix(".config.json")?;
    if let Ok((spec, _)) = manager.get_plugin(name) {
        return (spec.config_path() == changed).then(|| vec![spec.origin.clone()]);
    }
    let beside = std::fs::read_dir(changed.parent()?).ok()?;
    Some(
        beside
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| source::is_package(path))
            .collect(),
    )
}

/// The plugin folder (`base/<name>`) a changed path belongs to; `None` for the base
/// directory itself and for hidden folders (such as the runtime directory).
fn plugin_folder(base: &Path, changed: &Path) -> Option<PathBuf> {
    let relative = changed.strip_prefix(base).ok().or_else(|| {
        let canonical = base.canonicalize().ok()?;
        changed.strip_prefix(canonical).ok()
    })?;
    match relative.components().next()? {
        Component::Normal(name) if !name.to_string_lossy().starts_with('.') => {
            Some(base.join(name))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::plugin_folder;
    use std::path::{Path, PathBuf};

    #[test]
    fn changes_map_to_their_plugin_folder() {
        let base = Path::new("/srv/plugins");
        assert_eq!(
            plugin_folder(base, Path::new("/srv/plugins/sample/libsample.so")),
            Some(PathBuf::from("/srv/plugins/sample"))
        );
        assert_eq!(
            plugin_folder(base, Path::new("/srv/plugins/sample")),
            Some(PathBuf::from("/srv/plugins/sample"))
        );
        assert_eq!(plugin_folder(base, Path::new("/srv/plugins")), None);
        assert_eq!(
            plugin_folder(base, Path::new("/srv/plugins/.gp-runtime/x.so")),
            None
        );
        assert_eq!(plugin_folder(base, Path::new("/elsewhere/x")), None);
    }
}
