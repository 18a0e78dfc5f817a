//! The details document: what a host needs to know about a plugin's handlers before it loads
//! the library, and that `plugin.json` does not carry.
//!
//! Its own link section ([`DETAILS_SECTION`](crate::DETAILS_SECTION)), not fields of the
//! manifest: every manifest struct refuses unknown fields, so a new manifest field would make
//! every older host refuse every newer plugin. This document is the opposite: it accepts
//! fields it does not know, so a later gp may add to it and older hosts read what they know.
//! A library without the section (any plugin built before it, or with `#[plugin_entry]`) has
//! the [`Default`] details: no async handler.

use serde::{Deserialize, Serialize};

/// What `#[plugin]` records about a plugin's handlers, beside its manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Details {
    /// The labels whose handlers are `async fn`: a host never runs their calls on the
    /// threads that serve its connections (the plugin blocks the calling thread on its own
    /// runtime until the future ends).
    #[serde(rename = "async", skip_serializing_if = "Vec::is_empty")]
    pub async_labels: Vec<String>,
    /// Whether the plugin's `#[fallback]`, which takes every label no other handler has, is
    /// `async fn`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub async_fallback: bool,
    /// With an async fallback, the labels whose handlers are not async (without one, every
    /// label not in `async` is sync, and this is empty).
    #[serde(rename = "sync", skip_serializing_if = "Vec::is_empty")]
    pub sync_labels: Vec<String>,
    /// The JSON Schema of the configuration the plugin's `#[on_load]` takes (the value its
    /// `config.json` must be, after the host resolves secret references), as the type's
    /// `ConfigSchema` derives it; `None` when it takes none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// Whether the plugin's instance takes a configuration (its `#[on_load]` has a
    /// configuration argument): with `Some(false)` a host does not read `config.json` at all.
    /// `None` when unknown (a library without details): read it, as before details existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configured: Option<bool>,
}

impl Details {
    /// Parses the section's bytes. Fields this gp does not know are ignored (see the module
    /// documentation); a field it knows with the wrong type is an error.
    pub fn parse(bytes: &[u8]) -> Result<Details, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The document as compact JSON, the form embedded in libraries.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the details always serialise to JSON")
    }

    /// Whether a call with `label` runs an `async fn` handler.
    pub fn is_async(&self, label: &str) -> bool {
        if self.async_labels.iter().any(|l| l == label) {
            return true;
        }
        self.async_fallback && !self.sync_labels.iter().any(|l| l == label)
    }

    /// Whether any handler is async.
    pub fn has_async(&self) -> bool {
        self.async_fallback || !self.async_labels.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Details;

    #[test]
    fn unknown_fields_are_read_past_and_known_ones_checked() {
        let details =
            Details::parse(br#"{"async":["slow"],"later":{"x":1},"config":{"type":"null"}}"#)
                .unwrap();
        assert_eq!(details.config, Some(serde_json::json!({"type": "null"})));
        assert_eq!(details.async_labels, ["slow"]);
        assert!(details.is_async("slow"));
        assert!(!details.is_async("fast"));
        assert_eq!(Details::parse(b"{}").unwrap(), Details::default());
        let error = Details::parse(br#"{"async":"slow"}"#).unwrap_err();
        assert!(error.to_string().contains("expected a sequence"), "{error}");
    }

    #[test]
    fn an_async_fallback_takes_every_label_no_other_handler_has() {
        let details = Details {
            async_labels: vec![],
            async_fallback: true,
            sync_labels: vec!["fast".into()],
            config: None,
            configured: None,
        };
        assert!(details.is_async("anything"));
        assert!(!details.is_async("fast"));
        assert_eq!(
            details.to_json(),
            r#"{"async_fallback":true,"sync":["fast"]}"#
        );
        assert_eq!(
            Details::parse(details.to_json().as_bytes()).unwrap(),
            details
        );
    }
}
