//! Building plugin crates with cargo and laying out plugin folders.
//!
//! This is how the example host and the test suite get real plugins from source; the `gp
//! build` command and `remote_git` sources build on it. Below the sources: it knows cargo and
//! the plugin folder layout, not where a crate came from.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::Error;
use crate::folder::MANIFEST_FILE;
use crate::library::{self, LibraryInfo};

pub use crate::util::write_atomically;

/// How to run cargo.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Build with `--release`.
    pub release: bool,
    /// Cargo's `--target-dir`; cargo's default when `None`.
    pub target_dir: Option<PathBuf>,
    /// Capture cargo's progress output instead of showing it (it is included in the error if
    /// the build fails).
    pub quiet: bool,
}

/// Builds the packages `packages` (all default members when empty) of the cargo project whose
/// manifest is `manifest_path`, and returns the path of every `cdylib` built.
pub fn cargo_build(
    manifest_path: &Path,
    packages: &[&str],
    options: &BuildOptions,
) -> Result<Vec<PathBuf>, Error> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(manifest_path);
    for package in packages {
        command.args(["-p", package]);
    }
    if options.release {
        command.arg("--release");
    }
    if let Some(dir) = &options.target_dir {
        command.arg("--target-dir").arg(dir);
    }
    command.stdout(Stdio::piped()).stderr(if options.quiet {
        Stdio::piped()
    } else {
        Stdio::inherit()
    });
    let fail = |reason: String| Error::Build {
        path: manifest_path.to_owned(),
        reason,
        source: None,
    };
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("cannot run cargo: {e}")))?;
    // Drain stderr on a thread so neither pipe can fill up and stall cargo.
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_string(&mut stdout);
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("cannot run cargo: {e}")))?;
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();

    let mut libraries = Vec::new();
    let mut diagnostics = Vec::new();
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match message["reason"].as_str() {
            Some("compiler-artifact") => {
                let is_cdylib = message["target"]["crate_types"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
                if !is_cdylib {
                    continue;
                }
                let files = message["filenames"].as_array().into_iter().flatten();
                libraries.extend(
                    files
                        .filter_map(|f| f.as_str())
                        .filter(|f| f.ends_with(std::env::consts::DLL_SUFFIX))
                        .map(PathBuf::from),
                );
            }
            Some("compiler-message") => {
                if let Some(rendered) = message["message"]["rendered"].as_str() {
                    diagnostics.push(rendered.to_owned());
                }
            }
            _ => {}
        }
    }
    if !status.success() {
        let mut message = diagnostics.join("");
        if message.is_empty() {
            message = stderr.trim().to_owned();
        }
        return Err(fail(format!("cargo build exited with {status}\n{message}")));
    }
    Ok(libraries)
}

/// Installs a built plugin library into `base_dir`: `base_dir/<name>/<library file>` plus the
/// `plugin.json` generated from the library's embedded manifest. The library is written to a
/// temporary file and renamed into place, so a running host never sees a half-written one.
pub fn install_library(library: &Path, base_dir: &Path) -> Result<LibraryInfo, Error> {
    let info = library::inspect(library)?;
    let dir = base_dir.join(&info.manifest.name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let file_name = library.file_name().ok_or_else(|| Error::InvalidLibrary {
        path: library.to_owned(),
        reason: "the path has no file name".into(),
    })?;
    write_atomically(&dir.join(file_name), |tmp| {
        std::fs::copy(library, tmp).map(drop)
    })?;
    let json = info.plugin_json().to_json_pretty();
    write_atomically(&dir.join(MANIFEST_FILE), |tmp| std::fs::write(tmp, &json))?;
    Ok(LibraryInfo {
        path: dir.join(file_name),
        ..info
    })
}

/// Builds the plugin crate at `crate_dir` (`cargo build`, release unless `options` says
/// otherwise) and installs every gp plugin it produces into `out_dir` as
/// `out_dir/<name>/plugin.json` + library, ready for a plugin base directory.
///
/// A crate that builds no cdylib, or whose cdylib is not a gp plugin, is an error that says
/// what the crate is missing.
pub fn build_plugin(
    crate_dir: &Path,
    out_dir: &Path,
    options: &BuildOptions,
) -> Result<Vec<LibraryInfo>, Error> {
    let manifest = if crate_dir.is_file() {
        crate_dir.to_owned()
    } else {
        crate_dir.join("Cargo.toml")
    };
    if !manifest.is_file() {
        return Err(Error::Build {
            path: crate_dir.to_owned(),
            reason: "no Cargo.toml here: point at a plugin crate (`gp new NAME` makes one)".into(),
            source: None,
        });
    }
    let libraries = cargo_build(&manifest, &[], options)?;
    if libraries.is_empty() {
        return Err(Error::NotAPlugin {
            path: manifest,
            reason: "the crate builds no cdylib: add `[lib] crate-type = [\"cdylib\"]` to its Cargo.toml".into(),
        });
    }
    let mut installed = Vec::new();
    let mut refused = None;
    for library in &libraries {
        match library::inspect(library) {
            Ok(_) => installed.push(install_library(library, out_dir)?),
            Err(error) => refused = Some(error),
        }
    }
    match (installed.is_empty(), refused) {
        (true, Some(error)) => Err(error),
        _ => Ok(installed),
    }
}
