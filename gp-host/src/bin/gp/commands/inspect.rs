//! `gp inspect`: show a plugin library's manifest and ABI after a host's checks, which load
//! the library into this process (or, with `--no-load`, only what the file says).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::failure::Failure;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin library (.so)
    library: PathBuf,
    /// Read the file only, without loading it: nothing in the library runs, and the layout of
    /// the types it shares with the host is not checked
    #[arg(long)]
    no_load: bool,
}

pub fn exec(mut args: Args) -> Result<ExitCode, Failure> {
    // A bare file name means the file here, not a search of the library path.
    if args.library.parent() == Some(std::path::Path::new("")) {
        args.library = std::path::Path::new(".").join(&args.library);
    }
    if args.no_load {
        let info = gp_host::inspect(&args.library)?;
        out!("{info}")?;
        outln!(
            "status:      read from the file, not loaded: the type layout was not checked (run without --no-load to check it)"
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    // Loading runs the library's initialisers and abi_stable's root-module constructor.
    let info = gp_host::verify(&args.library)?;
    out!("{info}")?;
    outln!("status:      loadable")?;
    Ok(ExitCode::SUCCESS)
}
