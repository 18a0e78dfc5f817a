//! `gp install`: download a .plg package (from a URL, a file, or an OCI registry), verify it,
//! install it into a plugin base directory and load it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::failure::Failure;
use gp_host::{Error, Manager};

use super::shared::required_signers;

#[derive(clap::Args)]
pub struct Args {
    /// The package: an http://, https:// or file:// URL, a local path, an
    /// oci://HOST[:PORT]/REPOSITORY:TAG (or @sha256:DIGEST) reference, or NAME@RANGE (for
    /// example sample@^1.2; a bare NAME is any version) looked up under --registry. A NAME is
    /// always a registry name, whatever is in the current folder, unless it contains `/`,
    /// ends in `.plg` or starts with `./`: write ./NAME for a local file
    url: String,
    /// The SHA-256 the package must have (as `gp pack` prints it)
    #[arg(long)]
    sha256: Option<String>,
    /// Require a signature by this public key (base64, or a .pub file); repeatable
    #[arg(long = "public-key", value_name = "KEY")]
    public_keys: Vec<String>,
    /// The plugin base directory (default: $GP_HOME/plugins, made if missing)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Load new builds straight into this process, without first loading each in a throwaway
    /// runner (which turns a library that crashes the loader into an error instead of a crash)
    #[arg(long)]
    no_preflight: bool,
    /// Install an older version than the one installed (refused without it)
    #[arg(long)]
    allow_downgrade: bool,
    #[command(flatten)]
    registry: super::hub::RegistryArgs,
}

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let trust = required_signers(&args.public_keys)?;
    let dir = match args.dir.clone() {
        Some(dir) => dir,
        None => {
            let dir = super::shared::gp_home().join("plugins");
            std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
                path: dir.clone(),
                source: e,
            })?;
            dir
        }
    };
    // A registry reference, or NAME@RANGE, is resolved first: the install then names the
    // exact digest it fetched. A NAME is a name whatever the current folder holds (`gp new`
    // makes a folder of the plugin's name); a path says it is one (`/`, `.plg`, `./`).
    let from_registry = args.url.starts_with(gp_host::hub::SCHEME)
        || gp_host::hub::parse_name_range(&args.url).is_some();
    let (url, client) = if from_registry {
        let (client, reference) = args.registry.resolve(&args.url)?;
        (reference.to_string(), Some(client))
    } else {
        (args.url.clone(), None)
    };
    let manager = Manager::builder(&dir).preflight(!args.no_preflight).build();
    let terminal = std::io::stderr().is_terminal();
    let progress = |received: u64, total: Option<u64>| {
        if terminal {
            match total {
                Some(total) => eprint!("\rdownloading: {received} of {total} bytes"),
                None => eprint!("\rdownloading: {received} bytes"),
            }
        }
    };
    let mut options = gp_host::InstallOptions::default();
    options.sha256 = args.sha256;
    options.trust = trust;
    options.progress = Some(&progress);
    options.hub = client.as_ref();
    options.allow_downgrade = args.allow_downgrade;
    let installed = manager.install(&url, &options);
    if terminal {
        eprintln!();
    }
    if installed.is_err() {
        // A refused install leaves DIR as it found it, without an empty runtime folder.
        gp_host::package::ScratchFile::tidy(manager.runtime_dir());
    }
    let spec = installed?;
    outln!(
        "installed {} {} -> {}",
        spec.name(),
        spec.version(),
        spec.origin.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
