//! The JSON Schema of a plugin's configuration, built at compile time.
//!
//! `#[derive(ConfigSchema)]` on the configuration type (beside `Deserialize`, reading the same
//! `#[serde(...)]` attributes) makes its [`Schema`] a constant, and `#[gp_sdk::plugin]` writes
//! it as JSON into the library's `gp_details` section, where a host reads it before it loads
//! the library (`gp inspect` shows it). A constant, not a function: nothing of the plugin runs
//! to produce it, and the JSON text is written by the `const fn`s of `json`.
//!
//! What the derive describes, as serde reads it:
//! - a struct with named fields: an object whose properties are its fields (renamed by
//!   `rename` and `rename_all`, without `skip`ped ones); a field is required unless it is an
//!   `Option` or has a `default` (or the struct has one); `deny_unknown_fields` closes it;
//!   doc comments are descriptions;
//! - a newtype struct: the type it wraps; an enum of unit variants: one of their names;
//! - anything else serde accepts (an enum with data, `flatten`): any value, described as such,
//!   so the schema never claims more than it knows.

mod impls;
mod json;

pub use json::{details_json, details_len};

use std::marker::PhantomData;

/// Derives [`ConfigSchema`] from a configuration type and its `#[serde(...)]` attributes.
pub use gp_macros::ConfigSchema;

/// A configuration type whose JSON Schema is known at compile time.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no configuration schema",
    label = "a field of a configuration that derives `ConfigSchema`",
    note = "derive it beside Deserialize: `#[derive(serde::Deserialize, gp_sdk::schema::ConfigSchema)]`"
)]
pub trait ConfigSchema {
    /// The type's schema.
    const SCHEMA: Schema;
}

/// `Probe::<T>::SCHEMA`: `Some` of `T`'s schema when `T` has one, else `None` (through
/// [`NoSchema`], which must be in scope): what `#[plugin]` embeds, so that a configuration type
/// without [`ConfigSchema`] still compiles (as it did before gp-sdk had schemas) and is shown
/// as having none. Not for plugin code.
#[doc(hidden)]
pub struct Probe<T: ?Sized>(PhantomData<T>);

/// [`Probe`]'s fallback: no schema.
#[doc(hidden)]
pub trait NoSchema {
    /// No schema.
    const SCHEMA: Option<&'static Schema> = None;
}

impl<T: ?Sized> NoSchema for Probe<T> {}

impl<T: ConfigSchema + ?Sized> Probe<T> {
    /// `T`'s schema.
    pub const SCHEMA: Option<&'static Schema> = Some(&T::SCHEMA);
}

/// A JSON Schema, as constant data: what [`ConfigSchema`] gives.
#[derive(Debug, Clone, Copy)]
pub enum Schema {
    /// Any value (`{}`), with what it is in words.
    Any(&'static str),
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// An integer in `minimum..=maximum`.
    Integer {
        /// The smallest value.
        minimum: i128,
        /// The largest value.
        maximum: i128,
    },
    /// A number.
    Number,
    /// A string.
    String,
    /// The schema, or `null` (an `Option`).
    Nullable(&'static Schema),
    /// An array of items of the schema.
    Array(&'static Schema),
    /// An object with any keys, each value of the schema (a map).
    Map(&'static Schema),
    /// One of these strings (an enum of unit variants).
    OneOf(&'static [&'static str]),
    /// An object with these properties (a struct).
    Object(&'static Object),
}

/// A struct's schema.
#[derive(Debug, Clone, Copy)]
pub struct Object {
    /// The type's name (the schema's title).
    pub name: &'static str,
    /// Its doc comment, or empty.
    pub description: &'static str,
    /// Its properties, in the order declared.
    pub properties: &'static [Property],
    /// Whether a key that is no property is refused (`deny_unknown_fields`).
    pub closed: bool,
}

/// One property of an [`Object`].
#[derive(Debug, Clone, Copy)]
pub struct Property {
    /// Its key in the JSON.
    pub name: &'static str,
    /// Its doc comment, or empty.
    pub description: &'static str,
    /// Its value's schema.
    pub schema: &'static Schema,
    /// Whether the key must be present.
    pub required: bool,
}
