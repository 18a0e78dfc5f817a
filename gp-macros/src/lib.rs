//! The `#[plugin_entry]` attribute. Use it through `gp-sdk`, which documents it and provides
//! the paths the generated code names (`::gp_sdk::__private::...`).
//!
//! Three steps, as in serde_derive: [`parse`] turns the attribute and the function into a
//! validated model (every misuse a spanned error, all reported at once), [`expand`] turns the
//! model into the plugin's exports, and this file wires them.
#![forbid(unsafe_code)]

extern crate proc_macro;

mod expand;
mod parse;

/// Marks a plugin's entry point. See `gp_sdk::plugin_entry`.
#[proc_macro_attribute]
pub fn plugin_entry(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    match parse::entry(attr.into(), item.into()) {
        Ok(entry) => expand::entry(entry).into(),
        Err(error) => error.to_compile_error().into(),
    }
}
