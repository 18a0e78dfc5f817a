//! [`Entry`] → the plugin's exports.

use gp_core::manifest::{Details, Embedded};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use crate::parse::Entry;
use crate::spans::{closure_context, host_context, item_name, output_span};

/// The `CARGO_PKG_*` variables [`crate::manifest`] reads to build the manifest.
const TRACKED_ENV: [&str; 6] = [
    "CARGO_PKG_NAME",
    "CARGO_PKG_VERSION",
    "CARGO_PKG_DESCRIPTION",
    "CARGO_PKG_AUTHORS",
    "CARGO_PKG_HOMEPAGE",
    "CARGO_PKG_REPOSITORY",
];

pub fn entry(entry: Entry) -> TokenStream {
    let Entry {
        function,
        manifest,
        state,
        details,
        config,
    } = entry;
    let user_fn = &function.sig.ident;
    let document = Embedded {
        gp_core: gp_core::ABI_VERSION.to_owned(),
        manifest,
    }
    .to_json();
    let tracked_env = TRACKED_ENV;
    let bytes = Literal::byte_string(document.as_bytes());
    let len = document.len();
    // Every `#[macro_export]` macro lives at the crate root, so a second entry anywhere in the
    // crate redefines this one: the compiler reports it at the second `#[plugin_entry]`.
    let once = format_ident!("only_one_plugin_entry_per_crate");
    let symbol = format_ident!("_1as_0lib_1header_0root_bmodule_bloader");
    let host = host_context();
    let manifest_static = item_name("GP_MANIFEST", &function);
    let details = details_section(
        &details,
        config.as_ref(),
        &item_name("GP_DETAILS", &function),
    );
    let execute = item_name("gp_execute", &function);
    let call_entry = item_name("gp_call", &function);
    let call_with = item_name("gp_call_with", &function);
    let root_module = item_name("gp_root_module", &function);
    let root_module_result = item_name("gp_root_module_result", &function);
    // The author's function is called from a closure (see `closure_context`).
    let context = closure_context(&function);
    let (first, last) = output_span(&function);
    // A return type other than `Result<(), _>` is a mismatch in the closure's body: the call
    // then spans from the function's name to its return type.
    let call = quote_spanned!(last=> #user_fn(#context));
    let closure = quote!(|#context: &mut ::gp_sdk::Context<'_>| #call);
    // An error type that is not `Display` is reported at `execute`, spanned to underline it.
    let path = quote_spanned!(first=> ::gp_sdk::__private::);
    let entry_call = quote_spanned!(last=> #path execute(#host, #closure));
    let entry_points = entry_points(&function, [&execute, &call_entry, &call_with], entry_call);
    let state = match state {
        Some((open, close)) => quote!(::core::option::Option::Some((#open, #close))),
        None => quote!(::core::option::Option::None),
    };

    quote! {
        #function

        #[doc(hidden)]
        #[macro_export]
        macro_rules! #once { () => {}; }

        #[doc(hidden)]
        const _: () = {
            // The manifest was built from these when the macro expanded; naming them here
            // makes rustc record them as the crate's env dependencies, so cargo rebuilds the
            // plugin (and its manifest) when one changes in `Cargo.toml`.
            #(const _: ::core::option::Option<&str> = ::core::option_env!(#tracked_env);)*

            // The manifest, readable from the file before the library is loaded.
            #[cfg_attr(target_vendor = "apple", link_section = "__DATA,__gp_manifest")]
            #[cfg_attr(not(target_vendor = "apple"), link_section = "gp_manifest")]
            #[used]
            static #manifest_static: [u8; #len] = *#bytes;

            #details

            #entry_points

            fn #root_module() -> ::gp_sdk::__private::PluginModRef {
                ::gp_sdk::__private::root_module(
                    &#manifest_static,
                    ::gp_sdk::__private::Entries {
                        execute: #execute,
                        call: #call_entry,
                        call_with: #call_with,
                        state: #state,
                    },
                )
            }

            extern "C" fn #root_module_result() -> ::gp_sdk::__private::RootModuleResult {
                ::gp_sdk::__private::root_module_result(#root_module)
            }

            // abi_stable's loader looks this symbol up; the header it points to carries the
            // gp-core version and type layout the host checks before calling anything.
            #[unsafe(no_mangle)]
            #[allow(unsafe_code)]
            static #symbol: ::gp_sdk::__private::LibHeader =
                // SAFETY: `#root_module_result` returns the `PluginModRef` that
                // `root_module` builds, the root module type `lib_header` declares.
                unsafe { ::gp_sdk::__private::lib_header(#root_module_result) };
        };
    }
}

/// The static that holds `details` in its link section, read by the host before it loads the
/// library; nothing when there is nothing to record. With a configuration type, its schema
/// joins the document as `config`, written by const fns when the static is evaluated (the
/// type's `ConfigSchema` is only known to the compiler).
fn details_section(
    details: &Details,
    config: Option<&syn::Type>,
    name: &proc_macro2::Ident,
) -> TokenStream {
    let document = details.to_json();
    if let Some(config) = config {
        let prefix = match document.strip_suffix('}') {
            Some("{") | None => "{\"config\":".to_owned(),
            Some(start) => format!("{start},\"config\":"),
        };
        return quote! {
            // What the host needs to know of the handlers and the configuration beyond the
            // manifest, readable, like the manifest, before the library is loaded. The
            // configuration's schema if its type has one (`null` if not: `Probe`).
            use ::gp_sdk::schema::NoSchema as _;
            const GP_SCHEMA: ::core::option::Option<&'static ::gp_sdk::schema::Schema> =
                ::gp_sdk::schema::Probe::<#config>::SCHEMA;
            const GP_DETAILS_LEN: usize = ::gp_sdk::schema::details_len(#prefix, GP_SCHEMA, "}");
            #[cfg_attr(target_vendor = "apple", link_section = "__DATA,__gp_details")]
            #[cfg_attr(not(target_vendor = "apple"), link_section = "gp_details")]
            #[used]
            static #name: [u8; GP_DETAILS_LEN] =
                ::gp_sdk::schema::details_json::<GP_DETAILS_LEN>(#prefix, GP_SCHEMA, "}");
        };
    }
    if *details == Details::default() {
        return TokenStream::new();
    }
    let bytes = Literal::byte_string(document.as_bytes());
    let len = document.len();
    quote! {
        // What the host needs to know of the handlers beyond the manifest (which are async),
        // readable, like the manifest, before the library is loaded.
        #[cfg_attr(target_vendor = "apple", link_section = "__DATA,__gp_details")]
        #[cfg_attr(not(target_vendor = "apple"), link_section = "gp_details")]
        #[used]
        static #name: [u8; #len] = *#bytes;
    }
}

/// The three `extern "C"` entry points (`execute`, which every host calls; `call`, which a
/// host built against gp-core 0.1.3 calls instead; `call_with`, which one built against 0.1.4
/// or later calls), around `entry_call`.
fn entry_points(
    function: &syn::ItemFn,
    [execute, call_entry, call_with]: [&proc_macro2::Ident; 3],
    entry_call: TokenStream,
) -> TokenStream {
    let host = host_context();
    let enter = item_name("gp_enter", function);
    // Hygienic, as the context argument is: an author's `const table` is no pattern here.
    let table = proc_macro2::Ident::new("table", proc_macro2::Span::mixed_site());
    let info = proc_macro2::Ident::new("info", proc_macro2::Span::mixed_site());
    quote! {
        // Both entry points run the author's function through this one, so a mistake in
        // it is reported once.
        #[inline(always)]
        fn #enter<'a>(
            #host: impl ::gp_sdk::__private::Entry<'a>,
        ) -> ::gp_sdk::__private::ExecuteResult {
            #entry_call
        }

        // What every host calls.
        extern "C" fn #execute(
            #host: ::gp_sdk::__private::HostContextMut<'_>,
        ) -> ::gp_sdk::__private::ExecuteResult {
            #enter(#host)
        }

        // What a host built against gp-core 0.1.3 or later calls instead.
        #[allow(unsafe_code)]
        extern "C" fn #call_entry(
            #host: ::gp_sdk::__private::HostContextMut<'_>,
            #table: ::gp_sdk::__private::CallTable,
        ) -> ::gp_sdk::__private::ExecuteResult {
            // SAFETY: the host passes the table of this call's context with it, and keeps
            // `CallTable`'s contract for the call.
            #enter(unsafe { ::gp_sdk::__private::Tabled::new(#host, #table) })
        }

        // What a host built against gp-core 0.1.4 or later calls instead.
        #[allow(unsafe_code)]
        extern "C" fn #call_with(
            #host: ::gp_sdk::__private::HostContextMut<'_>,
            #table: ::gp_sdk::__private::CallTable,
            #info: &::gp_sdk::__private::CallInfo<'_>,
        ) -> ::gp_sdk::__private::ExecuteResult {
            // SAFETY: the host passes the table and the call's information of this call's
            // context with it, and keeps their contracts for the call.
            #enter(unsafe { ::gp_sdk::__private::Informed::new(#host, #table, #info) })
        }
    }
}
