//! `gp list`: load every plugin folder of a base directory and report each one's status.

use std::path::PathBuf;
use std::process::ExitCode;

use gp_host::{Error, Manager};

#[derive(clap::Args)]
pub struct Args {
    /// The plugin base directory
    dir: PathBuf,
}

pub fn exec(args: Args) -> Result<ExitCode, Error> {
    let report = Manager::new(args.dir).load_plugins();
    print!("{report}");
    if !report.is_ok() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
