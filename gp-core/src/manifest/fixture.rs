//! A valid `plugin.json` and helpers to break it one field at a time, shared by the tests of
//! every file in this module.

use super::Manifest;

pub(super) const GOOD: &str = r#"{
        "name": "go-plugin",
        "version": "0.1.0",
        "description": "A go plugin management tool",
        "maintainers": ["loneghost1982@gmail.com"],
        "home": "https://github.com/szlabs/go-plugin.git",
        "source": { "mode": "local_so", "path": "sample.so" },
        "http_services": {
            "driver": "axum",
            "routes": [
                { "route": "/api/plugin/sample/:id", "method": "GET", "label": "plugin.get" },
                { "route": "/api/plugin/samples", "method": "POST", "label": "plugin.post" }
            ]
        }
    }"#;

pub(super) fn err(text: &str) -> String {
    Manifest::from_plugin_json(text).unwrap_err().to_string()
}

/// `GOOD` with the value at JSON pointer `field` replaced by `value`.
pub(super) fn with(field: &str, value: &str) -> String {
    let mut json: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    *json.pointer_mut(field).unwrap() = serde_json::from_str(value).unwrap();
    json.to_string()
}
