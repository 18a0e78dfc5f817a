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
    let item: proc_macro2::TokenStream = item.into();
    match parse::entry(attr.into(), item.clone()) {
        Ok(entry) => expand::entry(entry).into(),
        Err(error) => {
            // Keep the author's function so the only errors are ours, not a cascade of unused
            // imports; it is never called, so silence dead code. An `async` one would bring
            // its own errors, so it is dropped.
            let error = error.to_compile_error();
            let is_async =
                syn::parse2::<syn::ItemFn>(item.clone()).is_ok_and(|f| f.sig.asyncness.is_some());
            if is_async {
                error.into()
            } else {
                quote::quote!(#error #[allow(dead_code)] #item).into()
            }
        }
    }
}
