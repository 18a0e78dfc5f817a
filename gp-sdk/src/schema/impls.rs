//! [`ConfigSchema`] for the types serde reads configurations into: scalars, strings,
//! options, sequences, maps, and JSON values.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use super::{ConfigSchema, Schema};

macro_rules! integers {
    ($($ty:ty),*) => {$(
        impl ConfigSchema for $ty {
            const SCHEMA: Schema = Schema::Integer {
                minimum: <$ty>::MIN as i128,
                maximum: <$ty>::MAX as i128,
            };
        }
    )*};
}

integers!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

macro_rules! scalars {
    ($($ty:ty => $schema:expr),* $(,)?) => {$(
        impl ConfigSchema for $ty {
            const SCHEMA: Schema = $schema;
        }
    )*};
}

scalars!(
    bool => Schema::Bool,
    f32 => Schema::Number,
    f64 => Schema::Number,
    String => Schema::String,
    char => Schema::String,
    PathBuf => Schema::String,
    () => Schema::Null,
    serde_json::Value => Schema::Any("any JSON value"),
);

impl<T: ConfigSchema> ConfigSchema for Option<T> {
    const SCHEMA: Schema = Schema::Nullable(&T::SCHEMA);
}

impl<T: ConfigSchema + ?Sized> ConfigSchema for Box<T> {
    const SCHEMA: Schema = T::SCHEMA;
}

macro_rules! sequences {
    ($($ty:ident),*) => {$(
        impl<T: ConfigSchema> ConfigSchema for $ty<T> {
            const SCHEMA: Schema = Schema::Array(&T::SCHEMA);
        }
    )*};
}

sequences!(Vec, VecDeque, BTreeSet, HashSet);

impl<T: ConfigSchema, const N: usize> ConfigSchema for [T; N] {
    const SCHEMA: Schema = Schema::Array(&T::SCHEMA);
}

impl<V: ConfigSchema, S> ConfigSchema for HashMap<String, V, S> {
    const SCHEMA: Schema = Schema::Map(&V::SCHEMA);
}

impl<V: ConfigSchema> ConfigSchema for BTreeMap<String, V> {
    const SCHEMA: Schema = Schema::Map(&V::SCHEMA);
}
