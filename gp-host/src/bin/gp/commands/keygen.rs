//! `gp keygen`: make an ed25519 key pair for signing packages, NAME.key (secret) and NAME.pub.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::failure::Failure;
use gp_host::package::SecretKey;
use gp_host::Error;

use super::shared::{already_exists, parent_created};

#[derive(clap::Args)]
pub struct Args {
    /// The path of the key files, without extension
    name: PathBuf,
}

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let key = SecretKey::generate()?;
    let secret = args.name.with_extension("key");
    let public = args.name.with_extension("pub");
    if public.exists() {
        return Err(already_exists(public, "choose another name"));
    }
    parent_created(&secret)?;
    key.write(&secret)?;
    let public_key = key.public_key();
    std::fs::write(&public, format!("{public_key}\n")).map_err(|e| Error::Io {
        path: public.clone(),
        source: e,
    })?;
    outln!("secret key: {} (keep it private)", secret.display())?;
    outln!("public key: {} = {public_key}", public.display())?;
    Ok(ExitCode::SUCCESS)
}
