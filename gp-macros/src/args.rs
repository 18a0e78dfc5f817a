//! `#[plugin_entry(...)]`'s arguments → [`Args`], as written.
//!
//! Its own file because it is the attribute's syntax only (which keys, each at most once, and
//! the form of each value); what the values mean is checked where the manifest is built
//! (`manifest`).

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{bracketed, parenthesized, Ident, LitStr, Token};

use crate::errors::Errors;

/// The attribute's arguments, as written.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    pub(crate) maintainers: Option<(Span, Vec<LitStr>)>,
    pub(crate) home: Option<LitStr>,
    pub(crate) driver: Option<LitStr>,
    pub(crate) routes: Vec<RouteArg>,
    /// Misuses found while parsing that did not stop it.
    pub(crate) misuses: Errors,
}

#[derive(Clone)]
pub(crate) struct RouteArg {
    pub(crate) method: Ident,
    pub(crate) path: LitStr,
    pub(crate) label: LitStr,
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
