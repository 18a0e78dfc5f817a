//! `gp inspect`: load a plugin library after a host's checks and show its manifest and ABI.

use std::path::PathBuf;
use std::process::ExitCode;

use gp_host::Error;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin library (.so)
    library: PathBuf,
}

pub fn exec(args: Args) -> Result<ExitCode, Error> {
    let info = gp_host::verify(&args.library)?;
    print!("{info}");
    println!("status:      loadable");
    Ok(ExitCode::SUCCESS)
}
