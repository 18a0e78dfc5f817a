//! docs/authors-guide.md followed as written: `gp new`, section 2's handlers pasted over
//! `src/lib.rs`, `gp build`, and section 3's call and requests, each answering what the guide's
//! comment says.

use std::process::Command;

use gp_host::http::PluginServer;
use gp_host::Manager;

use super::readme::blocks;
use super::{gp, gp_limited, BUILD_LIMIT};
use crate::harness::{base_dir, workspace};
use crate::http::{send, Running};

/// The guide's section whose heading starts with `heading`, to the next section.
fn section(guide: &str, heading: &str) -> String {
    let start = guide
        .find(&format!("## {heading}"))
        .expect("the guide has the section");
    let rest = &guide[start + 3..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

/// One `curl` line of the guide: the request, and what its comment says comes back.
struct Curl {
    method: String,
    path: String,
    body: String,
    expected: String,
}

fn curl(line: &str) -> Curl {
    let (command, expected) = line.split_once(" #").unwrap_or((line, ""));
    let words: Vec<&str> = command.split_whitespace().collect();
    let method = words
        .iter()
        .position(|w| *w == "-X")
        .map_or("GET", |i| words[i + 1]);
    let url = words
        .iter()
        .map(|w| w.trim_matches('\''))
        .find(|w| w.starts_with("http://"))
        .expect("a URL");
    let body = command
        .split_once(" -d '")
        .map_or("", |(_, rest)| rest.split('\'').next().unwrap());
    Curl {
        method: method.to_owned(),
        path: url.trim_start_matches("http://127.0.0.1:8080").to_owned(),
        body: body.to_owned(),
        expected: expected.trim().to_owned(),
    }
}

#[test]
fn the_authors_guide_runs_as_written() {
    let guide = std::fs::read_to_string(workspace().join("docs/authors-guide.md")).unwrap();
    let handlers = &blocks(&section(&guide, "2. Handlers"), "rust")[0];
    let commands = &blocks(&section(&guide, "3. Build, call, serve"), "sh")[0];
    let work = base_dir();
    let sdk = workspace().join("gp-sdk");
    let created = gp(work.path(), &[&"new", &"items", &"--sdk", &sdk]);
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let krate = work.path().join("items");
    std::fs::copy(workspace().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    std::fs::write(krate.join("src/lib.rs"), handlers).unwrap();

    let mut lines = commands.lines().map(str::trim).filter(|l| !l.is_empty());
    let build = lines.next().unwrap();
    let (build, said) = build.split_once(" #").unwrap();
    assert_eq!(build.trim(), "gp build");
    let built = gp_limited(&krate, &[&"build", &"--debug"], BUILD_LIMIT);
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    assert_eq!(built.stdout.trim_end(), said.trim());

    let call = lines.next().unwrap();
    let printed = lines.next().unwrap().trim_start_matches("# ");
    let gp_dir = std::path::Path::new(env!("CARGO_BIN_EXE_gp"))
        .parent()
        .unwrap();
    let path = std::env::join_paths(
        std::iter::once(gp_dir.to_owned())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let called = Command::new("sh")
        .args(["-c", call])
        .current_dir(&krate)
        .env("PATH", path)
        .env_remove("GP_LOG")
        .output()
        .unwrap();
    assert!(called.status.success(), "{call}: {called:?}");
    assert_eq!(String::from_utf8_lossy(&called.stdout).trim_end(), printed);

    // `gp serve plugins &` and its requests: the same plugins served on a port of the test's.
    assert_eq!(lines.next(), Some("gp serve plugins &"));
    let manager = Manager::new(krate.join("plugins"));
    let server = PluginServer::builder(manager.clone()).build();
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    let running = Running::start(&server);
    let mut requests = 0;
    for line in lines.filter(|l| l.starts_with("curl ")) {
        let curl = curl(line);
        let head = if curl.body.is_empty() {
            format!("{} {} HTTP/1.1", curl.method, curl.path)
        } else {
            format!(
                "{} {} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}",
                curl.method,
                curl.path,
                curl.body.len()
            )
        };
        let reply = send(running.addr, &head, curl.body.as_bytes());
        match curl.expected.strip_prefix("HTTP/1.1 ") {
            Some(status) => {
                let (code, rest) = status.split_once(' ').unwrap();
                assert_eq!(reply.status.to_string(), code, "{line}");
                // `{"error":"the start of it: ..."}`
                let shown = rest.split(" ... ").nth(1).unwrap();
                let shown = shown.strip_suffix("...\"}").unwrap_or(shown);
                assert!(reply.text().starts_with(shown), "{line}: {}", reply.text());
            }
            None if curl.expected.is_empty() => {
                assert_eq!(reply.status, 201, "{line}");
                assert_eq!(reply.text(), curl.body.replace(' ', ""), "{line}");
            }
            None => assert_eq!(reply.text(), curl.expected, "{line}"),
        }
        requests += 1;
    }
    assert_eq!(requests, 4, "the guide's requests were all sent");
}

/// Section 4 as written: its handlers built, its `config.json` beside them with the secret it
/// names in the environment, and the route answering with both.
#[test]
fn the_authors_guide_state_and_configuration_run_as_written() {
    let guide = std::fs::read_to_string(workspace().join("docs/authors-guide.md")).unwrap();
    let section = section(&guide, "4. State and configuration");
    let handlers = &blocks(&section, "rust")[0];
    let config = &blocks(&section, "json")[0];
    let work = base_dir();
    let sdk = workspace().join("gp-sdk");
    // A name of its own: the test above builds `items` into the same target directory.
    let created = gp(work.path(), &[&"new", &"items-state", &"--sdk", &sdk]);
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let krate = work.path().join("items-state");
    std::fs::copy(workspace().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    std::fs::write(krate.join("src/lib.rs"), handlers).unwrap();
    let built = gp_limited(&krate, &[&"build", &"--debug"], BUILD_LIMIT);
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    std::fs::write(krate.join("plugins/items-state/config.json"), config).unwrap();
    // The secret the guide's configuration names, in this process's environment (the host's).
    std::env::set_var("ITEMS_TOKEN", "t0ken");
    let manager = Manager::new(krate.join("plugins"));
    let server = PluginServer::builder(manager.clone()).build();
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    let running = Running::start(&server);
    let reply = send(running.addr, "GET /items/7 HTTP/1.1", b"");
    assert_eq!(reply.text(), "item-7 (token of 5 bytes)");
}

/// Section 5 as written: `gp new --template async` (for the feature), its handler pasted over
/// `src/lib.rs`, built, and the request answering what its comment says.
#[test]
fn the_authors_guide_async_handlers_run_as_written() {
    let guide = std::fs::read_to_string(workspace().join("docs/authors-guide.md")).unwrap();
    let section = section(&guide, "5. Async handlers");
    let toml = &blocks(&section, "toml")[0];
    let handlers = &blocks(&section, "rust")[0];
    let request = &blocks(&section, "sh")[0];
    let work = base_dir();
    let sdk = workspace().join("gp-sdk");
    let created = gp(
        work.path(),
        &[
            &"new",
            &"items-async",
            &"--template",
            &"async",
            &"--sdk",
            &sdk,
        ],
    );
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let krate = work.path().join("items-async");
    let cargo_toml = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    // The template writes the line the guide shows, as a comment beside the path it uses, with
    // the SDK's whole version where the guide has its minor.
    let published = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("# gp-sdk = "))
        .expect("the published line");
    let version = published
        .split('"')
        .nth(1)
        .expect("a version in the published line");
    assert!(version.starts_with("0.1."), "{published}");
    assert_eq!(
        format!("gp-sdk = {}", published.replace(version, "0.1")),
        toml.trim()
    );
    std::fs::copy(workspace().join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    std::fs::write(krate.join("src/lib.rs"), handlers).unwrap();
    let built = gp_limited(&krate, &[&"build", &"--debug"], BUILD_LIMIT);
    assert_eq!(built.code, Some(0), "{}", built.stderr);
    let manager = Manager::new(krate.join("plugins"));
    let server = PluginServer::builder(manager.clone()).build();
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    let running = Running::start(&server);
    let curl = curl(request.trim());
    let reply = send(
        running.addr,
        &format!("{} {} HTTP/1.1", curl.method, curl.path),
        b"",
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), curl.expected);
}
