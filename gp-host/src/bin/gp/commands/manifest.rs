//! `gp manifest`: print (or write) the plugin.json of a plugin library, read without loading it.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::failure::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin library (.so)
    library: PathBuf,
    /// Write it to this file instead of standard output
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let json = gp_host::inspect(&args.library)?
        .plugin_json()
        .to_json_pretty();
    match args.output {
        Some(path) => {
            super::shared::parent_created(&path)?;
            gp_host::build::write_atomically(&path, |tmp| std::fs::write(tmp, &json))?;
        }
        None => out!("{json}")?,
    }
    Ok(ExitCode::SUCCESS)
}
