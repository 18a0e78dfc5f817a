//! `#[on_load]` / `#[on_unload]` + `fn ...` → the hook's shim, registered for the root module.
//!
//! The two attributes cannot see `#[plugin_entry]` (each macro expands on its own), so a hook
//! registers its shim in a linkme distributed slice that `gp_sdk::__private::root_module`
//! reads when the host loads the library.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{FnArg, ItemFn, ReturnType};

use crate::errors::Errors;
use crate::signature::{check_context, check_qualifiers, is_unit_result};
use crate::spans::{closure_context, host_context, item_name, output_span};

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
            format!("{attribute} takes no arguments: remove them, and write `{attribute}`"),
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
    if let Err(error) = errors.finish(()) {
        if function.sig.variadic.is_none() || function.sig.asyncness.is_some() {
            return Err(error);
        }
        // rustc rejects `...` in a Rust function on its own, with errors that would bury ours
        // (one says C-variadic functions are unstable): emit the function without it, as
        // `respond` emits it otherwise.
        let mut function = function;
        function.sig.variadic = None;
        let error = error.to_compile_error();
        return Ok(quote!(#error #[allow(dead_code)] #function));
    }
    Ok(expand(hook, &function, takes_context))
}

/// Checks the hook's signature; returns whether it takes the context.
fn check_signature(hook: Hook, function: &ItemFn, errors: &mut Errors) -> bool {
    let (attribute, signature) = (hook.attribute(), hook.signature());
    let sig = &function.sig;
    check_qualifiers(sig, &format!("the {attribute} hook"), attribute, errors);
    let mut takes_context = false;
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        None => {}
        // Only the first argument can be a receiver; whatever follows it, the fix is the same.
        Some(FnArg::Receiver(receiver)) => {
            errors.over(
                receiver,
                format!("the {attribute} hook is a free function, not a method: move it out of the `impl` block and take at most the context, `{signature}`"),
            );
            return false;
        }
        Some(FnArg::Typed(arg)) => {
            takes_context = true;
            check_context(
                &arg.ty,
                format!("the {attribute} hook's argument must be `&mut Context` (gp_sdk::Context), or none: `{signature}`"),
                signature,
                errors,
            );
        }
    }
    let extra: Vec<&FnArg> = inputs.collect();
    if !extra.is_empty() {
        errors.over(
            quote!(#(#extra),*),
            format!(
                "the {attribute} hook takes at most one argument, the context: remove {}, `{signature}`",
                if extra.len() == 1 { "this one" } else { "these" },
            ),
        );
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if !is_unit_result(ty) && !matches!(&**ty, syn::Type::Tuple(t) if t.elems.is_empty()) {
            errors.over(
                ty,
                format!("the {attribute} hook must return nothing or `Result<(), E>` where E: Display, such as `gp_sdk::Result`: `{signature}`"),
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
        item_name(shim, function),
        format_ident!("{slice}"),
    );
    let registration = item_name("HOOK", function);
    // The author's function is called from a closure (see `closure_context`).
    let closure = if takes_context {
        let context = closure_context(function);
        quote!(|#context: &mut ::gp_sdk::Context<'_>| #user_fn(#context))
    } else {
        quote!(|_: &mut ::gp_sdk::Context<'_>| #user_fn())
    };
    // A return type that is not `HookOutput` is reported at the call, spanned to underline it.
    let (first, last) = output_span(function);
    let path = quote_spanned!(first=> ::gp_sdk::__private::);
    let host = host_context();
    let call = quote_spanned!(last=> #path hook(#host, #closure));
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
                #host: ::gp_sdk::__private::HostContextMut<'_>,
            ) -> ::gp_sdk::__private::ExecuteResult {
                #call
            }

            #[::gp_sdk::__private::linkme::distributed_slice(::gp_sdk::__private::#slice)]
            #[linkme(crate = ::gp_sdk::__private::linkme)]
            static #registration: ::gp_sdk::__private::ExecuteFn = #shim;
        };
    }
}
