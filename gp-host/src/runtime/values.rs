//! The map behind a call's context, and the values it makes only when asked for.

use std::borrow::Cow;
use std::sync::OnceLock;

use abi_stable::std_types::{RCow, RCowStr, RStr, RVec};
use gp_core::{same_key, Slot, Value};
use rustc_hash::FxHashMap;

/// A key: borrowed when it is one of gp's own (`http.request.method`: no allocation per
/// call), owned when a plugin or a host made it.
pub(crate) type Key = Cow<'static, str>;

/// How many values a context keeps in a plain vector before it switches to a hash map.
const SMALL: usize = 16;

/// The most keys a [`Deferred`] source may offer.
pub(crate) const DEFERRED_MAX: usize = 10;

/// Values a context makes only when they are first asked for, from a source that holds
/// what they are made of: an HTTP request's parts, of which most calls read two or three.
/// A plugin sees no difference: a deferred key is present, read, overwritten and removed as
/// any other.
pub(crate) trait Deferred: Send + Sync {
    /// The keys it offers (at most [`DEFERRED_MAX`]), each made by [`make`](Self::make)
    /// with its index.
    fn keys(&self) -> &'static [&'static str];

    /// The value of `self.keys()[index]`; `None` when the source has none for it.
    fn make(&self, index: usize) -> Option<Value>;
}

/// What each key of a [`Deferred`] source was made into, once asked for.
type Made = [OnceLock<Option<Value>>; DEFERRED_MAX];

/// A [`Deferred`] source and what it made so far: one allocation, the source last (unsized
/// once boxed); the cells of what it made, another, on the first key made (a call that reads
/// none, the common case, neither makes nor writes the 480 bytes of cells).
pub(crate) struct Later<S: ?Sized = dyn Deferred> {
    /// What each key was made into, once asked for (the cells themselves made on the first).
    made: OnceLock<Box<Made>>,
    /// A bit per key set, overwritten or removed since: the entries hold it now, or nothing.
    gone: u32,
    source: S,
}

impl<S: Deferred + 'static> Later<S> {
    /// `source`, none of its keys made yet.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn new(source: S) -> Box<Later> {
        assert!(
            source.keys().len() <= DEFERRED_MAX,
            "too many deferred keys"
        );
        Box::new(Later {
            made: OnceLock::new(),
            gone: 0,
            source,
        })
    }
}

impl Later {
    fn index(&self, key: &str) -> Option<usize> {
        self.source.keys().iter().position(|k| same_key(k, key))
    }

    fn get(&self, key: &str) -> Option<&Value> {
        let i = self.index(key)?;
        if self.gone & (1 << i) != 0 {
            return None;
        }
        self.value(i)
    }

    /// Key `i`'s value, made now if it was not yet.
    fn value(&self, i: usize) -> Option<&Value> {
        self.made.get_or_init(Box::default)[i]
            .get_or_init(|| self.source.make(i))
            .as_ref()
    }

    /// Takes the value of `key` out (made now if it was not yet), so that it is gone from
    /// here: it is being removed, or set in the entries.
    fn take(&mut self, key: &str) -> Option<Value> {
        let i = self.index(key)?;
        let bit = 1 << i;
        if self.gone & bit != 0 {
            return None;
        }
        self.gone |= bit;
        match self.made.get_mut().and_then(|made| made[i].take()) {
            Some(made) => made,
            None => self.source.make(i),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &Value)> + '_ {
        self.source
            .keys()
            .iter()
            .enumerate()
            .filter(|(i, _)| self.gone & (1 << i) == 0)
            .filter_map(|(i, key)| Some((*key, self.value(i)?)))
    }
}

/// The entries of a context map: a table searched linearly while small (comparing a short
/// key is cheaper than hashing it), which a plugin reads and overwrites itself
/// ([`gp_core::CallTable`]); a hash map beyond [`SMALL`] entries, the table then empty.
///
/// The table is a field of its own, never replaced, so that the pointer a call hands the
/// plugin stays valid while the host adds keys (which may move the slots, not the table).
#[derive(Debug, Default)]
pub(super) struct Entries {
    /// The table a call hands the plugin (`scope` takes its address).
    pub(super) small: RVec<Slot>,
    large: Option<FxHashMap<Key, Value>>,
}

/// A string-keyed map for call contexts, which usually hold a handful of values, with the
/// values of a [`Deferred`] source made when first asked for.
#[derive(Default)]
pub(crate) struct Values {
    pub(super) entries: Entries,
    later: Option<Box<Later>>,
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        map.entries(self.entries.iter());
        if let Some(later) = &self.later {
            // Not made here: a debug print changes nothing.
            for (i, key) in later.source.keys().iter().enumerate() {
                if later.gone & (1 << i) == 0 {
                    match later.made.get().and_then(|made| made[i].get()) {
                        Some(Some(value)) => map.entry(key, value),
                        Some(None) => continue,
                        None => map.entry(key, &format_args!("(not made yet)")),
                    };
                }
            }
        }
        map.finish()
    }
}

/// A key as a slot holds it: borrowed if it is `'static`, else the string moved in.
fn slot_key(key: Key) -> RCowStr<'static> {
    match key {
        Cow::Borrowed(key) => RCow::Borrowed(RStr::from_str(key)),
        Cow::Owned(key) => RCow::Owned(key.into()),
    }
}

/// A slot's key as the hash map holds it.
fn map_key(key: RCowStr<'static>) -> Key {
    match key {
        RCow::Borrowed(key) => Cow::Borrowed(key.as_str()),
        RCow::Owned(key) => Cow::Owned(key.into_string()),
    }
}

// `inline(always)` on the look-ups: a get and a set through the plugin's context are these
// and little else, and with `inline` alone get+set through an executor measured 1.7 ns slower
// once `Values` became a struct around them.
impl Entries {
    #[inline(always)]
    fn get(&self, key: &str) -> Option<&Value> {
        match &self.large {
            None => self
                .small
                .iter()
                .find(|slot| slot.has_key(key))
                .map(|slot| &slot.value),
            Some(map) => map.get(key),
        }
    }

    #[inline(always)]
    fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match &mut self.large {
            None => self
                .small
                .iter_mut()
                .find(|slot| slot.has_key(key))
                .map(|slot| &mut slot.value),
            Some(map) => map.get_mut(key),
        }
    }

    /// Adds `key`, which it does not hold.
    fn push(&mut self, key: Key, value: Value) {
        match &mut self.large {
            None if self.small.len() < SMALL => self.small.push(Slot {
                key: slot_key(key),
                value,
            }),
            None => {
                let mut map: FxHashMap<Key, Value> = std::mem::take(&mut self.small)
                    .into_iter()
                    .map(|slot| (map_key(slot.key), slot.value))
                    .collect();
                map.insert(key, value);
                self.large = Some(map);
            }
            Some(map) => {
                map.insert(key, value);
            }
        }
    }

    fn remove(&mut self, key: &str) -> Option<Value> {
        match &mut self.large {
            None => {
                let at = self.small.iter().position(|slot| slot.has_key(key))?;
                Some(self.small.swap_remove(at).value)
            }
            Some(map) => map.remove(key),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (&str, &Value)> + '_> {
        match &self.large {
            None => Box::new(
                self.small
                    .iter()
                    .map(|slot| (slot.key.as_str(), &slot.value)),
            ),
            Some(map) => Box::new(map.iter().map(|(k, v)| (k.as_ref(), v))),
        }
    }
}

impl Values {
    /// An empty map with room for `n` values before it grows.
    #[cfg(feature = "http")]
    pub(crate) fn with_capacity(n: usize) -> Values {
        Values {
            entries: Entries {
                small: RVec::with_capacity(n.min(SMALL)),
                large: None,
            },
            later: None,
        }
    }

    /// Offers the keys of a source (see [`Later::new`]), made when first asked for, replacing
    /// any source offered before. The map holds none of its keys (checked in debug builds):
    /// the caller sets its own keys beside them, never in their place.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn defer(&mut self, later: Box<Later>) {
        debug_assert!(
            later
                .source
                .keys()
                .iter()
                .all(|key| self.entries.get(key).is_none()),
            "a deferred key is held already"
        );
        self.later = Some(later);
    }

    /// The value of `key`. It makes a deferred value in its own cell, never in the entries:
    /// a plugin may hold references into the table while this runs (see `CallTable`).
    #[inline(always)]
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        match self.entries.get(key) {
            Some(value) => Some(value),
            None => self.later.as_ref()?.get(key),
        }
    }

    /// Stores `value` under `key`.
    pub(crate) fn insert(&mut self, key: impl Into<Key>, value: Value) {
        let key = key.into();
        if let Some(slot) = self.entries.get_mut(&key) {
            *slot = value;
            return;
        }
        self.replace_deferred(&key);
        self.entries.push(key, value);
    }

    /// Stores `value` under `key`, the key made by `own` only if the map does not hold it
    /// yet ([`insert`](Self::insert) with one look for the key, not two).
    pub(crate) fn insert_with(&mut self, key: &str, own: impl FnOnce(&str) -> Key, value: Value) {
        if let Some(slot) = self.entries.get_mut(key) {
            *slot = value;
            return;
        }
        self.replace_deferred(key);
        self.entries.push(own(key), value);
    }

    /// The deferred value of `key`, if one is offered, is replaced: never made, if it was not
    /// yet.
    #[inline(always)]
    fn replace_deferred(&mut self, key: &str) {
        if let Some(later) = &mut self.later {
            if let Some(i) = later.index(key) {
                later.gone |= 1 << i;
                if let Some(made) = later.made.get_mut() {
                    made[i] = OnceLock::new();
                }
            }
        }
    }

    /// Adds `key`, which the map neither holds nor offers deferred: [`insert`](Self::insert)
    /// without looking for it.
    #[cfg(feature = "http")]
    pub(crate) fn add(&mut self, key: Key, value: Value) {
        debug_assert!(
            self.get(&key).is_none() && self.not_deferred(&key),
            "{key} is held or deferred already"
        );
        self.entries.push(key, value);
    }

    /// The value of `key`, which the deferred source does not offer: [`get`](Self::get)
    /// without looking there.
    #[cfg(feature = "http")]
    pub(crate) fn get_own(&self, key: &'static str) -> Option<&Value> {
        debug_assert!(self.not_deferred(key), "{key} is deferred");
        self.entries.get(key)
    }

    /// [`remove`](Self::remove) for a key the deferred source does not offer.
    #[cfg(feature = "http")]
    pub(crate) fn remove_own(&mut self, key: &'static str) -> Option<Value> {
        debug_assert!(self.not_deferred(key), "{key} is deferred");
        self.entries.remove(key)
    }

    #[cfg(feature = "http")]
    fn not_deferred(&self, key: &str) -> bool {
        self.later.as_ref().is_none_or(|l| l.index(key).is_none())
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        match self.entries.remove(key) {
            Some(value) => Some(value),
            None => self.later.as_mut()?.take(key),
        }
    }

    pub(crate) fn iter(&self) -> Box<dyn Iterator<Item = (&str, &Value)> + '_> {
        match &self.later {
            None => self.entries.iter(),
            Some(later) => Box::new(self.entries.iter().chain(later.iter())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn behaves_as_a_map_across_the_switch_to_hashing() {
        let mut values = Values::default();
        for i in 0..40 {
            assert_eq!(values.get(&format!("k{i}")), None);
            values.insert(format!("k{i}"), Value::Int(i));
            assert!(values.entries.large.is_none() == (i < SMALL as i64));
            assert_eq!(
                values.entries.small.len(),
                if i < SMALL as i64 { i as usize + 1 } else { 0 }
            );
        }
        values.insert("k3", Value::Int(-3));
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

    /// Offers `one` (made as 1), `two` (made as 2) and `none` (never has a value), counting
    /// what it makes.
    struct Counting(Arc<AtomicUsize>);

    impl Deferred for Counting {
        fn keys(&self) -> &'static [&'static str] {
            &["one", "two", "none"]
        }

        fn make(&self, index: usize) -> Option<Value> {
            self.0.fetch_add(1, Ordering::Relaxed);
            (index < 2).then(|| Value::Int(index as i64 + 1))
        }
    }

    fn deferred() -> (Values, Arc<AtomicUsize>) {
        let made = Arc::new(AtomicUsize::new(0));
        let mut values = Values::default();
        values.insert("own", Value::Int(0));
        values.defer(Later::new(Counting(Arc::clone(&made))));
        (values, made)
    }

    #[test]
    fn a_deferred_value_is_made_once_and_only_when_asked_for() {
        let (values, made) = deferred();
        assert_eq!(made.load(Ordering::Relaxed), 0);
        assert_eq!(values.get("two"), Some(&Value::Int(2)));
        assert_eq!(values.get("two"), Some(&Value::Int(2)));
        assert_eq!(made.load(Ordering::Relaxed), 1);
        assert_eq!(values.get("none"), None);
        assert_eq!(values.get("three"), None);
        assert_eq!(made.load(Ordering::Relaxed), 2);
        let mut all: Vec<_> = values
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            all,
            [
                ("one".to_owned(), Value::Int(1)),
                ("own".to_owned(), Value::Int(0)),
                ("two".to_owned(), Value::Int(2)),
            ]
        );
        assert_eq!(made.load(Ordering::Relaxed), 3, "`none` is not made again");
    }

    #[test]
    fn a_deferred_key_is_overwritten_and_removed_as_any_other() {
        let (mut values, made) = deferred();
        values.insert("one", Value::Int(-1));
        assert_eq!(values.get("one"), Some(&Value::Int(-1)));
        assert_eq!(values.remove("one"), Some(Value::Int(-1)));
        assert_eq!(
            values.get("one"),
            None,
            "the deferred value does not come back"
        );
        assert_eq!(values.remove("one"), None);
        assert_eq!(
            made.load(Ordering::Relaxed),
            0,
            "an overwritten value is never made"
        );

        assert_eq!(values.remove("two"), Some(Value::Int(2)));
        assert_eq!(values.get("two"), None);
        assert_eq!(values.remove("two"), None);
        values.insert("two", Value::Int(22));
        assert_eq!(values.get("two"), Some(&Value::Int(22)));
        assert_eq!(values.iter().count(), 2, "own and two");
        assert_eq!(
            made.load(Ordering::Relaxed),
            2,
            "two, and none while listing"
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "a deferred key is held already")]
    fn a_source_is_never_offered_over_a_key_the_map_holds() {
        let made = Arc::new(AtomicUsize::new(0));
        let mut values = Values::default();
        values.insert("one", Value::Int(7));
        values.defer(Later::new(Counting(Arc::clone(&made))));
    }
}
