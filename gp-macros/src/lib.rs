//! The `#[plugin_entry]` attribute. Use it through `gp-sdk`, which documents it and provides
//! the paths the generated code names (`::gp_sdk::__private::...`).
//!
//! Three steps, as in serde_derive: `parse` turns the attribute and the function into a
//! validated model (every misuse a spanned error, all reported at once), `expand` turns the
//! model into the plugin's exports, and this file wires them.
#![forbid(unsafe_code)]

extern crate proc_macro;

mod args;
mod errors;
mod expand;
mod handler;
mod hook;
mod manifest;
mod parse;
mod plugin;
mod schema;
mod signature;
mod spans;
mod state;

/// Marks a plugin's entry point. See `gp_sdk::plugin_entry`.
#[proc_macro_attribute]
pub fn plugin_entry(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    let item: proc_macro2::TokenStream = item.into();
    respond(
        parse::entry(attr.into(), item.clone()).map(expand::entry),
        item,
    )
}

/// Makes a module's handlers a plugin. See `gp_sdk::plugin`.
#[proc_macro_attribute]
pub fn plugin(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    plugin::plugin(attr.into(), item.into()).into()
}

/// Derives a configuration's JSON Schema. See `gp_sdk::schema::ConfigSchema`.
#[proc_macro_derive(ConfigSchema, attributes(serde))]
pub fn config_schema(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    schema::derive(input.into()).into()
}

/// Marks a plugin's load hook. See `gp_sdk::on_load`.
#[proc_macro_attribute]
pub fn on_load(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    hook_attribute(hook::Hook::Load, attr, item)
}

/// Marks a plugin's unload hook. See `gp_sdk::on_unload`.
#[proc_macro_attribute]
pub fn on_unload(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    hook_attribute(hook::Hook::Unload, attr, item)
}

fn hook_attribute(
    kind: hook::Hook,
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    let item: proc_macro2::TokenStream = item.into();
    respond(hook::hook(kind, attr.into(), item.clone()), item)
}

/// The expansion, or the errors followed by the author's function unchanged: then the only
/// errors are ours, not a cascade of unused imports. The function is never called, so dead
/// code is silenced. An `async` one would bring its own errors, so it is dropped; so would a
/// variadic one (rustc rejects `...` in a Rust function, and says C-variadic functions are
/// unstable), so it is emitted without its `...`.
fn respond(
    expansion: syn::Result<proc_macro2::TokenStream>,
    item: proc_macro2::TokenStream,
) -> proc_macro::TokenStream {
    match expansion {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let error = error.to_compile_error();
            match syn::parse2::<syn::ItemFn>(item.clone()) {
                Ok(function) if function.sig.asyncness.is_some() => error.into(),
                Ok(mut function) if function.sig.variadic.is_some() => {
                    function.sig.variadic = None;
                    quote::quote!(#error #[allow(dead_code)] #function).into()
                }
                _ => quote::quote!(#error #[allow(dead_code)] #item).into(),
            }
        }
    }
}
