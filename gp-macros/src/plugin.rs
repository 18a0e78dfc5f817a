//! `#[plugin(...)] mod api { ... }` → the module, its handlers' attributes removed, and the
//! plugin's exports: a dispatch by label that calls the handlers, and the manifest with the
//! routes they declare.
//!
//! One attribute sees every handler, so the manifest (one embedded section) is built and
//! checked at once, and a label or route declared twice is found here. The exports are those
//! of `#[plugin_entry]` (`expand::entry`) around the generated dispatch.

use gp_core::manifest::{parse_route, Details, HttpDriver, Segment};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::{Item, ItemFn, ItemMod, LitStr};

use crate::args::RouteArg;
use crate::errors::Errors;
use crate::expand;
use crate::handler::{self, Handler, Kind};
use crate::parse::{self, Entry};
use crate::state::{self, StateFn};

const FORM: &str = "#[plugin] goes on an inline module holding the handlers: `#[plugin] mod api { #[route(GET, \"/items/:id\")] fn get(id: u64) -> Json<Item> { ... } }`";

pub fn plugin(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut module: ItemMod = match syn::parse2(item.clone()) {
        Ok(module) => module,
        Err(e) => {
            let error = syn::Error::new(e.span(), FORM).to_compile_error();
            return quote!(#error #item);
        }
    };
    let mut errors = Errors::default();
    let (mut args, args_complete) = parse::args(attr, &mut errors);
    for route in args.routes.drain(..) {
        let (method, path) = (&route.method, &route.path);
        errors.over(
            quote!(#method, #path),
            "in a #[plugin] module a route goes on its handler: `#[route(GET, \"/path\")] fn handler(...)`",
        );
    }
    let driver = args
        .driver
        .as_ref()
        .and_then(|d| HttpDriver::parse(&d.value()).ok())
        .unwrap_or(HttpDriver::Axum);
    let Some((_, items)) = &mut module.content else {
        errors.over(&module, FORM);
        let error = errors.0.map(|e| e.to_compile_error());
        return quote!(#error #module);
    };
    let mut handlers: Vec<Handler> = Vec::new();
    let mut state: Option<StateFn> = None;
    for item in items.iter_mut() {
        if let Item::Fn(function) = item {
            if let Some(found) = state::take(function, &mut errors) {
                if state.is_some() {
                    errors.at(
                        function.sig.ident.span(),
                        "the module already has an `#[on_load]`: keep one",
                    );
                }
                state = Some(found);
                continue;
            }
            let params = |route: &RouteArg| route_params(&route.path.value(), driver);
            handlers.extend(handler::take(function, params, &mut errors));
        }
    }
    check_labels(&handlers, &module.ident, &mut errors);
    if state.is_none() {
        for handler in handlers.iter().filter(|h| h.takes_state()) {
            errors.at(
                handler.ident.span(),
                format!("`{}` takes the plugin's state (a `&` argument), but the module has no `#[on_load]` that builds it: add `#[on_load] fn open() -> Result<State>`, or take the value another way", handler.ident),
            );
        }
    }
    args.routes = handlers
        .iter()
        .filter_map(|h| match &h.kind {
            Kind::Route(route) => Some(route.clone()),
            _ => None,
        })
        .collect();
    let manifest = parse::manifest(args, args_complete, &mut errors);
    if let Some(error) = errors.0 {
        // The module as the author wrote it, less the attributes read here (which would be
        // unknown attributes to the compiler): the only errors are ours.
        let error = error.to_compile_error();
        return quote!(#error #[allow(dead_code)] #module);
    }
    let mut details = details(&handlers);
    let config = state.as_ref().and_then(|s| s.config.clone());
    let asynchronous = details.has_async();
    if asynchronous && state.is_none() {
        // The instance that holds the async handlers' runtime, with no state of the author's.
        state = Some(StateFn::unit());
    }
    // With an instance, whether it takes a configuration: a host reads none for one that
    // does not (a stale file, a secret it cannot resolve, would refuse it for nothing).
    details.configured = state.as_ref().map(|_| config.is_some());
    let function = dispatch(&handlers, items, state.as_ref().map(|s| &s.state));
    let state = state.map(|state| {
        let (tokens, open, close) = state.entry_points(asynchronous);
        items.push(Item::Verbatim(tokens));
        (open, close)
    });
    let exports = expand::entry(Entry {
        function,
        manifest,
        state,
        details,
        config,
    });
    items.push(Item::Verbatim(exports));
    quote!(#module)
}

/// Which handlers are `async fn`, for the host (see `gp_core::manifest::Details`).
fn details(handlers: &[Handler]) -> Details {
    let mut details = Details::default();
    let mut sync = Vec::new();
    for handler in handlers {
        match (handler.kind.label(), handler.asynchronous) {
            (Some(label), true) => details.async_labels.push(label.value()),
            (Some(label), false) => sync.push(label.value()),
            (None, asynchronous) => details.async_fallback = asynchronous,
        }
    }
    if details.async_fallback {
        details.sync_labels = sync;
    }
    details
}

/// The names of `route`'s parameters, `None` if it does not parse (the manifest says why).
fn route_params(route: &str, driver: HttpDriver) -> Option<Vec<String>> {
    let segments = parse_route(route, driver).ok()?;
    Some(
        segments
            .into_iter()
            .filter_map(|segment| match segment {
                Segment::Literal(_) => None,
                Segment::Param(name) | Segment::Typed(name, _) | Segment::CatchAll(name) => {
                    Some(name.to_owned())
                }
            })
            .collect(),
    )
}

/// Each label is one handler's, there is at most one fallback, and at least one handler.
fn check_labels(handlers: &[Handler], module: &Ident, errors: &mut Errors) {
    if handlers.is_empty() {
        errors.at(
            module.span(),
            "this #[plugin] module has no handler: mark its functions with `#[route(GET, \"/path\")]`, `#[label(\"name\")]` or `#[fallback]`",
        );
    }
    let mut seen: Vec<(String, &Ident)> = Vec::new();
    let mut fallback: Option<&Ident> = None;
    for handler in handlers {
        match &handler.kind {
            Kind::Fallback(span) => {
                if let Some(first) = fallback {
                    errors.at(
                        *span,
                        format!("`{first}` is already the fallback: keep one `#[fallback]`"),
                    );
                }
                fallback = Some(&handler.ident);
            }
            kind => {
                let label = kind.label().map(LitStr::value).unwrap_or_default();
                if let Some((_, first)) = seen.iter().find(|(l, _)| *l == label) {
                    errors.at(
                        kind.label().map_or(handler.ident.span(), LitStr::span),
                        format!("label `{label}` is already `{first}`'s: give each handler its own label"),
                    );
                }
                seen.push((label, &handler.ident));
            }
        }
    }
}

/// The entry point: a match on the call's label, one arm per handler.
fn dispatch(handlers: &[Handler], items: &[Item], state: Option<&syn::Type>) -> ItemFn {
    let taken = |name: &str| {
        items
            .iter()
            .any(|item| matches!(item, Item::Fn(f) if f.sig.ident == name))
    };
    let name = ["gp_dispatch", "__gp_dispatch", "__gp_dispatch_"]
        .into_iter()
        .find(|n| !taken(n))
        .unwrap_or("__gp_dispatch__");
    let name = Ident::new(name, Span::call_site());
    // Not `ctx`: a handler of that name would be shadowed by the argument.
    let ctx = Ident::new("__gp_ctx", Span::call_site());
    let mut arms = Vec::new();
    let mut known = Vec::new();
    let mut fallback = None;
    for handler in handlers {
        let call = handler.call(&ctx, state);
        match handler.kind.label() {
            Some(label) => {
                known.push(format!("`{}`", label.value()));
                arms.push(quote!(::core::option::Option::Some(#label) => #call));
            }
            None => fallback = Some(call),
        }
    }
    let otherwise = match fallback {
        Some(call) => quote!(_ => #call),
        None => {
            let known = known.join(", ");
            quote!(label => ::gp_sdk::__private::unknown_label(label, #known))
        }
    };
    syn::parse_quote! {
        #[inline(always)]
        fn #name(#ctx: &mut ::gp_sdk::Context<'_>) -> ::gp_sdk::Result {
            match #ctx.label() {
                #(#arms)*
                #otherwise
            }
        }
    }
}
