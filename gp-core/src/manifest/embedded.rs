//! The embedded form: the document `#[plugin_entry]` puts in a library's link section.
//!
//! Separate from the model because it is a second document with its own rules (the ABI
//! version beside the manifest, and no `source`), read by the host before the library loads.

use serde::{Deserialize, Serialize};

use super::error::ManifestError;
use super::Manifest;

/// The document `#[plugin_entry]` embeds in a library: the ABI version it was built against
/// and its manifest (without `source`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedded {
    /// The `gp-core` version the plugin was built against.
    pub gp_core: String,
    /// The plugin's manifest.
    pub manifest: Manifest,
}

impl Embedded {
    /// Parses and validates an embedded document.
    pub fn parse(bytes: &[u8]) -> Result<Embedded, ManifestError> {
        if bytes.trim_ascii_start().starts_with(b"[") {
            return Err(ManifestError::NotAnObject);
        }
        let embedded: Embedded = serde_json::from_slice(bytes)?;
        if embedded.manifest.source.is_some() {
            return Err(ManifestError::Embedded(
                "an embedded manifest has no source".into(),
            ));
        }
        embedded.manifest.validate()?;
        Ok(embedded)
    }

    /// The document as compact JSON, the form embedded in libraries.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a manifest always serialises to JSON")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::fixture::GOOD;

    #[test]
    fn embedded_round_trip() {
        let mut m = Manifest::from_plugin_json(GOOD).unwrap();
        m.source = None;
        let e = Embedded {
            gp_core: "0.1.0".into(),
            manifest: m,
        };
        assert_eq!(Embedded::parse(e.to_json().as_bytes()).unwrap(), e);
    }
}
