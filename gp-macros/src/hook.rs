//! `#[on_load]` / `#[on_unload]` + `fn ...` → the hook's shim, registered for the root module.
//!
//! The two attributes cannot see `#[plugin_entry]` (each macro expands on its own), so a hook
//! registers its shim in a linkme distributed slice that `gp_sdk::__private::root_module`
//! reads when the host loads the library.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, ItemFn, ReturnType};

use crate::parse::{is_mut_ref_to_context, is_unit_result, Errors};

/// Which hook an attribute declares.
#[derive(Clone, Copy)]
pub enum Hook {
    Load,
    Unload,
}

impl Hook {
    fn attribute(self) -> &'static str {
        match self {
            Hook::Load => "#[on_load]",
            Hook::Unload => "#[on_unload]",
        }
    }

    fn signature(self) -> &'static str {
        match self {
            Hook::Load => "fn on_load(ctx: &mut gp_sdk::Context) -> gp_sdk::Result",
            Hook::Unload => "fn on_unload(ctx: &mut gp_sdk::Context)",
        }
    }
}

pub fn hook(hook: Hook, attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let (attribute, signature) = (hook.attribute(), hook.signature());
    if !attr.is_empty() {
        errors.over(
            &attr,
            format!("{attribute} takes no arguments: remove them"),
        );
    }
    let function: ItemFn = match syn::parse2(item) {
        Ok(function) => function,
        Err(e) => {
            errors.at(
                e.span(),
                format!("{attribute} goes on a function: `{signature}`"),
            );
            return Err(errors.finish(()).unwrap_err());
        }
    };
    let takes_context = check_signature(hook, &function, &mut errors);
    errors.finish(())?;
    Ok(expand(hook, &function, takes_context))
}

/// Checks the hook's signature; returns whether it takes the context.
fn check_signature(hook: Hook, function: &ItemFn, errors: &mut Errors) -> bool {
    let (attribute, signature) = (hook.attribute(), hook.signature());
    let sig = &function.sig;
    if let Some(token) = &sig.asyncness {
        errors.at(
            token.span(),
            format!("a {attribute} hook cannot be `async`: the host calls it synchronously"),
        );
    }
    if let Some(token) = &sig.constness {
        errors.at(
            token.span(),
            format!("a {attribute} hook cannot be `const`: remove `const`"),
        );
    }
    if let Some(token) = &sig.unsafety {
        errors.at(
            token.span(),
            format!("a {attribute} hook cannot be `unsafe`: remove `unsafe`"),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.over(
            abi,
            format!("a {attribute} hook is a plain Rust function: remove the `extern` ABI"),
        );
    }
    if sig
        .generics
        .params
        .iter()
        .any(|p| !matches!(p, GenericParam::Lifetime(_)))
        || sig.generics.where_clause.is_some()
    {
        errors.over(
            &sig.generics,
            format!("a {attribute} hook cannot be generic: `{signature}`"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.over(
            variadic,
            format!("a {attribute} hook cannot be variadic: remove `...`"),
        );
    }
    let mut takes_context = false;
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        None => {}
        Some(FnArg::Receiver(receiver)) => errors.over(
            receiver,
            format!("a {attribute} hook is a free function, not a method: `{signature}`"),
        ),
        Some(FnArg::Typed(arg)) => {
            takes_context = true;
            if !is_mut_ref_to_context(&arg.ty) {
                errors.over(
                    &arg.ty,
                    format!("a {attribute} hook takes no argument or `&mut Context` (gp_sdk::Context): `{signature}`"),
                );
            }
        }
    }
    let extra: Vec<&FnArg> = inputs.collect();
    if !extra.is_empty() {
        errors.over(
            quote!(#(#extra),*),
            format!("a {attribute} hook takes at most one argument, the context: `{signature}`"),
        );
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if !is_unit_result(ty) && !matches!(&**ty, syn::Type::Tuple(t) if t.elems.is_empty()) {
            errors.over(
                ty,
                format!("a {attribute} hook returns nothing or `Result<(), E>` where E: Display, such as `gp_sdk::Result`"),
            );
        }
    }
    takes_context
}

fn expand(hook: Hook, function: &ItemFn, takes_context: bool) -> TokenStream {
    let user_fn = &function.sig.ident;
    let (once, shim, slice) = match hook {
        Hook::Load => ("only_one_on_load_per_crate", "gp_on_load", "ON_LOAD"),
        Hook::Unload => ("only_one_on_unload_per_crate", "gp_on_unload", "ON_UNLOAD"),
    };
    let (once, shim, slice) = (
        format_ident!("{once}"),
        format_ident!("{shim}"),
        format_ident!("{slice}"),
    );
    let span = match &function.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => user_fn.span(),
    };
    let call = if takes_context {
        quote_spanned!(span=> ::gp_sdk::__private::hook(ctx, #user_fn))
    } else {
        quote_spanned!(span=> ::gp_sdk::__private::hook(ctx, |_| #user_fn()))
    };
    quote! {
        #function

        // A second hook of the same kind anywhere in the crate redefines this macro: the
        // compiler reports it at the second attribute.
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #once { () => {}; }

        #[doc(hidden)]
        const _: () = {
            extern "C" fn #shim(
                ctx: ::gp_sdk::__private::HostContextMut<'_>,
            ) -> ::gp_sdk::__private::ExecuteResult {
                #call
            }

            #[::gp_sdk::__private::linkme::distributed_slice(::gp_sdk::__private::#slice)]
            #[linkme(crate = ::gp_sdk::__private::linkme)]
            static HOOK: ::gp_sdk::__private::ExecuteFn = #shim;
        };
    }
}
