//! Helpers more than one subcommand uses: `--public-key` trust, packing a plugin folder, and
//! the address `gp serve` and `gp stats` meet on.

use std::path::{Path, PathBuf};

use crate::failure::Failure;
use gp_host::package::{self, Packed, PublicKey, SecretKey, Trust};
use gp_host::Error;

/// Where `gp serve` serves metrics and `gp stats` reads them, and where it serves plugin
/// routes, by default: `ServeConfig`'s.
pub use gp_host::http::{DEFAULT_ADMIN, DEFAULT_LISTEN};

/// The local plugin repository (the seed's `$GO_PLUG_HOME`): `$GP_HOME` if set, else `gp` in
/// the platform's data directory (`~/.local/share/gp` on Linux). Its `plugins` folder is the
/// base directory of `gp install`, `gp list`, `gp call` and `gp serve` when none is given.
pub fn gp_home() -> PathBuf {
    match std::env::var_os("GP_HOME").filter(|home| !home.is_empty()) {
        Some(home) => PathBuf::from(home),
        None => dirs::data_dir().map_or_else(|| PathBuf::from(".gp"), |data| data.join("gp")),
    }
}

/// A command's base directory: `dir` if given, else `$GP_HOME/plugins`. With the default
/// missing, says so (with what to do) and gives `Err` (the command exits 1).
pub fn base_dir_or_home(dir: Option<PathBuf>) -> Result<PathBuf, std::process::ExitCode> {
    if let Some(dir) = dir {
        return Ok(dir);
    }
    let dir = gp_home().join("plugins");
    if dir.is_dir() {
        return Ok(dir);
    }
    eprintln!(
        "error: no plugin is installed in {} (the plugins of GP_HOME, {}): install one there with `gp install URL|FILE`, or give a plugin base directory",
        dir.display(),
        gp_home().display()
    );
    Err(std::process::ExitCode::FAILURE)
}

/// Why `path`, a file, cannot be a base directory, with what to give instead: for a plugin's
/// library, the folder that holds its plugin folder (in `retry`, `{}` stands for it) and `gp
/// inspect` for the library itself. `None` if `path` is not a file.
pub fn file_not_base_dir(path: &Path, retry: &str) -> Option<String> {
    if !path.is_file() {
        return None;
    }
    let shown = path.display();
    let parent = |p: &Path| match p.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => Some(parent.to_owned()),
        _ => None,
    };
    let is_library = path
        .extension()
        .is_some_and(|e| e == "so" || e == "dylib" || e == "dll");
    if is_library {
        let base = parent(path)
            .and_then(|folder| parent(&folder))
            .unwrap_or_else(|| PathBuf::from(".."));
        return Some(format!(
            "{shown} is a plugin library, not a base directory: give the directory that holds the plugin's folder, `{}`; to check the library itself, `gp inspect {shown}`",
            retry.replace("{}", &base.display().to_string())
        ));
    }
    if path.extension().is_some_and(|e| e == package::EXTENSION) {
        let base = parent(path).unwrap_or_else(|| PathBuf::from("."));
        return Some(format!(
            "{shown} is a package, not a base directory: give the directory that holds it, `{}`; to check the package itself, `gp verify {shown}`",
            retry.replace("{}", &base.display().to_string())
        ));
    }
    Some(format!(
        "{shown} is a file, not a plugin base directory (a directory of plugin folders and .plg packages)"
    ))
}

/// `--public-key` arguments: if there are any, a signature by one of them is required.
pub fn required_signers(keys: &[String]) -> Result<Option<Trust>, Failure> {
    let keys = keys
        .iter()
        .map(|k| PublicKey::from_text_or_file(k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!keys.is_empty()).then(|| Trust::signed_by(keys)))
}

/// The file name `gp pack` and `gp build --pack` give a package: `<name>-<version>.plg`.
pub fn package_file_name(manifest: &gp_host::Manifest) -> String {
    format!("{}-{}.plg", manifest.name, manifest.version)
}

/// Packs `folder` into `output`, or into `<name>-<version>.plg` in the current directory
/// (the name and version from its plugin.json, which `pack` checks against the library).
pub fn pack_folder(
    folder: &Path,
    output: Option<PathBuf>,
    key: Option<&SecretKey>,
) -> Result<Packed, Failure> {
    let output = match output {
        Some(output) => output,
        None => {
            let path = folder.join(gp_host::MANIFEST_FILE);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
            let manifest = gp_host::Manifest::from_plugin_json(&text)
                .map_err(|source| Error::InvalidManifest { path, source })?;
            PathBuf::from(package_file_name(&manifest))
        }
    };
    parent_created(&output)?;
    Ok(package::pack(folder, &output, key)?)
}

/// Creates the folder `path` is to be written into, if it is missing (`gp keygen keys/k1`,
/// `gp pack -o pkgs/x.plg`): a command given a path to write makes its way there.
pub fn parent_created(path: &Path) -> Result<(), Failure> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|e| {
                Failure::from(Error::Io {
                    path: parent.to_owned(),
                    source: e,
                })
            })
        }
        _ => Ok(()),
    }
}

/// What `gp pack` and `gp build --pack` print about a package they wrote.
pub fn print_packed(packed: &Packed) -> Result<(), Failure> {
    outln!(
        "packed {} {} -> {}",
        packed.manifest.name,
        packed.manifest.version,
        packed.path.display()
    )?;
    outln!("sha256 {}", packed.sha256)?;
    match &packed.signed_by {
        Some(key) => outln!("signed by {key}")?,
        None => outln!("not signed")?,
    }
    Ok(())
}

/// The error for a file or folder a command will not overwrite.
pub fn already_exists(path: PathBuf, advice: &str) -> Failure {
    Failure::unusable(path.display(), format!("already exists; {advice}"))
}

/// What is wrong with `dir` as a plugin base directory, one message each: it is itself a plugin
/// folder (it holds a plugin.json), or it holds libraries directly instead of in folders.
pub fn base_dir_mistakes(dir: &Path) -> Vec<String> {
    let mut mistakes = Vec::new();
    if dir.join(gp_host::MANIFEST_FILE).is_file() {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
            _ => ".".to_owned(),
        };
        mistakes.push(format!(
            "{} holds a plugin.json: it is a plugin folder, not a base directory; give its parent, {parent}, as the base directory",
            dir.display()
        ));
        return mistakes;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return mistakes;
    };
    let mut libraries: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|e| e == "so" || e == "dylib" || e == "dll")
        })
        .collect();
    libraries.sort();
    for library in libraries {
        let file = library.file_name().unwrap_or_default().to_string_lossy();
        let stem = library.file_stem().unwrap_or_default().to_string_lossy();
        let name = stem.strip_prefix("lib").unwrap_or(&stem);
        let folder = dir.join(name);
        mistakes.push(format!(
            "{} is a library directly in the base directory {}, where only plugin folders and .plg packages are loaded: put it in a folder of its own with a plugin.json (mkdir {f} && mv {} {f}/ && gp manifest {f}/{file} -o {f}/plugin.json)",
            library.display(),
            dir.display(),
            library.display(),
            f = folder.display(),
        ));
    }
    mistakes
}

/// Says, once, that packages were loaded from `specs` without their signatures being checked
/// (when no `--public-key` was given).
pub fn warn_unchecked_packages<'a>(specs: impl IntoIterator<Item = &'a gp_host::Spec>) {
    let packages: Vec<String> = specs
        .into_iter()
        .filter(|s| {
            s.origin
                .extension()
                .is_some_and(|e| e == package::EXTENSION)
        })
        .map(|s| s.origin.display().to_string())
        .collect();
    if !packages.is_empty() {
        crate::log::warning(format_args!(
            "packages loaded without signature checks (no --public-key given): {}; pass --public-key KEY to load only packages signed by that key",
            packages.join(", ")
        ));
    }
}
