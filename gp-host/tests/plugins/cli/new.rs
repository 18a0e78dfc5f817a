//! `gp new` and the round trip it starts: new, build, pack, sign, serve, install, call; and the
//! names and folders it refuses; the templates (typed, config, async, entry).

use std::path::Path;
use std::process::{Command, Output};

use super::{ok, stderr, stdout};

/// Runs `gp args` in `dir`, with cargo's target dir shared with the other test builds.
fn gp_in(dir: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gp"))
        .args(args.iter().map(|a| a.as_ref()))
        .current_dir(dir)
        .env_remove("GP_LOG")
        .envs(crate::harness::build_env())
        .output()
        .expect("run gp")
}

/// Asserts that the crate `gp new` made at `krate` passes its own unit tests as generated,
/// built with the workspace's lock file (so it reuses the dependencies the tests built).
fn passes_its_own_tests(krate: &Path) {
    std::fs::copy(
        crate::harness::workspace().join("Cargo.lock"),
        krate.join("Cargo.lock"),
    )
    .unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tested = Command::new(cargo)
        .args(["test", "--quiet"])
        .current_dir(krate)
        .envs(crate::harness::build_env())
        .output()
        .unwrap();
    assert!(tested.status.success(), "{}", stderr(&tested));
}

// Long: one scenario, read top to bottom: each step starts from the state the last one left.
#[test]
fn new_build_pack_sign_serve_install_call_round_trip() {
    let work = crate::harness::base_dir();
    let w = work.path();
    let sdk = crate::harness::workspace().join("gp-sdk");

    let created = ok(gp_in(w, &[&"new", &"hello-gp", &"--sdk", &sdk]));
    assert!(
        created.starts_with("created plugin crate hello-gp/"),
        "{created}"
    );
    let krate = w.join("hello-gp");
    passes_its_own_tests(&krate);

    let built = ok(gp_in(&krate, &[&"build", &"--debug", &"-o", &"plugins"]));
    assert_eq!(built, "built hello-gp 0.1.0 -> plugins/hello-gp\n");
    let keys = ok(gp_in(w, &[&"keygen", &"signer"]));
    assert!(
        keys.starts_with("secret key: signer.key (keep it private)\npublic key: signer.pub = "),
        "{keys}"
    );
    let packed = ok(gp_in(
        w,
        &[
            &"pack",
            &"hello-gp/plugins/hello-gp",
            &"--sign",
            &"signer.key",
            &"-o",
            &"hello.plg",
        ],
    ));
    let sha256 = packed
        .lines()
        .find_map(|l| l.strip_prefix("sha256 "))
        .expect("gp pack prints the sha256")
        .to_owned();
    assert!(
        packed.starts_with("packed hello-gp 0.1.0 -> hello.plg\n"),
        "{packed}"
    );
    let verified = ok(gp_in(
        w,
        &[&"verify", &"hello.plg", &"--public-key", &"signer.pub"],
    ));
    assert!(
        verified.starts_with(&format!(
            "hello.plg: hello-gp 0.1.0, sha256 {sha256}\nsigned by "
        )),
        "{verified}"
    );

    let url = crate::harness::http_server(
        [(
            "/plugins/hello.plg".to_owned(),
            crate::harness::Reply::Body(std::fs::read(w.join("hello.plg")).unwrap()),
        )]
        .into_iter()
        .collect(),
    );
    let installed = ok(gp_in(
        w,
        &[
            &"install",
            &format!("{url}/plugins/hello.plg"),
            &"--sha256",
            &sha256,
            &"--public-key",
            &"signer.pub",
            &"--dir",
            &"base",
        ],
    ));
    assert_eq!(
        installed,
        format!(
            "installed hello-gp 0.1.0 -> {}\n",
            w.join("base/hello-gp.plg").display()
        )
    );
    let called = ok(gp_in(
        w,
        &[
            &"call",
            &"base",
            &"hello-gp",
            &"--label",
            &"greet",
            &"--set",
            &"name=\"round trip\"",
        ],
    ));
    let values: serde_json::Value = serde_json::from_str(&called).unwrap();
    assert_eq!(values["greeting"], "hello round trip");

    // A wrong key is refused, and nothing is installed.
    let other = ok(gp_in(w, &[&"keygen", &"other"]));
    assert!(other.contains("other.pub"));
    let refused = gp_in(
        w,
        &[
            &"install",
            &format!("{url}/plugins/hello.plg"),
            &"--public-key",
            &"other.pub",
            &"--dir",
            &"base2",
        ],
    );
    assert!(!refused.status.success());
    assert_eq!(
        stderr(&refused),
        format!("error: {url}/plugins/hello.plg: package refused: its signature does not verify with any trusted key: it was signed by another key, or changed after signing\n")
    );
    let left: Vec<_> = std::fs::read_dir(w.join("base2")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn gp_new_refuses_a_bad_name_and_an_existing_folder() {
    let work = crate::harness::base_dir();
    let bad = gp_in(work.path(), &[&"new", &"9lives"]);
    assert!(!bad.status.success());
    assert_eq!(
        stderr(&bad),
        "error: invalid plugin name \"9lives\": use 1 to 64 ASCII letters, digits, '-' or '_', starting with a letter\n"
    );
    assert!(!work.path().join("9lives").exists());
    std::fs::create_dir(work.path().join("taken")).unwrap();
    let taken = gp_in(work.path(), &[&"new", &"taken"]);
    assert_eq!(
        stderr(&taken),
        "error: taken: already exists; choose another name or remove it\n"
    );
}

/// `--template entry` is the low-level form: one `#[plugin_entry]` function, called with no
/// label; its own unit test passes as generated, and it builds and answers.
#[test]
fn gp_new_template_entry_is_the_low_level_form() {
    let work = crate::harness::base_dir();
    let w = work.path();
    let sdk = crate::harness::workspace().join("gp-sdk");
    let created = ok(gp_in(
        w,
        &[&"new", &"low", &"--template", &"entry", &"--sdk", &sdk],
    ));
    assert!(
        created.ends_with("gp call plugins low --set 'name=\"you\"'\n"),
        "{created}"
    );
    let krate = w.join("low");
    let lib = std::fs::read_to_string(krate.join("src/lib.rs")).unwrap();
    assert!(lib.contains("#[plugin_entry]"), "{lib}");
    passes_its_own_tests(&krate);
    ok(gp_in(&krate, &[&"build", &"--debug", &"-o", &"plugins"]));
    let called = ok(gp_in(
        &krate,
        &[&"call", &"plugins", &"low", &"--set", &"name=\"gp\""],
    ));
    assert_eq!(called, "{\"greeting\": \"hello gp\", \"name\": \"gp\"}\n");
}

/// `--template async`: `async fn` handlers, with gp-sdk's `async` feature in Cargo.toml (and
/// in the published line); its own unit test passes as generated, and it builds and answers.
#[test]
fn gp_new_template_async_has_async_handlers_and_the_feature_they_need() {
    let work = crate::harness::base_dir();
    let w = work.path();
    let sdk = crate::harness::workspace().join("gp-sdk");
    let created = ok(gp_in(
        w,
        &[&"new", &"waiter", &"--template", &"async", &"--sdk", &sdk],
    ));
    assert!(
        created.ends_with("gp call plugins waiter --label greet --set 'name=\"you\"'\n"),
        "{created}"
    );
    let krate = w.join("waiter");
    let toml = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    let path = format!("{:?}", sdk.canonicalize().unwrap().display().to_string());
    assert!(
        toml.contains(&format!(
            "gp-sdk = {{ path = {path}, features = [\"async\"] }}\n"
        )),
        "{toml}"
    );
    assert!(
        toml.contains("# gp-sdk = { version = \"0.1.")
            && toml.contains("\", features = [\"async\"] }\n"),
        "{toml}"
    );
    let lib = std::fs::read_to_string(krate.join("src/lib.rs")).unwrap();
    assert!(lib.contains("async fn greet(who: Who)"), "{lib}");
    passes_its_own_tests(&krate);
    ok(gp_in(&krate, &[&"build", &"--debug", &"-o", &"plugins"]));
    let library = format!(
        "plugins/waiter/{}waiter{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let inspected = ok(gp_in(&krate, &[&"inspect", &library]));
    assert!(
        inspected.contains("async:       greet, greet_route\n"),
        "{inspected}"
    );
    let called = ok(gp_in(
        &krate,
        &[
            &"call",
            &"plugins",
            &"waiter",
            &"--label",
            &"greet",
            &"--set",
            &"name=\"gp\"",
        ],
    ));
    assert_eq!(called, "{\"greeting\": \"hello gp\", \"name\": \"gp\"}\n");
}

/// `--template config`: configuration, a secret and state. Its unit test passes as generated;
/// built, it loads with the `config.json` its comment shows and the secret in the environment,
/// and without the secret the load is refused saying which.
#[test]
fn gp_new_template_config_loads_with_its_configuration_and_secret() {
    let work = crate::harness::base_dir();
    let w = work.path();
    let sdk = crate::harness::workspace().join("gp-sdk");
    let created = ok(gp_in(
        w,
        &[&"new", &"cfg-gp", &"--template", &"config", &"--sdk", &sdk],
    ));
    let config = r#"{"greeting": "hello", "token": {"secret": "env:CFG_GP_TOKEN"}}"#;
    assert!(
        created.contains(&format!(
            "write plugins/cfg-gp/config.json: {config} and set CFG_GP_TOKEN"
        )),
        "{created}"
    );
    let krate = w.join("cfg-gp");
    let lib = std::fs::read_to_string(krate.join("src/lib.rs")).unwrap();
    assert!(lib.contains(config), "the comment shows the same: {lib}");
    passes_its_own_tests(&krate);
    ok(gp_in(&krate, &[&"build", &"--debug", &"-o", &"plugins"]));
    std::fs::write(krate.join("plugins/cfg-gp/config.json"), config).unwrap();
    let call = |token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gp"));
        command
            .args([
                "call",
                "plugins",
                "cfg-gp",
                "--label",
                "greet",
                "--set",
                "name=\"gp\"",
            ])
            .current_dir(&krate)
            .env_remove("GP_LOG")
            .env_remove("CFG_GP_TOKEN");
        if let Some(token) = token {
            command.env("CFG_GP_TOKEN", token);
        }
        command.output().unwrap()
    };
    let called = call(Some("s3cret"));
    assert!(called.status.success(), "{}", stderr(&called));
    assert_eq!(
        stdout(&called),
        "{\"authorized\": true, \"greeting\": \"hello gp\", \"name\": \"gp\"}\n"
    );
    let refused = call(None);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains(
            "was refused: `token`: secret env:CFG_GP_TOKEN: the environment variable is not set"
        ),
        "{}",
        stderr(&refused)
    );
}
