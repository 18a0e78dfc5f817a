//! `gp install`'s edges: a NAME is a registry name whatever the current folder holds, an
//! older version is a downgrade that must be asked for, and `gp search` marks what install
//! would refuse.

use gp_host::hub::{Client, Namespace};
use gp_host::Manager;

use super::{
    anonymous, copy_across, entries, packed, push_counters, pushed_digest, retag, start_registry,
    Auth, Env,
};
use crate::harness::base_dir;

/// Item 6: `gp install counter --registry …` in a folder that holds a `counter` folder (as
/// `gp new counter` leaves one) installs from the registry; `--help` says how a NAME is told
/// from a path.
#[test]
fn a_name_is_a_registry_name_even_beside_a_folder_of_that_name() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let env = Env::new();
    let scratch = base_dir();
    let (package, bytes) = packed("counter-v1", scratch.path());
    let ns = format!("{}/team", registry.host);
    pushed_digest(&env.gp(&["push", package.to_str().unwrap(), "--registry", &ns], ""));
    let cwd = base_dir();
    std::fs::create_dir(cwd.path().join("counter")).unwrap();
    let args = ["install", "counter", "--registry", &ns, "--no-preflight"];
    let run = env.gp_in(Some(cwd.path()), &args, "", "");
    assert_eq!(
        (run.code, run.stdout),
        (
            0,
            format!(
                "installed counter 1.0.0 -> {}\n",
                env.plugins().join("counter.plg").display()
            )
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read(env.plugins().join("counter.plg")).unwrap(),
        bytes
    );
    let help = env.gp(&["install", "--help"], "").stdout;
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("A NAME is always a registry name, whatever is in the current folder, unless it contains `/`, ends in `.plg` or starts with `./`: write ./NAME for a local file"),
        "{help}"
    );
}

/// Item 6: installing an older version over a newer one says it is a downgrade and changes
/// nothing; `--allow-downgrade` installs it. Through the library, a loaded version is
/// replaced by the older one only when asked.
// Long: one scenario, read top to bottom: each step starts from the state the last one left.
#[test]
fn a_downgrade_says_so_and_needs_allow_downgrade() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let env = Env::new();
    let ns = format!("{}/team", registry.host);
    let bytes: Vec<Vec<u8>> = push_counters(&registry.host)
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    let installed = env.plugins().join("counter.plg");
    let install = |extra: &[&str]| {
        let mut args = vec!["install", "--registry", &ns, "--no-preflight"];
        args.extend_from_slice(extra);
        env.gp(&args, "")
    };
    assert_eq!(install(&["counter"]).code, 0);
    assert_eq!(std::fs::read(&installed).unwrap(), bytes[1]);

    let run = install(&["counter@=1.0.0"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.ends_with("error: installing counter 1.0.0 over the installed 2.0.0 is a downgrade: pass --allow-downgrade (InstallOptions::allow_downgrade) to install it anyway\n"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&installed).unwrap(), bytes[1]);
    assert_eq!(entries(&env.plugins()), ["counter.plg"]);

    let run = install(&["counter@=1.0.0", "--allow-downgrade"]);
    assert_eq!(
        run.stdout,
        format!("installed counter 1.0.0 -> {}\n", installed.display()),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&installed).unwrap(), bytes[0]);

    // A manager serving 2.0.0: refused, then replaced by 1.0.0 when allowed.
    let client = Client::new(anonymous());
    let namespace = Namespace::parse(&ns).unwrap();
    let pinned = |range: &str| {
        client
            .resolve(&namespace, "counter", &range.parse().unwrap())
            .unwrap()
            .reference
            .to_string()
    };
    let base = base_dir();
    let manager = Manager::new(base.path());
    let mut options = gp_host::InstallOptions::default();
    options.hub = Some(&client);
    manager.install(&pinned("=2.0.0"), &options).unwrap();
    let error = manager.install(&pinned("=1.0.0"), &options).unwrap_err();
    assert!(
        matches!(error, gp_host::Error::Downgrade { .. }),
        "{error:?}"
    );
    assert_eq!(crate::watching::version(&manager), "2.0.0");
    options.allow_downgrade = true;
    let spec = manager.install(&pinned("=1.0.0"), &options).unwrap();
    assert_eq!(spec.version().to_string(), "1.0.0");
    assert_eq!(crate::watching::version(&manager), "1.0.0");
}

/// Item 3: `gp search` marks a plugin whose newest version `gp install` refuses, saying why
/// (a tag that names another version than its manifest, a package under another plugin's
/// name), in the table and the JSON; install then refuses them as the marks say.
#[test]
fn search_marks_what_install_would_refuse() {
    let Some(registry) = start_registry(Auth::None, false) else {
        return;
    };
    let host = &registry.host;
    let env = Env::new();
    let scratch = base_dir();
    let (counter, _) = packed("counter-v1", scratch.path());
    let (sample, _) = packed("sample", scratch.path());
    let ns = format!("{host}/team");
    for package in [&counter, &sample] {
        pushed_digest(&env.gp(&["push", package.to_str().unwrap(), "--registry", &ns], ""));
    }
    retag(host, "team/sample", "0.1.0", "7.7.7");
    copy_across(host, "team/sample", "0.1.0", "team/dispatch");

    let run = env.gp(&["search", "--registry", &ns], "");
    let rows: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(rows.len(), 4, "{}{}", run.stdout, run.stderr);
    assert!(rows[1].starts_with("counter "), "{}", run.stdout);
    assert!(!rows[1].contains("refuses"), "{}", run.stdout);
    assert_eq!(
        rows[2].split_whitespace().collect::<Vec<_>>().join(" "),
        "dispatch 0.1.0 1 (gp install refuses it: it holds the plugin `sample`, not `dispatch` as the repository's name says)"
    );
    assert_eq!(
        rows[3].split_whitespace().collect::<Vec<_>>().join(" "),
        "sample 7.7.7 2 (gp install refuses it: its tag says 7.7.7, but its manifest's version annotation says 0.1.0)"
    );
    let run = env.gp(&["search", "--registry", &ns, "--json"], "");
    let found: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(found[0].get("refused"), None, "{found}");
    assert_eq!(
        found[2]["refused"],
        "its tag says 7.7.7, but its manifest's version annotation says 0.1.0"
    );
    // What the marks say, install does.
    for (name, why) in [
        ("dispatch", "the package holds the plugin `sample`, not `dispatch` as the repository's name says; nothing was installed"),
        ("sample", "the package holds sample 0.1.0, but its tag says 7.7.7; nothing was installed"),
    ] {
        let run = env.gp(&["install", name, "--registry", &ns], "");
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains(why), "{}", run.stderr);
    }
}
