//! A registry that wants credentials: Basic auth and the bearer-token flow, each with its
//! messages for missing and wrong credentials, and no secret ever printed.

use std::collections::HashMap;

use super::{
    entries, packed, push_as_alice, pushed_digest, start_registry, Auth, Env, PASSWORD,
    TOKEN_ISSUER, TOKEN_SERVICE, USER,
};
use crate::harness::base_dir;

/// Item 3: Basic auth. Without credentials, with wrong ones (never printed), with
/// `--username` + `--password-stdin`, and from the Docker config file `docker login` writes;
/// a registry that does not allow deletes says so.
#[test]
fn a_registry_behind_basic_auth_takes_credentials_and_never_shows_them() {
    let Some(registry) = start_registry(Auth::Basic, false) else {
        return;
    };
    let host = &registry.host;
    let env = Env::new();
    let scratch = base_dir();
    let (sample, _) = packed("sample", scratch.path());
    let ns = format!("{host}/team");
    let push = |extra: &[&str], stdin: &str| {
        let mut args = vec!["push", sample.to_str().unwrap(), "--registry", &ns];
        args.extend_from_slice(extra);
        env.gp(&args, stdin)
    };

    let run = push(&[], "");
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample:0.1.0: the registry wants credentials (401): log in with `docker login HOST`, or pass --username and --password-stdin\n")
    );
    let run = push(
        &["--username", USER, "--password-stdin"],
        "not-the-password\n",
    );
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample:0.1.0: the registry refused the credentials of user `alice` (401)\n")
    );
    let run = push(&["--username", USER], "");
    assert!(run.stderr.contains("--password-stdin"), "{}", run.stderr);
    let mut seen = format!("{}{}", run.stdout, run.stderr);
    // Logged at the most verbose level: the secret is in no line.
    let verbose = push_as_alice(&env, &sample, &ns);
    let digest = pushed_digest(&verbose);
    assert!(verbose.stderr.lines().count() > 10, "{}", verbose.stderr);
    seen.push_str(&verbose.stderr);

    // The Docker config file (`auths`, as `docker login` writes it).
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        env.docker.path().join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let run = env.gp_with_log(&["search", "--registry", &ns], "");
    assert!(
        run.stdout.contains("sample  0.1.0"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    seen.push_str(&run.stderr);
    let run = env.gp_with_log(
        &["install", "sample@0.1", "--registry", &ns, "--no-preflight"],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    seen.push_str(&run.stderr);
    assert!(
        run.stderr
            .contains(&format!("oci://{ns}/sample:0.1.0@{digest}")),
        "{}",
        run.stderr
    );
    assert_eq!(entries(&env.plugins()), ["sample.plg"]);
    let run = env.gp(
        &["delete", &format!("oci://{ns}/sample:0.1.0"), "--yes"],
        "",
    );
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample:0.1.0@{digest}: the registry does not allow deleting (405); Docker Distribution needs storage.delete.enabled: true\n")
    );
    seen.push_str(&run.stderr);
    assert_no_secret(&seen, &[PASSWORD, &auth]);
}

/// Asserts that none of `secrets` is in `output`, also once the lines of a byte dump (as
/// ureq's transport traces requests, 16 characters a line) are joined back together.
fn assert_no_secret(output: &str, secrets: &[&str]) {
    let joined: String = output
        .lines()
        .map(|line| line.rsplit_once("  ").map_or(line, |(_, tail)| tail))
        .collect();
    for text in [output, joined.as_str()] {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret was printed: {output}");
        }
    }
}

/// A token service for a registry's bearer auth, on 127.0.0.1: it checks Basic credentials
/// (`alice`), then issues a JWT (ES256, its certificate in `x5c`) granting the scope asked
/// for. Serves at most 200 requests. Returns its realm, the certificate (PEM) the registry
/// must trust, and the scopes it was asked for.
fn token_service() -> (
    String,
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use std::io::{BufRead, BufReader, Write};
    let certified = rcgen::generate_simple_self_signed(vec!["gp-test-token".to_owned()]).unwrap();
    let pem = certified.cert.pem();
    let x5c = STANDARD.encode(certified.cert.der());
    let rng = ring::rand::SystemRandom::new();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &certified.key_pair.serialize_der(),
        &rng,
    )
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let scopes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let asked = scopes.clone();
    let expected = format!("Basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut authorization = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("authorization") {
                        authorization = value.trim().to_owned();
                    }
                }
            }
            let target = request.split_whitespace().nth(1).unwrap_or("/");
            let query = target.split_once('?').map_or("", |(_, q)| q);
            let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let scope = params.get("scope").cloned().unwrap_or_default();
            asked.lock().unwrap().push(scope.clone());
            let reply = if authorization != expected
                || params.get("service").map(String::as_str) != Some(TOKEN_SERVICE)
            {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned()
            } else {
                let access: Vec<serde_json::Value> = scope
                    .split(' ')
                    .filter_map(|s| {
                        let (rest, actions) = s.rsplit_once(':')?;
                        let (kind, name) = rest.split_once(':')?;
                        Some(serde_json::json!({
                            "type": kind, "name": name,
                            "actions": actions.split(',').collect::<Vec<_>>(),
                        }))
                    })
                    .collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
                let claims = serde_json::json!({
                    "iss": TOKEN_ISSUER, "sub": USER, "aud": TOKEN_SERVICE,
                    "exp": now + 300, "nbf": now - 10, "iat": now - 10,
                    "jti": format!("{now}-{}", asked.lock().unwrap().len()),
                    "access": access,
                });
                let signing_input = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD.encode(claims.to_string())
                );
                let signature = key.sign(&rng, signing_input.as_bytes()).unwrap();
                let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
                let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (realm, pem, scopes)
}

/// Item 3: the registry bearer-token flow, against a real registry configured for token auth
/// and a token service that checks Basic credentials: a push takes one token for its scope
/// and reuses it; no credentials and wrong ones get their messages; search asks for the
/// catalog scope; install resolves and pulls with tokens of its own.
#[test]
fn a_registry_with_bearer_tokens_gets_them_from_its_realm() {
    let (realm, pem, scopes) = token_service();
    let Some(registry) = start_registry(Auth::Token { realm, pem }, false) else {
        return;
    };
    let host = &registry.host;
    let env = Env::new();
    let scratch = base_dir();
    let (sample, _) = packed("sample", scratch.path());
    let ns = format!("{host}/team");
    let push = |stdin: Option<&str>| {
        let mut args = vec!["push", sample.to_str().unwrap(), "--registry", &ns];
        if stdin.is_some() {
            args.extend(["--username", USER, "--password-stdin"]);
        }
        env.gp(&args, stdin.unwrap_or(""))
    };
    let run = push(None);
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample:0.1.0: the registry wants credentials (401): log in with `docker login HOST`, or pass --username and --password-stdin\n")
    );
    let run = push(Some("wrong\n"));
    assert_eq!(
        run.stderr,
        format!("error: oci://{ns}/sample:0.1.0: the registry refused the credentials of user `alice` (401)\n")
    );
    scopes.lock().unwrap().clear();
    let run = push_as_alice(&env, &sample, &ns);
    let digest = pushed_digest(&run);
    assert_no_secret(&format!("{}{}", run.stdout, run.stderr), &[PASSWORD]);
    // Two blobs checked and uploaded and a manifest put, on one token.
    assert_eq!(
        *scopes.lock().unwrap(),
        ["repository:team/sample:pull,push"]
    );
    scopes.lock().unwrap().clear();
    let run = env.gp(
        &[
            "search",
            "--registry",
            &ns,
            "--username",
            USER,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        run.stdout.contains("sample  0.1.0"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(
        *scopes.lock().unwrap(),
        ["registry:catalog:*", "repository:team/sample:pull"]
    );
    let run = env.gp(
        &[
            "install",
            "sample@~0.1",
            "--registry",
            &ns,
            "--no-preflight",
            "--username",
            USER,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("oci://{ns}/sample:0.1.0@{digest}")),
        "{}",
        run.stderr
    );
    assert_eq!(entries(&env.plugins()), ["sample.plg"]);
}

/// Item 6: a Docker configuration that cannot be used is an error naming the file and the
/// helper, not a silent fall back to anonymous (which answered "the registry wants
/// credentials" to a user who had logged in).
#[test]
fn an_unusable_docker_config_is_named_not_ignored() {
    let Some(registry) = start_registry(Auth::Basic, false) else {
        return;
    };
    let host = &registry.host;
    let env = Env::new();
    let ns = format!("{host}/team");
    let config = env.docker.path().join("config.json");
    let cases = [
        (
            r#"{"credsStore":"gp-test-missing"}"#.to_owned(),
            format!("its credsStore names the credential helper `docker-credential-gp-test-missing`, which cannot be run: install it (it must be on the PATH), or remove credsStore from the file and log in again with `docker login {host}`"),
        ),
        (
            format!(r#"{{"credHelpers":{{"{host}":"gp-test-missing"}}}}"#),
            format!("its credHelpers names the credential helper `docker-credential-gp-test-missing`, which cannot be run: install it (it must be on the PATH), or remove credHelpers from the file and log in again with `docker login {host}`"),
        ),
        (
            "{\"auths\": {".to_owned(),
            format!("the Docker configuration is not valid JSON (EOF while parsing an object at line 1 column 11): fix it, or remove it and log in again with `docker login {host}`"),
        ),
    ];
    for (text, why) in cases {
        std::fs::write(&config, &text).unwrap();
        let run = env.gp(&["search", "--registry", &ns], "");
        assert_eq!(
            (run.code, run.stderr),
            (
                1,
                format!("error: oci://{ns}: {}: {why}\n", config.display())
            ),
            "{text}"
        );
    }
}
