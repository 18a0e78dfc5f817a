//! `#[plugin_entry(...)]` + `fn ...` → [`Entry`], every misuse a spanned `syn::Error`.

use gp_core::manifest::{self, HttpDriver, HttpMethod, HttpServices, Manifest, Route};
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    bracketed, parenthesized, FnArg, GenericArgument, GenericParam, Ident, ItemFn, LitStr,
    PathArguments, ReturnType, Token, Type,
};

/// A parsed and validated entry point.
pub struct Entry {
    /// The author's function, emitted unchanged.
    pub function: ItemFn,
    /// The manifest to embed.
    pub manifest: Manifest,
}

/// Errors collected so the author sees all of them at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

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

pub fn entry(attr: TokenStream, item: TokenStream) -> syn::Result<Entry> {
    let mut errors = Errors::default();
    // Misuses the parser steps over (an unknown or repeated argument) leave the other arguments
    // to check, so they are all reported at once; a syntax error leaves none worth checking.
    let (args, args_complete) = match syn::parse2::<Args>(attr) {
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
    };
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
    if !is_mut_ref_to_context(ty) {
        errors.over(ty, not_context);
    } else if let Some(lifetime) = static_lifetime(ty) {
        errors.at(
            lifetime.span(),
            format!("the context lives only for the call, not `'static`: remove the lifetime, `{signature}`"),
        );
    }
}

fn is_mut_ref_to_context(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) if r.mutability.is_some() => {
            last_segment(&r.elem).is_some_and(|s| s.ident == "Context")
        }
        Type::Group(group) => is_mut_ref_to_context(&group.elem),
        _ => false,
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

/// The attribute's arguments, as written.
#[derive(Default)]
struct Args {
    name: Option<LitStr>,
    description: Option<LitStr>,
    maintainers: Option<(Span, Vec<LitStr>)>,
    home: Option<LitStr>,
    driver: Option<LitStr>,
    routes: Vec<RouteArg>,
    /// Misuses found while parsing that did not stop it.
    misuses: Errors,
}

struct RouteArg {
    method: Ident,
    path: LitStr,
    label: LitStr,
}

const ARGUMENTS: &str =
    "expected `name`, `description`, `maintainers`, `home`, `driver` or `route(METHOD, \"/path\", label = \"...\")`";

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Args> {
        let mut args = Args::default();
        let mut errors = Errors::default();
        match parse_args(input, &mut args, &mut errors) {
            Ok(()) => {
                args.misuses = errors;
                Ok(args)
            }
            // A syntax error stops the parse, but the misuses found before it are reported too.
            Err(error) => {
                errors.push(error);
                errors.finish(args)
            }
        }
    }
}

fn parse_args(input: ParseStream, args: &mut Args, errors: &mut Errors) -> syn::Result<()> {
    while !input.is_empty() {
        let key: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), ARGUMENTS))?;
        let duplicate = |errors: &mut Errors, taken: bool| {
            if taken {
                errors.at(key.span(), format!("`{key}` is given twice: keep one"));
            }
        };
        match key.to_string().as_str() {
            "name" => {
                duplicate(errors, args.name.is_some());
                args.name = Some(string_value(&key, input)?);
            }
            "description" => {
                duplicate(errors, args.description.is_some());
                args.description = Some(string_value(&key, input)?);
            }
            "home" => {
                duplicate(errors, args.home.is_some());
                args.home = Some(string_value(&key, input)?);
            }
            "driver" => {
                duplicate(errors, args.driver.is_some());
                args.driver = Some(string_value(&key, input)?);
            }
            "maintainers" => {
                duplicate(errors, args.maintainers.is_some());
                let list = || -> syn::Result<_> {
                    input.parse::<Token![=]>()?;
                    let content;
                    let brackets = bracketed!(content in input);
                    let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
                    Ok((brackets.span.join(), list.into_iter().collect()))
                };
                args.maintainers = Some(list().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "`maintainers` is a list of strings: write `maintainers = [\"Ann <ann@example.com>\"]`",
                    )
                })?);
            }
            "route" => {
                let content;
                let parens = parenthesized!(content in input);
                args.routes
                    .push(route_arg(&content, key.span(), parens.span.close())?);
            }
            _ => {
                errors.at(key.span(), format!("unknown argument `{key}`: {ARGUMENTS}"));
                // Skip its value and go on to the next argument.
                while !input.is_empty() && !input.peek(Token![,]) {
                    input.parse::<TokenTree>()?;
                }
            }
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

/// `= "..."`, after `key`.
fn string_value(key: &Ident, input: ParseStream) -> syn::Result<LitStr> {
    let value = || -> syn::Result<LitStr> {
        input.parse::<Token![=]>()?;
        input.parse()
    };
    value().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("`{key}` takes a string: write `{key} = \"...\"`"),
        )
    })
}

/// The inside of `route(...)`, which spans from `start` (`route`) to `end` (its `)`).
fn route_arg(input: ParseStream, start: Span, end: Span) -> syn::Result<RouteArg> {
    const FORM: &str = "write `route(GET, \"/api/items/:id\", label = \"items.get\")`";
    let form = |e: syn::Error, what: &str| syn::Error::new(e.span(), format!("{what}: {FORM}"));
    let method: Ident = input
        .parse()
        .map_err(|e| form(e, "expected an HTTP method"))?;
    input
        .parse::<Token![,]>()
        .map_err(|e| form(e, "expected `,` after the method"))?;
    let path: LitStr = input
        .parse()
        .map_err(|e| form(e, "expected the route as a string"))?;
    // From here on, the hint repeats what the author wrote.
    let with_label = format!(
        "write `route({method}, {:?}, label = \"...\")`, with the label the plugin dispatches on",
        path.value()
    );
    let _ = input.parse::<Option<Token![,]>>()?;
    if input.is_empty() {
        let whole: TokenStream = [
            TokenTree::from(Ident::new("route", start)),
            TokenTree::from(Ident::new("end", end)),
        ]
        .into_iter()
        .collect();
        return Err(syn::Error::new_spanned(
            whole,
            format!("the route has no label: {with_label}"),
        ));
    }
    let expected_label =
        |span: Span| syn::Error::new(span, format!("expected `label = \"...\"`: {with_label}"));
    let key: Ident = input.parse().map_err(|e| expected_label(e.span()))?;
    if key != "label" {
        return Err(expected_label(key.span()));
    }
    let label = string_value(&key, input)?;
    let _ = input.parse::<Option<Token![,]>>()?;
    if !input.is_empty() {
        return Err(syn::Error::new(
            input.span(),
            format!("expected `)` after the label: {with_label}"),
        ));
    }
    Ok(RouteArg {
        method,
        path,
        label,
    })
}

/// Builds the manifest from `CARGO_PKG_*` and the arguments, and validates it with the rules
/// the host applies to `plugin.json`, pointing each error at the token it comes from.
fn build_manifest(args: Args, errors: &mut Errors) -> Manifest {
    let call_site = Span::call_site();
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());

    let name = match &args.name {
        Some(lit) => lit.value(),
        None => env("CARGO_PKG_NAME").unwrap_or_default(),
    };
    if let Err(e) = manifest::validate_name(&name) {
        let hint = if args.name.is_some() {
            ""
        } else {
            " (from the package name; set `name = \"...\"` to choose another)"
        };
        errors.at(
            args.name.as_ref().map_or(call_site, LitStr::span),
            format!("{e}{hint}"),
        );
    }

    let version_text = env("CARGO_PKG_VERSION").unwrap_or_default();
    let version = semver::Version::parse(&version_text).unwrap_or_else(|e| {
        errors.at(
            call_site,
            format!("package version {version_text:?} is not semver 2: {e}"),
        );
        semver::Version::new(0, 0, 0)
    });

    let description = match &args.description {
        Some(lit) => Some(lit.value()),
        None => env("CARGO_PKG_DESCRIPTION"),
    };
    if description.as_deref().is_some_and(|d| d.contains('\n')) {
        errors.at(
            args.description.as_ref().map_or(call_site, LitStr::span),
            "the description must be one line; set `description = \"...\"` to override the package's",
        );
    }

    let maintainers: Vec<(Span, String)> = match &args.maintainers {
        Some((_, list)) => list.iter().map(|l| (l.span(), l.value())).collect(),
        None => env("CARGO_PKG_AUTHORS")
            .map(|a| {
                a.split(':')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| (call_site, s.trim().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
    };
    for (span, maintainer) in &maintainers {
        if let Err(e) = manifest::validate_maintainer(maintainer) {
            let hint = if args.maintainers.is_some() {
                ""
            } else {
                " (from the package's authors; add an e-mail address there or set `maintainers = [...]`)"
            };
            errors.at(*span, format!("{e}{hint}"));
        }
    }

    let home = match &args.home {
        Some(lit) => Some(lit.value()),
        None => env("CARGO_PKG_HOMEPAGE").or_else(|| env("CARGO_PKG_REPOSITORY")),
    };

    let driver = match &args.driver {
        None => HttpDriver::Axum,
        Some(lit) => match HttpDriver::parse(&lit.value()) {
            Ok(driver) => {
                if args.routes.is_empty() {
                    errors.at(
                        lit.span(),
                        "`driver` without routes serves nothing: add `route(GET, \"/path\", label = \"...\")`, or remove `driver`",
                    );
                }
                driver
            }
            Err(e) => {
                errors.at(lit.span(), e);
                HttpDriver::Axum
            }
        },
    };
    let mut routes: Vec<Route> = Vec::new();
    for route in &args.routes {
        let method = match HttpMethod::parse(&route.method.to_string()) {
            Ok(method) => method,
            Err(e) => {
                errors.at(route.method.span(), e);
                continue;
            }
        };
        let path = route.path.value();
        if let Err(e) = manifest::parse_route(&path, driver) {
            errors.at(route.path.span(), e);
        }
        if route.label.value().trim().is_empty() {
            errors.at(
                route.label.span(),
                format!("route {method} {path:?} has an empty label: write the label the plugin dispatches on, such as `label = \"items.get\"`"),
            );
        }
        if routes.iter().any(|r| r.method == method && r.route == path) {
            let (method_token, path_token) = (&route.method, &route.path);
            errors.over(
                quote!(#method_token, #path_token),
                format!("route {method} {path:?} is declared twice: remove one, or change its method or path"),
            );
        }
        routes.push(Route {
            route: path,
            method,
            label: route.label.value(),
        });
    }

    let manifest = Manifest {
        name,
        version,
        description,
        maintainers: maintainers.into_iter().map(|(_, m)| m).collect(),
        home,
        source: None,
        http_services: (!routes.is_empty()).then_some(HttpServices { driver, routes }),
    };
    // Whatever the checks above did not already point at (a bad home) is reported against the
    // token it comes from, or the attribute as a whole.
    if errors.0.is_none() {
        if let Err(e) = manifest.validate() {
            match &e {
                manifest::ManifestError::InvalidHome { .. } => match &args.home {
                    Some(lit) => errors.at(
                        lit.span(),
                        format!("{e}: write `home = \"https://...\"`"),
                    ),
                    None => errors.at(
                        call_site,
                        format!("{e} (from the package's homepage or repository; fix it there or set `home = \"https://...\"`)"),
                    ),
                },
                _ => errors.at(call_site, e),
            }
        }
    }
    manifest
}
