//! `gp serve --config gp.toml`: the file, `GP_SERVE_<KEY>` variables over it, flags over
//! both; `--print-config` round-trips; what is refused, and how it is said.

use std::path::Path;
use std::process::Output;

use gp_host::http::ServeConfig;

/// `gp serve ARGS` with `env` set (and no other `GP_SERVE_` variable), run to its end.
fn serve(args: &[&dyn AsRef<std::ffi::OsStr>], env: &[(&str, &str)]) -> Output {
    crate::harness::gp_serve()
        .args(args.iter().map(|a| a.as_ref()))
        .env_remove("GP_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .output()
        .expect("run gp serve")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn write(dir: &Path, name: &str, contents: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn print_config_shows_the_file_and_reads_back_as_the_same_configuration() {
    let dir = crate::harness::base_dir();
    let file = write(
        dir.path(),
        "gp.toml",
        r#"
listen = "0.0.0.0:8080"
metrics = "0.0.0.0:9090"
required = ["sample", "auth"]
timeout = "5s"
follow = ["oci://registry.example:5000/plugins/sample:stable"]
follow-every = "30s"
token-file = "/run/secrets/gp/admin-token"
"#,
    );
    let printed = serve(&[&"--config", &file, &"--print-config"], &[]);
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    let first = text(&printed.stdout);
    assert!(
        first.starts_with("# gp serve: the effective configuration"),
        "{first}"
    );
    // Read back: the same configuration, and printed again, the same text.
    let again = write(dir.path(), "printed.toml", &first);
    let config: ServeConfig = toml::from_str(&first).unwrap();
    let expected: ServeConfig = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(config, expected);
    assert_eq!(config.required, ["sample", "auth"]);
    assert_eq!(config.timeout, std::time::Duration::from_secs(5));
    let reprinted = serve(&[&"--config", &again, &"--print-config"], &[]);
    assert_eq!(text(&reprinted.stdout), first);
    // Nothing secret: the token file is named, its contents never read.
    assert!(
        first.contains("token-file = \"/run/secrets/gp/admin-token\""),
        "{first}"
    );
}

#[test]
fn the_environment_overrides_the_file_and_flags_override_both() {
    let dir = crate::harness::base_dir();
    let file = write(
        dir.path(),
        "gp.toml",
        "queue = 7\nconcurrency = 3\naccess-log = true\n",
    );
    let printed = serve(
        &[
            &"--config",
            &file,
            &"--print-config",
            &"--queue",
            &"9",
            &"--no-access-log",
        ],
        &[
            ("GP_SERVE_QUEUE", "8"),
            ("GP_SERVE_CONCURRENCY", "4"),
            ("GP_SERVE_ISOLATE", "a,b"),
        ],
    );
    let config: ServeConfig = toml::from_str(&text(&printed.stdout)).unwrap();
    assert_eq!((config.queue, config.concurrency), (9, 4));
    assert_eq!(config.isolate, ["a", "b"]);
    assert!(!config.access_log);
    // GP_SERVE_CONFIG names the file when --config does not.
    let printed = serve(
        &[&"--print-config"],
        &[("GP_SERVE_CONFIG", file.to_str().unwrap())],
    );
    let config: ServeConfig = toml::from_str(&text(&printed.stdout)).unwrap();
    assert_eq!(config.queue, 7);
}

#[test]
fn an_unknown_key_or_a_bad_value_is_refused_with_its_line() {
    let dir = crate::harness::base_dir();
    let file = write(
        dir.path(),
        "gp.toml",
        "listen = \"127.0.0.1:8080\"\nlisen = 3\n",
    );
    let refused = serve(&[&"--config", &file], &[]);
    assert_eq!(refused.status.code(), Some(2));
    let message = text(&refused.stderr);
    let expected_start = format!(
        "error: {}: not a gp serve configuration:\nTOML parse error at line 2, column 1\n  |\n2 | lisen = 3\n  | ^^^^^\nunknown field `lisen`, expected one of `dir`, `create`, `listen`, ",
        file.display()
    );
    assert!(message.starts_with(&expected_start), "{message}");

    let file = write(dir.path(), "gp.toml", "timeout = 5\n");
    let refused = serve(&[&"--config", &file], &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        text(&refused.stderr),
        format!(
            "error: {}: not a gp serve configuration:\nTOML parse error at line 1, column 11\n  |\n1 | timeout = 5\n  |           ^\ninvalid type: integer `5`, expected a duration\n",
            file.display()
        )
    );

    let refused = serve(&[&"--print-config"], &[("GP_SERVE_LISTN", "0.0.0.0:80")]);
    assert_eq!(refused.status.code(), Some(2));
    let message = text(&refused.stderr);
    assert!(
        message.starts_with("error: GP_SERVE_LISTN: not a setting of gp serve (did you mean GP_SERVE_LISTEN?); the settings are access-log, admin, "),
        "{message}"
    );
    let refused = serve(&[&"--print-config"], &[("GP_SERVE_TIMEOUT", "soon")]);
    assert_eq!(
        text(&refused.stderr),
        "error: GP_SERVE_TIMEOUT=soon: invalid value: string \"soon\", expected a duration\n"
    );
    let missing = dir.path().join("nowhere.toml");
    let refused = serve(&[&"--config", &missing], &[]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).starts_with(&format!(
            "error: {}: cannot read it: No such file or directory",
            missing.display()
        )),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn json_logs_are_one_object_a_line() {
    let base = crate::harness::base_dir_with(&["sample"]);
    let dir = crate::harness::base_dir();
    let file = write(
        dir.path(),
        "gp.toml",
        "log-format = \"json\"\nrequired = [\"sample\"]\n",
    );
    let child = crate::harness::gp_serve()
        .env_remove("GP_ADMIN_TOKEN")
        .arg(base.path())
        .arg("--config")
        .arg(&file)
        .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = super::JsonServer::new(child);
    let plugins = server.plugins_addr();
    server.event("ready: every plugin folder tried (1 loaded, 0 failed, 0 disabled)");
    assert_eq!(
        crate::http::get(plugins, "/api/plugin/sample/7").status,
        200
    );
    let access = server.event("request");
    assert_eq!(access["target"], "gp::access");
    assert_eq!(access["fields"]["status"], 200);
    assert!(server.terminate("gp serve did not stop").success());
    let events = server.rest().to_vec();
    let loaded = events
        .iter()
        .find(|e| e["fields"]["message"] == "plugin loaded")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(loaded["level"], "INFO");
    assert_eq!(loaded["target"], "gp");
    assert_eq!(loaded["fields"]["plugin"], "sample");
    assert!(loaded["timestamp"].is_string());
    // Standard error: nothing (everything is an event on standard output).
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(stderr, "");
    // What gp serve itself says goes the same way: a required plugin missing, as an error.
    let file = write(
        dir.path(),
        "gp.toml",
        "log-format = \"json\"\nrequired = [\"ghost\"]\n",
    );
    let refused = serve(
        &[
            &base.path(),
            &"--config",
            &file,
            &"--listen",
            &"127.0.0.1:0",
            &"--admin",
            &"127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(text(&refused.stderr), "");
    let events: Vec<serde_json::Value> = text(&refused.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect();
    let error = events
        .iter()
        .find(|e| e["level"] == "ERROR")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(
        error["fields"]["message"],
        format!("required plugin(s) not loaded: `ghost` (no plugin folder or package in {} declares it)", base.path().display())
    );
}
