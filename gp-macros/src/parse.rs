//! `#[plugin_entry(...)]` + `fn ...` → [`Entry`], every misuse a spanned `syn::Error`.
//!
//! This file ties the steps together and checks the entry's own signature. The attribute's
//! arguments are read in `args` and turned into the manifest in `manifest`; the checks every
//! exported function shares are in `signature`, the error collector in `errors`.

use gp_core::manifest::Manifest;
use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ItemFn, ReturnType};

use crate::args::Args;
use crate::errors::Errors;
use crate::manifest::build_manifest;
use crate::signature::{check_context, check_qualifiers, is_unit_result};

/// A parsed and validated entry point.
pub struct Entry {
    /// The author's function, emitted unchanged.
    pub function: ItemFn,
    /// The manifest to embed.
    pub manifest: Manifest,
}

pub fn entry(attr: TokenStream, item: TokenStream) -> syn::Result<Entry> {
    let mut errors = Errors::default();
    let (args, args_complete) = args(attr, &mut errors);
    let function: ItemFn = match syn::parse2(item) {
        Ok(function) => function,
        Err(e) => {
            let error = syn::Error::new(
                e.span(),
                format!("#[plugin_entry] goes on a function: `{SIGNATURE}`"),
            );
            return Err(match errors.0 {
                Some(mut all) => {
                    all.combine(error);
                    all
                }
                None => error,
            });
        }
    };
    check_signature(&function, &mut errors);
    let mut unchecked = Errors::default();
    let manifest = build_manifest(
        args,
        if args_complete {
            &mut errors
        } else {
            &mut unchecked
        },
    );
    errors.finish(Entry { function, manifest })
}

/// The attribute's arguments, and whether they parsed to the end. Misuses the parser steps over
/// (an unknown or repeated argument) leave the other arguments to check, so they are all
/// reported at once; a syntax error leaves none worth checking.
pub(crate) fn args(attr: TokenStream, errors: &mut Errors) -> (Args, bool) {
    match syn::parse2::<Args>(attr) {
        Ok(mut args) => {
            if let Some(error) = args.misuses.0.take() {
                errors.push(error);
            }
            (args, true)
        }
        Err(error) => {
            errors.push(error);
            (Args::default(), false)
        }
    }
}

const SIGNATURE: &str = "fn execute(ctx: &mut gp_sdk::Context) -> gp_sdk::Result";

fn check_signature(function: &ItemFn, errors: &mut Errors) {
    let sig = &function.sig;
    check_qualifiers(sig, "the plugin entry", "#[plugin_entry]", errors);

    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        None => errors.at(
            sig.paren_token.span.join(),
            format!("the plugin entry takes one argument, the call's context: `{SIGNATURE}`"),
        ),
        // Only the first argument can be a receiver; whatever follows it, the fix is the same.
        Some(FnArg::Receiver(receiver)) => {
            return errors.over(
                receiver,
                format!("the plugin entry is a free function, not a method: move it out of the `impl` block and take only the context, `{SIGNATURE}`"),
            );
        }
        Some(FnArg::Typed(arg)) => check_context(
            &arg.ty,
            format!("the plugin entry's argument must be `&mut Context` (gp_sdk::Context): `{SIGNATURE}`"),
            SIGNATURE,
            errors,
        ),
    }
    let extra: Vec<&FnArg> = inputs.collect();
    if !extra.is_empty() {
        errors.over(
            quote!(#(#extra),*),
            format!(
                "the plugin entry takes one argument, not {}: remove {}, and read other inputs from the context: `{SIGNATURE}`",
                extra.len() + 1,
                if extra.len() == 1 { "this one" } else { "these" },
            ),
        );
    }

    match &sig.output {
        ReturnType::Default => errors.at(
            sig.paren_token.span.close(),
            format!("the plugin entry must return `Result<(), E>` where E: Display: `{SIGNATURE}`"),
        ),
        ReturnType::Type(_, ty) => {
            if !is_unit_result(ty) {
                errors.over(
                    ty,
                    format!("the plugin entry must return `Result<(), E>` where E: Display, such as `gp_sdk::Result`: `{SIGNATURE}`"),
                );
            }
        }
    }
}
