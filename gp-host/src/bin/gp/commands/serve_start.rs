//! What `gp serve` checks and says as it starts, apart from serving: the admin listener's TLS
//! settings, why a listener cannot bind, the base directory (a
//! missing one is refused unless `--create`, or made for the `$GP_HOME` default), the line for
//! a base directory without plugins, and the sign-in link's encoding.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::failure::Failure;
use gp_host::Error;

/// The base directory to serve: `dir`, which must exist unless `create` (then it is made, and
/// said so), or `$GP_HOME/plugins`, made if missing (and said so). `None` when it cannot be
/// served, said on stderr.
pub fn base_dir(dir: Option<PathBuf>, create: bool) -> Result<Option<PathBuf>, Failure> {
    match checked_base_dir(dir, create)? {
        Ok(dir) => Ok(Some(dir)),
        Err(why) => {
            crate::log::error(format_args!("{why}"));
            Ok(None)
        }
    }
}

/// [`base_dir`], with why not as `Err` inside.
fn checked_base_dir(
    dir: Option<PathBuf>,
    create: bool,
) -> Result<Result<PathBuf, String>, Failure> {
    let (dir, explicit) = match dir {
        Some(dir) => (dir, true),
        None => (super::shared::gp_home().join("plugins"), false),
    };
    if let Some(why) = super::shared::file_not_base_dir(&dir, "gp serve {}") {
        return Ok(Err(why));
    }
    if dir.is_dir() {
        return Ok(Ok(dir));
    }
    if explicit && !create {
        return Ok(Err(format!(
            "{}: no such directory: give the plugin base directory (the directory that holds one folder per plugin, or .plg packages), or add --create to start serving an empty one",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
        path: dir.clone(),
        source: e,
    })?;
    if explicit {
        crate::log::note(format_args!(
            "created {} (--create): an empty base directory",
            dir.display()
        ));
    } else {
        crate::log::note(format_args!(
            "created {} (the plugins of GP_HOME, {}): install plugins there with `gp install`",
            dir.display(),
            super::shared::gp_home().display()
        ));
    }
    Ok(Ok(dir))
}

/// Says so on stderr when `report` found nothing at all in `dir`.
pub fn warn_if_empty(report: &gp_host::LoadReport, dir: &std::path::Path, watching: bool) {
    if report.loaded.is_empty()
        && report.unchanged.is_empty()
        && report.upgraded.is_empty()
        && report.failed.is_empty()
        && report.disabled.is_empty()
    {
        crate::log::warning(format_args!("{}", no_plugins_warning(dir, watching)));
    }
}

/// The line `gp serve` prints when the base directory holds no plugin.
fn no_plugins_warning(dir: &std::path::Path, watching: bool) -> String {
    let until = if watching {
        "until a plugin folder or .plg package is added (--watch loads it)"
    } else {
        "(add a plugin folder or .plg package and restart, serve with --watch, or install one through the management API)"
    };
    format!(
        "no plugins in {}: every plugin route answers 404 {until}",
        dir.display()
    )
}

/// `text` with everything but unreserved URL characters percent-encoded, for a fragment.
pub fn fragment_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The admin listener's TLS settings: a certificate chain and its key, in PEM files.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, Failure> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let refuse = |path: &std::path::Path, reason: String| Failure::unusable(path.display(), reason);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| refuse(cert, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(refuse(
            cert,
            "holds no certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| refuse(key, format!("not a PEM private key: {e}")))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refuse(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| refuse(key, format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener that cannot bind `addr`: which one (`flag`), and how to choose another port.
pub fn cannot_bind(addr: SocketAddr, flag: &str, e: std::io::Error) -> Failure {
    let which = match flag {
        "--listen" => "the plugin routes' listener",
        "--metrics" => "the metrics listener",
        _ => "the admin listener",
    };
    let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
        format!(
            "; another program (another `gp serve`?) listens there: choose another port with {flag} {}:PORT, or {flag} {}:0 for any free one",
            addr.ip(),
            addr.ip()
        )
    } else {
        String::new()
    };
    Failure::unusable(
        addr,
        format!("{which} ({flag}) cannot listen here: {e}{hint}"),
    )
}

pub fn cannot_listen(addr: SocketAddr, e: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(addr.to_string()),
        source: e,
    }
}
