//! [`Value`], the stable dynamic value that crosses the boundary.

use abi_stable::{
    std_types::{RHashMap, RString, RVec},
    StableAbi,
};

/// A value stored in a call's context: what Go's `interface{}` was in the original spec, as a
/// type with a stable layout.
///
/// Integers and floats are stored inline (no allocation), so reading and writing them through
/// the context costs no more than a hash lookup.
///
/// Must not change within a major version of `gp-core`.
///
/// It also implements serde's traits (abi_stable's `RString`, `RVec` and `RHashMap` do), so a
/// host can move values to a plugin running in another process; this adds no field and
/// changes no layout.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// No value (JSON `null`).
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    String(RString),
    /// Raw bytes.
    Bytes(RVec<u8>),
    /// An ordered list of values.
    List(RVec<Value>),
    /// A map from string keys to values.
    Map(RHashMap<RString, Value>),
}

impl Value {
    /// The variant's name, for error messages: `null`, `bool`, `int`, `float`, `string`,
    /// `bytes`, `list` or `map`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// The boolean, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is an `Int`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, if this is a `Float` or an `Int`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The string, if this is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The bytes, if this is `Bytes`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b.as_slice()),
            _ => None,
        }
    }

    /// Converts to JSON. Bytes become an array of numbers; non-finite floats become `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.to_string()),
            Value::Bytes(b) => J::Array(b.iter().map(|&x| J::from(x)).collect()),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                J::Object(m.iter().map(|t| (t.0.to_string(), t.1.to_json())).collect())
            }
        }
    }
}

impl From<serde_json::Value> for Value {
    /// Converts from JSON. Integers that fit in `i64` become `Int`, other numbers `Float`.
    fn from(json: serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::String(s.into()),
            J::Array(a) => Value::List(a.into_iter().map(Value::from).collect()),
            J::Object(o) => Value::Map(
                o.into_iter()
                    .map(|(k, v)| (RString::from(k), Value::from(v)))
                    .collect(),
            ),
        }
    }
}

macro_rules! from_scalar {
    ($($t:ty => $variant:ident($conv:expr)),* $(,)?) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$variant($conv(v))
            }
        }
    )*};
}

from_scalar! {
    bool => Bool(|v| v),
    i64 => Int(|v| v),
    i32 => Int(i64::from),
    u32 => Int(i64::from),
    f64 => Float(|v| v),
    &str => String(RString::from),
    String => String(RString::from),
    RString => String(|v| v),
    Vec<u8> => Bytes(RVec::from),
    &[u8] => Bytes(RVec::from),
    Vec<Value> => List(RVec::from),
}

impl From<()> for Value {
    fn from(_: ()) -> Value {
        Value::Null
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let json = serde_json::json!({"a": [1, 2.5, "x", null, true], "b": {"c": -7}});
        assert_eq!(Value::from(json.clone()).to_json(), json);
    }

    #[test]
    fn bytes_become_number_arrays() {
        assert_eq!(
            Value::from(vec![1u8, 255]).to_json(),
            serde_json::json!([1, 255])
        );
    }
}
