//! `gp gc`: remove what a base directory's runtime directory holds and no plugin needs
//! (unpacked packages and git builds beyond the newest few per plugin, leftover library
//! copies and scratch folders).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::failure::Failure;
use gp_host::{GcOptions, Manager};

#[derive(clap::Args)]
pub struct Args {
    /// The plugin base directory
    dir: PathBuf,
    /// Say what would be removed, remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Unpacked packages and git builds to keep per plugin, besides those of the packages in
    /// the base directory
    #[arg(long, default_value_t = GcOptions::default().keep)]
    keep: usize,
    /// Leave alone anything younger than this (another process may be loading it)
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    min_age: Duration,
}

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let manager = Manager::builder(&args.dir)
        .gc(Some(GcOptions {
            keep: args.keep,
            min_age: args.min_age,
            interval: None,
        }))
        .build();
    let report = manager.gc(if args.dry_run {
        gp_host::GcMode::DryRun
    } else {
        gp_host::GcMode::Remove
    })?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for path in &report.removed {
        outln!("{verb} {}", path.display())?;
    }
    for (path, why) in &report.skipped {
        outln!("left {}: {why}", path.display())?;
    }
    outln!(
        "{verb} {} item(s), {} bytes, from {}",
        report.removed.len(),
        report.bytes,
        manager.runtime_dir().display()
    )?;
    Ok(ExitCode::SUCCESS)
}
