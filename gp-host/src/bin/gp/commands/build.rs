//! `gp build`: build a plugin crate with cargo and write a plugin folder (or, with --pack or
//! --sign, a .plg package) into OUT.

use std::path::PathBuf;
use std::process::ExitCode;

use gp_host::build::BuildOptions;
use gp_host::package::SecretKey;
use gp_host::Error;

use super::shared::{pack_folder, package_file_name, print_packed};

#[derive(clap::Args)]
pub struct Args {
    /// The plugin crate (its folder or Cargo.toml)
    #[arg(default_value = ".")]
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

pub fn exec(args: Args) -> Result<ExitCode, Error> {
    let (krate, out) = (args.krate.as_path(), args.out.as_path());
    let key = args.sign.as_deref().map(SecretKey::read).transpose()?;
    let options = BuildOptions {
        release: !args.debug,
        target_dir: None,
        quiet: false,
    };
    if !(args.pack || args.sign.is_some()) {
        for info in gp_host::build::build_plugin(krate, out, &options)? {
            println!(
                "built {} {} -> {}",
                info.manifest.name,
                info.manifest.version,
                info.path.parent().unwrap_or(out).display()
            );
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
        print_packed(&packed);
    }
    Ok(ExitCode::SUCCESS)
}
