//! `gp list`: load every plugin folder of a base directory and report each one's status.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::failure::Failure;
use gp_host::Manager;

use super::shared::{base_dir_mistakes, required_signers, warn_unchecked_packages};

#[derive(clap::Args)]
pub struct Args {
    /// The plugin base directory (default: $GP_HOME/plugins)
    dir: Option<PathBuf>,
    /// Load only packages signed by this public key (base64, or a .pub file); repeatable
    #[arg(long = "public-key", value_name = "KEY")]
    public_keys: Vec<String>,
    /// Load new builds straight into this process, without first loading each in a throwaway
    /// runner (which turns a library that crashes the loader into an error instead of a crash)
    #[arg(long)]
    no_preflight: bool,
}

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let trust = required_signers(&args.public_keys)?;
    let checked = trust.is_some();
    let dir = match super::shared::base_dir_or_home(args.dir) {
        Ok(dir) => dir,
        Err(code) => return Ok(code),
    };
    if let Some(why) = super::shared::file_not_base_dir(&dir, "gp list {}") {
        eprintln!("error: {why}");
        return Ok(ExitCode::FAILURE);
    }
    let mut manager = Manager::builder(&dir).preflight(!args.no_preflight);
    if let Some(trust) = trust {
        manager = manager.trust(trust);
    }
    let report = manager.build().load_plugins();
    out!("{report}")?;
    if !checked {
        warn_unchecked_packages(report.loaded.iter().chain(&report.unchanged));
    }
    let nothing = report.loaded.is_empty()
        && report.unchanged.is_empty()
        && report.upgraded.is_empty()
        && report.disabled.is_empty();
    let mistakes = base_dir_mistakes(&dir);
    if nothing && report.failed.is_empty() && mistakes.is_empty() {
        outln!(
            "no plugins in {}: a base directory holds one folder per plugin (its plugin.json and library) or .plg packages",
            dir.display()
        )?;
    }
    for mistake in &mistakes {
        eprintln!("{}: {mistake}", if nothing { "error" } else { "warning" });
    }
    if !report.is_ok() || (nothing && !mistakes.is_empty()) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
