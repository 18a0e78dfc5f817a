//! `gp new`: make a new plugin crate (from the files in `templates/`) that builds, packs and
//! loads as it stands.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::failure::Failure;
use gp_host::Error;

use super::shared::already_exists;

/// The files of a new plugin crate. `{name}` and `{dependency}` (the gp-sdk line) are
/// replaced in Cargo.toml, `{plugin}` (the name) and `{PLUGIN}` (it as an environment
/// variable's prefix) in `lib.rs`; `.gitignore` is written as it is.
const CARGO_TOML: &str = include_str!("../templates/Cargo.toml.in");
const TYPED_RS: &str = include_str!("../templates/typed.rs.in");
const ENTRY_RS: &str = include_str!("../templates/entry.rs.in");
const CONFIG_RS: &str = include_str!("../templates/config.rs.in");
const ASYNC_RS: &str = include_str!("../templates/async.rs.in");
const GITIGNORE: &str = include_str!("../templates/gitignore.in");

/// The form of a new plugin's `lib.rs`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Template {
    /// A `#[gp_sdk::plugin]` module: a typed label handler and a typed route.
    Typed,
    /// The typed form with a configuration (`config.json`), a secret and state built by
    /// `#[on_load]`.
    Config,
    /// The typed form with `async fn` handlers (gp-sdk's `async` feature).
    Async,
    /// One `#[plugin_entry]` function that reads and writes the context itself (the
    /// low-level form).
    Entry,
}

#[derive(clap::Args)]
pub struct Args {
    /// The plugin's name (and the crate's folder)
    name: String,
    /// The gp-sdk to depend on: a path to its crate (default: the gp-sdk this gp was
    /// built from, if it is still there, else the published version)
    #[arg(long)]
    sdk: Option<PathBuf>,
    /// The form of `src/lib.rs`
    #[arg(long, value_enum, default_value = "typed")]
    template: Template,
}

/// The gp-sdk this binary was built beside, if it is still there.
fn default_sdk() -> Option<PathBuf> {
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../gp-sdk");
    sdk.join("Cargo.toml")
        .is_file()
        .then(|| sdk.canonicalize().ok())
        .flatten()
}

/// The `version` of the package whose crate is at `sdk` (its Cargo.toml's `[package]` table).
fn sdk_version(sdk: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(sdk.join("Cargo.toml")).ok()?;
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if let Some(value) = line.strip_prefix("version").map(str::trim_start) {
            if in_package {
                let value = value.strip_prefix('=')?.trim();
                return Some(value.trim_matches('"').to_owned());
            }
        }
    }
    None
}

/// The gp-sdk releases this host loads plugins of: those of its gp-core's minor (for 0.x),
/// such as `0.1`, as a Cargo requirement.
fn sdk_requirement() -> String {
    let core = semver::Version::parse(gp_host::ABI_VERSION).expect("gp-core's own version");
    if core.major == 0 {
        format!("{}.{}", core.major, core.minor)
    } else {
        core.major.to_string()
    }
}

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let Args {
        name,
        sdk,
        template,
    } = args;
    if let Err(e) = gp_host::manifest::validate_name(&name) {
        eprintln!("error: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let dir = PathBuf::from(&name);
    if dir.exists() {
        return Err(already_exists(dir, "choose another name or remove it"));
    }
    // gp-sdk's features: `async fn` handlers need its runtime.
    let features = match template {
        Template::Async => ", features = [\"async\"]",
        _ => "",
    };
    let published = |version: &str| match features {
        "" => format!("gp-sdk = \"{version}\""),
        features => format!("gp-sdk = {{ version = \"{version}\"{features} }}"),
    };
    let dependency = match sdk.or_else(default_sdk) {
        Some(path) => {
            let path = path.canonicalize().map_err(|e| Error::Io {
                path: path.clone(),
                source: e,
            })?;
            // The version of the gp-sdk depended on, as its Cargo.toml says, not gp-host's.
            let version = sdk_version(&path).unwrap_or_else(sdk_requirement);
            format!(
                "gp-sdk = {{ path = {:?}{features} }}\n# To depend on the published gp-sdk instead, once it is on crates.io:\n# {}",
                path.display().to_string(),
                published(&version),
            )
        }
        None => published(&sdk_requirement()),
    };
    // The name first: it is checked to be letters, digits, '-' and '_', so it cannot bring in
    // a placeholder, while the dependency's path could.
    let cargo_toml = CARGO_TOML
        .replace("{name}", &name)
        .replace("{dependency}", &dependency);
    let prefix = name.to_ascii_uppercase().replace('-', "_");
    let (lib_rs, call) = match template {
        Template::Typed => (TYPED_RS.replace("{plugin}", &name), " --label greet"),
        Template::Config => (
            CONFIG_RS
                .replace("{plugin}", &name)
                .replace("{PLUGIN}", &prefix),
            " --label greet",
        ),
        Template::Async => (ASYNC_RS.replace("{plugin}", &name), " --label greet"),
        Template::Entry => (ENTRY_RS.to_owned(), ""),
    };
    let files = [
        ("Cargo.toml", cargo_toml.as_str()),
        ("src/lib.rs", lib_rs.as_str()),
        (".gitignore", GITIGNORE),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Io {
                path: parent.to_owned(),
                source: e,
            })?;
        }
        std::fs::write(&path, text).map_err(|e| Error::Io { path, source: e })?;
    }
    let line = dependency.lines().next().unwrap_or_default();
    outln!("created plugin crate {name}/ ({line})")?;
    if let Template::Config = template {
        outln!(
            "then, after `gp build`, write plugins/{name}/config.json: {{\"greeting\": \"hello\", \"token\": {{\"secret\": \"env:{prefix}_TOKEN\"}}}} and set {prefix}_TOKEN"
        )?;
    }
    outln!(
        "next: cd {name} && cargo test && gp build && gp call plugins {name}{call} --set 'name=\"you\"'"
    )?;
    Ok(ExitCode::SUCCESS)
}
