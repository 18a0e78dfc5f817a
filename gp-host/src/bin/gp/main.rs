//! `gp`: inspect, list, call and serve gp plugins from the command line.
//!
//! This file is the dispatch table; each subcommand lives in `commands/<name>.rs` with its
//! arguments (`Args`) and what it does (`exec`).

// The arguments' doc comments are clap's --help text, where `HOST[:PORT]` and `<name>` are usage
// notation, not intra-doc links or HTML.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

#[macro_use]
mod output;
mod commands;
mod failure;
mod log;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Subcommand};
use failure::Failure;

/// The allocator of the `gp` binary (and of its runner processes): mimalloc, which costs a
/// fraction of glibc's `malloc` on the request path, where a request is a few dozen small
/// allocations freed on another thread than the one that made them. Plugins keep their own
/// allocator (a cdylib has its own allocator shim); values cross between the two only as
/// abi_stable types, which free through the side that allocated them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The gp command: make, build, pack, sign, publish, find, install, inspect, list, call and
/// serve gp plugins
#[derive(clap::Parser)]
#[command(name = "gp", version)]
struct Cli {
    /// Log more: gp's debug messages (such as the types that differ in a plugin built against
    /// another gp-core); GP_LOG, when set, decides instead
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a plugin library's embedded manifest and ABI version, after every check a host
    /// makes before calling it (this loads the library and runs its initialisers; --no-load
    /// reads the file only)
    ///
    /// The checks load the library into this process, which runs code it contains: the
    /// dynamic loader's initialisers (static constructors) and the plugin's root-module
    /// constructor, though not its on_load hook; use it on libraries you would load anyway.
    /// With --no-load, only what can be read from the file is shown: nothing in it runs, and
    /// the layout of the types it shares with the host is not checked.
    Inspect(commands::inspect::Args),
    /// Print the plugin.json that matches a plugin library (read from the file, not loaded)
    Manifest(commands::manifest::Args),
    /// Load every plugin folder in a base directory and report each one's status
    List(commands::list::Args),
    /// Call a plugin and print the context's values afterwards, as JSON (only that plugin is
    /// loaded: its folder is found by the name its plugin.json declares)
    Call(commands::call::Args),
    /// Load the plugins of a base directory and keep them loaded, serving their HTTP routes,
    /// the management API and web GUI, and their metrics (GET /metrics, GET /stats), until
    /// Ctrl-C or SIGTERM
    Serve(Box<commands::serve::Args>),
    /// Build a plugin crate with cargo (release) and write `OUT/<name>/plugin.json` + library,
    /// ready for a plugin base directory (or `OUT/<name>-<version>.plg` with --pack); either
    /// removes what the other wrote earlier for the same plugin, so that it is not loaded twice
    Build(commands::build::Args),
    /// Pack a plugin folder (plugin.json + library), or build and pack a plugin crate, into a
    /// .plg package: tar.gz with a SHA-256 checksum list, optionally signed
    Pack(commands::pack::Args),
    /// Check a .plg package completely without loading it: entries, checksums, signature,
    /// and the plugin it carries
    Verify(commands::verify::Args),
    /// Make an ed25519 key pair for signing packages: NAME.key (secret) and NAME.pub
    Keygen(commands::keygen::Args),
    /// Download a .plg package (a URL, a file, oci://… or NAME@RANGE from a registry), verify
    /// it, install it into a plugin base directory and load it
    Install(commands::install::Args),
    /// Publish a .plg package in an OCI registry (oci://HOST/NAMESPACE/NAME:VERSION); prints
    /// its digest
    Push(commands::hub::PushArgs),
    /// Download a plugin from an OCI registry (a reference, or NAME@RANGE), verify it and
    /// write it as NAME-VERSION.plg
    Pull(commands::hub::PullArgs),
    /// Find plugins in an OCI registry by name or description (its catalog, tags and
    /// annotations)
    Search(commands::hub::SearchArgs),
    /// Delete one version of a plugin from an OCI registry, where the registry allows it
    Delete(commands::hub::DeleteArgs),
    /// Make a new plugin crate that builds, packs and loads as it stands
    New(commands::new::Args),
    /// Print the per-plugin metrics of a running `gp serve` as a table
    Stats(commands::stats::Args),
    /// Remove what a base directory's runtime directory holds and no plugin needs: unpacked
    /// packages and git builds beyond the newest per plugin, leftover copies and scratch
    Gc(commands::gc::Args),
}

fn main() -> ExitCode {
    // `gp` is also the runner of isolated plugins (`--isolate`): started as one, it serves
    // its plugin and never returns from here.
    gp_host::isolation::run_if_runner();
    // A plugin that crashes the process is named on stderr before it goes.
    gp_host::fatal::install();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // `gp serve`'s settings come from a file and the environment too: resolved before the log
    // starts, since they say how it is written.
    let serve = match &cli.command {
        Command::Serve(args) => {
            let (_, flags) = matches.subcommand().expect("a subcommand");
            let resolved = commands::serve_config::environment().and_then(|env| {
                commands::serve_config::resolve(args.config.as_deref(), flags, env)
            });
            match resolved {
                Ok(config) if args.print_config => {
                    print!("{}", commands::serve_config::printed(&config));
                    return ExitCode::SUCCESS;
                }
                Ok(config) => Some(config),
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(2);
                }
            }
        }
        _ => None,
    };
    let json = serve
        .as_ref()
        .is_some_and(|c| c.log_format == gp_host::http::LogFormat::Json);
    if json {
        // Before anything is logged: the log's stream is chosen at its first line.
        log::set_json();
    }
    let one_shot = !matches!(cli.command, Command::Serve(_));
    init_log(&cli, json);
    if !one_shot {
        log::flush_periodically();
    }
    let ran = match serve {
        Some(config) => commands::serve::exec(config),
        None => run(cli.command),
    };
    log::flush();
    match ran {
        Ok(code) => code,
        // Whoever read the output has all they wanted: no message.
        Err(Failure::Closed) => ExitCode::from(failure::CLOSED_EXIT_CODE),
        Err(error) => {
            log::error(format_args!("{error}"));
            log::flush();
            ExitCode::FAILURE
        }
    }
}

/// The log: its filter (`GP_LOG`, else a default per command), its format (text, or JSON for
/// `gp serve --log-format json`), its writer (`log::Log`).
fn init_log(cli: &Cli, json: bool) {
    // A server reports what happens to its plugins; one-shot commands only what goes wrong.
    let default_filter = match (&cli.command, cli.verbose) {
        (_, true) => "warn,gp=debug",
        (Command::Serve(_), false) => "warn,gp=info",
        (_, false) => "warn,gp::plugin=info",
    };
    // ureq's transport traces every byte it sends, registry credentials included: never
    // shown, whatever GP_LOG asks for.
    let filter = tracing_subscriber::EnvFilter::try_from_env("GP_LOG")
        .unwrap_or_else(|_| default_filter.into())
        .add_directive("ureq_proto=off".parse().expect("a valid directive"))
        // What gp serve says itself, as log events with a JSON log: never filtered out.
        .add_directive(
            format!("{}=info", log::SAID)
                .parse()
                .expect("a valid directive"),
        );
    // One-shot commands print every load failure themselves (a table row or an error): the
    // manager's own "plugin not loaded" warning would say it a second time.
    let one_shot = !matches!(cli.command, Command::Serve(_));
    let not_loaded_twice = tracing_subscriber::filter::filter_fn(move |meta| {
        !(one_shot
            && meta.target() == "gp"
            && *meta.level() == tracing::Level::WARN
            && meta.module_path() == Some("gp_host::manager")
            && meta.fields().field("path").is_some())
    });
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    if json {
        // For collectors: each event a JSON object with its time, level, target and fields.
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(log::Log)
            .finish()
            .with(not_loaded_twice)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(log::Log)
            .with_ansi(std::io::stderr().is_terminal())
            .without_time()
            .finish()
            .with(not_loaded_twice)
            .init();
    }
}

fn run(command: Command) -> Result<ExitCode, Failure> {
    use commands::*;
    match command {
        Command::Inspect(args) => inspect::exec(args),
        Command::Manifest(args) => manifest::exec(args),
        Command::List(args) => list::exec(args),
        Command::Call(args) => call::exec(args),
        Command::Serve(_) => unreachable!("gp serve runs with its resolved settings"),
        Command::Build(args) => build::exec(args),
        Command::Pack(args) => pack::exec(args),
        Command::Verify(args) => verify::exec(args),
        Command::Keygen(args) => keygen::exec(args),
        Command::Install(args) => install::exec(args),
        Command::Push(args) => hub::push(args),
        Command::Pull(args) => hub::pull(args),
        Command::Search(args) => hub::search(args),
        Command::Delete(args) => hub::delete(args),
        Command::New(args) => new::exec(args),
        Command::Stats(args) => stats::exec(args),
        Command::Gc(args) => gc::exec(args),
    }
}
