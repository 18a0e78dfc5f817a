//! `gp call`: call one plugin of a base directory and print the context's values as JSON.
//!
//! Only the plugin asked for is loaded: its folder (or package) is found by the name its
//! `plugin.json` declares, read without loading any library, so that another folder's slow or
//! broken start-up code cannot delay or break the call.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::failure::Failure;
use gp_host::package;
use gp_host::{Context, Error, Manager, Value};

/// The exit code of a call abandoned because the plugin ran past its deadline and the grace
/// period (the code GNU `timeout` uses for a command that timed out).
pub const ABANDONED_EXIT_CODE: u8 = 124;

#[derive(clap::Args)]
pub struct Args {
    /// The plugin base directory, then the plugin's name; or the name alone, for a plugin in
    /// $GP_HOME/plugins
    #[arg(value_name = "DIR|NAME")]
    first: String,
    /// The plugin's name (as its plugin.json declares it), after DIR; only this plugin is
    /// loaded
    #[arg(value_name = "NAME")]
    second: Option<String>,
    /// The call's label
    #[arg(long)]
    label: Option<String>,
    /// A context value, KEY=JSON (e.g. --set n=41 --set 'who="ann"'); repeatable
    #[arg(long = "set", value_name = "KEY=JSON", value_parser = parse_set)]
    values: Vec<(String, Value)>,
    /// A deadline for the call, such as 500ms or 2s
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,
    /// With --timeout: how long past the deadline to wait for a plugin that ignores it before
    /// giving up on the call (its thread is abandoned, exit code 124)
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    grace: Duration,
    /// Write the JSON result to this file (atomically) instead of standard output, which
    /// then carries only what the plugin itself prints
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Run the plugin in a runner process of its own: a crash, an abort or `exit` in the
    /// plugin fails the call with its cause instead of taking `gp` down
    #[arg(long)]
    isolate: bool,
    /// Load new builds straight into this process, without first loading each in a throwaway
    /// runner (which turns a library that crashes the loader into an error instead of a crash)
    #[arg(long)]
    no_preflight: bool,
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

pub fn exec(args: Args) -> Result<ExitCode, Failure> {
    let Args {
        first,
        second,
        label,
        values,
        timeout,
        grace,
        output,
        isolate,
        no_preflight,
    } = args;
    let (dir, name) = match base_dir_and_name(first, second) {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    // A build that crashes the loader is refused, not fatal (a throwaway runner loads it first).
    let mut builder = Manager::builder(&dir).preflight(!no_preflight);
    if isolate {
        builder = builder.isolation(gp_host::isolation::Isolation::all());
    }
    let manager = builder.build();
    let origin = match find_plugin(&manager, &name)? {
        Found::Declared(origin) | Found::Unreadable(origin) => origin,
        Found::Nothing(missing) => {
            let mistakes = super::shared::base_dir_mistakes(&dir);
            if mistakes.is_empty() {
                eprintln!("error: {missing}");
            }
            for mistake in mistakes {
                eprintln!("error: {mistake}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    // A folder whose plugin.json could not be read is loaded all the same: its error, which
    // loading reports without opening the library, is the useful answer.
    manager.load_plugin(&origin)?;
    let executor = manager.executor(&name)?;

    let mut ctx = Context::new();
    ctx.set_label(label);
    if let Some(timeout) = timeout {
        ctx = ctx.with_timeout(timeout);
    }
    for (key, value) in values {
        ctx.set(key, value);
    }
    let Some((result, ctx)) = call_bounded(executor, ctx, &name, &dir, timeout, grace)? else {
        return Ok(ExitCode::FAILURE);
    };
    result?;
    let json = one_line_json(&ctx.to_json());
    match output {
        Some(path) => {
            let text = format!("{json}\n");
            super::shared::parent_created(&path)?;
            gp_host::build::write_atomically(&path, |tmp| std::fs::write(tmp, &text))?;
        }
        None => outln!("{json}")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The base directory and the plugin's name, from `gp call DIR NAME` or `gp call NAME` (under
/// GP_HOME); the exit code when they cannot be had (the message is printed).
fn base_dir_and_name(first: String, second: Option<String>) -> Result<(PathBuf, String), ExitCode> {
    // A file given where the base directory goes (`gp call NAME` alone is a plugin of
    // GP_HOME's, whatever files the current directory holds, unless it names a library).
    let looks_like_a_path = second.is_some()
        || first.contains(std::path::MAIN_SEPARATOR)
        || Path::new(&first).extension().is_some_and(|e| {
            ["so", "dylib", "dll", package::EXTENSION]
                .iter()
                .any(|x| e == *x)
        });
    if looks_like_a_path {
        if let Some(why) = super::shared::file_not_base_dir(Path::new(&first), "gp call {} NAME") {
            eprintln!("error: {why}");
            return Err(ExitCode::FAILURE);
        }
    }
    match second {
        Some(name) => Ok((PathBuf::from(first), name)),
        // A path alone: the name was forgotten, this is not a plugin of GP_HOME's. (A folder
        // of the current directory that shares its name with an installed plugin, such as
        // the plugin's own crate, is the plugin.)
        None if first.contains(std::path::MAIN_SEPARATOR)
            || (Path::new(&first).is_dir() && !installed_in_home(&first)) =>
        {
            eprintln!(
                "error: which plugin? give its name after the directory: gp call {first} NAME"
            );
            Err(ExitCode::FAILURE)
        }
        None => super::shared::base_dir_or_home(None).map(|dir| (dir, first)),
    }
}

/// A call's outcome, and the context it left.
type Answered = (Result<(), Error>, Context);

/// Runs the call on a thread of its own, so that a plugin ignoring its deadline cannot keep
/// this command waiting forever: past the deadline and `grace`, gp exits without waiting for
/// it. The call's outcome and context; `None` when it ended without one (said on stderr).
fn call_bounded(
    executor: gp_host::Executor,
    mut ctx: Context,
    name: &str,
    dir: &Path,
    timeout: Option<Duration>,
    grace: Duration,
) -> Result<Option<Answered>, Failure> {
    let give_up_at = ctx.deadline().map(|deadline| deadline + grace);
    let (done, outcome) = mpsc::channel();
    let call = std::thread::Builder::new()
        .name(format!("gp call {name}"))
        .spawn(move || {
            let result = executor.execute(&mut ctx);
            // Let go of the plugin before answering. Dropped after the answer, the executor
            // could be the last holder of the version (the main thread drops the manager as
            // soon as it has printed), and the process could exit before this thread dropped
            // it: an isolated version's runner then never heard it was unloaded and its
            // private copy stayed in the runtime directory (a few calls in a hundred).
            drop(executor);
            let _ = done.send((result, ctx));
        })
        .map_err(|e| Error::Io {
            path: dir.to_owned(),
            source: e,
        })?;
    let received = match give_up_at {
        Some(at) => outcome.recv_timeout(at.saturating_duration_since(Instant::now())),
        None => outcome
            .recv()
            .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
    };
    let (result, ctx) = match received {
        Ok(received) => received,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let timeout = timeout.expect("a give-up time comes from a timeout");
            eprintln!(
                "error: plugin `{name}` ignored its deadline: still running {} after its {} timeout; its thread is abandoned and gp exits without waiting for it",
                humantime::format_duration(grace),
                humantime::format_duration(timeout),
            );
            let _ = std::io::stdout().flush();
            // Not a return: the manager is not dropped (a version still in a call is not torn
            // down under it) and nothing waits for the thread, which ends with the process.
            std::process::exit(i32::from(ABANDONED_EXIT_CODE));
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The thread ended without an answer: the host itself panicked (plugin panics are
            // caught inside the plugin and come back as errors).
            let _ = call.join();
            eprintln!("error: the call to plugin `{name}` ended without a result");
            return Ok(None);
        }
    };
    Ok(Some((result, ctx)))
}

/// `value` as JSON on one line, with a space after each `,` and `:` (as Python's `json.dumps`
/// writes it): readable, and one line per call for scripts.
fn one_line_json(value: &serde_json::Value) -> String {
    struct Spaced;
    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
            writer.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Spaced);
    serde::Serialize::serialize(value, &mut serializer).expect("JSON values serialise");
    String::from_utf8(out).expect("JSON is UTF-8")
}

/// Where the plugin asked for is, as far as can be told without loading any library.
enum Found {
    /// The first folder or package (in name order, as `Manager::load_plugins` visits them)
    /// whose plugin.json declares the name.
    Declared(PathBuf),
    /// No readable plugin.json declares the name, but a folder (or package) whose plugin.json
    /// could not be read is called after it.
    Unreadable(PathBuf),
    /// Nothing to call: a one-line message naming the plugins there are, or the two folders
    /// (or packages) that declare the name.
    Nothing(String),
}

/// Finds the folder or package of plugin `name` in `manager`'s base directory, reading
/// plugin.json files (and unpacking packages into a scratch folder) without loading anything.
fn find_plugin(manager: &Manager, name: &str) -> Result<Found, Failure> {
    let base = manager.base_dir();
    let entries = std::fs::read_dir(base).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::MissingBaseDir {
                path: base.to_owned(),
            }
        } else {
            Error::Io {
                path: base.to_owned(),
                source: e,
            }
        }
    })?;
    let mut origins: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()) || is_package(&e.path()))
        .map(|e| e.path())
        .collect();
    origins.sort();

    let mut scratch: Option<tempfile::TempDir> = None;
    let mut names: Vec<String> = Vec::new();
    let mut unreadable: Vec<PathBuf> = Vec::new();
    let mut declaring: Vec<PathBuf> = Vec::new();
    for origin in origins {
        let declared = if is_package(&origin) {
            package_name(manager, &origin, &mut scratch)?
        } else {
            folder_name(&origin)
        };
        match declared {
            Some(declared) if declared == name => declaring.push(origin),
            Some(declared) => names.push(declared),
            None => unreadable.push(origin),
        }
    }
    // Two of them (a folder and a package, say): `gp list` and a manager refuse the second,
    // and so does a call, rather than pick one.
    match declaring.as_slice() {
        [origin] => return Ok(Found::Declared(origin.clone())),
        [first, second, ..] => {
            return Ok(Found::Nothing(format!(
                "plugin `{name}` is both in {} and in {}: plugin names must be unique in a base directory, remove or rename one (`gp list {}` shows both)",
                first.display(),
                second.display(),
                base.display()
            )))
        }
        [] => {}
    }
    if let Some(origin) = unreadable.iter().find(|o| called(o, name)) {
        return Ok(Found::Unreadable(origin.clone()));
    }

    names.sort();
    names.dedup();
    let mut message = format!("no plugin named `{name}` in {}", base.display());
    if let Some(close) = closest(name, &names) {
        message.push_str(&format!("; did you mean `{close}`?"));
    }
    let found = if names.is_empty() {
        "no plugins".to_owned()
    } else {
        format!("plugins found: {}", names.join(", "))
    };
    let unread = match unreadable.len() {
        0 => String::new(),
        1 => format!(
            "; 1 more folder could not be read, `gp list {}` says why",
            base.display()
        ),
        n => format!(
            "; {n} more folders could not be read, `gp list {}` says why",
            base.display()
        ),
    };
    message.push_str(&format!(" ({found}{unread})"));
    Ok(Found::Nothing(message))
}

/// Whether `path` names a package (`*.plg`).
fn is_package(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == package::EXTENSION) && path.is_file()
}

/// The name field of `dir`'s plugin.json, if it has one (the rest is checked when loading).
/// A plugin.json larger than a manager accepts is not read past that size.
fn folder_name(dir: &Path) -> Option<String> {
    let max = gp_host::manifest::MAX_MANIFEST_BYTES;
    let file = std::fs::File::open(dir.join(gp_host::MANIFEST_FILE)).ok()?;
    let mut text = Vec::new();
    file.take(max + 1).read_to_end(&mut text).ok()?;
    if text.len() as u64 > max {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&text).ok()?;
    json.get("name")?.as_str().map(str::to_owned)
}

/// The name of the plugin a package carries: the package is unpacked (checksums and signature
/// checked as the manager would) into a scratch folder, and its library is not loaded.
fn package_name(
    manager: &Manager,
    path: &Path,
    scratch: &mut Option<tempfile::TempDir>,
) -> Result<Option<String>, Failure> {
    let scratch = match scratch {
        Some(scratch) => scratch,
        None => scratch.insert(tempfile::tempdir().map_err(|e| Error::Io {
            path: std::env::temp_dir(),
            source: e,
        })?),
    };
    let unpacked = package::unpack(
        path,
        scratch.path(),
        manager.trust(),
        &manager.package_limits(),
    );
    Ok(unpacked.ok().map(|u| u.manifest.name))
}

/// Whether the folder or package `origin` is called after plugin `name` (`name/`,
/// `name.plg`, `name-1.0.0.plg`).
fn called(origin: &Path, name: &str) -> bool {
    let Some(stem) = origin.file_stem().and_then(|s| s.to_str()) else {
        return false;
    };
    if origin.is_dir() {
        return origin.file_name().is_some_and(|n| n == name);
    }
    stem == name
        || stem
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
}

/// The name in `names` closest to `name`, if it is within two edits of it.
fn closest<'a>(name: &str, names: &'a [String]) -> Option<&'a str> {
    names
        .iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.as_str())
}

/// The Levenshtein distance between `a` and `b`, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// Whether `$GP_HOME/plugins` holds `name` as `gp install` puts it (`NAME.plg`) or as a folder.
fn installed_in_home(name: &str) -> bool {
    let plugins = super::shared::gp_home().join("plugins");
    plugins.join(format!("{name}.plg")).is_file() || plugins.join(name).is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("sample", "sample"), 0);
        assert_eq!(edit_distance("samle", "sample"), 1);
        assert_eq!(edit_distance("sampel", "sample"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_suggests_only_near_names() {
        let names = vec!["dispatch".to_owned(), "sample".to_owned()];
        assert_eq!(closest("smaple", &names), Some("sample"));
        assert_eq!(closest("other", &names), None);
    }

    #[test]
    fn a_package_is_called_after_its_plugin() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["sample-0.1.0.plg", "sample.plg", "samples-1.0.0.plg"] {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        assert!(called(&dir.path().join("sample-0.1.0.plg"), "sample"));
        assert!(called(&dir.path().join("sample.plg"), "sample"));
        assert!(!called(&dir.path().join("samples-1.0.0.plg"), "sample"));
    }
}
