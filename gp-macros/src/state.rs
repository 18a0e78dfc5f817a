//! A `#[plugin] mod`'s `#[on_load]`: the function that builds each instance's state (from the
//! instance's configuration, when it takes one), and the `open` and `close` entry points
//! generated around it.
//!
//! Its own file because it is the one place the state's type is decided: the type
//! `#[on_load]` returns is the type every handler's `&State` is read as.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, PathArguments, ReturnType, Type};

use crate::errors::Errors;
use crate::signature::{check_qualifiers, context_ref, last_segment};

const FORM: &str = "`#[on_load] fn open(config: Config) -> Result<State>` (the configuration argument is optional, and so is `ctx: &mut Context`)";

/// The module's `#[on_load]`, read from its function.
pub(crate) struct StateFn {
    /// The function; `None` for the state of a module without one, `()`, which a module
    /// with async handlers has for their runtime.
    ident: Option<Ident>,
    /// The configuration's type, when it takes one.
    pub(crate) config: Option<Type>,
    /// Whether it takes the context (`&mut Context`), after the configuration.
    context: bool,
    /// The state's type: what it returns, or returns in `Ok`; `()` when it returns nothing.
    pub(crate) state: Type,
    /// Whether it returns a `Result`.
    fallible: bool,
}

/// The `#[on_load]` of `function`, its attribute removed; `None` if it has none.
pub(crate) fn take(function: &mut ItemFn, errors: &mut Errors) -> Option<StateFn> {
    let at = function
        .attrs
        .iter()
        .position(|a| a.path().is_ident("on_load"))?;
    let attr = function.attrs.remove(at);
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        errors.over(&attr, "`#[on_load]` takes no arguments");
    }
    let sig = &function.sig;
    check_qualifiers(sig, "`#[on_load]`", "#[plugin]", errors);
    let mut config = None;
    let mut context = false;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                errors.over(receiver, format!("`#[on_load]` is a free function: {FORM}"))
            }
            FnArg::Typed(arg) => {
                if context_ref(&arg.ty).is_some() {
                    context = true;
                } else if context || config.is_some() {
                    errors.over(arg, format!("`#[on_load]` takes the configuration, then the context, and nothing else: {FORM}"));
                } else {
                    config = Some((*arg.ty).clone());
                }
            }
        }
    }
    let unit: Type = syn::parse_quote!(());
    let (state, fallible) = match &sig.output {
        ReturnType::Default => (unit, false),
        ReturnType::Type(_, ty) => {
            match ok_type(ty) {
                Some(Some(ok)) => (ok.clone(), true),
                Some(None) => {
                    errors.over(ty, format!("`#[on_load]` returns the plugin's state, so its `Result` names it: {FORM}"));
                    (unit, true)
                }
                None => ((**ty).clone(), false),
            }
        }
    };
    Some(StateFn {
        ident: Some(sig.ident.clone()),
        config,
        context,
        state,
        fallible,
    })
}

/// For a `Result<T, ...>`, `Some(Some(T))`; for a `Result` that names no `T`, `Some(None)`;
/// for any other type, `None`.
fn ok_type(ty: &Type) -> Option<Option<&Type>> {
    let segment = last_segment(ty).filter(|s| s.ident == "Result")?;
    Some(match &segment.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    })
}

impl StateFn {
    /// The state of a module with no `#[on_load]`: `()`, built by nothing.
    pub(crate) fn unit() -> StateFn {
        StateFn {
            ident: None,
            config: None,
            context: false,
            state: syn::parse_quote!(()),
            fallible: false,
        }
    }

    /// The `open` and `close` entry points, and their names. `asynchronous`: the module has
    /// async handlers, whose runtime `open` starts and `close` stops.
    pub(crate) fn entry_points(&self, asynchronous: bool) -> (TokenStream, Ident, Ident) {
        // Module items, beside the author's: names an author would not give a function.
        let open = Ident::new("__gp_open", Span::call_site());
        let close = Ident::new("__gp_close", Span::call_site());
        let host = Ident::new("host", Span::mixed_site());
        let config = Ident::new("config", Span::mixed_site());
        let ctx = Ident::new("ctx", Span::mixed_site());
        let ident = &self.ident;
        let state = &self.state;
        let mut args = Vec::new();
        let mut reads = Vec::new();
        if let Some(ty) = &self.config {
            let value = format_ident!("__gp_config");
            let read = quote_spanned!(ty.span()=> ::gp_sdk::__private::config::<#ty>(#config)?);
            reads.push(quote!(let #value: #ty = #read;));
            args.push(quote!(#value));
        }
        if self.context {
            args.push(quote!(#ctx));
        }
        let built = match ident {
            Some(ident) => quote!(#ident(#(#args),*)),
            None => quote!(()),
        };
        let built = if self.fallible {
            quote_spanned!(self.state.span()=> ::gp_sdk::__private::opened(#built))
        } else {
            quote!(::core::result::Result::Ok(#built))
        };
        let tokens = quote! {
            extern "C" fn #open(
                #host: ::gp_sdk::__private::HostContextMut<'_>,
                #config: ::gp_sdk::__private::RStr<'_>,
            ) -> ::gp_sdk::__private::OpenResult {
                ::gp_sdk::__private::open_state::<#state, _>(#host, #config, #asynchronous, |#config, #ctx| {
                    let _ = (&#config, &#ctx);
                    #(#reads)*
                    #built
                })
            }

            #[allow(unsafe_code)]
            extern "C" fn #close(
                #host: ::gp_sdk::__private::HostContextMut<'_>,
                __gp_state: ::gp_sdk::__private::StateHandle,
            ) -> ::gp_sdk::__private::ExecuteResult {
                // SAFETY: the host hands `close` the handle this plugin's `open` returned,
                // which `open_state::<#state>` made, once, after the instance's last call.
                unsafe { ::gp_sdk::__private::close_state::<#state>(#host, __gp_state) }
            }
        };
        (tokens, open, close)
    }
}
