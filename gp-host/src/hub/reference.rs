//! Where a plugin is in a registry: `oci://HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]`, and the
//! `HOST[:PORT]/NAMESPACE` a name is looked up under.
//!
//! The grammar is the OCI distribution specification's (repository components of lowercase
//! letters and digits joined by `.`, `_`, `__` or `-`; tags of at most 128 characters; digests
//! `sha256:` and 64 hex digits). Unlike a Docker image name, the first component is always the
//! registry: `oci://registry/gp/x` is on the host `registry`, never on Docker Hub.

use std::fmt;

use semver::{Version, VersionReq};

/// The scheme that marks a registry reference.
pub const SCHEME: &str = "oci://";

/// A plugin's place in an OCI registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `HOST[:PORT]`.
    pub registry: String,
    /// The repository: `NAMESPACE/…/NAME`.
    pub repository: String,
    /// The tag, if one was given.
    pub tag: Option<String>,
    /// The manifest's digest (`sha256:…`), if one was given. When both are given the digest
    /// decides and the tag must point at it.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]`.
    pub fn parse(text: &str) -> Result<Reference, InvalidReference> {
        let rest = text.strip_prefix(SCHEME).ok_or_else(|| {
            invalid(format!("not a registry reference: it must start with {SCHEME} ({SCHEME}HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST])"))
        })?;
        let (registry, path) = rest.split_once('/').ok_or_else(|| {
            invalid(format!(
                "it names no repository: write {SCHEME}HOST[:PORT]/REPOSITORY[:TAG]"
            ))
        })?;
        check_registry(registry)?;
        let (path, digest) = match path.split_once('@') {
            Some((path, digest)) => {
                check_digest(digest)?;
                (path, Some(digest.to_owned()))
            }
            None => (path, None),
        };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repository, tag)) => {
                check_tag(tag)?;
                (repository, Some(tag.to_owned()))
            }
            None => (path, None),
        };
        check_repository(repository)?;
        Ok(Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }

    /// The plugin name the repository ends with.
    pub fn name(&self) -> &str {
        self.repository
            .rsplit_once('/')
            .map_or(self.repository.as_str(), |(_, name)| name)
    }

    /// What the manifest is fetched by: the digest if there is one, else the tag.
    pub(crate) fn manifest_reference(&self) -> Option<&str> {
        self.digest.as_deref().or(self.tag.as_deref())
    }

    /// The same place pinned to `digest` (the tag kept for the reader).
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A registry and the namespace plugins are named under: `HOST[:PORT][/NAMESPACE]` (an
/// `oci://` in front is accepted). `sample` under `localhost:5000/team` is the repository
/// `team/sample`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    /// `HOST[:PORT]`.
    pub registry: String,
    /// The repository prefix, without slashes at either end; empty for the registry's root.
    pub namespace: String,
}

impl Namespace {
    /// Parses `[oci://]HOST[:PORT][/NAMESPACE]`.
    pub fn parse(text: &str) -> Result<Namespace, InvalidReference> {
        let rest = text
            .strip_prefix(SCHEME)
            .unwrap_or(text)
            .trim_end_matches('/');
        let (registry, namespace) = rest.split_once('/').unwrap_or((rest, ""));
        check_registry(registry).map_err(|e| invalid(format!("registry `{text}`: {e}")))?;
        if !namespace.is_empty() {
            check_repository(namespace).map_err(|e| invalid(format!("registry `{text}`: {e}")))?;
        }
        Ok(Namespace {
            registry: registry.to_owned(),
            namespace: namespace.to_owned(),
        })
    }

    /// The repository of the plugin `name` here.
    pub fn repository(&self, name: &str) -> String {
        if self.namespace.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.namespace)
        }
    }

    /// The reference to the plugin `name` here, without tag or digest.
    pub fn reference(&self, name: &str) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository(name),
            tag: None,
            digest: None,
        }
    }

    /// Whether `repository` is directly in this namespace; returns its plugin name.
    pub fn contains<'a>(&self, repository: &'a str) -> Option<&'a str> {
        let name = if self.namespace.is_empty() {
            repository
        } else {
            repository
                .strip_prefix(self.namespace.as_str())?
                .strip_prefix('/')?
        };
        (!name.contains('/')).then_some(name)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{SCHEME}{}", self.registry)
        } else {
            write!(f, "{SCHEME}{}/{}", self.registry, self.namespace)
        }
    }
}

/// The tag a version is pushed under: the version itself, with `+` (not allowed in a tag)
/// written `_`, as Helm does.
pub fn tag_of(version: &Version) -> String {
    version.to_string().replace('+', "_")
}

/// The version a tag stands for, if it is one (see [`tag_of`]); a leading `v` is accepted.
pub fn version_of(tag: &str) -> Option<Version> {
    let tag = tag.strip_prefix('v').unwrap_or(tag);
    Version::parse(&tag.replace('_', "+")).ok()
}

fn check_registry(registry: &str) -> Result<(), InvalidReference> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || registry.starts_with('[') => {
            (host, Some(port))
        }
        _ => (registry, None),
    };
    let host_ok = !host.is_empty()
        && (host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            || (host.starts_with('[') && host.ends_with(']')));
    if !host_ok {
        return Err(invalid(format!(
            "`{registry}` is not a registry host (HOST[:PORT])"
        )));
    }
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return Err(invalid(format!("`{port}` is not a port number")));
        }
    }
    Ok(())
}

pub(crate) fn check_repository(repository: &str) -> Result<(), InvalidReference> {
    let component_ok = |c: &str| {
        let bytes = c.as_bytes();
        !c.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && c.chars().all(|ch| {
                ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
            })
            && !c.contains("..")
            && !c.contains("___")
    };
    if repository.len() > 255 || !repository.split('/').all(component_ok) {
        return Err(invalid(format!(
            "`{repository}` is not a repository name (lowercase letters, digits and . _ - between them, components joined by /)"
        )));
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), InvalidReference> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{tag}` is not a tag (up to 128 letters, digits, _ . -; a version's + is written _)"
        )))
    }
}

pub(crate) fn check_digest(digest: &str) -> Result<(), InvalidReference> {
    match digest.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) =>
        {
            Ok(())
        }
        _ => Err(invalid(format!(
            "`{digest}` is not a digest gp checks (sha256: and 64 lowercase hex digits)"
        ))),
    }
}

/// Text that is not a registry reference or namespace, or has a part that is not one; the
/// message says which part and what the grammar wants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidReference {
    reason: String,
}

fn invalid(reason: String) -> InvalidReference {
    InvalidReference { reason }
}

/// A `NAME@RANGE` whose range is not a semver requirement.
#[derive(Debug, thiserror::Error)]
#[error("`{range}` is not a version range (examples: ^1.2, ~0.3, =1.0.0, *): {source}")]
pub struct InvalidRange {
    /// The text after the `@`.
    pub range: String,
    /// What the semver parser said.
    pub source: semver::Error,
}

/// Parses `NAME@RANGE` (or a bare `NAME`, any version): the form `gp install` resolves
/// against a registry. Returns `None` for anything else (a URL, a path, a reference).
pub fn parse_name_range(text: &str) -> Option<Result<(String, VersionReq), InvalidRange>> {
    if text.contains("://") || text.contains('/') || text.ends_with(".plg") {
        return None;
    }
    let (name, range) = text.split_once('@').unwrap_or((text, "*"));
    if gp_core::manifest::validate_name(name).is_err() {
        return None;
    }
    Some(
        VersionReq::parse(range)
            .map(|req| (name.to_owned(), req))
            .map_err(|source| InvalidRange {
                range: range.to_owned(),
                source,
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_back() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        for text in [
            "oci://localhost:5000/gp/sample:1.0.0".to_owned(),
            "oci://registry.example.com/sample".to_owned(),
            format!("oci://127.0.0.1:5000/a/b/c:1.2.3_build.5@{digest}"),
            format!("oci://ghcr.io/org/sample@{digest}"),
        ] {
            let reference = Reference::parse(&text).unwrap();
            assert_eq!(reference.to_string(), text);
        }
        let r = Reference::parse("oci://registry/gp/x:1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.name()),
            ("registry", "gp/x", "x")
        );
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        let cases = [
            ("localhost:5000/gp/x", "must start with oci://"),
            ("oci://localhost:5000", "names no repository"),
            ("oci://localhost:5000/Gp/x", "is not a repository name"),
            ("oci://localhost:5000/gp/x:1+2", "is not a tag"),
            ("oci://localhost:5000/gp/x@sha256:12", "is not a digest"),
            ("oci://local host/gp/x", "is not a registry host"),
            ("oci://localhost:99999/gp/x", "is not a port number"),
        ];
        for (text, expected) in cases {
            let error = Reference::parse(text).unwrap_err();
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn namespaces_name_repositories() {
        let ns = Namespace::parse("oci://localhost:5000/team/").unwrap();
        assert_eq!(ns.repository("sample"), "team/sample");
        assert_eq!(ns.contains("team/sample"), Some("sample"));
        assert_eq!(ns.contains("team/x/sample"), None);
        assert_eq!(ns.contains("other/sample"), None);
        let root = Namespace::parse("localhost:5000").unwrap();
        assert_eq!(root.repository("sample"), "sample");
        assert_eq!(root.contains("sample"), Some("sample"));
    }

    #[test]
    fn tags_carry_versions_with_build_metadata() {
        let version = Version::parse("1.2.3-rc.1+build.7").unwrap();
        assert_eq!(tag_of(&version), "1.2.3-rc.1_build.7");
        assert_eq!(version_of(&tag_of(&version)), Some(version));
        assert_eq!(version_of("v2.0.0"), Some(Version::new(2, 0, 0)));
        assert_eq!(version_of("latest"), None);
    }
}
