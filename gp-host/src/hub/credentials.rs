//! Who the registry is told the user is: [`Credentials`], and the user's Docker configuration
//! (`$DOCKER_CONFIG/config.json`, or `~/.docker/config.json`) read as `docker login` wrote it:
//! `auths`, and the credential helpers `credsStore` and `credHelpers` name.
//!
//! A configuration that cannot be used is an error that names the file (and the helper), not
//! a silent fall back to anonymous: a user who logged in meant to, and "the registry wants
//! credentials" would send them looking in the wrong place. No configuration file at all, no
//! entry for the registry, or a helper that has nothing for it, is anonymous, as in Docker.
//! The configuration is read when a registry first asks for credentials (a 401), so an
//! anonymous registry never depends on it.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::error::HubFailure;

/// Who the registry is told the user is.
#[derive(Clone, Default)]
pub enum Credentials {
    /// The user's Docker configuration (`$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json`, its `auths` and credential helpers, as `docker login` wrote
    /// them), anonymous for registries it has nothing for. A configuration that is not valid
    /// JSON, or names a helper that cannot be run or fails, is an error naming the file and
    /// the helper.
    #[default]
    DockerConfig,
    /// No credentials.
    Anonymous,
    /// A user name and password (or token) for one registry; others get the Docker
    /// configuration's (a password given for one registry is never sent to another, whatever
    /// a reference or a token realm names).
    Basic {
        /// The registry they are for: `HOST[:PORT]`.
        registry: String,
        /// The user name.
        username: String,
        /// The password; never printed.
        password: String,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::DockerConfig => f.write_str("DockerConfig"),
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic {
                registry, username, ..
            } => f
                .debug_struct("Basic")
                .field("registry", registry)
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// A user name and secret for one registry, from [`Credentials`].
#[derive(Clone)]
pub(super) enum Secret {
    Basic {
        username: String,
        password: String,
    },
    /// A Docker identity token: exchanged at the token realm, never sent as Basic.
    IdentityToken(String),
}

impl Credentials {
    /// What to tell `registry`: `None` is anonymous.
    pub(super) fn for_registry(&self, registry: &str) -> Result<Option<Secret>, HubFailure> {
        match self {
            Credentials::Anonymous => Ok(None),
            Credentials::Basic {
                registry: theirs,
                username,
                password,
            } if theirs == registry => Ok(Some(Secret::Basic {
                username: username.clone(),
                password: password.clone(),
            })),
            Credentials::Basic { .. } | Credentials::DockerConfig => docker_config(registry),
        }
    }
}

/// The part of a Docker configuration that says where credentials are.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    creds_store: Option<String>,
    cred_helpers: Option<HashMap<String, String>>,
}

/// The Docker configuration file: `$DOCKER_CONFIG/config.json`, or `~/.docker/config.json`
/// (where `docker_credential` reads it).
fn config_path() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))
        .map(|dir| dir.join("config.json"))
}

/// `registry`'s credentials in the user's Docker configuration.
fn docker_config(registry: &str) -> Result<Option<Secret>, HubFailure> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(HubFailure::Credentials {
                path,
                reason: format!("the Docker configuration cannot be read: {e}"),
            })
        }
    };
    let config: DockerConfig =
        serde_json::from_slice(&text).map_err(|e| HubFailure::Credentials {
            path: path.clone(),
            reason: format!(
                "the Docker configuration is not valid JSON ({e}): fix it, or remove it and log in again with `docker login {registry}`"
            ),
        })?;
    // docker login writes Docker Hub's entry under its old URL.
    let key = if registry == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let helper = match config.cred_helpers.as_ref().and_then(|h| h.get(key)) {
        Some(helper) => Some((helper.clone(), "credHelpers")),
        None => config.creds_store.clone().map(|h| (h, "credsStore")),
    };
    use docker_credential::{CredentialRetrievalError as Failed, DockerCredential};
    match docker_credential::get_credential_from_reader(&text[..], key) {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            Ok(Some(Secret::Basic { username, password }))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok(Some(Secret::IdentityToken(token))),
        Err(Failed::NoCredentialConfigured) => Ok(None),
        // A helper that has nothing for this registry says so on its output, as Docker's
        // helpers do ("credentials not found in native keychain").
        Err(Failed::HelperFailure { stdout, stderr, .. })
            if format!("{stdout}{stderr}").contains("credentials not found") =>
        {
            Ok(None)
        }
        Err(failed) => {
            let reason = match (failed, helper) {
                (Failed::HelperCommunicationError, Some((helper, field))) => format!(
                    "its {field} names the credential helper `docker-credential-{helper}`, which cannot be run: install it (it must be on the PATH), or remove {field} from the file and log in again with `docker login {registry}`"
                ),
                (Failed::HelperFailure { stderr, .. }, Some((helper, field))) => format!(
                    "the credential helper `docker-credential-{helper}` (its {field}) failed for {registry}: {}",
                    crate::util::bounded(stderr.trim().to_owned(), 200)
                ),
                (Failed::MalformedHelperResponse, Some((helper, field))) => format!(
                    "the credential helper `docker-credential-{helper}` (its {field}) answered something that is not credentials"
                ),
                (failed, _) => format!(
                    "its entry for {registry} cannot be used ({failed}): log in again with `docker login {registry}`"
                ),
            };
            Err(HubFailure::Credentials { path, reason })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        let credentials = Credentials::Basic {
            registry: "localhost:5000".into(),
            username: "alice".into(),
            password: "hunter2".into(),
        };
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn a_password_given_for_one_registry_is_for_that_registry_only() {
        let credentials = Credentials::Basic {
            registry: "registry.example:5000".into(),
            username: "alice".into(),
            password: "hunter2".into(),
        };
        assert!(matches!(
            credentials.for_registry("registry.example:5000"),
            Ok(Some(Secret::Basic { username, .. })) if username == "alice"
        ));
        // Elsewhere: the Docker configuration's, if it has any, never alice's.
        assert!(!matches!(
            credentials.for_registry("attacker.example"),
            Ok(Some(Secret::Basic { username, .. })) if username == "alice"
        ));
    }
}
