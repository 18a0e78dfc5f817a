//! One handler of a `#[plugin] mod`: its attribute (`#[route]`, `#[label]` or `#[fallback]`)
//! read and removed, its arguments sorted into what the dispatch reads them from, and the
//! dispatch arm that calls it.
//!
//! Its own file because it is the typed form's whole contract with the author: which argument
//! is a path parameter, which an extractor, what a label's input and output are.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, Pat, PathArguments, ReturnType, Token, Type};

use crate::args::RouteArg;
use crate::errors::Errors;
use crate::signature::{check_qualifiers, context_ref, is_unit_result, last_segment};

/// A handler, read from its function.
pub(crate) struct Handler {
    pub(crate) kind: Kind,
    /// The function's name.
    pub(crate) ident: Ident,
    /// Whether it is an `async fn`: its call then runs its future on the instance's runtime.
    pub(crate) asynchronous: bool,
    /// The span of its `async` (or of its name): where a missing `async` feature is shown.
    async_span: Span,
    args: Vec<Arg>,
    output: Output,
}

pub(crate) enum Kind {
    /// `#[route(GET, "/path", label = "...")]`; the label defaults to the function's name.
    Route(RouteArg),
    /// `#[label("...")]`, or `#[label]` for the function's name.
    Label(LitStr),
    /// `#[fallback]`: every call no other handler takes.
    Fallback(Span),
}

impl Kind {
    /// The label the dispatch matches, for a route or a label handler.
    pub(crate) fn label(&self) -> Option<&LitStr> {
        match self {
            Kind::Route(route) => Some(&route.label),
            Kind::Label(label) => Some(label),
            Kind::Fallback(_) => None,
        }
    }
}

enum Arg {
    /// `&mut Context` or `&Context`.
    Context { mutable: bool },
    /// `Request<'_>`, the request as the context holds it.
    Request,
    /// A path parameter, bound by the argument's name.
    Param { name: String, ty: Type },
    /// `Query<T>`, `Json<T>`, `Body`, `HeaderMap`: read with `FromRequest`.
    Extract(Type),
    /// A label handler's input, read from the call's values.
    Input(Type),
    /// `&State`: the instance's state, which the module's `#[on_load]` builds; the span of
    /// the type the handler gives it.
    State(Span),
}

enum Output {
    None,
    /// `Result<(), E>`, or `Result` alone (gp_sdk's, whose value is `()`): nothing to write.
    UnitResult(Type),
    Result(Type),
    Value(Type),
}

/// The extractors, by the last segment of their type's path.
const EXTRACTORS: [&str; 4] = ["Query", "Json", "Body", "HeaderMap"];

const ROUTE_ARGUMENTS: &str = "Query<T>, Json<T>, Body, HeaderMap, Request or `&mut Context`";

/// The handler `function` declares, its attribute removed; `None` if it has none (an ordinary
/// function of the module). `params` gives a route's parameter names, `None` if the route does
/// not parse (the manifest reports that).
pub(crate) fn take(
    function: &mut ItemFn,
    params: impl Fn(&RouteArg) -> Option<Vec<String>>,
    errors: &mut Errors,
) -> Option<Handler> {
    let mut kinds = Vec::new();
    let mut kept = Vec::new();
    for attr in function.attrs.drain(..) {
        let name = attr.path().get_ident().map(Ident::to_string);
        let kind = match name.as_deref() {
            Some("route") => {
                attr.parse_args_with(|input: ParseStream| route(input, &function.sig.ident))
            }
            Some("label") => match &attr.meta {
                syn::Meta::Path(_) => Ok(Kind::Label(LitStr::new(
                    &function.sig.ident.unraw().to_string(),
                    function.sig.ident.span(),
                ))),
                _ => attr.parse_args::<LitStr>().map(Kind::Label).map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "write `#[label(\"name\")]`, or `#[label]` for the function's name",
                    )
                }),
            },
            Some("fallback") => match &attr.meta {
                syn::Meta::Path(path) => Ok(Kind::Fallback(path.span())),
                other => Err(syn::Error::new_spanned(
                    other,
                    "`#[fallback]` takes no arguments",
                )),
            },
            _ => {
                kept.push(attr);
                continue;
            }
        };
        match kind {
            Ok(kind) => kinds.push((attr, kind)),
            Err(error) => errors.push(error),
        }
    }
    function.attrs = kept;
    let mut kinds = kinds.into_iter();
    let (_, kind) = kinds.next()?;
    for (attr, _) in kinds {
        errors.over(
            attr,
            format!("`{}` already has a handler attribute: a function handles one route or label; write another function for this one", function.sig.ident),
        );
    }
    if function.sig.asyncness.is_some() {
        for arg in &function.sig.inputs {
            if matches!(arg, FnArg::Typed(arg) if context_ref(&arg.ty) == Some(true)) {
                errors.over(
                    arg,
                    "an `async fn` handler takes `&Context`, not `&mut Context`: its future shares the context with the check for the call's cancellation; return what you would have set",
                );
            }
        }
        elide_lifetimes(&mut function.sig, matches!(kind, Kind::Route(_)));
    }
    let sig = &function.sig;
    // `async fn` is a handler's to choose; every other qualifier is checked as for any export.
    let asynchronous = sig.asyncness.is_some();
    let async_span = sig.asyncness.map_or(sig.ident.span(), |a| a.span);
    let mut unqualified = sig.clone();
    unqualified.asyncness = None;
    check_qualifiers(&unqualified, "a handler", "#[plugin]", errors);
    let args = match &kind {
        Kind::Route(route) => route_args(sig, route, params(route), errors),
        Kind::Label(_) | Kind::Fallback(_) => label_args(sig, errors),
    };

    let output = match &sig.output {
        ReturnType::Default => Output::None,
        ReturnType::Type(_, ty) if is_unit_result(ty) => Output::UnitResult((**ty).clone()),
        ReturnType::Type(_, ty) if last_segment(ty).is_some_and(|s| s.ident == "Result") => {
            Output::Result((**ty).clone())
        }
        ReturnType::Type(_, ty) => Output::Value((**ty).clone()),
    };
    Some(Handler {
        kind,
        ident: sig.ident.clone(),
        asynchronous,
        async_span,
        args,
        output,
    })
}

/// In an `async fn`, rustc wants the lifetime of `&Context` and `Request` spelt (`'_`, E0726),
/// which a sync handler elides: the handler's signature gets it, so both read the same. Only
/// for the arguments the dispatch reads as those (`Request` is the request in a route only;
/// in a label it is the author's own input type).
fn elide_lifetimes(sig: &mut syn::Signature, route: bool) {
    for input in sig.inputs.iter_mut() {
        let FnArg::Typed(arg) = input else { continue };
        let context = context_ref(&arg.ty).is_some();
        let request = route && last_segment(&arg.ty).is_some_and(|s| s.ident == "Request");
        if !(context || request) {
            continue;
        }
        let mut ty = &mut *arg.ty;
        while let Type::Reference(reference) = ty {
            ty = &mut *reference.elem;
        }
        let Type::Path(path) = ty else { continue };
        let Some(last) = path.path.segments.last_mut() else {
            continue;
        };
        if (last.ident == "Context" || last.ident == "Request") && last.arguments.is_none() {
            last.arguments = PathArguments::AngleBracketed(syn::parse_quote!(<'_>));
        }
    }
}

/// `#[route(GET, "/path")]` or `#[route(GET, "/path", label = "...")]`.
fn route(input: ParseStream, function: &Ident) -> syn::Result<Kind> {
    const FORM: &str = "write `#[route(GET, \"/items/:id\")]` (the label is the function's name) or `#[route(GET, \"/items/:id\", label = \"items.get\")]`";
    let form = |e: syn::Error| syn::Error::new(e.span(), FORM);
    let method: Ident = input.parse().map_err(form)?;
    input.parse::<Token![,]>().map_err(form)?;
    let path: LitStr = input.parse().map_err(form)?;
    let mut label = LitStr::new(&function.unraw().to_string(), function.span());
    if input.parse::<Option<Token![,]>>()?.is_some() && !input.is_empty() {
        let key: Ident = input.parse().map_err(form)?;
        if key != "label" {
            return Err(syn::Error::new(key.span(), FORM));
        }
        input.parse::<Token![=]>().map_err(form)?;
        label = input.parse().map_err(form)?;
        let _ = input.parse::<Option<Token![,]>>()?;
    }
    if !input.is_empty() {
        return Err(syn::Error::new(input.span(), FORM));
    }
    Ok(Kind::Route(RouteArg {
        method,
        path,
        label,
    }))
}

/// Whether `ty` is `&T` for a `T` that could be the plugin's state: a path that is not the
/// context (`&Context`) nor `str`.
fn is_state(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => {
            last_segment(&r.elem).is_some_and(|s| s.ident != "Context" && s.ident != "str")
        }
        Type::Group(group) => is_state(&group.elem),
        _ => false,
    }
}

fn typed_inputs<'a>(
    sig: &'a syn::Signature,
    errors: &mut Errors,
) -> Vec<(&'a syn::PatType, Option<bool>)> {
    let mut inputs = Vec::new();
    let mut context: Option<&syn::PatType> = None;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.over(
                receiver,
                "a handler is a free function, not a method: move it out of the `impl` block",
            ),
            FnArg::Typed(arg) => {
                let ctx = context_ref(&arg.ty);
                if ctx.is_some() {
                    if context.is_some() {
                        errors.over(arg, "the handler takes the context twice: keep one");
                    }
                    context = Some(arg);
                }
                inputs.push((arg, ctx));
            }
        }
    }
    inputs
}

fn route_args(
    sig: &syn::Signature,
    route: &RouteArg,
    params: Option<Vec<String>>,
    errors: &mut Errors,
) -> Vec<Arg> {
    let path = route.path.value();
    let mut args = Vec::new();
    let mut bound = Vec::new();
    let mut request: Option<&syn::PatType> = None;
    let inputs = typed_inputs(sig, errors);
    for (arg, ctx) in &inputs {
        let ty = &*arg.ty;
        let kind = last_segment(ty).map(|s| s.ident.to_string());
        if let Some(mutable) = ctx {
            args.push(Arg::Context { mutable: *mutable });
        } else if is_state(ty) {
            args.push(Arg::State(ty.span()));
        } else if kind.as_deref() == Some("Request") {
            request = Some(arg);
            args.push(Arg::Request);
        } else if kind.as_deref().is_some_and(|k| EXTRACTORS.contains(&k)) {
            args.push(Arg::Extract(ty.clone()));
        } else {
            let Pat::Ident(name) = &*arg.pat else {
                errors.over(
                    &arg.pat,
                    format!("a path parameter is bound by its name: write `id: {}` for `:id`, or take one of {ROUTE_ARGUMENTS}", quote!(#ty)),
                );
                continue;
            };
            let name = name.ident.to_string();
            if let Some(params) = &params {
                if !params.contains(&name) {
                    let have = match params.as_slice() {
                        [] => "it has no parameters".to_owned(),
                        some => format!("its parameters are {}", names(some)),
                    };
                    errors.over(
                        arg,
                        format!("argument `{name}` is not a parameter of route {path:?} ({have}): name it after one, or take one of {ROUTE_ARGUMENTS}"),
                    );
                }
            }
            bound.push(name.clone());
            args.push(Arg::Param {
                name,
                ty: ty.clone(),
            });
        }
    }
    if let (Some(request), Some((context, _))) =
        (request, inputs.iter().find(|(_, ctx)| ctx.is_some()))
    {
        errors.over(
            quote!(#request, #context),
            "take the request or the context, not both: `ctx.request()?` gives the request",
        );
    }
    for param in params.iter().flatten().filter(|p| !bound.contains(p)) {
        errors.at(
            route.path.span(),
            format!("route {path:?} has parameter `{param}`, but `{}` takes no argument `{param}`: add `{param}: String` (or another type that parses from text, such as u64)", sig.ident),
        );
    }
    args
}

fn label_args(sig: &syn::Signature, errors: &mut Errors) -> Vec<Arg> {
    let mut args = Vec::new();
    let mut input: Option<&syn::PatType> = None;
    for (arg, ctx) in typed_inputs(sig, errors) {
        if let Some(mutable) = ctx {
            args.push(Arg::Context { mutable });
        } else if is_state(&arg.ty) {
            args.push(Arg::State(arg.ty.span()));
        } else if let Some(first) = input {
            errors.over(
                quote!(#first, #arg),
                "a label handler reads one input from the call's values: put these in one struct, whose fields are the keys",
            );
        } else {
            input = Some(arg);
            args.push(Arg::Input((*arg.ty).clone()));
        }
    }
    args
}

fn names(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

impl Handler {
    /// The dispatch arm's body: read the arguments, call the handler, turn its result into the
    /// response or the call's values. `ctx` is the dispatch's `&mut Context`.
    ///
    /// Each step is a call of a generic function in `gp_sdk::__private` whose tokens all carry
    /// the span of the author's type it is about, so that a type that does not fit is reported
    /// there, with the message of the trait it lacks.
    /// The first argument that takes the plugin's state, if any (for the error when the
    /// module builds none).
    pub(crate) fn takes_state(&self) -> bool {
        self.args.iter().any(|arg| matches!(arg, Arg::State(_)))
    }

    pub(crate) fn call(&self, ctx: &Ident, state: Option<&Type>) -> TokenStream {
        // `name(args)`, every token at `span`; `args` is given the context's name at `span`.
        let at = |span: Span, name: &str, args: &dyn Fn(Ident) -> TokenStream| {
            let function = Ident::new(name, span);
            let args = args(Ident::new(&ctx.to_string(), span));
            quote_spanned!(span=> ::gp_sdk::__private::#function(#args))
        };
        let mut reads = Vec::new();
        let mut passed = Vec::new();
        let mut request = None;
        for (i, arg) in self.args.iter().enumerate() {
            let var = format_ident!("__gp_arg{i}");
            let read = match arg {
                Arg::Context { mutable: true } => {
                    passed.push(quote!(&mut *#ctx));
                    continue;
                }
                Arg::Context { mutable: false } => {
                    passed.push(quote!(&*#ctx));
                    continue;
                }
                Arg::Request => {
                    // Last: it borrows the context, which the other reads take mutably.
                    request = Some(quote!(let #var = #ctx.request()?;));
                    passed.push(quote!(#var));
                    continue;
                }
                Arg::Param { name, ty } => {
                    let read = at(ty.span(), "path_param", &|ctx| quote!(#ctx, #name));
                    quote!(let #var: #ty = #read?;)
                }
                Arg::Extract(ty) => {
                    let read = at(ty.span(), "extract", &|ctx| quote!(#ctx));
                    quote!(let #var: #ty = #read?;)
                }
                Arg::Input(ty) => {
                    let read = at(ty.span(), "label_input", &|ctx| quote!(#ctx));
                    quote!(let #var: #ty = #read?;)
                }
                // The type `#[on_load]` returns, whatever the handler says: a handler that
                // names another is a type mismatch at its argument, never another reading
                // of the state's bytes. Without an `#[on_load]` the module refuses the
                // handler before this.
                Arg::State(span) => match state {
                    Some(state) => {
                        // Passed under the handler's type's span: a mismatch is shown there.
                        let at_type = Ident::new(&var.to_string(), *span);
                        reads.push(quote! {
                            // SAFETY: `#state` is the type this module's `#[on_load]` returns,
                            // which `open_state` boxed behind the handle the host passes.
                            #[allow(unsafe_code)]
                            let #var = unsafe { ::gp_sdk::__private::state::<#state>(&*#ctx) }?;
                        });
                        passed.push(quote!(#at_type));
                        continue;
                    }
                    None => continue,
                },
            };
            reads.push(read);
            passed.push(quote!(#var));
        }
        reads.extend(request);
        let ident = &self.ident;
        let finish = |ty: &Type, name: &str| {
            let out = Ident::new("__gp_out", ty.span());
            at(ty.span(), name, &|ctx| quote!(#out, #ctx))
        };
        let (bind, finish) = match (&self.kind, &self.output) {
            (_, Output::None) => (quote!(), quote!(::core::result::Result::Ok(()))),
            (Kind::Route(_), Output::UnitResult(ty) | Output::Result(ty) | Output::Value(ty)) => {
                (quote!(let __gp_out =), finish(ty, "respond"))
            }
            (_, Output::UnitResult(ty)) => (quote!(let __gp_out =), finish(ty, "label_done")),
            (_, Output::Result(ty)) => (quote!(let __gp_out =), finish(ty, "label_result")),
            (_, Output::Value(ty)) => (quote!(let __gp_out =), finish(ty, "label_value")),
        };
        let called = quote!(#ident(#(#passed),*));
        // At the `async`: without gp-sdk's `async` feature, its bound fails there.
        let block_on = quote_spanned!(self.async_span=> ::gp_sdk::__private::block_on);
        let runtime = Ident::new("__gp_runtime", self.async_span);
        let called = match (self.asynchronous, state) {
            (true, Some(state)) => quote! {{
                // SAFETY: `#state` is the type this module's `open` boxed behind the handle
                // the host passes; with async handlers, `open` started the runtime beside it.
                #[allow(unsafe_code)]
                let #runtime = unsafe { ::gp_sdk::__private::runtime::<#state>(&*#ctx) }?;
                #block_on(#runtime, &*#ctx, #called)?
            }},
            _ => called,
        };
        quote!({
            #(#reads)*
            #bind #called;
            #finish
        })
    }
}
