//! `gp push`, `gp pull`, `gp search` and `gp delete`: plugins in an OCI registry, and what
//! `gp install` shares with them (the registry options, `NAME@RANGE`).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::failure::Failure;
use gp_host::hub::{self, Client, ClientOptions, Credentials, Namespace, Reference};
use gp_host::package::ScratchFile;
use gp_host::Error;

use super::shared::required_signers;

/// How to reach a registry: shared by every command that talks to one.
#[derive(clap::Args, Clone)]
pub struct RegistryArgs {
    /// The registry and namespace plugin names are looked up under, for NAME@RANGE and
    /// search: HOST[:PORT][/NAMESPACE] (default: $GP_REGISTRY)
    #[arg(long, value_name = "HOST/NAMESPACE")]
    pub registry: Option<String>,
    /// The user name to log in with (default: the credentials `docker login` stored, or none)
    #[arg(long)]
    pub username: Option<String>,
    /// Read the password or token for --username from standard input
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set, value_name = "BOOL")]
    pub password_stdin: bool,
    /// Read the password or token for --username from this file (a mounted secret)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<std::path::PathBuf>,
    /// Talk plain HTTP to the registry (loopback registries always are)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set, value_name = "BOOL")]
    pub plain_http: bool,
}

impl RegistryArgs {
    /// A client with these options. `--username`'s credentials are for `registry`
    /// (`HOST[:PORT]`) only: other registries get the Docker configuration's.
    pub fn client(&self, registry: &str) -> Result<Client, Failure> {
        if self.password_stdin && self.password_file.is_some() {
            return Err(Failure::usage(
                "--password-stdin and --password-file both give the password: give one",
            ));
        }
        if self.username.is_none() && (self.password_stdin || self.password_file.is_some()) {
            return Err(Failure::usage(
                "a password (--password-stdin, --password-file) needs --username",
            ));
        }
        let credentials = match &self.username {
            Some(username) => {
                let mut password = String::new();
                if let Some(file) = &self.password_file {
                    std::fs::File::open(file)
                        .and_then(|f| f.take(64 << 10).read_to_string(&mut password))
                        .map_err(|e| {
                            Failure::unusable(
                                file.display(),
                                format!("cannot read the password: {e}"),
                            )
                        })?;
                } else if self.password_stdin {
                    std::io::stdin()
                        .take(64 << 10)
                        .read_to_string(&mut password)
                        .map_err(|e| {
                            Failure::usage(format!(
                                "cannot read the password from standard input: {e}"
                            ))
                        })?;
                } else {
                    return Err(Failure::usage(
                        "--username needs --password-stdin or --password-file (a password is never read from the command line)",
                    ));
                }
                Credentials::Basic {
                    registry: registry.to_owned(),
                    username: username.clone(),
                    password: password.trim_end_matches(['\r', '\n']).to_owned(),
                }
            }
            None => Credentials::DockerConfig,
        };
        let mut options = ClientOptions::default();
        options.credentials = credentials;
        options.plain_http = self.plain_http;
        Ok(Client::new(options))
    }

    /// `--registry`, or `$GP_REGISTRY`; `what` says what it is needed for.
    pub fn namespace(&self, what: &str) -> Result<Namespace, Failure> {
        let text = self
            .registry
            .clone()
            .or_else(|| std::env::var("GP_REGISTRY").ok().filter(|s| !s.is_empty()))
            .ok_or_else(|| {
                Failure::usage(format!(
                    "{what} needs a registry: pass --registry HOST[:PORT]/NAMESPACE or set GP_REGISTRY"
                ))
            })?;
        Namespace::parse(&text).map_err(|e| Failure::usage(e.to_string()))
    }

    /// The reference `target` stands for, and a client for its registry: an `oci://`
    /// reference as it is, or `NAME@RANGE` resolved against the registry (printing what it
    /// resolved to, with its digest).
    pub fn resolve(&self, target: &str) -> Result<(Client, Reference), Failure> {
        if target.starts_with(hub::SCHEME) {
            let reference = reference(target)?;
            return Ok((self.client(&reference.registry)?, reference));
        }
        let (name, range) = match hub::parse_name_range(target) {
            Some(parsed) => parsed.map_err(|e| Failure::usage(e.to_string()))?,
            None => {
                return Err(Failure::usage(format!(
                    "`{target}` is neither an oci:// reference nor NAME@RANGE (for example sample@^1.2)"
                )))
            }
        };
        let namespace = self.namespace(&format!("`{target}`"))?;
        let client = self.client(&namespace.registry)?;
        let resolved = client.resolve(&namespace, &name, &range)?;
        eprintln!(
            "resolved {name}@{range} to {}: {}",
            resolved.version, resolved.reference
        );
        Ok((client, resolved.reference))
    }
}

/// What `gp serve --follow TARGET` follows: an `oci://…:TAG` reference, or `NAME@RANGE`
/// under the registry options' namespace.
pub fn follow_target(registry: &RegistryArgs, target: &str) -> Result<gp_host::Follow, Failure> {
    if target.starts_with(hub::SCHEME) {
        let reference = reference(target)?;
        if reference.tag.is_none() || reference.digest.is_some() {
            return Err(Failure::usage(format!(
                "--follow {target}: follow a tag (oci://HOST/NAMESPACE/NAME:TAG, such as :stable), not a digest, which never moves"
            )));
        }
        return Ok(gp_host::Follow::Tag(reference));
    }
    match hub::parse_name_range(target) {
        Some(parsed) => {
            let (name, range) = parsed.map_err(|e| Failure::usage(e.to_string()))?;
            Ok(gp_host::Follow::Range {
                namespace: registry.namespace(&format!("--follow {target}"))?,
                name,
                range,
            })
        }
        None => Err(Failure::usage(format!(
            "--follow {target}: give an oci://…:TAG reference or NAME@RANGE (for example sample@^1)"
        ))),
    }
}

/// `text`, which should have been an `oci://` reference.
fn reference(text: &str) -> Result<Reference, Failure> {
    Reference::parse(text).map_err(|invalid| Failure::unusable(text, invalid.to_string()))
}

/// `gp push`.
#[derive(clap::Args)]
pub struct PushArgs {
    /// The .plg package (as `gp build --pack` or `gp pack` write it)
    package: PathBuf,
    /// Where: oci://HOST[:PORT]/NAMESPACE/NAME[:TAG] (the tag defaults to the plugin's version);
    /// without it, NAME under --registry
    reference: Option<String>,
    /// Replace the package a version tag already names, for everyone (a version is immutable
    /// without it; pushing the same package again is always fine, and a tag that is not a
    /// version, such as `stable`, always moves)
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Publishes a package; prints where, with the digest, and what it replaced.
pub fn push(args: PushArgs) -> Result<ExitCode, Failure> {
    let mut options = hub::PushOptions::default();
    options.force = args.force;
    let pushed = match &args.reference {
        Some(text) => {
            let reference = reference(text)?;
            let client = args.registry.client(&reference.registry)?;
            client.push(&args.package, &reference, &options)?
        }
        None => {
            let namespace = args
                .registry
                .namespace("`gp push` without an oci:// reference")?;
            let client = args.registry.client(&namespace.registry)?;
            client.push_into(&args.package, &namespace, &options)?
        }
    };
    outln!(
        "pushed {} {} ({} bytes, {}) to {}",
        pushed.plugin.name,
        pushed.plugin.version,
        pushed.size,
        if pushed.signed {
            "signed"
        } else {
            "not signed"
        },
        Reference {
            digest: None,
            ..pushed.reference.clone()
        }
    )?;
    let digest = pushed.reference.digest.as_deref().unwrap_or_default();
    outln!("digest {digest}")?;
    if let Some(before) = &pushed.replaced {
        let tag = pushed.reference.tag.as_deref().unwrap_or_default();
        if hub::version_of(tag).is_some() {
            outln!("replaced version {tag}: {before} -> {digest}")?;
        } else {
            outln!("moved tag {tag}: {before} -> {digest}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `gp pull`.
#[derive(clap::Args)]
pub struct PullArgs {
    /// What: oci://HOST[:PORT]/REPOSITORY:TAG or …@sha256:DIGEST, or NAME@RANGE with --registry
    target: String,
    /// The folder to write NAME-VERSION.plg into (default: the current one)
    #[arg(short = 'o', long = "output", default_value = ".")]
    output: PathBuf,
    /// Require a signature by this public key (base64, or a .pub file); repeatable
    #[arg(long = "public-key", value_name = "KEY")]
    public_keys: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Downloads and verifies a package, and writes it as `NAME-VERSION.plg`.
pub fn pull(args: PullArgs) -> Result<ExitCode, Failure> {
    let trust = required_signers(&args.public_keys)?.unwrap_or_default();
    let (client, reference) = args.registry.resolve(&args.target)?;
    std::fs::create_dir_all(&args.output).map_err(|e| Error::Io {
        path: args.output.clone(),
        source: e,
    })?;
    // In the output folder's runtime directory, named for this process: what an interrupted
    // pull leaves there, `gp gc` (and a manager over the folder) removes.
    let runtime = args.output.join(gp_host::DEFAULT_RUNTIME_DIR);
    let download = ScratchFile::create(&runtime, "pull", ".plg")?;
    let verified = hub::pull_verified(
        &client,
        &reference,
        download.file(),
        download.path(),
        &trust,
        None,
    );
    let written = verified.and_then(|(pulled, unpacked)| {
        let target = args
            .output
            .join(super::shared::package_file_name(&unpacked.manifest));
        download.persist(&target)?;
        Ok((pulled, unpacked, target))
    });
    ScratchFile::tidy(&runtime);
    let (pulled, unpacked, target) = written?;
    outln!(
        "pulled {} {} -> {}",
        unpacked.manifest.name,
        unpacked.manifest.version,
        target.display()
    )?;
    outln!("from {}", pulled.reference)?;
    outln!("sha256 {}", pulled.sha256)?;
    Ok(ExitCode::SUCCESS)
}

/// `gp search`.
#[derive(clap::Args)]
pub struct SearchArgs {
    /// Words in the plugin's name or description (any case); all plugins without it
    #[arg(default_value = "")]
    query: String,
    /// Print JSON (one object per plugin) instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Lists the plugins in a registry namespace that match.
pub fn search(args: SearchArgs) -> Result<ExitCode, Failure> {
    let namespace = args.registry.namespace("`gp search`")?;
    let client = args.registry.client(&namespace.registry)?;
    let result = client.search(&namespace, &args.query)?;
    for (repository, why) in &result.skipped {
        eprintln!("skipped {}: {}", printable(repository), printable(why));
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&result.plugins).expect("search results serialise")
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if result.plugins.is_empty() {
        eprintln!("no plugin in {namespace} matches `{}`", args.query);
        return Ok(ExitCode::FAILURE);
    }
    let name_width = result
        .plugins
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let version_width = result
        .plugins
        .iter()
        .map(|f| f.newest_version.as_ref().map_or(1, |v| v.len()))
        .max()
        .unwrap_or(7)
        .max(7);
    outln!(
        "{:name_width$}  {:version_width$}  VERSIONS  DESCRIPTION",
        "NAME",
        "NEWEST"
    )?;
    for found in &result.plugins {
        // What install would refuse is marked where the description would be.
        let description = match &found.refused {
            Some(why) => format!("(gp install refuses it: {why})"),
            None => found.description.clone().unwrap_or_default(),
        };
        outln!(
            "{:name_width$}  {:version_width$}  {:<8}  {}",
            found.name,
            found.newest_version.as_deref().unwrap_or("-"),
            found.versions.len(),
            printable(&description)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `text` with control characters (a registry's, so anyone's) shown as `?`: a description
/// cannot move the cursor or recolour the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// `gp delete`.
#[derive(clap::Args)]
pub struct DeleteArgs {
    /// The version to delete: oci://HOST[:PORT]/REPOSITORY:TAG or …@sha256:DIGEST
    reference: String,
    /// Do not ask (needed when standard input is not a terminal)
    #[arg(long)]
    yes: bool,
    /// Delete the manifest even when other tags name it too, and every one of them with it
    /// (without it, only the tag is deleted where the registry can, and the delete is
    /// refused, naming the tags, where it cannot)
    #[arg(long)]
    all_tags: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Deletes one version where the registry allows it; names every tag removed.
pub fn delete(args: DeleteArgs) -> Result<ExitCode, Failure> {
    let reference = reference(&args.reference)?;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::usage(format!(
                "deleting {reference} removes it for everyone: pass --yes to delete without being asked"
            )));
        }
        eprint!(
            "delete {reference}{}? [y/N] ",
            if args.all_tags {
                " and every tag on its digest"
            } else {
                ""
            }
        );
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("not deleted");
            return Ok(ExitCode::FAILURE);
        }
    }
    let client = args.registry.client(&reference.registry)?;
    let deleted = client.delete(&reference, args.all_tags)?;
    if deleted.tag_only {
        outln!(
            "deleted the tag {} (the manifest stays under its other tags)",
            deleted.reference
        )?;
    } else {
        outln!("deleted {}", deleted.reference)?;
    }
    outln!(
        "tags removed: {}",
        if deleted.tags.is_empty() {
            "none".to_owned()
        } else {
            deleted.tags.join(", ")
        }
    )?;
    Ok(ExitCode::SUCCESS)
}
