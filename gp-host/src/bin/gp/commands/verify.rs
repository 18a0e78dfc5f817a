//! `gp verify`: check a .plg package completely without loading it (entries, checksums,
//! signature, and the plugin it carries).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::failure::Failure;
use gp_host::package::{self, Limits};

use super::shared::required_signers;

#[derive(clap::Args)]
pub struct Args {
    /// The package
    package: PathBuf,
    /// Require a signature by this public key (base64, or a .pub file); repeatable
    #[arg(long = "public-key", value_name = "KEY")]
    public_keys: Vec<String>,
}

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let trust = required_signers(&args.public_keys)?.unwrap_or_default();
    let verified = package::verify(&args.package, &trust, &Limits::default())?;
    outln!(
        "{}: {} {}, sha256 {}",
        args.package.display(),
        verified.manifest.name,
        verified.manifest.version,
        verified.sha256
    )?;
    let signed = verified.signed_by.is_some();
    match verified.signed_by {
        Some(key) => outln!("signed by {key}")?,
        None => outln!("not signed (checksums hold)")?,
    }
    outln!(
        "verified: {} passes every check a host makes before loading it{}",
        args.package.display(),
        if signed {
            ""
        } else {
            " (unsigned: a host that requires signatures refuses it)"
        }
    )?;
    Ok(ExitCode::SUCCESS)
}
