//! `#[plugin_entry(...)]` + `fn ...` → [`Entry`], every misuse a spanned `syn::Error`.

use gp_core::manifest::{self, HttpDriver, HttpMethod, HttpServices, Manifest, Route};
use proc_macro2::{Span, TokenStream};
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
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    fn at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}

pub fn entry(attr: TokenStream, item: TokenStream) -> syn::Result<Entry> {
    let mut errors = Errors::default();
    let args = match syn::parse2::<Args>(attr) {
        Ok(args) => args,
        Err(e) => {
            errors.push(e);
            Args::default()
        }
    };
    let function: ItemFn = syn::parse2(item).map_err(|e| {
        syn::Error::new(
            e.span(),
            "#[plugin_entry] goes on a function: `fn execute(ctx: &mut Context) -> Result<(), Error>`",
        )
    })?;
    check_signature(&function, &mut errors);
    let manifest = build_manifest(args, &mut errors);
    errors.finish(Entry { function, manifest })
}

const SIGNATURE: &str = "fn execute(ctx: &mut gp_sdk::Context) -> gp_sdk::Result";

fn check_signature(function: &ItemFn, errors: &mut Errors) {
    let sig = &function.sig;
    if let Some(token) = &sig.asyncness {
        errors.at(
            token.span(),
            "the plugin entry cannot be `async`: the host calls it synchronously; run async work on a runtime inside it",
        );
    }
    if let Some(token) = &sig.constness {
        errors.at(token.span(), "the plugin entry cannot be `const`");
    }
    if let Some(token) = &sig.unsafety {
        errors.at(
            token.span(),
            "the plugin entry cannot be `unsafe`: the host has no contract to uphold for it",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.at(
            abi.span(),
            "the plugin entry is a plain Rust function: remove the `extern` ABI, #[plugin_entry] generates the exported one",
        );
    }
    if let Some(param) = sig
        .generics
        .params
        .iter()
        .find(|p| !matches!(p, GenericParam::Lifetime(_)))
    {
        errors.at(
            param.span(),
            "the plugin entry cannot be generic: the host calls one concrete function",
        );
    } else if let Some(clause) = &sig.generics.where_clause {
        errors.at(
            clause.span(),
            "the plugin entry cannot have a `where` clause",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.at(variadic.span(), "the plugin entry cannot be variadic");
    }

    match sig.inputs.len() {
        1 => match &sig.inputs[0] {
            FnArg::Receiver(receiver) => errors.at(
                receiver.span(),
                format!("the plugin entry is a free function, not a method: `{SIGNATURE}`"),
            ),
            FnArg::Typed(arg) => {
                if !is_mut_ref_to_context(&arg.ty) {
                    errors.at(
                        arg.ty.span(),
                        format!("the plugin entry's argument must be `&mut Context` (gp_sdk::Context): `{SIGNATURE}`"),
                    );
                }
            }
        },
        0 => errors.at(
            sig.paren_token.span.join(),
            format!("the plugin entry takes one argument, the call's context: `{SIGNATURE}`"),
        ),
        n => errors.at(
            sig.inputs.span(),
            format!("the plugin entry takes one argument, not {n}: `{SIGNATURE}`; read other inputs from the context"),
        ),
    }

    match &sig.output {
        ReturnType::Default => errors.at(
            sig.paren_token.span.close(),
            format!("the plugin entry must return `Result<(), E>` where E: Display: `{SIGNATURE}`"),
        ),
        ReturnType::Type(_, ty) => {
            if !is_unit_result(ty) {
                errors.at(
                    ty.span(),
                    format!("the plugin entry must return `Result<(), E>` where E: Display, such as `gp_sdk::Result`: `{SIGNATURE}`"),
                );
            }
        }
    }
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        Type::Group(group) => last_segment(&group.elem),
        Type::Paren(paren) => last_segment(&paren.elem),
        _ => None,
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

/// `Result`, `gp_sdk::Result`, `Result<()>` or `Result<(), E>` (the compiler checks the rest).
fn is_unit_result(ty: &Type) -> bool {
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
    routes: Vec<RouteArg>,
}

struct RouteArg {
    method: Ident,
    path: LitStr,
    label: LitStr,
}

const ARGUMENTS: &str =
    "expected `name`, `description`, `maintainers`, `home` or `route(METHOD, \"/path\", label = \"...\")`";

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Args> {
        let mut args = Args::default();
        let mut errors = Errors::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            let duplicate = |errors: &mut Errors, taken: bool| {
                if taken {
                    errors.at(key.span(), format!("`{key}` is given twice"));
                }
            };
            match key.to_string().as_str() {
                "name" => {
                    duplicate(&mut errors, args.name.is_some());
                    args.name = Some(string_value(input)?);
                }
                "description" => {
                    duplicate(&mut errors, args.description.is_some());
                    args.description = Some(string_value(input)?);
                }
                "home" => {
                    duplicate(&mut errors, args.home.is_some());
                    args.home = Some(string_value(input)?);
                }
                "maintainers" => {
                    duplicate(&mut errors, args.maintainers.is_some());
                    input.parse::<Token![=]>()?;
                    let content;
                    let brackets = bracketed!(content in input);
                    let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
                    args.maintainers = Some((brackets.span.join(), list.into_iter().collect()));
                }
                "route" => {
                    let content;
                    parenthesized!(content in input);
                    args.routes.push(content.parse()?);
                }
                _ => errors.at(key.span(), format!("unknown argument `{key}`: {ARGUMENTS}")),
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        errors.finish(args)
    }
}

fn string_value(input: ParseStream) -> syn::Result<LitStr> {
    input.parse::<Token![=]>()?;
    input.parse()
}

impl Parse for RouteArg {
    fn parse(input: ParseStream) -> syn::Result<RouteArg> {
        const FORM: &str = "write `route(GET, \"/api/items/:id\", label = \"items.get\")`";
        let method: Ident = input
            .parse()
            .map_err(|e| syn::Error::new(e.span(), format!("expected an HTTP method: {FORM}")))?;
        input.parse::<Token![,]>()?;
        let path: LitStr = input.parse().map_err(|e| {
            syn::Error::new(e.span(), format!("expected the route as a string: {FORM}"))
        })?;
        input.parse::<Token![,]>()?;
        let key: Ident = input.parse()?;
        if key != "label" {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `label`: {FORM}"),
            ));
        }
        let label = string_value(input)?;
        let _ = input.parse::<Option<Token![,]>>()?;
        Ok(RouteArg {
            method,
            path,
            label,
        })
    }
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

    let mut routes = Vec::new();
    for route in &args.routes {
        let method = match HttpMethod::parse(&route.method.to_string()) {
            Ok(method) => method,
            Err(e) => {
                errors.at(route.method.span(), e);
                continue;
            }
        };
        if let Err(e) = manifest::parse_route(&route.path.value()) {
            errors.at(route.path.span(), e);
        }
        routes.push(Route {
            route: route.path.value(),
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
        http_services: (!routes.is_empty()).then(|| HttpServices {
            driver: HttpDriver::Axum,
            routes,
        }),
    };
    // Whatever the checks above did not already point at (a bad home, an empty label, a
    // duplicate route) is reported against the attribute as a whole.
    if errors.0.is_none() {
        if let Err(e) = manifest.validate() {
            let span = match &e {
                manifest::ManifestError::InvalidHome { .. } => {
                    args.home.as_ref().map_or(call_site, LitStr::span)
                }
                manifest::ManifestError::EmptyLabel { route, .. }
                | manifest::ManifestError::DuplicateRoute { route, .. } => args
                    .routes
                    .iter()
                    .rev()
                    .find(|r| r.path.value() == *route)
                    .map_or(call_site, |r| r.label.span()),
                _ => call_site,
            };
            errors.at(span, e);
        }
    }
    manifest
}
