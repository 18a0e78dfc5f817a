//! `#[derive(ConfigSchema)]` and the JSON it is written as: the schema follows the
//! `#[serde(...)]` attributes `Deserialize` reads, and is a constant.

use std::collections::HashMap;

use gp_sdk::schema::{details_json, details_len, ConfigSchema, Schema};
use serde::Deserialize;
use serde_json::json;

/// The JSON a type's schema is written as, evaluated at compile time as the generated
/// details static is.
macro_rules! schema_json {
    ($ty:ty) => {{
        const LEN: usize = details_len("", Some(&<$ty as ConfigSchema>::SCHEMA), "");
        const JSON: [u8; LEN] = details_json::<LEN>("", Some(&<$ty as ConfigSchema>::SCHEMA), "");
        serde_json::from_slice::<serde_json::Value>(&JSON).expect("the schema is JSON")
    }};
}

/// Where the plugin listens.
#[allow(dead_code)]
#[derive(Deserialize, ConfigSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    /// The upstream's base URL,
    /// with its scheme.
    base_url: String,
    /// Milliseconds.
    #[serde(default)]
    timeout_ms: u32,
    retries: Option<u8>,
    #[serde(rename = "tags")]
    labels: Vec<String>,
    limits: HashMap<String, f64>,
    mode: Mode,
    #[serde(skip)]
    cache: (),
    r#type: Port,
    #[doc = "Said \"as is\",\tunchanged."]
    offset: i64,
}

#[allow(dead_code)]
#[derive(Deserialize, ConfigSchema)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    ReadOnly,
    ReadWrite,
    #[serde(rename = "off")]
    Disabled,
}

#[allow(dead_code)]
#[derive(Deserialize, ConfigSchema)]
struct Port(u16);

#[test]
fn a_struct_is_an_object_as_serde_reads_it() {
    assert_eq!(
        schema_json!(Config),
        json!({
            "title": "Config",
            "description": "Where the plugin listens.",
            "type": "object",
            "properties": {
                "baseUrl": {"description": "The upstream's base URL, with its scheme.", "type": "string"},
                "timeoutMs": {"description": "Milliseconds.", "type": "integer", "minimum": 0, "maximum": 4294967295u64},
                "retries": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 255}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "limits": {"type": "object", "additionalProperties": {"type": "number"}},
                "mode": {"type": "string", "enum": ["read-only", "read-write", "off"]},
                "type": {"type": "integer", "minimum": 0, "maximum": 65535},
                "offset": {"description": "Said \"as is\",\tunchanged.", "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX},
            },
            "required": ["baseUrl", "tags", "limits", "mode", "type", "offset"],
            "additionalProperties": false,
        })
    );
}

#[allow(dead_code)]
#[derive(Deserialize, ConfigSchema)]
enum Backend {
    Memory,
    Redis { url: String },
}

#[allow(dead_code)]
#[derive(Deserialize, ConfigSchema)]
#[serde(default, deny_unknown_fields)]
struct Outer {
    name: String,
    #[serde(flatten)]
    inner: HashMap<String, String>,
    backend: Backend,
}

impl Default for Outer {
    fn default() -> Self {
        Outer {
            name: String::new(),
            inner: HashMap::new(),
            backend: Backend::Memory,
        }
    }
}

#[test]
fn what_serde_reads_in_ways_the_schema_cannot_say_is_any_value_described() {
    assert_eq!(
        schema_json!(Outer),
        json!({
            "title": "Outer",
            "description": "and the keys of HashMap<String,String> (flattened)",
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "backend": {"description": "Backend: an enum with data (see the type)"},
            },
        })
    );
    assert_eq!(
        schema_json!(Option<Port>),
        json!({"anyOf": [{"type": "integer", "minimum": 0, "maximum": 65535}, {"type": "null"}]})
    );
    // A constant: matched on, as the host's reading of it never needs to.
    assert!(matches!(
        <Port as ConfigSchema>::SCHEMA,
        Schema::Integer {
            minimum: 0,
            maximum: 65535
        }
    ));
}

#[test]
fn the_details_document_wraps_the_schema() {
    const PREFIX: &str = "{\"async\":[\"a\"],\"config\":";
    const LEN: usize = details_len(PREFIX, Some(&<bool as ConfigSchema>::SCHEMA), "}");
    const JSON: [u8; LEN] = details_json::<LEN>(PREFIX, Some(&<bool as ConfigSchema>::SCHEMA), "}");
    assert_eq!(
        std::str::from_utf8(&JSON).unwrap(),
        r#"{"async":["a"],"config":{"type":"boolean"}}"#
    );
}

#[allow(dead_code)]
#[derive(Deserialize, ConfigSchema)]
#[serde(transparent)]
struct Wrapped {
    port: u16,
}

#[allow(dead_code)]
#[derive(Deserialize, ConfigSchema)]
#[serde(from = "String")]
struct Parsed(String);

impl From<String> for Parsed {
    fn from(text: String) -> Parsed {
        Parsed(text)
    }
}

#[allow(dead_code)]
#[derive(Deserialize, ConfigSchema)]
enum Level {
    Low,
    #[serde(other)]
    Unknown,
}

fn maybe_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    Option::<u8>::deserialize(d)
}

#[allow(dead_code)]
#[derive(Deserialize, ConfigSchema)]
#[serde(deny_unknown_fields)]
struct Lenient {
    #[serde(alias = "host_name")]
    host: String,
    #[serde(deserialize_with = "maybe_number")]
    level: Option<u8>,
    #[serde(rename(serialize = "out"))]
    kept: bool,
}

#[test]
fn the_schema_follows_serde_where_a_type_is_read_as_something_else() {
    assert_eq!(
        schema_json!(Wrapped),
        json!({"type": "integer", "minimum": 0, "maximum": 65535})
    );
    assert_eq!(
        schema_json!(Parsed),
        json!({"description": "Parsed: read as String, then converted"})
    );
    // `other` takes any name: any string.
    assert_eq!(schema_json!(Level), json!({"type": "string"}));
    assert_eq!(
        schema_json!(Lenient),
        json!({
            "title": "Lenient",
            "type": "object",
            "properties": {
                "host": {"type": "string"},
                "level": {"description": "read by maybe_number"},
                "kept": {"type": "boolean"},
            },
            // `deserialize_with` drops serde's leniency for a missing `Option`.
            "required": ["host", "level", "kept"],
            // An alias is a key the schema does not list: not closed.
        })
    );
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Undescribed {
    any: String,
}

#[test]
fn a_configuration_without_a_schema_has_none_and_still_builds() {
    use gp_sdk::schema::{NoSchema as _, Probe};
    assert!(Probe::<Undescribed>::SCHEMA.is_none());
    assert!(Probe::<Option<Undescribed>>::SCHEMA.is_none());
    assert!(matches!(Probe::<Config>::SCHEMA, Some(Schema::Object(_))));
    const LEN: usize = details_len("{\"config\":", Probe::<Undescribed>::SCHEMA, "}");
    const JSON: [u8; LEN] = details_json::<LEN>("{\"config\":", Probe::<Undescribed>::SCHEMA, "}");
    assert_eq!(std::str::from_utf8(&JSON).unwrap(), r#"{"config":null}"#);
}
