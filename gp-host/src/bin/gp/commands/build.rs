//! `gp build`: build a plugin crate with cargo and write a plugin folder (or, with --pack or
//! --sign, a .plg package) into OUT.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::failure::Failure;
use gp_host::build::BuildOptions;
use gp_host::package::SecretKey;
use gp_host::Error;

use super::shared::{pack_folder, package_file_name, print_packed};

#[derive(clap::Args)]
pub struct Args {
    /// The plugin crate (its folder or Cargo.toml)
    #[arg(default_value = ".", value_name = "CRATE")]
    krate: PathBuf,
    /// Where to write the plugin folder or package
    #[arg(short, long, default_value = "plugins")]
    out: PathBuf,
    /// Write a .plg package instead of a plugin folder
    #[arg(long)]
    pack: bool,
    /// Sign the package with this secret key file (from `gp keygen`); implies --pack
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
    /// Build without --release
    #[arg(long)]
    debug: bool,
}

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let (krate, out) = (args.krate.as_path(), args.out.as_path());
    let key = args.sign.as_deref().map(SecretKey::read).transpose()?;
    let options = BuildOptions {
        release: !args.debug,
        target_dir: None,
        quiet: false,
    };
    if !(args.pack || args.sign.is_some()) {
        for info in gp_host::build::build_plugin(krate, out, &options)? {
            let folder = info.path.parent().unwrap_or(out);
            outln!(
                "built {} {} -> {}",
                info.manifest.name,
                info.manifest.version,
                folder.display()
            )?;
            remove_packages_of(out, &info.manifest.name, folder)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let scratch = tempfile::tempdir().map_err(|e| Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    for info in gp_host::build::build_plugin(krate, scratch.path(), &options)? {
        let name = &info.manifest.name;
        std::fs::create_dir_all(out).map_err(|e| Error::Io {
            path: out.to_owned(),
            source: e,
        })?;
        let output = out.join(package_file_name(&info.manifest));
        let packed = pack_folder(&scratch.path().join(name), Some(output), key.as_ref())?;
        print_packed(&packed)?;
        // A base directory holding both the folder an earlier `gp build` wrote and this
        // package would hold plugin `name` twice, and a manager loads only one of them.
        let folder = out.join(name);
        if declares(&folder, name) {
            std::fs::remove_dir_all(&folder).map_err(|e| Error::Io {
                path: folder.clone(),
                source: e,
            })?;
            eprintln!(
                "removed {}/ (plugin {name}, from an earlier `gp build`): the package {} replaces it, and a base directory holding both would load plugin {name} twice",
                folder.display(),
                packed.path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `folder` is a plugin folder whose plugin.json declares plugin `name`.
fn declares(folder: &std::path::Path, name: &str) -> bool {
    std::fs::read_to_string(folder.join(gp_host::MANIFEST_FILE))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|json| json.get("name").and_then(|n| n.as_str()) == Some(name))
}

/// Removes the packages `<name>-<version>.plg` an earlier `gp build --pack` wrote into `out`:
/// the folder just built replaces them, and a base directory holding both would load plugin
/// `name` twice.
fn remove_packages_of(
    out: &std::path::Path,
    name: &str,
    folder: &std::path::Path,
) -> Result<(), Failure> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    let mut packages: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|e| e == gp_host::package::EXTENSION)
                && p.file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.strip_prefix(name))
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    packages.sort();
    for package in packages {
        std::fs::remove_file(&package).map_err(|e| Error::Io {
            path: package.clone(),
            source: e,
        })?;
        eprintln!(
            "removed {} (plugin {name}, from an earlier `gp build --pack`): the folder {}/ replaces it, and a base directory holding both would load plugin {name} twice",
            package.display(),
            folder.display()
        );
    }
    Ok(())
}
