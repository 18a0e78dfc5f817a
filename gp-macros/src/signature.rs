//! The checks on the signature of a function an attribute exports: its qualifiers, its
//! `&mut Context` argument and its `Result<(), E>` return type.
//!
//! Its own file because `#[plugin_entry]` (`parse`) and the hooks (`hook`) share them; each
//! attribute keeps only what differs (how many arguments, what it may return) in its own file.

use syn::spanned::Spanned;
use syn::{GenericArgument, GenericParam, PathArguments, Type};

use crate::errors::Errors;

/// What any function an attribute exports must not be: `async`, `const`, `unsafe`,
/// `extern`, generic, or variadic. `subject` names it in the messages ("the plugin entry"),
/// `attribute` is the attribute that generates its export.
pub(crate) fn check_qualifiers(
    sig: &syn::Signature,
    subject: &str,
    attribute: &str,
    errors: &mut Errors,
) {
    if let Some(token) = &sig.asyncness {
        errors.at(
            token.span(),
            format!("{subject} cannot be `async`: the host calls it synchronously; run async work on a runtime inside it"),
        );
    }
    if let Some(token) = &sig.constness {
        errors.at(
            token.span(),
            format!("{subject} cannot be `const`: remove `const`"),
        );
    }
    if let Some(token) = &sig.unsafety {
        errors.at(
            token.span(),
            format!("{subject} cannot be `unsafe`: remove `unsafe`, the host has no contract to uphold for it"),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.over(
            abi,
            format!("{subject} is a plain Rust function: remove the `extern` ABI, {attribute} generates the exported one"),
        );
    }
    if sig
        .generics
        .params
        .iter()
        .any(|p| !matches!(p, GenericParam::Lifetime(_)))
    {
        errors.over(
            &sig.generics,
            format!("{subject} cannot be generic: remove the type and const parameters, the host calls one concrete function"),
        );
    } else if let Some(clause) = &sig.generics.where_clause {
        errors.over(
            clause,
            format!("{subject} cannot have a `where` clause: remove it, the host calls one concrete function"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.over(
            variadic,
            format!("{subject} cannot be variadic: remove `...`"),
        );
    }
}

pub(crate) fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Group(group) => last_segment(&group.elem),
        Type::Paren(paren) => last_segment(&paren.elem),
        _ => None,
    }
}

/// Checks the type of an argument that must be the context: `&mut Context`, else `not_context`;
/// and without a `'static` (see [`static_lifetime`]), else an error at it that shows `signature`.
pub(crate) fn check_context(
    ty: &Type,
    not_context: impl std::fmt::Display,
    signature: &str,
    errors: &mut Errors,
) {
    if context_ref(ty) != Some(true) {
        errors.over(ty, not_context);
    } else if let Some(lifetime) = static_lifetime(ty) {
        errors.at(
            lifetime.span(),
            format!("the context lives only for the call, not `'static`: remove the lifetime, `{signature}`"),
        );
    }
}

/// For a reference to a `Context` (`&Context` or `&mut Context`), whether it is `&mut`;
/// `None` for any other type.
pub(crate) fn context_ref(ty: &Type) -> Option<bool> {
    match ty {
        Type::Reference(r) if last_segment(&r.elem).is_some_and(|s| s.ident == "Context") => {
            Some(r.mutability.is_some())
        }
        Type::Group(group) => context_ref(&group.elem),
        _ => None,
    }
}

/// A `'static` in `&mut Context` (of the reference or of the context), which the host's call
/// cannot give.
fn static_lifetime(ty: &Type) -> Option<&syn::Lifetime> {
    let Type::Reference(r) = ty else {
        return match ty {
            Type::Group(group) => static_lifetime(&group.elem),
            _ => None,
        };
    };
    let in_context = last_segment(&r.elem).and_then(|s| match &s.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::Lifetime(l) => Some(l),
            _ => None,
        }),
        _ => None,
    });
    r.lifetime
        .iter()
        .chain(in_context)
        .find(|l| l.ident == "static")
}

/// `Result`, `gp_sdk::Result`, `Result<()>` or `Result<(), E>` (the compiler checks the rest).
pub(crate) fn is_unit_result(ty: &Type) -> bool {
    let Some(segment) = last_segment(ty) else {
        return false;
    };
    if segment.ident != "Result" {
        return false;
    }
    match &segment.arguments {
        PathArguments::None => true,
        PathArguments::AngleBracketed(args) => match args.args.first() {
            Some(GenericArgument::Type(Type::Tuple(t))) => t.elems.is_empty(),
            _ => false,
        },
        PathArguments::Parenthesized(_) => false,
    }
}
