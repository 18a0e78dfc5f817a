//! Collecting what a manager's runtime directory accumulates: unpacked packages
//! (`packages/<sha>/`), `remote_git` builds (`git/<url>/builds/<commit>/`), private library
//! copies left by a process that died while loading, scratch folders of interrupted unpacks
//! and builds, and what interrupted downloads, pulls and uploads left in `tmp/`.
//!
//! What a loaded version of this manager lives in is never removed. Of the rest, the newest
//! [`GcOptions::keep`] unpacked packages and builds of each plugin stay (a reload or a rollback
//! finds them at hand), and nothing younger than [`GcOptions::min_age`] is touched (another
//! process sharing the runtime directory may be unpacking or loading it), except what is
//! named for a process that is gone (`util::scratch`): the files in `tmp/`, isolated
//! versions' private copies (`…-isolated-<pid>-<n>.so`) and half-written files
//! (`….tmp-<pid>`) go at once. What is in `tmp/` for a process still running stays, however
//! old. Symbolic links are never followed, and never removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use crate::error::Error;
use crate::folder::MANIFEST_FILE;
use crate::manager::{Inner, Manager};
use crate::runtime::loaded::isolated_copy_owner;
use crate::runtime::spec::Spec;
use crate::source;
use crate::util::scratch;
use crate::util::{lock, sha256_hex};

/// When and what a manager collects in its runtime directory. See [`Manager::gc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOptions {
    /// Unpacked packages and `remote_git` builds kept per plugin beyond the ones in use
    /// (default 2).
    pub keep: usize,
    /// Nothing younger than this is removed (default 10 minutes).
    pub min_age: Duration,
    /// How often a manager collects on its own, besides after each load and upgrade from a
    /// package or a git build (default every 10 minutes; `None`: only then).
    pub interval: Option<Duration>,
}

impl Default for GcOptions {
    fn default() -> GcOptions {
        GcOptions {
            keep: 2,
            min_age: Duration::from_secs(600),
            interval: Some(Duration::from_secs(600)),
        }
    }
}

/// What [`Manager::gc`] removed, or would remove.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// The files and folders removed (or, for a dry run, that would be).
    pub removed: Vec<PathBuf>,
    /// Their size in bytes.
    pub bytes: u64,
    /// What was left alone because it could not be examined or removed, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Whether [`Manager::gc`] removes what it finds or only reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcMode {
    /// Remove what is not in use (and report it).
    Remove,
    /// Report what would be removed, removing nothing (`gp gc --dry-run`).
    DryRun,
}

/// Whether a collection counts the base directory's packages as in use (hashing each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BasePackages {
    /// Counted: what their next load would unpack again is kept (`gp gc`, `Manager::gc`).
    InUse,
    /// Not read (the collections a manager runs on its own, after loads and on a timer).
    NotCounted,
}

impl Manager {
    /// Removes what the runtime directory holds and no loaded version uses (see the module
    /// documentation of `manager::gc` in the repository: in use, kept per plugin, too young,
    /// symbolic links: all left alone). [`GcMode::DryRun`] reports without removing.
    ///
    /// A manager built with [`ManagerBuilder::gc`](crate::ManagerBuilder::gc) on (the
    /// default) runs this after each load and upgrade from a package or a git build, and on
    /// a timer.
    ///
    /// The packages in the base directory count as in use too, whether loaded or not (each is
    /// read and hashed to find its folder), so that an operator's `gp gc DIR`, which loads
    /// nothing, keeps what the next load of DIR would unpack again.
    pub fn gc(&self, mode: GcMode) -> Result<GcReport, Error> {
        self.collect(mode, BasePackages::InUse)
    }

    fn collect(&self, mode: GcMode, packages: BasePackages) -> Result<GcReport, Error> {
        let dry_run = mode == GcMode::DryRun;
        let options = self.inner.config.gc.unwrap_or_default();
        let mut in_use: Vec<PathBuf> = self.list().iter().map(|s| s.dir.clone()).collect();
        if packages == BasePackages::InUse {
            in_use.extend(self.packages_in_base_dir());
        }
        let in_use: BTreeSet<PathBuf> = in_use
            .into_iter()
            .map(|p| p.canonicalize().unwrap_or(p))
            .collect();
        let report = collect(self.runtime_dir(), &in_use, &options, dry_run)?;
        if !report.removed.is_empty() {
            tracing::info!(target: "gp", dir = %self.runtime_dir().display(), removed = report.removed.len(), bytes = report.bytes, dry_run, "runtime directory collected");
        }
        Ok(report)
    }

    /// Collects after loads and upgrades, if the manager collects on its own and one of the
    /// versions now serving lives in the runtime directory (an unpacked package or a git
    /// build): such a change adds there, and may leave a predecessor to collect. A version
    /// loaded from a plain folder adds nothing there; the timer collects what it leaves.
    ///
    /// What a process that is gone left (see the module documentation) is collected then too,
    /// whatever was loaded: so the first load of a new manager, at its start, removes what an
    /// interrupted `gp install` or a killed host left.
    pub(crate) fn gc_after<'a>(&self, serving: impl IntoIterator<Item = &'a Spec>) {
        let adds = serving
            .into_iter()
            .any(|spec| spec.dir.starts_with(self.runtime_dir()));
        if self.inner.config.gc.is_some() && (adds || left_over(self.runtime_dir())) {
            self.collect_logged();
        }
    }

    /// [`gc`](Self::gc) without the base directory's packages, a failure logged.
    fn collect_logged(&self) {
        if let Err(error) = self.collect(GcMode::Remove, BasePackages::NotCounted) {
            tracing::warn!(target: "gp", "collecting the runtime directory: {error}");
        }
    }

    /// The unpacked folders of the packages in the base directory, as a new manager over it
    /// would unpack them: in use for an operator's `gp gc`, which loads nothing.
    fn packages_in_base_dir(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.base_dir()) else {
            return Vec::new();
        };
        let packages = source::packages_dir(self.runtime_dir());
        entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| source::is_package(p))
            .filter_map(|p| std::fs::read(&p).ok())
            .map(|data| source::unpacked_dir(&packages, &sha256_hex(&data)))
            .collect()
    }
}

/// Managers that collect on a timer: the manager, its interval, when it is next due.
type Scheduled = Vec<(Weak<Inner>, Duration, Instant)>;

/// Collects `inner`'s runtime directory every `interval` until the manager is dropped, on
/// one `gp-gc` thread for the whole process (started with the first manager that asks).
pub(crate) fn schedule(inner: Weak<Inner>, interval: Duration) {
    static SCHEDULED: Mutex<Scheduled> = Mutex::new(Vec::new());
    static STARTED: OnceLock<()> = OnceLock::new();
    lock(&SCHEDULED).push((inner, interval, Instant::now() + interval));
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("gp-gc".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = Instant::now();
                let mut due = Vec::new();
                lock(&SCHEDULED)
                    .retain_mut(|(inner, interval, next)| {
                        let Some(inner) = inner.upgrade() else {
                            return false;
                        };
                        if *next <= now {
                            *next = now + *interval;
                            due.push(inner);
                        }
                        true
                    });
                for inner in due {
                    Manager { inner }.collect_logged();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(target: "gp", "cannot start the gp-gc thread ({error}); runtime directories are collected after loads and upgrades of packages and git builds only");
        }
    });
}

/// One thing the runtime directory holds.
struct Candidate {
    path: PathBuf,
    /// The plugin it holds, for [`GcOptions::keep`] (none for copies and scratch folders).
    plugin: Option<String>,
    modified: SystemTime,
    /// Named for a process that is gone: removed whatever its age.
    orphan: bool,
}

/// Whether the top-level entry `name` of a runtime directory is named for a process that is
/// gone: an isolated version's private copy, or a file half-written by `write_atomically`.
fn orphan_at_top(name: &str) -> bool {
    let owner = isolated_copy_owner(name).or_else(|| {
        let (_, pid) = name.rsplit_once(".tmp-")?;
        pid.parse().ok()
    });
    owner.is_some_and(scratch::process_gone)
}

/// Whether `runtime` holds anything named for a process that is gone (a cheap look, for
/// [`Manager::gc_after`]: two directory listings).
fn left_over(runtime: &Path) -> bool {
    let orphans = |dir: &Path, orphan: fn(&str) -> bool| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| orphan(&e.file_name().to_string_lossy()))
        })
    };
    orphans(&scratch::dir(runtime), scratch::owner_gone) || orphans(runtime, orphan_at_top)
}

fn collect(
    runtime: &Path,
    in_use: &BTreeSet<PathBuf>,
    options: &GcOptions,
    dry_run: bool,
) -> Result<GcReport, Error> {
    let mut report = GcReport::default();
    if !runtime.is_dir() {
        return Ok(report);
    }
    let mut candidates = Vec::new();
    // Private copies and scratch folders at the top, unpacked packages, git builds.
    for path in entries(runtime, &mut report) {
        let name = file_name(&path);
        let unfinished = name.starts_with(".tmp") || name.contains(".tmp-");
        let copy = is_library(&path);
        if copy || unfinished {
            let orphan = orphan_at_top(&name);
            candidates.push(candidate(path, None, orphan, &mut report));
        }
    }
    // Interrupted downloads, pulls and uploads.
    for path in entries(&scratch::dir(runtime), &mut report) {
        match scratch::owner(&file_name(&path)) {
            // In use: a download in progress may be older than any minimum age.
            Some(pid) if !scratch::process_gone(pid) => {}
            owner => {
                let orphan = owner.is_some();
                candidates.push(candidate(path, None, orphan, &mut report));
            }
        }
    }
    for path in entries(&source::packages_dir(runtime), &mut report) {
        candidates.push(folder_candidate(path, &mut report));
    }
    for repository in entries(&source::git_dir(runtime), &mut report) {
        for path in entries(&repository.join("builds"), &mut report) {
            candidates.push(folder_candidate(path, &mut report));
        }
    }

    let now = SystemTime::now();
    let mut per_plugin: BTreeMap<String, Vec<&Candidate>> = BTreeMap::new();
    let mut doomed: Vec<&Candidate> = Vec::new();
    for candidate in candidates.iter().flatten() {
        let path = candidate
            .path
            .canonicalize()
            .unwrap_or_else(|_| candidate.path.clone());
        // A version lives in it, or in a folder inside it (a build's plugin folder).
        if in_use.iter().any(|used| used.starts_with(&path)) {
            continue;
        }
        let age = now.duration_since(candidate.modified).unwrap_or_default();
        if age < options.min_age && !candidate.orphan {
            continue;
        }
        match &candidate.plugin {
            Some(plugin) => per_plugin
                .entry(plugin.clone())
                .or_default()
                .push(candidate),
            None => doomed.push(candidate),
        }
    }
    for (_, mut unused) in per_plugin {
        unused.sort_by_key(|c| std::cmp::Reverse(c.modified));
        doomed.extend(unused.into_iter().skip(options.keep));
    }
    doomed.sort_by(|a, b| a.path.cmp(&b.path));
    for candidate in doomed {
        let bytes = size_of(&candidate.path);
        let removed = if dry_run {
            Ok(())
        } else if candidate.path.is_dir() {
            std::fs::remove_dir_all(&candidate.path)
        } else {
            std::fs::remove_file(&candidate.path)
        };
        match removed {
            Ok(()) => {
                report.bytes += bytes;
                report.removed.push(candidate.path.clone());
            }
            Err(e) => report.skipped.push((candidate.path.clone(), e.to_string())),
        }
    }
    Ok(report)
}

/// The entries of `dir` that are not symbolic links (those are reported as skipped).
fn entries(dir: &Path, report: &mut GcReport) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    for entry in read.filter_map(Result::ok) {
        let path = entry.path();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => report
                .skipped
                .push((path, "a symbolic link: never followed or removed".into())),
            Ok(_) => paths.push(path),
            Err(e) => report.skipped.push((path, e.to_string())),
        }
    }
    paths
}

fn candidate(
    path: PathBuf,
    plugin: Option<String>,
    orphan: bool,
    report: &mut GcReport,
) -> Option<Candidate> {
    match std::fs::symlink_metadata(&path).and_then(|m| m.modified()) {
        Ok(modified) => Some(Candidate {
            path,
            plugin,
            modified,
            orphan,
        }),
        Err(e) => {
            report.skipped.push((path, e.to_string()));
            None
        }
    }
}

/// An unpacked package or a build: a plugin folder (`<dir>/plugin.json`, or for a build
/// `<dir>/<name>/plugin.json`), grouped by the plugin it holds. Partial folders belong to
/// no plugin.
fn folder_candidate(path: PathBuf, report: &mut GcReport) -> Option<Candidate> {
    let plugin = plugin_in(&path).or_else(|| {
        std::fs::read_dir(&path)
            .ok()?
            .filter_map(Result::ok)
            .find_map(|e| plugin_in(&e.path()))
    });
    candidate(path, plugin, false, report)
}

fn plugin_in(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("name")?.as_str().map(str::to_owned)
}

fn is_library(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The bytes under `path`, not following symbolic links.
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| size_of(&e.path()))
                    .sum()
            })
            .unwrap_or(0)
    } else {
        meta.len()
    }
}
