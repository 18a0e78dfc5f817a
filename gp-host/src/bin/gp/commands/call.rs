//! `gp call`: call a plugin of a base directory and print the context's values as JSON.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use gp_host::{Context, Error, Manager, Value};

#[derive(clap::Args)]
pub struct Args {
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

pub fn exec(args: Args) -> Result<ExitCode, Error> {
    let Args {
        dir,
        name,
        label,
        values,
        timeout,
    } = args;
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
    Ok(ExitCode::SUCCESS)
}
