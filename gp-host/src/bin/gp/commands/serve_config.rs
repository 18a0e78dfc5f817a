//! `gp serve`'s settings from three places, later ones winning: `--config gp.toml` (or
//! `$GP_SERVE_CONFIG`), `GP_SERVE_<KEY>` environment variables, then flags. Each flag is the
//! key of the same name (`--body-limit` → `body-limit`, `GP_SERVE_BODY_LIMIT`; `--no-preflight`
//! → `preflight = false`), so the three cannot disagree about what a setting is called.
//!
//! The keys are [`ServeConfig`]'s. Values from the environment and from flags are laid over
//! the file's as TOML values, of the kind the key holds (a list from repeated flags or a
//! comma-separated variable), and the whole is then read as one `ServeConfig`: every value is
//! checked by the same code, whichever place it came from.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use gp_host::http::ServeConfig;
use toml::{Table, Value};

use crate::failure::Failure;

/// The prefix of the environment variables that set `gp serve`'s keys. (Not `GP_`: `GP_HOME`,
/// `GP_LOG`, `GP_RUNNER`, `GP_ADMIN_TOKEN`, `GP_REGISTRY`, ... mean other things.)
pub const ENV_PREFIX: &str = "GP_SERVE_";

/// The variable naming the configuration file when `--config` is not given.
pub const ENV_CONFIG: &str = "GP_SERVE_CONFIG";

/// The arguments of `gp serve` that are not settings.
const NOT_SETTINGS: [&str; 3] = ["config", "print_config", "verbose"];

/// The environment's `GP_SERVE_` variables (`GP_SERVE_CONFIG` included); a value that is not
/// UTF-8 is refused (`std::env::vars` would panic on it).
pub fn environment() -> Result<Vec<(String, String)>, Failure> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            name.starts_with(ENV_PREFIX).then_some((name, value))
        })
        .map(|(name, value)| match value.into_string() {
            Ok(value) => Ok((name, value)),
            Err(value) => Err(Failure::unusable(
                &name,
                format!("not UTF-8: {}", value.to_string_lossy()),
            )),
        })
        .collect()
}

/// The effective configuration: the file's, the environment's over it, the flags' over both.
pub fn resolve(
    file: Option<&Path>,
    matches: &clap::ArgMatches,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<ServeConfig, Failure> {
    let env: Vec<(String, String)> = env.into_iter().collect();
    let named = file.map(Path::to_owned).or_else(|| {
        env.iter()
            .find(|(name, _)| name == ENV_CONFIG)
            .map(|(_, path)| PathBuf::from(path))
    });
    let base = match &named {
        Some(path) => read_file(path)?,
        None => ServeConfig::default(),
    };
    let mut table = Table::try_from(&base).expect("a ServeConfig is a TOML table");
    let kinds = kinds();
    for (name, raw) in &env {
        let Some(key) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if name == ENV_CONFIG {
            continue;
        }
        let key = key.to_ascii_lowercase().replace('_', "-");
        let Some(kind) = kinds.get(&key) else {
            return Err(Failure::unusable(name, unknown(&key, &kinds)));
        };
        let refuse = |why: String| Failure::unusable(format!("{name}={raw}"), why);
        let value = match kind {
            // A TOML array when an item holds a comma (a range: `["sample@>=1.2, <2"]`); a
            // value that only starts with `[` (an IPv6 host, `[fd00::1]`) is a list item.
            Value::Array(_) if toml_array(raw).is_some() => {
                toml_array(raw).expect("checked just above")
            }
            Value::Array(_) => {
                let items: Vec<&str> = raw
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                typed(kind, &items).map_err(refuse)?
            }
            _ => typed(kind, &[raw.as_str()]).map_err(refuse)?,
        };
        check(&key, &value).map_err(refuse)?;
        table.insert(key, value);
    }
    for setting in settings() {
        if matches.value_source(&setting.id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let value = setting.value(matches, &kinds)?;
        table.insert(setting.key, value);
    }
    table
        .try_into::<ServeConfig>()
        .map_err(|e| Failure::usage(format!("the settings of gp serve: {e}")))
}

/// One of `gp serve`'s arguments that is a setting: its clap id, and the key it sets (its
/// long name, `--no-` taken off: then it sets the key to the opposite of its value).
struct Setting {
    id: String,
    key: String,
    negated: bool,
}

impl Setting {
    /// What the argument says in `matches`, as a value of its key's kind.
    fn value(&self, matches: &clap::ArgMatches, kinds: &Table) -> Result<Value, Failure> {
        let kind = kinds.get(&self.key).unwrap_or_else(|| {
            panic!(
                "the argument `{}` has no key `{}` in ServeConfig",
                self.id, self.key
            )
        });
        let raw: Vec<&str> = matches
            .get_raw(&self.id)
            .into_iter()
            .flatten()
            .map(|v| {
                v.to_str().ok_or_else(|| {
                    Failure::usage(format!(
                        "--{}: not UTF-8: {}",
                        self.key,
                        v.to_string_lossy()
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let value =
            typed(kind, &raw).map_err(|why| Failure::usage(format!("--{}: {why}", self.key)))?;
        Ok(match (self.negated, value) {
            (true, Value::Boolean(on)) => Value::Boolean(!on),
            (_, value) => value,
        })
    }
}

/// `gp serve`'s arguments that are settings. (From the command, not `matches.ids()`, which
/// has the groups of flattened structs too.)
fn settings() -> Vec<Setting> {
    use clap::CommandFactory;
    let command = crate::Cli::command();
    let serve = command
        .find_subcommand("serve")
        .expect("gp has a serve command");
    serve
        .get_arguments()
        .filter(|arg| !NOT_SETTINGS.contains(&arg.get_id().as_str()) && arg.get_id() != "help")
        .map(|arg| {
            let id = arg.get_id().as_str().to_owned();
            let name = arg.get_long().map_or_else(|| id.clone(), str::to_owned);
            let (key, negated) = match name.strip_prefix("no-") {
                Some(rest) => (rest.to_owned(), true),
                None => (name, false),
            };
            Setting { id, key, negated }
        })
        .collect()
}

/// The configuration file, read and checked whole: an unknown key, or a value of the wrong
/// kind, is refused with its line.
pub fn read_file(path: &Path) -> Result<ServeConfig, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::unusable(path.display(), format!("cannot read it: {e}")))?;
    toml::from_str(&text).map_err(|e| {
        Failure::unusable(
            path.display(),
            format!(
                "not a gp serve configuration:\n{}",
                e.to_string().trim_end()
            ),
        )
    })
}

/// The effective configuration as `--print-config` prints it: TOML that `--config` reads
/// back. It holds no secret by construction (tokens and passwords are files it names); where
/// the admin token comes from `$GP_ADMIN_TOKEN`, a comment says so without the value.
pub fn printed(config: &ServeConfig) -> String {
    let mut text = String::from(
        "# gp serve: the effective configuration (gp serve --config FILE reads it back)\n",
    );
    if config.token_file.is_none() && std::env::var_os("GP_ADMIN_TOKEN").is_some() {
        text.push_str("# admin token: from $GP_ADMIN_TOKEN (not shown)\n");
    }
    let table = Table::try_from(config).expect("a ServeConfig is a TOML table");
    let kinds = kinds();
    let unset: Vec<&str> = kinds
        .keys()
        .filter(|key| !table.contains_key(*key))
        .map(String::as_str)
        .collect();
    if !unset.is_empty() {
        text.push_str(&format!("# unset (their defaults): {}\n", unset.join(", ")));
    }
    text.push_str(&toml::to_string(&table).expect("a table is TOML"));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Every key, with a value of the kind it holds: the defaults, and an example for the keys
/// that are unset by default (a TOML table has no null).
pub fn kinds() -> Table {
    let mut example = ServeConfig::default();
    example.dir = Some("/plugins".into());
    example.metrics = Some(example.listen);
    example.token_file = Some("/token".into());
    example.read_only_token_file = Some("/token".into());
    example.admin_tls_cert = Some("/cert.pem".into());
    example.admin_tls_key = Some("/key.pem".into());
    example.max_connections = Some(1);
    example.registry = Some("localhost/plugins".into());
    example.username = Some("user".into());
    example.password_file = Some("/password".into());
    Table::try_from(&example).expect("a ServeConfig is a TOML table")
}

/// `raw` as a TOML array, if it is one.
fn toml_array(raw: &str) -> Option<Value> {
    let parsed: Table = toml::from_str(&format!("list = {raw}")).ok()?;
    parsed.get("list").filter(|v| v.is_array()).cloned()
}

/// Why `key` (from `GP_SERVE_<KEY>`) is refused: the key it may have meant, and every key.
fn unknown(key: &str, kinds: &Table) -> String {
    let closest = kinds
        .keys()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score > 0.8)
        .map(|(_, k)| {
            format!(
                " (did you mean {ENV_PREFIX}{}?)",
                k.to_ascii_uppercase().replace('-', "_")
            )
        })
        .unwrap_or_default();
    let keys = kinds
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    format!("not a setting of gp serve{closest}; the settings are {keys}, each as {ENV_PREFIX}<KEY> in upper case with `_` for `-`")
}

/// `raw` as a value of `kind`'s kind: a list for a list, else its one item.
fn typed(kind: &Value, raw: &[&str]) -> Result<Value, String> {
    let one = |item: &str, kind: &Value| -> Result<Value, String> {
        Ok(match kind {
            Value::Boolean(_) => Value::Boolean(match item {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(format!("`{item}` is not true or false")),
            }),
            Value::Integer(_) => Value::Integer(
                item.parse()
                    .map_err(|_| format!("`{item}` is not a whole number"))?,
            ),
            _ => Value::String(item.to_owned()),
        })
    };
    match kind {
        Value::Array(items) => {
            let of = items
                .first()
                .cloned()
                .unwrap_or(Value::String(String::new()));
            raw.iter()
                .map(|item| one(item, &of))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        _ => one(raw.first().copied().unwrap_or_default(), kind),
    }
}

/// Whether `value` is a valid value of `key`, on its own: so that a bad environment variable
/// is named, rather than found later in the whole.
fn check(key: &str, value: &Value) -> Result<(), String> {
    let mut alone = Table::new();
    alone.insert(key.to_owned(), value.clone());
    alone
        .try_into::<ServeConfig>()
        .map(drop)
        // Its first line: the rest says `in <key>`, which the variable's name already does.
        .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn serve_matches(args: &[&str]) -> clap::ArgMatches {
        let matches = crate::Cli::command()
            .try_get_matches_from(
                std::iter::once("gp")
                    .chain(std::iter::once("serve"))
                    .chain(args.iter().copied()),
            )
            .unwrap();
        let (_, serve) = matches.subcommand().unwrap();
        serve.clone()
    }

    /// `pairs` as the environment's variables.
    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_flag_is_a_key_and_no_variable_means_something_else() {
        let kinds = kinds();
        let settings = settings();
        for setting in &settings {
            assert!(
                kinds.contains_key(&setting.key),
                "--{}: no key `{}` in ServeConfig",
                setting.id,
                setting.key
            );
        }
        for key in kinds.keys() {
            assert!(
                settings.iter().any(|s| &s.key == key),
                "the key `{key}` has no flag"
            );
            let var = format!("{ENV_PREFIX}{}", key.to_ascii_uppercase().replace('-', "_"));
            for taken in [
                "GP_RUNNER",
                "GP_ADMIN_TOKEN",
                "GP_HOME",
                "GP_MEMBARRIER",
                "GP_PLUGIN_LOG",
                "GP_REGISTRY",
                "GP_LOG",
                ENV_CONFIG,
            ] {
                assert_ne!(var, taken);
            }
        }
        // A flag's key is its name: what the documentation promises.
        assert!(settings.iter().any(|s| s.key == "public-key"));
        assert!(settings.iter().any(|s| s.key == "preflight" && s.negated));
    }

    #[test]
    fn the_flags_defaults_are_the_configurations() {
        // Every default a flag shows in --help is ServeConfig's own.
        let matches = serve_matches(&[]);
        let kinds = kinds();
        let defaults = Table::try_from(ServeConfig::default()).unwrap();
        for setting in settings() {
            if matches.value_source(&setting.id) != Some(ValueSource::DefaultValue) {
                continue;
            }
            let mut one = Table::new();
            one.insert(
                setting.key.clone(),
                setting.value(&matches, &kinds).unwrap(),
            );
            let read: ServeConfig = one.try_into().unwrap();
            assert_eq!(
                Table::try_from(read).unwrap().get(&setting.key),
                defaults.get(&setting.key),
                "--{}'s default",
                setting.key
            );
        }
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gp.toml");
        std::fs::write(
            &file,
            "timeout = \"5s\"\nqueue = 7\nisolate = [\"a\"]\npreflight = false\n",
        )
        .unwrap();
        let config = resolve(Some(&file), &serve_matches(&[]), env(&[])).unwrap();
        assert_eq!(
            (config.timeout.as_secs(), config.queue, config.preflight),
            (5, 7, false)
        );
        let config = resolve(
            Some(&file),
            &serve_matches(&["--queue", "9"]),
            env(&[
                ("GP_SERVE_QUEUE", "8"),
                ("GP_SERVE_ISOLATE", "b, c"),
                ("GP_SERVE_TIMEOUT", "6s"),
            ]),
        )
        .unwrap();
        assert_eq!(config.queue, 9);
        assert_eq!(config.isolate, ["b", "c"]);
        assert_eq!(config.timeout.as_secs(), 6);
        let config = resolve(Some(&file), &serve_matches(&["--no-access-log"]), env(&[])).unwrap();
        assert!(!config.access_log);
        // Flags of a flattened struct (the registry's) are keys too.
        let config = resolve(
            None,
            &serve_matches(&["--registry", "localhost:5000/team", "--plain-http"]),
            env(&[]),
        )
        .unwrap();
        assert_eq!(config.registry.as_deref(), Some("localhost:5000/team"));
        assert!(config.plain_http);
    }

    #[test]
    fn booleans_come_off_by_flag_lists_hold_commas_and_keys_are_flag_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gp.toml");
        // A boolean the file set, undone by its flag; a list with commas in an item.
        std::fs::write(&file, "watch = true\npreflight = false\n").unwrap();
        let config = resolve(
            Some(&file),
            &serve_matches(&["--watch=false", "--no-preflight=false"]),
            env(&[("GP_SERVE_FOLLOW", r#"["sample@>=1.2, <2", "other@^1"]"#)]),
        )
        .unwrap();
        assert!(!config.watch && config.preflight);
        assert_eq!(config.follow, ["sample@>=1.2, <2", "other@^1"]);
        let config = resolve(
            None,
            &serve_matches(&["--public-key", "k.pub"]),
            env(&[("GP_SERVE_ADMIN_HOST", "a.example,b.example")]),
        )
        .unwrap();
        assert_eq!(config.public_keys, ["k.pub"]);
        assert_eq!(config.admin_hosts, ["a.example", "b.example"]);
        let config = resolve(
            None,
            &serve_matches(&[]),
            env(&[("GP_SERVE_ADMIN_HOST", "[fd00::1],gp.example")]),
        )
        .unwrap();
        assert_eq!(config.admin_hosts, ["[fd00::1]", "gp.example"]);
    }

    #[test]
    fn a_bad_variable_is_refused_by_its_name_with_why() {
        let refused = |name: &str, value: &str| {
            resolve(None, &serve_matches(&[]), env(&[(name, value)]))
                .unwrap_err()
                .to_string()
        };
        let unknown = refused("GP_SERVE_LISTN", "x");
        assert!(
            unknown.starts_with("GP_SERVE_LISTN: not a setting of gp serve (did you mean GP_SERVE_LISTEN?); the settings are access-log, admin, "),
            "{unknown}"
        );
        assert_eq!(
            refused("GP_SERVE_QUEUE", "many"),
            "GP_SERVE_QUEUE=many: `many` is not a whole number"
        );
        assert_eq!(
            refused("GP_SERVE_LISTEN", "8080"),
            "GP_SERVE_LISTEN=8080: invalid socket address syntax"
        );
        let duration = refused("GP_SERVE_TIMEOUT", "soon");
        assert!(
            duration.starts_with("GP_SERVE_TIMEOUT=soon: "),
            "{duration}"
        );
    }
}
