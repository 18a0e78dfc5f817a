//! `gp pack`: pack a plugin folder, or build and pack a plugin crate, into a .plg package
//! (tar.gz with a SHA-256 checksum list), optionally signed.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::failure::Failure;
use gp_host::build::BuildOptions;
use gp_host::package::SecretKey;
use gp_host::Error;

use super::shared::{pack_folder, print_packed};

#[derive(clap::Args)]
pub struct Args {
    /// A plugin folder, or a plugin crate (a folder with Cargo.toml)
    path: PathBuf,
    /// The package to write (default: <name>-<version>.plg in the current directory)
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Sign it with this secret key file (from `gp keygen`)
    #[arg(long, value_name = "KEY")]
    sign: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let Args { path, output, sign } = args;
    let key = sign.as_deref().map(SecretKey::read).transpose()?;
    let scratch = tempfile::tempdir().map_err(|e| Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let folder = if path.join(gp_host::MANIFEST_FILE).is_file() {
        path
    } else {
        let built = gp_host::build::build_plugin(
            &path,
            scratch.path(),
            &BuildOptions {
                release: true,
                ..BuildOptions::default()
            },
        )?;
        scratch.path().join(&built[0].manifest.name)
    };
    let packed = pack_folder(&folder, output, key.as_ref())?;
    print_packed(&packed)?;
    Ok(ExitCode::SUCCESS)
}
