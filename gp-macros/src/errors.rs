//! [`Errors`], the collector every check reports to, so that the author sees every misuse at
//! once (serde_derive's `Ctxt`).
//!
//! Its own file because `#[plugin_entry]` (`parse`, `args`, `manifest`) and the hooks (`hook`)
//! all report through it.

use proc_macro2::Span;
use quote::ToTokens;

/// Errors collected so the author sees all of them at once.
#[derive(Default)]
pub(crate) struct Errors(pub(crate) Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// An error underlining all of `tokens` (a span on its own covers only the first token).
    pub(crate) fn over(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}
