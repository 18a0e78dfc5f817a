//! [`Entry`] → the plugin's exports.

use gp_core::manifest::Embedded;
use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, PathArguments, ReturnType, Type};

use crate::parse::{last_segment, Entry};

pub fn entry(entry: Entry) -> TokenStream {
    let Entry { function, manifest } = entry;
    let user_fn = &function.sig.ident;
    let document = Embedded {
        gp_core: gp_core::ABI_VERSION.to_owned(),
        manifest,
    }
    .to_json();
    let bytes = Literal::byte_string(document.as_bytes());
    let len = document.len();
    // Every `#[macro_export]` macro lives at the crate root, so a second entry anywhere in the
    // crate redefines this one: the compiler reports it at the second `#[plugin_entry]`.
    let once = format_ident!("only_one_plugin_entry_per_crate");
    let symbol = format_ident!("_1as_0lib_1header_0root_bmodule_bloader");
    // Hygienic, so an entry named `ctx` is not shadowed by it.
    let host = Ident::new("ctx", Span::mixed_site());
    // The author's function is called from a closure: an argument of another `Context` type is
    // then a type mismatch at that type, not one between function signatures. The closure's
    // argument is spanned there with the author's hygiene (a hygienic one would add notes
    // about the macro to the error), so it is named not to shadow the function.
    let name = if user_fn == "context" {
        "ctx"
    } else {
        "context"
    };
    let context = Ident::new(name, context_span(&function));
    let (first, last) = output_span(&function);
    // A return type other than `Result<(), _>` is a mismatch in the closure's body: the call
    // then spans from the function's name to its return type.
    let call = quote_spanned!(last=> #user_fn(#context));
    let closure = quote!(|#context: &mut ::gp_sdk::Context<'_>| #call);
    // An error type that is not `Display` is reported at `execute`, spanned to underline it.
    let path = quote_spanned!(first=> ::gp_sdk::__private::);
    let entry_call = quote_spanned!(last=> #path execute(#host, #closure));

    quote! {
        #function

        #[doc(hidden)]
        #[macro_export]
        macro_rules! #once { () => {}; }

        #[doc(hidden)]
        const _: () = {
            // The manifest, readable from the file before the library is loaded.
            #[cfg_attr(target_vendor = "apple", link_section = "__DATA,__gp_manifest")]
            #[cfg_attr(not(target_vendor = "apple"), link_section = "gp_manifest")]
            #[used]
            static GP_MANIFEST: [u8; #len] = *#bytes;

            extern "C" fn gp_execute(
                #host: ::gp_sdk::__private::HostContextMut<'_>,
            ) -> ::gp_sdk::__private::ExecuteResult {
                #entry_call
            }

            fn gp_root_module() -> ::gp_sdk::__private::PluginModRef {
                ::gp_sdk::__private::root_module(&GP_MANIFEST, gp_execute)
            }

            extern "C" fn gp_root_module_result() -> ::gp_sdk::__private::RootModuleResult {
                ::gp_sdk::__private::root_module_result(gp_root_module)
            }

            // abi_stable's loader looks this symbol up; the header it points to carries the
            // gp-core version and type layout the host checks before calling anything.
            #[unsafe(no_mangle)]
            static #symbol: ::gp_sdk::__private::LibHeader =
                ::gp_sdk::__private::lib_header(gp_root_module_result);
        };
    }
}

/// The first and last token of `tokens`: a call whose path starts at the one and ends at the
/// other is underlined from one to the other (a span on stable Rust covers one token).
fn first_and_last(tokens: impl ToTokens) -> Option<(Span, Span)> {
    let mut tokens = tokens.into_token_stream().into_iter();
    let first = tokens.next()?.span();
    Some((first, tokens.last().map_or(first, |t| t.span())))
}

/// Where the compiler reports a return type `execute` rejects: the error type of
/// `Result<(), E>` (the one that must be `Display`), else the whole return type.
fn output_span(function: &ItemFn) -> (Span, Span) {
    let ReturnType::Type(_, ty) = &function.sig.output else {
        let ident = function.sig.ident.span();
        return (ident, ident);
    };
    let error = match &**ty {
        Type::Path(path) => path.path.segments.last().and_then(|s| match &s.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().nth(1),
            _ => None,
        }),
        _ => None,
    };
    match error {
        Some(error) => first_and_last(error),
        None => first_and_last(ty),
    }
    .unwrap_or_else(|| (ty.span(), ty.span()))
}

/// Where the compiler reports an argument that is `&mut` some other `Context`: its type's name.
fn context_span(function: &ItemFn) -> Span {
    fn referent(ty: &Type) -> Option<&Type> {
        match ty {
            Type::Reference(r) => Some(&r.elem),
            Type::Group(group) => referent(&group.elem),
            _ => None,
        }
    }
    match function.sig.inputs.first() {
        Some(FnArg::Typed(arg)) => referent(&arg.ty)
            .and_then(last_segment)
            .map_or_else(|| arg.ty.span(), |s| s.ident.span()),
        _ => function.sig.ident.span(),
    }
}
