//! A plugin as an OCI artifact: the manifest gp pushes and the checks on one it pulls.
//!
//! ```text
//! manifest  application/vnd.oci.image.manifest.v1+json, artifactType application/vnd.gp.plugin.v1
//!   config  application/vnd.gp.plugin.config.v1+json       the plugin's plugin.json
//!   layer   application/vnd.gp.plugin.package.v1.tar+gzip  the .plg, signature inside
//!   annotations  org.opencontainers.image.{title,version,description,authors,url}
//! ```
//!
//! The config is the plugin's manifest (as Helm's is `Chart.yaml`), so a registry that
//! predates `artifactType` still tells a gp plugin by its config type, and `gp search` reads a
//! plugin's manifest without downloading the package. The signature stays inside the package
//! (`CHECKSUMS.sig`): one blob carries everything `gp install` verifies, the same bytes as a
//! `.plg` over HTTP, and registries without the referrers API (Docker Distribution 2.8) keep it.
//! No creation time is written, so pushing the same package twice gives the same digest.

use std::collections::BTreeMap;

use gp_core::manifest::Manifest;
use serde::{Deserialize, Serialize};

/// The artifact type of a gp plugin.
pub const ARTIFACT_TYPE: &str = "application/vnd.gp.plugin.v1";
/// The media type of its config blob, the plugin's `plugin.json`.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.gp.plugin.config.v1+json";
/// The media type of its one layer, the `.plg` package.
pub const PACKAGE_MEDIA_TYPE: &str = "application/vnd.gp.plugin.package.v1.tar+gzip";
/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// What gp accepts when it fetches a manifest: its own, and the kinds it recognises to
/// refuse by name.
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest (and enough of an index to recognise one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifests: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The digest of `bytes` as a registry writes it.
pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::util::sha256_hex(bytes))
}

/// The manifest that publishes `package` (the `.plg` bytes) with `config` (its plugin.json).
pub(crate) fn manifest_for(
    plugin: &Manifest,
    config: &[u8],
    package: &[u8],
    signed: bool,
) -> ImageManifest {
    let mut annotations = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            annotations.insert(format!("org.opencontainers.image.{key}"), value);
        }
    };
    put("title", Some(plugin.name.clone()));
    put("version", Some(plugin.version.to_string()));
    put("description", plugin.description.clone());
    put("authors", Some(plugin.maintainers.join(", ")));
    put("url", plugin.home.clone());
    annotations.insert("vnd.gp.plugin.signed".into(), signed.to_string());
    let layer_title = format!(
        "{}-{}.{}",
        plugin.name,
        plugin.version,
        crate::source::package::EXTENSION
    );
    ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        artifact_type: Some(ARTIFACT_TYPE.into()),
        config: Some(Descriptor {
            media_type: CONFIG_MEDIA_TYPE.into(),
            digest: digest(config),
            size: config.len() as u64,
            annotations: BTreeMap::new(),
        }),
        layers: vec![Descriptor {
            media_type: PACKAGE_MEDIA_TYPE.into(),
            digest: digest(package),
            size: package.len() as u64,
            annotations: BTreeMap::from([(
                "org.opencontainers.image.title".to_owned(),
                layer_title,
            )]),
        }],
        manifests: None,
        annotations,
    }
}

/// Why a fetched manifest is not a gp plugin.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotAPlugin {
    #[error("its manifest is not valid JSON for an OCI manifest: {0}")]
    Unreadable(#[source] serde_json::Error),
    #[error("it is an image index (a multi-platform container image), not a gp plugin")]
    ImageIndex,
    #[error("its manifest is of type `{0}`, not an OCI image manifest")]
    ManifestType(String),
    #[error(
        "it is a container image (config `{0}`), not a gp plugin (artifact type {ARTIFACT_TYPE})"
    )]
    ContainerImage(String),
    #[error("it is an artifact of type `{0}`, not a gp plugin (artifact type {ARTIFACT_TYPE})")]
    OtherArtifact(String),
    #[error("a gp plugin has exactly one layer of type {PACKAGE_MEDIA_TYPE}; this one has {0}")]
    Layers(usize),
    #[error("its package layer: {0}")]
    LayerDigest(#[source] super::reference::InvalidReference),
}

/// Reads a fetched manifest and checks that it is a gp plugin: returns it and its package
/// layer, or says what it is instead.
pub(crate) fn check(
    bytes: &[u8],
    content_type: &str,
) -> Result<(ImageManifest, Descriptor), NotAPlugin> {
    let manifest: ImageManifest = serde_json::from_slice(bytes).map_err(NotAPlugin::Unreadable)?;
    let media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| content_type.to_owned());
    if manifest.manifests.is_some() || media_type == OCI_INDEX || media_type == DOCKER_LIST {
        return Err(NotAPlugin::ImageIndex);
    }
    if manifest.schema_version != 2 || (media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST)
    {
        return Err(NotAPlugin::ManifestType(media_type));
    }
    let config_type = manifest
        .config
        .as_ref()
        .map(|c| c.media_type.as_str())
        .unwrap_or("");
    let ours = manifest.artifact_type.as_deref() == Some(ARTIFACT_TYPE)
        || config_type == CONFIG_MEDIA_TYPE;
    if !ours {
        if IMAGE_CONFIGS.contains(&config_type) || media_type == DOCKER_MANIFEST {
            return Err(NotAPlugin::ContainerImage(config_type.to_owned()));
        }
        let kind = manifest.artifact_type.as_deref().unwrap_or(config_type);
        return Err(NotAPlugin::OtherArtifact(kind.to_owned()));
    }
    let mut packages = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == PACKAGE_MEDIA_TYPE);
    let (Some(layer), None) = (packages.next(), packages.next()) else {
        return Err(NotAPlugin::Layers(
            manifest
                .layers
                .iter()
                .filter(|l| l.media_type == PACKAGE_MEDIA_TYPE)
                .count(),
        ));
    };
    super::reference::check_digest(&layer.digest).map_err(NotAPlugin::LayerDigest)?;
    let layer = layer.clone();
    Ok((manifest, layer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin() -> Manifest {
        Manifest::from_plugin_json(
            r#"{"name":"sample","version":"1.2.0","description":"A sample","maintainers":["Ann <ann@example.com>"],"home":"https://example.com","source":{"mode":"local_so","path":"libsample.so"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_pushed_manifest_checks_out_and_carries_standard_annotations() {
        let manifest = manifest_for(&plugin(), b"{}", b"package", true);
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let (back, layer) = check(&bytes, "").unwrap();
        assert_eq!(layer.digest, digest(b"package"));
        assert_eq!(
            back.annotations["org.opencontainers.image.description"],
            "A sample"
        );
        assert_eq!(
            back.annotations["org.opencontainers.image.version"],
            "1.2.0"
        );
        assert_eq!(
            back.annotations["org.opencontainers.image.authors"],
            "Ann <ann@example.com>"
        );
    }

    #[test]
    fn other_artifacts_are_named_for_what_they_are() {
        let image = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":1},"layers":[]}"#;
        assert!(check(image.as_bytes(), "")
            .unwrap_err()
            .to_string()
            .starts_with("it is a container image"));
        let index = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(matches!(
            check(index.as_bytes(), "").unwrap_err(),
            NotAPlugin::ImageIndex
        ));
        let helm = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"sha256:00","size":1},"layers":[]}"#;
        assert_eq!(
            check(helm.as_bytes(), OCI_MANIFEST)
                .unwrap_err()
                .to_string(),
            "it is an artifact of type `application/vnd.cncf.helm.config.v1+json`, not a gp plugin (artifact type application/vnd.gp.plugin.v1)"
        );
    }
}
