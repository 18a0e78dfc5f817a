//! Building `remote_git` plugins: clone, check out, build, and cache the result by commit.
//!
//! `source.path` is `URL` or `URL#REVISION` (a branch, tag or commit; the remote's default
//! branch when absent). The repository is cloned once per URL under the cache directory and
//! fetched on every load unless the revision is a full commit hash already present (a branch
//! or tag may have moved); each commit is built once: its plugin folder is kept under
//! `builds/<commit>/`. One working tree per URL: two processes sharing a runtime directory
//! should not build the same repository at the same time.
//!
//! Git runs as the `git` command, not a library: no C library to build (libgit2 needs
//! OpenSSL and CMake), no large pure-Rust implementation to compile (gix), and clones use the
//! user's own credentials, SSH configuration and proxies as they already work in a terminal.
//!
//! Building a repository runs its build scripts and its code with the host's rights: pin a
//! commit for anything you do not control.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::build::{cargo_build, install_library, BuildOptions};
use crate::error::Error;
use crate::folder::{self, Folder, MANIFEST_FILE};
use crate::util::hex;

/// A `remote_git` source: the repository and the revision to build.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GitSource {
    url: String,
    revision: Option<String>,
}

impl GitSource {
    /// `URL` or `URL#REVISION`.
    fn parse(path: &str) -> GitSource {
        match path.rsplit_once('#') {
            Some((url, revision)) if !revision.is_empty() => GitSource {
                url: url.to_owned(),
                revision: Some(revision.to_owned()),
            },
            _ => GitSource {
                url: path.trim_end_matches('#').to_owned(),
                revision: None,
            },
        }
    }
}

/// The plugin folder a `remote_git` `plugin.json` (at `manifest_path`, in the folder `dir`)
/// asks for: its repository built into `cache` (or found there), read as a folder whose
/// `plugin.json` is the one that asked, since that is what its library must match.
pub(crate) fn read_built(
    dir: &Path,
    repository: &str,
    manifest_path: &Path,
    cache: &Path,
    options: &BuildOptions,
) -> Result<Folder, Error> {
    let built = build(&GitSource::parse(repository), cache, options)?;
    let mut folder = folder::read(&built)?;
    let text = std::fs::read_to_string(manifest_path).map_err(|e| Error::io(manifest_path, e))?;
    folder.manifest = folder::read_manifest(manifest_path, &text)?;
    folder.manifest_path = manifest_path.to_owned();
    folder.origin = dir.to_owned();
    Ok(folder)
}

/// Builds the plugin `source` names (or finds it built) and returns its plugin folder.
fn build(source: &GitSource, cache: &Path, options: &BuildOptions) -> Result<PathBuf, Error> {
    let key = hex(&Sha256::digest(source.url.as_bytes())[..8]);
    let root = cache.join(key);
    let repo = root.join("repo");
    let commit = fetch(source, &root, &repo)?;
    let built = root.join("builds").join(&commit);
    if let Some(folder) = plugin_folder_in(&built) {
        tracing::debug!(target: "gp", repository = source.url, commit, "already built");
        return Ok(folder);
    }
    git(
        &repo,
        &["checkout", "--quiet", "--force", "--detach", &commit],
    )
    .map_err(|e| git_error(source, format!("cannot check out {commit}"), e))?;
    tracing::info!(target: "gp", repository = source.url, commit, "building plugin from git");
    let options = BuildOptions {
        target_dir: Some(
            options
                .target_dir
                .clone()
                .unwrap_or_else(|| root.join("target")),
        ),
        ..options.clone()
    };
    // Name what was built, not the cache folder it was built in.
    let what = PathBuf::from(format!("{}@{commit}", source.url));
    let libraries = cargo_build(&repo.join("Cargo.toml"), &[], &options).map_err(|e| match e {
        Error::Build {
            reason,
            source: cause,
            ..
        } => Error::Build {
            path: what.clone(),
            reason,
            source: cause,
        },
        other => other,
    })?;
    let library = the_plugin(&libraries, &what)?;
    // Lay the folder out beside, then rename it into place: a half-written build is never
    // taken for a finished one.
    let staging = root.join("builds").join(format!(".{commit}.partial"));
    let _ = std::fs::remove_dir_all(&staging);
    install_library(library, &staging)?;
    if let Some(parent) = built.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::rename(&staging, &built).map_err(|e| Error::io(&built, e))?;
    plugin_folder_in(&built).ok_or_else(|| Error::MissingManifest { path: built })
}

/// Clones the repository into `repo` (once) and fetches it unless the revision is a commit
/// that is here already; returns the commit to build.
fn fetch(source: &GitSource, root: &Path, repo: &Path) -> Result<String, Error> {
    if !repo.join(".git").exists() {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let _ = std::fs::remove_dir_all(repo);
        git(
            root,
            &[
                "clone",
                "--quiet",
                "--no-checkout",
                "--",
                &source.url,
                "repo",
            ],
        )
        .map_err(|e| git_error(source, "cannot clone it".into(), e))?;
    }
    // A full commit hash that is here already cannot have moved; a branch or tag may have.
    let pinned = source
        .revision
        .as_deref()
        .filter(|r| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|r| resolve(repo, Some(r)));
    if let Some(commit) = pinned {
        return Ok(commit);
    }
    git(
        repo,
        &[
            "fetch",
            "--quiet",
            "--force",
            "--tags",
            "origin",
            "+refs/heads/*:refs/remotes/origin/*",
        ],
    )
    .map_err(|e| git_error(source, "cannot fetch it".into(), e))?;
    resolve(repo, source.revision.as_deref()).ok_or_else(|| Error::Git {
        repository: source.url.clone(),
        reason: match &source.revision {
            Some(revision) => format!(
                "revision `{revision}` is not in the repository (not a branch, tag or commit)"
            ),
            None => "it has no default branch to build".into(),
        },
        source: None,
    })
}

/// What a git command said (or why it could not run) after `what`, its cause kept.
fn git_error(source: &GitSource, what: String, e: GitFailure) -> Error {
    Error::Git {
        repository: source.url.clone(),
        reason: format!("{what}: {}", e.message),
        source: e.not_run,
    }
}

/// The one library a plugin repository builds, checked as a file to be a gp plugin.
fn the_plugin<'a>(libraries: &'a [PathBuf], what: &Path) -> Result<&'a PathBuf, Error> {
    let not_a_plugin = |reason: String| Error::NotAPlugin {
        path: what.to_owned(),
        reason,
    };
    let library = match libraries {
        [] => {
            return Err(not_a_plugin(
                "it builds no cdylib: a gp plugin crate has `[lib] crate-type = [\"cdylib\"]` and a #[plugin_entry] function".into(),
            ))
        }
        [library] => library,
        more => {
            return Err(not_a_plugin(format!(
                "it builds {} cdylibs; a plugin repository builds one",
                more.len()
            )))
        }
    };
    crate::library::inspect(library).map_err(|e| match e {
        Error::NotAPlugin { reason, .. } => not_a_plugin(reason),
        other => other,
    })?;
    Ok(library)
}

/// The commit `revision` (or the default branch) names in `repo`, if it is there.
fn resolve(repo: &Path, revision: Option<&str>) -> Option<String> {
    let candidates = match revision {
        Some(revision) => vec![
            format!("origin/{revision}^{{commit}}"),
            format!("{revision}^{{commit}}"),
        ],
        None => vec!["origin/HEAD^{commit}".to_owned()],
    };
    candidates.iter().find_map(|candidate| {
        git(
            repo,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                candidate,
            ],
        )
        .ok()
        .map(|out| out.trim().to_owned())
        .filter(|commit| !commit.is_empty())
    })
}

/// The one plugin folder under `dir` (`dir/<name>/plugin.json`), if any.
fn plugin_folder_in(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join(MANIFEST_FILE).is_file())
}

/// Why a git command failed: what it said, or that it could not run (and why).
struct GitFailure {
    message: String,
    not_run: Option<std::io::Error>,
}

/// Runs `git args` in `dir`; its standard output, or why it failed.
fn git(dir: &Path, args: &[&str]) -> Result<String, GitFailure> {
    let mut command = Command::new("git");
    command
        .args(args)
        .current_dir(dir)
        // Never wait for a password: a host has nobody to type it.
        .env("GIT_TERMINAL_PROMPT", "0");
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        command.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    let output = command.output().map_err(|e| GitFailure {
        message: format!("cannot run git ({e}); install git"),
        not_run: Some(e),
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr.trim();
        Err(GitFailure {
            message: if message.is_empty() {
                format!("git {} exited with {}", args[0], output.status)
            } else {
                message.to_owned()
            },
            not_run: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::GitSource;

    #[test]
    fn a_revision_follows_the_last_hash() {
        assert_eq!(
            GitSource::parse("https://example.com/p.git#v1.2.0"),
            GitSource {
                url: "https://example.com/p.git".into(),
                revision: Some("v1.2.0".into())
            }
        );
        assert_eq!(
            GitSource::parse("/srv/repo"),
            GitSource {
                url: "/srv/repo".into(),
                revision: None
            }
        );
    }
}
