//! A serde type read from a call's values, and written back to them, one key per field.
//!
//! This is how a typed label handler and a host's typed call meet: the host writes `In`'s
//! fields as the context's keys, the plugin reads `In` back from them, writes `Out`'s fields,
//! and the host reads `Out`. Both sides run this one file, so they cannot disagree on the
//! mapping:
//!
//! - a struct (or a map) is its fields (entries), each under its own key;
//! - anything else (a number, a string, a list, a unit enum variant) is one value under a key
//!   the caller names (`input` for what a call is given, `result` for what it gives back);
//! - `()` and `None` are no value at all.
//!
//! What serialises to a JSON object is written as keys, but only a struct or a map is read
//! back from keys: an enum variant with data, a `serde_json::Value` holding an object, or an
//! `Option` of a struct does not round-trip at the top level. Wrap such a type in a struct
//! (`struct Out { choice: Choice }`). A key the output does not write (a field skipped when
//! serialised) keeps whatever the context held, such as the input's value of that name.
//!
//! It is not part of the ABI: nothing here crosses the boundary but [`Value`]s, through the
//! context both sides already share.

use serde::de::value::{MapDeserializer, StrDeserializer};
use serde::de::{DeserializeOwned, Deserializer, Error as _, IntoDeserializer, Visitor};
use serde::Serialize;

use crate::Value;

/// The key a call's input is under when it is not a struct or a map.
pub const INPUT_KEY: &str = "input";

/// The key a call's output is under when it is not a struct or a map.
pub const RESULT_KEY: &str = "result";

/// Values looked up by key: a call's context, on either side.
pub trait Values {
    /// The value under `key`.
    fn value(&self, key: &str) -> Option<&Value>;
    /// Every key that holds a value.
    fn keys(&self) -> Vec<String>;
}

/// Reads a `T` from `values`: a struct's fields (a map's entries) from their keys, anything
/// else from the value under `single`.
///
/// A field whose key holds no value is missing, so `Option` fields read as `None` and
/// `#[serde(default)]` applies; any other missing field is serde's "missing field `name`".
pub fn from_values<T: DeserializeOwned>(
    values: &dyn Values,
    single: &str,
) -> Result<T, serde_json::Error> {
    T::deserialize(ByKey { values, single })
}

/// `value` as the `(key, value)` pairs that [`from_values`] reads it back from, with `single`
/// as the key of a value that is not a struct or a map.
pub fn to_values<T: Serialize + ?Sized>(
    value: &T,
    single: &str,
) -> Result<Vec<(String, Value)>, serde_json::Error> {
    Ok(match serde_json::to_value(value)? {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Object(fields) => fields
            .into_iter()
            .map(|(key, value)| (key, Value::from(value)))
            .collect(),
        other => vec![(single.to_owned(), Value::from(other))],
    })
}

/// The deserializer [`from_values`] runs: each field looked up when serde asks for it.
struct ByKey<'a> {
    values: &'a dyn Values,
    single: &'a str,
}

impl ByKey<'_> {
    fn single(&self) -> Option<serde_json::Value> {
        self.values.value(self.single).map(Value::to_json)
    }
}

impl<'de> Deserializer<'de> for ByKey<'_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.single() {
            Some(value) => value.deserialize_any(visitor),
            None => Err(serde_json::Error::custom(format_args!(
                "the context has no value under `{}`",
                self.single
            ))),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.single() {
            Some(serde_json::Value::Null) | None => visitor.visit_none(),
            Some(value) => visitor.visit_some(value),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let present = fields
            .iter()
            .filter_map(|&field| Some((field, self.values.value(field)?.to_json())));
        visit_entries(present, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let keys = self.values.keys();
        let entries = keys.iter().filter_map(|key| {
            let value = self.values.value(key)?.to_json();
            Some((key.as_str(), value))
        });
        visit_entries(entries, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        seq tuple tuple_struct enum identifier ignored_any
    }
}

fn visit_entries<'de, 'k, V: Visitor<'de>>(
    entries: impl Iterator<Item = (&'k str, serde_json::Value)>,
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    let entries = entries.map(|(key, value)| {
        let key: StrDeserializer<'k, serde_json::Error> = key.into_deserializer();
        (key, value)
    });
    let mut map = MapDeserializer::new(entries);
    let value = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Default)]
    struct Map(BTreeMap<String, Value>);

    impl Values for Map {
        fn value(&self, key: &str) -> Option<&Value> {
            self.0.get(key)
        }
        fn keys(&self) -> Vec<String> {
            self.0.keys().cloned().collect()
        }
    }

    fn written<T: Serialize>(value: &T, single: &str) -> Map {
        Map(to_values(value, single).unwrap().into_iter().collect())
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct In {
        count: i64,
        by: Option<i64>,
        #[serde(default)]
        tags: Vec<String>,
        name: String,
    }

    #[test]
    fn a_struct_is_one_key_per_field_and_reads_back() {
        let input = In {
            count: 2,
            by: None,
            tags: vec!["a".into()],
            name: "n".into(),
        };
        let values = written(&input, INPUT_KEY);
        assert_eq!(
            values.keys(),
            ["by", "count", "name", "tags"],
            "`by: None` is written as null"
        );
        assert_eq!(values.value("count"), Some(&Value::Int(2)));
        assert_eq!(from_values::<In>(&values, INPUT_KEY).unwrap(), input);
    }

    #[test]
    fn missing_keys_are_missing_fields_and_other_keys_are_ignored() {
        let mut values = Map::default();
        values.0.insert("name".into(), Value::from("n"));
        values.0.insert("unrelated".into(), Value::Int(1));
        let error = from_values::<In>(&values, INPUT_KEY).unwrap_err();
        assert_eq!(error.to_string(), "missing field `count`");
        values.0.insert("count".into(), Value::from("two"));
        let error = from_values::<In>(&values, INPUT_KEY).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid type: string \"two\", expected i64"
        );
        values.0.insert("count".into(), Value::Int(3));
        let read = from_values::<In>(&values, INPUT_KEY).unwrap();
        assert_eq!((read.count, read.by, read.tags.len()), (3, None, 0));
    }

    #[test]
    fn anything_else_is_one_value_under_its_key() {
        let values = written(&42_i64, RESULT_KEY);
        assert_eq!(values.keys(), [RESULT_KEY]);
        assert_eq!(from_values::<i64>(&values, RESULT_KEY).unwrap(), 42);
        let values = written(&vec![1, 2], RESULT_KEY);
        assert_eq!(from_values::<Vec<u8>>(&values, RESULT_KEY).unwrap(), [1, 2]);
        assert_eq!(
            from_values::<i64>(&Map::default(), RESULT_KEY)
                .unwrap_err()
                .to_string(),
            "the context has no value under `result`"
        );
        assert_eq!(
            from_values::<Option<i64>>(&Map::default(), RESULT_KEY).unwrap(),
            None
        );
        assert!(written(&(), RESULT_KEY).keys().is_empty());
        from_values::<()>(&Map::default(), RESULT_KEY).unwrap();
    }

    #[test]
    fn a_map_is_every_key() {
        let mut values = Map::default();
        values.0.insert("a".into(), Value::Int(1));
        values.0.insert("b".into(), Value::Int(2));
        let read: BTreeMap<String, i64> = from_values(&values, INPUT_KEY).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read["b"], 2);
    }
}
