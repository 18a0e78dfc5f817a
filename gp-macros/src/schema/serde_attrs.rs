//! The `#[serde(...)]` attributes `#[derive(ConfigSchema)]` follows: those that change which
//! keys a configuration has, which are required, and what their values are. Attributes that
//! change none of that (`alias`, `bound`, `expecting`, ...) are read past.

use syn::meta::ParseNestedMeta;
use syn::{Attribute, LitStr};

/// serde's `rename_all` rules, by name.
#[derive(Clone, Copy)]
pub(super) enum Rule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl Rule {
    /// The rule `name` names; `None` for one serde does not know (serde's derive reports it,
    /// once).
    fn parse(name: &LitStr) -> Option<Rule> {
        Some(match name.value().as_str() {
            "lowercase" => Rule::Lower,
            "UPPERCASE" => Rule::Upper,
            "PascalCase" => Rule::Pascal,
            "camelCase" => Rule::Camel,
            "snake_case" => Rule::Snake,
            "SCREAMING_SNAKE_CASE" => Rule::ScreamingSnake,
            "kebab-case" => Rule::Kebab,
            "SCREAMING-KEBAB-CASE" => Rule::ScreamingKebab,
            _ => return None,
        })
    }

    /// A field's name (snake_case in Rust) under this rule, as serde renames it.
    fn field(self, name: &str) -> String {
        let words = name.split('_').filter(|w| !w.is_empty());
        match self {
            Rule::Lower | Rule::Snake => name.to_owned(),
            Rule::Upper | Rule::ScreamingSnake => name.to_ascii_uppercase(),
            Rule::Pascal => words.map(capitalised).collect(),
            Rule::Camel => {
                let pascal: String = words.map(capitalised).collect();
                first_with(&pascal, char::to_ascii_lowercase)
            }
            Rule::Kebab => name.replace('_', "-"),
            Rule::ScreamingKebab => name.replace('_', "-").to_ascii_uppercase(),
        }
    }

    /// A variant's name (PascalCase in Rust) under this rule, as serde renames it.
    fn variant(self, name: &str) -> String {
        let mut snake = String::new();
        for (i, c) in name.char_indices() {
            if i > 0 && c.is_uppercase() {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        }
        match self {
            Rule::Lower => name.to_ascii_lowercase(),
            Rule::Upper => name.to_ascii_uppercase(),
            Rule::Pascal => name.to_owned(),
            Rule::Camel => first_with(name, char::to_ascii_lowercase),
            Rule::Snake => snake,
            Rule::ScreamingSnake => snake.to_ascii_uppercase(),
            Rule::Kebab => snake.replace('_', "-"),
            Rule::ScreamingKebab => snake.replace('_', "-").to_ascii_uppercase(),
        }
    }
}

fn capitalised(word: &str) -> String {
    first_with(word, char::to_ascii_uppercase)
}

/// `word` with its first character mapped by `case`.
fn first_with(word: &str, case: fn(&char) -> char) -> String {
    let mut chars = word.chars();
    chars.next().map_or(String::new(), |first| {
        case(&first).to_string() + chars.as_str()
    })
}

/// A type's own `#[serde(...)]`.
#[derive(Default)]
pub(super) struct Container {
    rename_all: Option<Rule>,
    pub(super) deny_unknown_fields: bool,
    pub(super) default: bool,
    tag: bool,
    untagged: bool,
    /// `transparent`: read as its one field.
    pub(super) transparent: bool,
    /// `from = "T"` or `try_from = "T"`: read as `T`, then converted.
    pub(super) from: Option<String>,
}

impl Container {
    pub(super) fn read(attrs: &[Attribute]) -> syn::Result<Container> {
        let mut container = Container::default();
        each(attrs, |meta| {
            if meta.path.is_ident("rename_all") {
                container.rename_all = deserialize_name(&meta)?.and_then(|n| Rule::parse(&n));
            } else if meta.path.is_ident("deny_unknown_fields") {
                container.deny_unknown_fields = true;
            } else if meta.path.is_ident("default") {
                container.default = true;
                skip_value(&meta)?;
            } else if meta.path.is_ident("tag") {
                container.tag = true;
                skip_value(&meta)?;
            } else if meta.path.is_ident("untagged") {
                container.untagged = true;
            } else if meta.path.is_ident("transparent") {
                container.transparent = true;
            } else if meta.path.is_ident("from") || meta.path.is_ident("try_from") {
                container.from = Some(meta.value()?.parse::<LitStr>()?.value());
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        })?;
        Ok(container)
    }

    /// How an enum is represented, if not by its variants' names (`tag`, `untagged`).
    pub(super) fn tagged(&self) -> Option<&'static str> {
        match (self.tag, self.untagged) {
            (true, _) => Some("an internally tagged enum"),
            (_, true) => Some("an untagged enum"),
            _ => None,
        }
    }

    pub(super) fn rename_field(&self, field: &syn::Ident) -> String {
        let name = syn::ext::IdentExt::unraw(field).to_string();
        self.rename_all
            .map_or(name.clone(), |rule| rule.field(&name))
    }

    pub(super) fn rename_variant(&self, name: &str) -> String {
        self.rename_all
            .map_or(name.to_owned(), |rule| rule.variant(name))
    }
}

/// A field's `#[serde(...)]`.
#[derive(Default)]
pub(super) struct FieldAttrs {
    pub(super) rename: Option<String>,
    pub(super) default: bool,
    pub(super) skip: bool,
    pub(super) flatten: bool,
    /// The function that reads it (`with`, `deserialize_with`): its schema is that function's.
    pub(super) read_by: Option<String>,
    /// Whether it has an `alias`: a key the schema does not list is then read too.
    pub(super) alias: bool,
}

impl FieldAttrs {
    pub(super) fn read(attrs: &[Attribute]) -> syn::Result<FieldAttrs> {
        let mut field = FieldAttrs::default();
        each(attrs, |meta| {
            if meta.path.is_ident("rename") {
                field.rename = deserialize_name(&meta)?.map(|n| n.value());
            } else if meta.path.is_ident("default") {
                field.default = true;
                skip_value(&meta)?;
            } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_deserializing") {
                field.skip = true;
            } else if meta.path.is_ident("flatten") {
                field.flatten = true;
            } else if meta.path.is_ident("with") || meta.path.is_ident("deserialize_with") {
                field.read_by = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("alias") {
                field.alias = true;
                skip_value(&meta)?;
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        })?;
        Ok(field)
    }
}

/// A variant's `#[serde(...)]`.
#[derive(Default)]
pub(super) struct VariantAttrs {
    pub(super) rename: Option<String>,
    pub(super) skip: bool,
    /// `other`: the variant any unknown name reads as.
    pub(super) other: bool,
}

impl VariantAttrs {
    pub(super) fn read(attrs: &[Attribute]) -> syn::Result<VariantAttrs> {
        let mut variant = VariantAttrs::default();
        each(attrs, |meta| {
            if meta.path.is_ident("rename") {
                variant.rename = deserialize_name(&meta)?.map(|n| n.value());
            } else if meta.path.is_ident("skip") || meta.path.is_ident("skip_deserializing") {
                variant.skip = true;
            } else if meta.path.is_ident("other") {
                variant.other = true;
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        })?;
        Ok(variant)
    }
}

/// Runs `read` on every item of every `#[serde(...)]` in `attrs`.
fn each(
    attrs: &[Attribute],
    mut read: impl FnMut(ParseNestedMeta) -> syn::Result<()>,
) -> syn::Result<()> {
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(&mut read)?;
    }
    Ok(())
}

/// `name = "..."`, or the `deserialize` of `name(serialize = "...", deserialize = "...")`
/// (the name a configuration is read by); `None` for `name(serialize = "...")` alone, which
/// leaves the name it is read by as it was.
fn deserialize_name(meta: &ParseNestedMeta) -> syn::Result<Option<LitStr>> {
    if meta.input.peek(syn::Token![=]) {
        return meta.value()?.parse().map(Some);
    }
    let mut found = None;
    meta.parse_nested_meta(|inner| {
        if inner.path.is_ident("deserialize") {
            found = Some(inner.value()?.parse()?);
        } else {
            skip_value(&inner)?;
        }
        Ok(())
    })?;
    Ok(found)
}

/// Reads past an item's value (`= ...` or `(...)`), if it has one.
fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Rule;

    #[test]
    fn rename_rules_rename_as_serde_does() {
        let fields = [
            (Rule::Camel, "max_idle_ms", "maxIdleMs"),
            (Rule::Pascal, "max_idle_ms", "MaxIdleMs"),
            (Rule::Kebab, "max_idle_ms", "max-idle-ms"),
            (Rule::ScreamingSnake, "max_idle_ms", "MAX_IDLE_MS"),
            (Rule::ScreamingKebab, "max_idle_ms", "MAX-IDLE-MS"),
            (Rule::Upper, "max_idle_ms", "MAX_IDLE_MS"),
        ];
        for (rule, from, to) in fields {
            assert_eq!(rule.field(from), to);
        }
        let variants = [
            (Rule::Snake, "ReadOnly", "read_only"),
            (Rule::Kebab, "ReadOnly", "read-only"),
            (Rule::Camel, "ReadOnly", "readOnly"),
            (Rule::Lower, "ReadOnly", "readonly"),
            (Rule::ScreamingSnake, "ReadOnly", "READ_ONLY"),
        ];
        for (rule, from, to) in variants {
            assert_eq!(rule.variant(from), to);
        }
    }
}
