//! `#[derive(ConfigSchema)]`: a configuration type's JSON Schema as a constant, read from the
//! type and the `#[serde(...)]` attributes its `Deserialize` reads (`serde`), so the two
//! describe one shape. What it describes is listed in `gp_sdk::schema`.

mod serde_attrs;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Type};

use crate::signature::last_segment;
use serde_attrs::{Container, FieldAttrs, VariantAttrs};

pub fn derive(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    match schema(&input) {
        Ok(schema) => implementation(&input, schema),
        Err(error) => error.to_compile_error(),
    }
}

/// `impl ConfigSchema for Type { const SCHEMA: Schema = schema; }`, with a `ConfigSchema`
/// bound on each type parameter.
fn implementation(input: &DeriveInput, schema: TokenStream) -> TokenStream {
    let name = &input.ident;
    let mut generics = input.generics.clone();
    for param in generics.type_params_mut() {
        param
            .bounds
            .push(syn::parse_quote!(::gp_sdk::schema::ConfigSchema));
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        impl #impl_generics ::gp_sdk::schema::ConfigSchema for #name #ty_generics #where_clause {
            const SCHEMA: ::gp_sdk::schema::Schema = #schema;
        }
    }
}

fn schema(input: &DeriveInput) -> syn::Result<TokenStream> {
    let container = Container::read(&input.attrs)?;
    let name = input.ident.to_string();
    if let Some(how) = container.tagged() {
        return Ok(any(&format!("{name}: {how} (see the type)")));
    }
    if let Some(from) = &container.from {
        return Ok(any(&format!("{name}: read as {from}, then converted")));
    }
    match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) if container.transparent => {
                // Read as its one field that is not skipped.
                let mut read = Vec::new();
                for field in &fields.named {
                    if !FieldAttrs::read(&field.attrs)?.skip {
                        read.push(&field.ty);
                    }
                }
                match read.as_slice() {
                    [ty] => Ok(of_type(ty)),
                    _ => Ok(any(&format!("{name}: transparent (see the type)"))),
                }
            }
            Fields::Named(fields) => object(&name, &container, fields, &input.attrs),
            Fields::Unnamed(fields) if fields.unnamed.len() == 1 => {
                Ok(of_type(&fields.unnamed[0].ty))
            }
            Fields::Unnamed(_) => Ok(any(&format!("{name}: a tuple, read as an array"))),
            Fields::Unit => Ok(quote!(::gp_sdk::schema::Schema::Null)),
        },
        Data::Enum(data) => {
            let mut names = Vec::new();
            for variant in &data.variants {
                let attrs = VariantAttrs::read(&variant.attrs)?;
                if attrs.skip {
                    continue;
                }
                if attrs.other {
                    // Any other name reads as this variant: any string.
                    return Ok(quote!(::gp_sdk::schema::Schema::String));
                }
                if !matches!(variant.fields, Fields::Unit) {
                    return Ok(any(&format!("{name}: an enum with data (see the type)")));
                }
                names.push(match attrs.rename {
                    Some(rename) => rename,
                    None => container.rename_variant(&variant.ident.to_string()),
                });
            }
            Ok(quote!(::gp_sdk::schema::Schema::OneOf(&[#(#names),*])))
        }
        Data::Union(data) => Err(syn::Error::new(
            data.union_token.span(),
            "ConfigSchema describes structs and enums, which serde reads; not unions",
        )),
    }
}

fn any(what: &str) -> TokenStream {
    quote!(::gp_sdk::schema::Schema::Any(#what))
}

/// The schema of `ty`'s `ConfigSchema`, spanned at it: a field type without one is an error
/// there.
fn of_type(ty: &Type) -> TokenStream {
    quote_spanned!(ty.span()=> <#ty as ::gp_sdk::schema::ConfigSchema>::SCHEMA)
}

fn object(
    name: &str,
    container: &Container,
    fields: &syn::FieldsNamed,
    attrs: &[syn::Attribute],
) -> syn::Result<TokenStream> {
    let mut properties = Vec::new();
    let mut flattened = Vec::new();
    let mut aliased = false;
    for field in &fields.named {
        let attrs = FieldAttrs::read(&field.attrs)?;
        if attrs.skip {
            continue;
        }
        aliased |= attrs.alias;
        let ident = field.ident.as_ref().expect("a named field");
        let ty = &field.ty;
        if attrs.flatten {
            flattened.push(quote!(#ty).to_string().replace(' ', ""));
            continue;
        }
        let key = match attrs.rename {
            Some(rename) => rename,
            None => container.rename_field(ident),
        };
        let description = doc(&field.attrs);
        // serde's own leniency for a missing `Option`, which a `deserialize_with` drops.
        let optional =
            attrs.read_by.is_none() && last_segment(ty).is_some_and(|s| s.ident == "Option");
        let required = !(optional || attrs.default || container.default);
        let schema = match attrs.read_by {
            Some(function) => any(&format!("read by {function}")),
            None => of_type(ty),
        };
        properties.push(quote! {
            ::gp_sdk::schema::Property {
                name: #key,
                description: #description,
                schema: &#schema,
                required: #required,
            }
        });
    }
    let mut description = doc(attrs);
    if !flattened.is_empty() {
        let also = format!("and the keys of {} (flattened)", flattened.join(", "));
        description = match description.is_empty() {
            true => also,
            false => format!("{description} ({also})"),
        };
    }
    // Keys of a flattened field are unknown here, and an alias is a key the schema does not
    // list: the object cannot be closed.
    let closed = container.deny_unknown_fields && flattened.is_empty() && !aliased;
    Ok(quote! {
        ::gp_sdk::schema::Schema::Object(&::gp_sdk::schema::Object {
            name: #name,
            description: #description,
            properties: &[#(#properties),*],
            closed: #closed,
        })
    })
}

/// The doc comment in `attrs`, its lines joined by spaces (blank lines kept as paragraph
/// breaks).
fn doc(attrs: &[syn::Attribute]) -> String {
    let mut text = String::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        let syn::Meta::NameValue(value) = &attr.meta else {
            continue;
        };
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(line),
            ..
        }) = &value.value
        else {
            continue;
        };
        let line = line.value();
        let line = line.trim();
        if line.is_empty() {
            if !text.is_empty() && !text.ends_with("\n\n") {
                text.push_str("\n\n");
            }
        } else {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push(' ');
            }
            text.push_str(line);
        }
    }
    text.trim_end().to_owned()
}
