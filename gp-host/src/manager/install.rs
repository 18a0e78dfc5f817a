//! Installing a package from a URL: download, verify, move into the base directory, load.

use crate::error::Error;
use crate::manager::report::{Synced, UpgradeOptions};
use crate::manager::Manager;
use crate::runtime::spec::Spec;
use crate::source::download::{copy_hashed, fetch, CopyFailure};
use crate::source::package::{self, Trust};
use crate::util::lock;
use crate::util::scratch::{self, ScratchFile};

/// How [`Manager::install`] checks what it downloads.
#[derive(Default)]
#[non_exhaustive]
pub struct InstallOptions<'a> {
    /// The SHA-256 the package file must have, in hex (as `gp pack` prints it).
    pub sha256: Option<String>,
    /// Signatures to accept instead of the manager's own [`Trust`], for this package (its
    /// verification and its load).
    pub trust: Option<Trust>,
    /// Called as the download progresses with the bytes received and the total, if the server
    /// said it.
    pub progress: Option<&'a dyn Fn(u64, Option<u64>)>,
    /// The registry client for `oci://` references (default: one with the Docker
    /// configuration's credentials and the manager's package limits). A client's own limits
    /// bound the download; the manager's still bound the package when it is unpacked.
    #[cfg(feature = "hub")]
    pub hub: Option<&'a crate::hub::Client>,
    /// Install an older version than the one installed (loaded, or in the package it
    /// replaces). Without it, that is refused with [`Error::Downgrade`].
    pub allow_downgrade: bool,
}

impl Manager {
    /// Downloads the package at `url` (HTTP or HTTPS; a `file://` URL or a local path is
    /// copied instead, with the same checks; with the `hub` feature, an `oci://` reference is
    /// pulled from its registry, its manifest and digests checked, see [`crate::hub`]) and
    /// installs it: the body is streamed to
    /// a temporary file in the runtime directory's scratch folder, `tmp/` (at most the
    /// manager's package size limit), its SHA-256 checked against `options.sha256` if given,
    /// the package checked completely (checksums, signature per the trust in force,
    /// contents), then written where the plugin lives, as an upload through the management
    /// API is ([`Manager::replace_with_package`]: into its plugin folder, over its package, or
    /// as `BASE/<plugin name>.plg` for a new one; the replaced version kept for
    /// [`Manager::roll_back`]) and loaded, or upgraded to.
    ///
    /// An older version than the one installed (loaded, or in the package it would replace)
    /// is refused with [`Error::Downgrade`] unless `options.allow_downgrade`.
    ///
    /// If anything fails, nothing is left in the base directory (a package it replaced is put
    /// back) and the plugins loaded are as they were. If the process is interrupted, the
    /// temporary file, named for the process, is removed by the next collection of the
    /// runtime directory ([`Manager::gc`], and each manager after its loads).
    pub fn install(&self, url: &str, options: &InstallOptions<'_>) -> Result<Spec, Error> {
        let _one_at_a_time = lock(&self.inner.installs);
        let limits = self.package_limits();
        let trust = options.trust.as_ref().unwrap_or(self.trust());
        let base = self.base_dir().to_owned();
        std::fs::create_dir_all(&base).map_err(|e| Error::io(&base, e))?;
        // In the runtime directory's scratch folder, named for this process: what an
        // interrupted install leaves there, the next collection removes.
        let download = ScratchFile::create(self.runtime_dir(), "download", ".plg")?;
        let pulled = download_into(url, &download, &limits, options)?;
        let scratch = scratch::folder(self.runtime_dir(), "verify")?;
        let unpacked = package::unpack(download.path(), scratch.path(), trust, &limits).map_err(
            |e| match e {
                Error::Package { reason, source, .. } => Error::Package {
                    path: url.into(),
                    reason,
                    source,
                },
                other => other,
            },
        )?;
        // From a registry: the package must be the plugin and version its place names.
        if let Some(pulled) = &pulled {
            check_holds(pulled, &unpacked.manifest)?;
        }
        let plugin = &unpacked.manifest;
        // In the plugin's turn from here: what is installed cannot change under the check.
        let _turn = self.turn(&plugin.name);
        // A shutdown began during the download: nothing more loads (see `stop_loading`).
        if self.loads_stopped() {
            return Err(Error::Stopping {
                plugin: plugin.name.clone(),
            });
        }
        let downgrade = self.check_downgrade(plugin, scratch.path(), options.allow_downgrade)?;
        drop(scratch);
        let settings = crate::source::Settings {
            trust,
            ..self.settings()
        };
        // Written where the plugin lives (its folder, its package, or BASE/<name>.plg for a
        // new one), the replaced version kept for a roll-back, as an upload through the API.
        let options = UpgradeOptions { force: downgrade };
        let spec = match self.replace_verified(&plugin.name, download.path(), &settings, options) {
            Ok(Synced::Loaded(spec) | Synced::Unchanged(spec)) => spec,
            Ok(Synced::Upgraded(upgraded)) => upgraded.to,
            Ok(Synced::Unloaded | Synced::Nothing) => {
                return Err(Error::MissingManifest {
                    path: self.origin_of(&plugin.name).unwrap_or_default(),
                })
            }
            Err(error) => {
                self.report_failure(&self.origin_of(&plugin.name).unwrap_or_default(), &error);
                return Err(error);
            }
        };
        tracing::info!(target: "gp", plugin = spec.name(), version = %spec.version(), url, "plugin installed");
        Ok(spec)
    }
}

impl Manager {
    /// Refuses to install `plugin` over a newer version of it (loaded, or where it lives) unless
    /// `allow`; returns whether it is a downgrade.
    fn check_downgrade(
        &self,
        plugin: &gp_core::manifest::Manifest,
        scratch: &std::path::Path,
        allow: bool,
    ) -> Result<bool, Error> {
        match self.installed_version(&plugin.name, scratch) {
            Some(installed) if plugin.version < installed => {
                if allow {
                    Ok(true)
                } else {
                    Err(Error::Downgrade {
                        plugin: plugin.name.clone(),
                        installed,
                        offered: plugin.version.clone(),
                    })
                }
            }
            _ => Ok(false),
        }
    }

    /// The version of `name` installed: the one loaded, or the one where an install would
    /// write ([`Manager::place_of`]: its folder, or its package, which `scratch` unpacks,
    /// trusting it as it was trusted when it was installed); `None` when there is none, or it
    /// cannot be read (then it is not a version to keep).
    fn installed_version(&self, name: &str, scratch: &std::path::Path) -> Option<semver::Version> {
        if let Ok((spec, _)) = self.get_plugin(name) {
            return Some(spec.version().clone());
        }
        let place = self.place_of(name);
        let manifest = if place.is_dir() {
            crate::folder::read(&place).ok()?.manifest
        } else {
            package::unpack(&place, scratch, &Trust::default(), &self.package_limits())
                .ok()?
                .manifest
        };
        (manifest.name == name).then_some(manifest.version)
    }
}

/// Downloads (or copies, or pulls) `url` into `download`, checking the SHA-256 the caller
/// expects; returns what the registry said of it, for a pull.
fn download_into(
    url: &str,
    download: &ScratchFile,
    limits: &package::Limits,
    options: &InstallOptions<'_>,
) -> Result<Option<Pulled>, Error> {
    let mut pulled = None;
    let sha256 = match local_path(url) {
        Some(path) => copy_local(url, &path, download.file(), limits)?,
        None if url.starts_with("oci://") => {
            let (sha256, from) = pull(url, download.file(), limits, options)?;
            pulled = Some(from);
            sha256
        }
        None => fetch(
            url,
            download.path(),
            download.file(),
            limits,
            options.progress,
        )?,
    };
    if let Some(expected) = &options.sha256 {
        if !sha256.eq_ignore_ascii_case(expected.trim()) {
            return Err(Error::Download {
                url: url.to_owned(),
                reason: format!(
                    "its SHA-256 is {sha256}, not the {} expected; the file was not installed",
                    expected.trim()
                ),
                source: None,
            });
        }
    }
    Ok(pulled)
}

/// What a registry said a pulled package is.
#[cfg(feature = "hub")]
type Pulled = crate::hub::Pulled;
#[cfg(not(feature = "hub"))]
type Pulled = std::convert::Infallible;

#[cfg(feature = "hub")]
fn check_holds(pulled: &Pulled, plugin: &gp_core::manifest::Manifest) -> Result<(), Error> {
    pulled.check_holds(plugin)
}

#[cfg(not(feature = "hub"))]
fn check_holds(pulled: &Pulled, _: &gp_core::manifest::Manifest) -> Result<(), Error> {
    match *pulled {}
}

/// Pulls the `oci://` reference `url` into `file`; returns the package's SHA-256 in hex and
/// what the registry said it is.
#[cfg(feature = "hub")]
fn pull(
    url: &str,
    file: &std::fs::File,
    limits: &package::Limits,
    options: &InstallOptions<'_>,
) -> Result<(String, Pulled), Error> {
    use crate::hub::{Client, ClientOptions, Reference};
    let reference = Reference::parse(url).map_err(|reason| Error::Hub {
        reference: url.to_owned(),
        reason: crate::error::HubFailure::answer(reason.to_string()),
    })?;
    let owned;
    let client = match options.hub {
        Some(client) => client,
        None => {
            owned = Client::new(ClientOptions {
                limits: *limits,
                ..ClientOptions::default()
            });
            &owned
        }
    };
    let pulled = client.pull(&reference, file, options.progress)?;
    Ok((pulled.sha256.clone(), pulled))
}

#[cfg(not(feature = "hub"))]
fn pull(
    url: &str,
    _: &std::fs::File,
    _: &package::Limits,
    _: &InstallOptions<'_>,
) -> Result<(String, Pulled), Error> {
    Err(Error::Download {
        url: url.to_owned(),
        reason: "installing from an OCI registry needs gp-host's `hub` feature".to_owned(),
        source: None,
    })
}

/// The local file `url` names: a `file://` URL, or anything without a `scheme://`.
fn local_path(url: &str) -> Option<std::path::PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        // file:///abs/path, or file://localhost/abs/path
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        return Some(std::path::PathBuf::from(rest));
    }
    (!url.contains("://")).then(|| std::path::PathBuf::from(url))
}

/// Copies the local package `path` into `file` (at most `limits.max_bytes`); returns its
/// SHA-256 in hex.
fn copy_local(
    url: &str,
    path: &std::path::Path,
    file: &std::fs::File,
    limits: &package::Limits,
) -> Result<String, Error> {
    let fail = |reason: String, source: Option<std::io::Error>| Error::Download {
        url: url.to_owned(),
        reason,
        source: source.map(|e| Box::new(e) as crate::error::Cause),
    };
    let source =
        std::fs::File::open(path).map_err(|e| fail(format!("cannot read it: {e}"), Some(e)))?;
    match copy_hashed(source, file, limits.max_bytes, |_| {}) {
        Ok((_, sha256)) => Ok(sha256),
        Err(CopyFailure::Read(e)) => Err(fail(format!("cannot read it: {e}"), Some(e))),
        Err(CopyFailure::Write(e)) => Err(fail(format!("cannot copy it: {e}"), Some(e))),
        Err(CopyFailure::TooLarge) => Err(fail(
            format!(
                "the package is larger than {} bytes (the limit); nothing was installed",
                limits.max_bytes
            ),
            None,
        )),
    }
}
