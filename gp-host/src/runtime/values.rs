//! The map behind a call's context.

use std::borrow::Cow;

use gp_core::Value;
use rustc_hash::FxHashMap;

/// A key: borrowed when it is one of gp's own (`http.request.method`: no allocation per
/// call), owned when a plugin or a host made it.
pub(crate) type Key = Cow<'static, str>;

/// How many values a context keeps in a plain vector before it switches to a hash map.
const SMALL: usize = 16;

/// A string-keyed map for call contexts, which usually hold a handful of values: a vector
/// searched linearly while small (comparing a short key is cheaper than hashing it), a hash
/// map beyond [`SMALL`] entries.
#[derive(Debug)]
pub(crate) enum Values {
    Small(Vec<(Key, Value)>),
    Large(FxHashMap<Key, Value>),
}

impl Default for Values {
    fn default() -> Values {
        Values::Small(Vec::new())
    }
}

/// Key equality without a call to `memcmp`: context keys are short, and for them the call
/// costs more than the comparison.
#[inline(always)]
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

impl Values {
    /// An empty map with room for `n` values before it grows.
    #[cfg(feature = "http")]
    pub(crate) fn with_capacity(n: usize) -> Values {
        Values::Small(Vec::with_capacity(n.min(SMALL)))
    }

    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Values::Small(entries) => entries
                .iter()
                .find(|(k, _)| same_key(k, key))
                .map(|(_, v)| v),
            Values::Large(map) => map.get(key),
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Values::Small(entries) => entries
                .iter_mut()
                .find(|(k, _)| same_key(k, key))
                .map(|(_, v)| v),
            Values::Large(map) => map.get_mut(key),
        }
    }

    /// Stores `value` under `key`, returning the value it replaces.
    pub(crate) fn insert(&mut self, key: impl Into<Key>, value: Value) -> Option<Value> {
        let key = key.into();
        if let Some(slot) = self.get_mut(&key) {
            return Some(std::mem::replace(slot, value));
        }
        match self {
            Values::Small(entries) if entries.len() < SMALL => entries.push((key, value)),
            Values::Small(entries) => {
                let mut map: FxHashMap<Key, Value> = std::mem::take(entries).into_iter().collect();
                map.insert(key, value);
                *self = Values::Large(map);
            }
            Values::Large(map) => {
                map.insert(key, value);
            }
        }
        None
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        match self {
            Values::Small(entries) => {
                let at = entries.iter().position(|(k, _)| same_key(k, key))?;
                Some(entries.swap_remove(at).1)
            }
            Values::Large(map) => map.remove(key),
        }
    }

    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = (&str, &Value)> + '_> {
        match self {
            Values::Small(entries) => Box::new(entries.iter().map(|(k, v)| (k.as_ref(), v))),
            Values::Large(map) => Box::new(map.iter().map(|(k, v)| (k.as_ref(), v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map_across_the_switch_to_hashing() {
        let mut values = Values::default();
        for i in 0..40 {
            assert_eq!(values.insert(format!("k{i}"), Value::Int(i)), None);
            assert!(matches!(values, Values::Small(_)) == (i < SMALL as i64));
        }
        assert_eq!(values.insert("k3", Value::Int(-3)), Some(Value::Int(3)));
        assert_eq!(values.get("k3"), Some(&Value::Int(-3)));
        assert_eq!(values.get("k39"), Some(&Value::Int(39)));
        assert_eq!(values.remove("k39"), Some(Value::Int(39)));
        assert_eq!(values.get("k39"), None);
        assert_eq!(values.iter().count(), 39);

        let mut small = Values::default();
        small.insert("a", Value::Int(1));
        small.insert(String::from("b"), Value::Int(2));
        assert_eq!(small.remove("a"), Some(Value::Int(1)));
        assert_eq!(small.get("b"), Some(&Value::Int(2)));
        assert_eq!(small.get("a"), None);
    }
}
