//! Helpers more than one subcommand uses: `--public-key` trust, packing a plugin folder, and
//! the address `gp serve` and `gp stats` meet on.

use std::path::{Path, PathBuf};

use gp_host::package::{self, Packed, PublicKey, SecretKey, Trust};
use gp_host::Error;

/// Where `gp serve` serves metrics and `gp stats` reads them (9464: the port OpenTelemetry's
/// Prometheus exporter uses by default).
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9464";

/// Where `gp serve` serves plugin routes by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// `--public-key` arguments: if there are any, a signature by one of them is required.
pub fn required_signers(keys: &[String]) -> Result<Option<Trust>, Error> {
    let keys = keys
        .iter()
        .map(|k| PublicKey::from_text_or_file(k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((!keys.is_empty()).then(|| Trust::signed_by(keys)))
}

/// The file name `gp pack` and `gp build --pack` give a package: `<name>-<version>.plg`.
pub fn package_file_name(manifest: &gp_host::Manifest) -> String {
    format!("{}-{}.plg", manifest.name, manifest.version)
}

/// Packs `folder` into `output`, or into `<name>-<version>.plg` in the current directory
/// (the name and version from its plugin.json, which `pack` checks against the library).
pub fn pack_folder(
    folder: &Path,
    output: Option<PathBuf>,
    key: Option<&SecretKey>,
) -> Result<Packed, Error> {
    let output = match output {
        Some(output) => output,
        None => {
            let path = folder.join(gp_host::MANIFEST_FILE);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
            let manifest = gp_host::Manifest::from_plugin_json(&text)
                .map_err(|source| Error::InvalidManifest { path, source })?;
            PathBuf::from(package_file_name(&manifest))
        }
    };
    package::pack(folder, &output, key)
}

/// What `gp pack` and `gp build --pack` print about a package they wrote.
pub fn print_packed(packed: &Packed) {
    println!(
        "packed {} {} -> {}",
        packed.manifest.name,
        packed.manifest.version,
        packed.path.display()
    );
    println!("sha256 {}", packed.sha256);
    match &packed.signed_by {
        Some(key) => println!("signed by {key}"),
        None => println!("not signed"),
    }
}

/// The error for a file or folder a command will not overwrite.
pub fn already_exists(path: PathBuf, advice: &str) -> Error {
    Error::Io {
        path,
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("already exists; {advice}"),
        ),
    }
}
