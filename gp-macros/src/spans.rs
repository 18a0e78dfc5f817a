//! Where the generated code puts its tokens so that the compiler's own errors (a foreign
//! `Context`, a return type the SDK rejects) point at the author's code: shared by
//! `#[plugin_entry]` and the hooks, which both call the author's function through a closure.

use proc_macro2::{Ident, Span};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, PathArguments, ReturnType, Type};

use crate::signature::last_segment;

/// The first and last token of `tokens`: a call whose path starts at the one and ends at the
/// other is underlined from one to the other (a span on stable Rust covers one token).
fn first_and_last(tokens: impl ToTokens) -> Option<(Span, Span)> {
    let mut tokens = tokens.into_token_stream().into_iter();
    let first = tokens.next()?.span();
    Some((first, tokens.last().map_or(first, |t| t.span())))
}

/// Where the compiler reports a return type the SDK rejects: the error type of
/// `Result<(), E>` (the one that must be `Display`), else the whole return type.
pub(crate) fn output_span(function: &ItemFn) -> (Span, Span) {
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

/// The argument of the closure through which the author's function is called: an argument of
/// another `Context` type is then a type mismatch at that type, not one between function
/// signatures. It is spanned there with the author's hygiene (a hygienic one would add notes
/// about the macro to the error), so it is named not to shadow the function.
pub(crate) fn closure_context(function: &ItemFn) -> Ident {
    let name = if function.sig.ident == "context" {
        "ctx"
    } else {
        "context"
    };
    Ident::new(name, context_span(function))
}

/// The generated `extern "C"` function's argument, the host's context. Hygienic, so an
/// author's function named `ctx` is not shadowed by it.
pub(crate) fn host_context() -> Ident {
    Ident::new("ctx", Span::mixed_site())
}

/// The name of an item generated in the `const _` block that calls the author's function.
/// Block items shadow the module's, so an item named like the function (`#[on_load] fn
/// gp_on_load()`) would be called in its place. No span prevents that on stable Rust:
/// `Span::mixed_site()` is hygienic for local variables and labels only, items resolving at the
/// call site as in `macro_rules!` (`Span::def_site()` is unstable). The function is the only name
/// of the author's the block uses, so the item takes `name` unless the function has it, then
/// `name_`. Not for a name that must stay exact: an exported symbol, a `#[macro_export]` macro.
pub(crate) fn item_name(name: &str, function: &ItemFn) -> Ident {
    if function.sig.ident.unraw() == name {
        Ident::new(&format!("{name}_"), Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}
