//! `gp`: inspect, list and call gp plugins from the command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use gp_host::{Context, Error, Manager, Value};

/// Inspect, list and call gp plugins.
#[derive(Parser)]
#[command(name = "gp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a plugin library's embedded manifest and ABI version, after the checks a host
    /// makes before calling it (the library is loaded into this process)
    Inspect {
        /// The plugin library (.so)
        library: PathBuf,
    },
    /// Print the plugin.json that matches a plugin library (read from the file, not loaded)
    Manifest {
        /// The plugin library (.so)
        library: PathBuf,
        /// Write it to this file instead of standard output
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Load every plugin folder in a base directory and report each one's status
    List {
        /// The plugin base directory
        dir: PathBuf,
    },
    /// Call a plugin and print the context's values afterwards, as JSON
    Call {
        /// The plugin base directory
        dir: PathBuf,
        /// The plugin's name
        name: String,
        /// The call's label
        #[arg(long)]
        label: Option<String>,
        /// A context value, KEY=JSON (e.g. --set n=41 --set 'who="ann"'); repeatable
        #[arg(long = "set", value_name = "KEY=JSON", value_parser = parse_set)]
        values: Vec<(String, Value)>,
        /// A deadline for the call, such as 500ms or 2s
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<Duration>,
    },
}

fn parse_set(arg: &str) -> Result<(String, Value), String> {
    let (key, json) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not KEY=JSON"))?;
    if key.is_empty() {
        return Err(format!("{arg:?} has an empty key"));
    }
    let json: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        format!(
            "the value of {key:?} is not JSON ({e}); quote strings, e.g. --set '{key}=\"text\"'"
        )
    })?;
    Ok((key.to_owned(), Value::from(json)))
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GP_LOG")
        .unwrap_or_else(|_| "warn,gp::plugin=info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode, Error> {
    match command {
        Command::Inspect { library } => {
            let info = gp_host::verify(&library)?;
            print!("{info}");
            println!("status:      loadable");
        }
        Command::Manifest { library, output } => {
            let json = gp_host::inspect(&library)?.plugin_json().to_json_pretty();
            match output {
                Some(path) => {
                    gp_host::build::write_atomically(&path, |tmp| std::fs::write(tmp, &json))?
                }
                None => print!("{json}"),
            }
        }
        Command::List { dir } => {
            let report = Manager::new(dir).load_plugins();
            print!("{report}");
            if !report.is_ok() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Call {
            dir,
            name,
            label,
            values,
            timeout,
        } => {
            let manager = Manager::new(&dir);
            let report = manager.load_plugins();
            let executor = manager.executor(&name).map_err(|not_found| {
                // If the plugin's folder failed to load, that failure is the useful answer.
                report
                    .failed
                    .into_iter()
                    .find(|f| f.dir.file_name().is_some_and(|n| n == name.as_str()))
                    .map_or(not_found, |f| f.error)
            })?;
            let mut ctx = Context::new();
            ctx.set_label(label);
            if let Some(timeout) = timeout {
                ctx = ctx.with_timeout(timeout);
            }
            for (key, value) in values {
                ctx.set(key, value);
            }
            executor.execute(&mut ctx)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&ctx.to_json()).expect("JSON values serialise")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
