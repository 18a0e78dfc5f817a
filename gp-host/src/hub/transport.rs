//! Talking to a registry: HTTP(S) with ureq, and the distribution specification's
//! authentication: a request goes out anonymously (or with what the last one needed); a 401
//! names a scheme in `WWW-Authenticate`, `Basic` (answered with the user's credentials) or
//! `Bearer` (a token fetched from the realm it names, with the credentials if there are any,
//! for the scope the request needs) and the request is sent once more.
//!
//! Secrets never leave this module (and `credentials`, where they come from) in a message:
//! errors carry statuses, the registry's own error codes and the user name at most.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;

use super::credentials::{Credentials, Secret};
use crate::error::HubFailure;
use crate::util::lock;
use ureq::http::{self, Method, StatusCode};

/// A response: status, headers, and the body not yet read.
pub(crate) type Response = http::Response<ureq::Body>;

/// The HTTP side of a [`Client`](super::Client): an agent, credentials and the tokens earned.
pub(crate) struct Transport {
    agent: ureq::Agent,
    credentials: Credentials,
    plain_http: bool,
    /// `Authorization` values by (registry, scope): a request reuses what the last one on the
    /// same scope needed, so a session asks for a token once.
    authorizations: Mutex<HashMap<(String, String), String>>,
}

impl Transport {
    pub(crate) fn new(
        credentials: Credentials,
        plain_http: bool,
        timeout: Duration,
        deadline: Duration,
    ) -> Transport {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout.min(Duration::from_secs(30))))
            .timeout_send_request(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            // A server trickling a byte a minute is cut off here, whatever its pace.
            .timeout_global(Some(deadline))
            .user_agent(concat!("gp/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Transport {
            agent,
            credentials,
            plain_http,
            authorizations: Mutex::new(HashMap::new()),
        }
    }

    /// `https://REGISTRY` or, for loopback registries or with plain HTTP asked for,
    /// `http://REGISTRY` (as Docker treats `localhost`).
    pub(crate) fn base(&self, registry: &str) -> String {
        let host = registry
            .rsplit_once(':')
            .filter(|(h, _)| !h.is_empty())
            .map_or(registry, |(h, _)| h);
        let loopback = host == "localhost"
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
        if self.plain_http || loopback {
            format!("http://{registry}")
        } else {
            format!("https://{registry}")
        }
    }

    /// Sends `method url` with `headers` and `body`, authenticating for `scope` (`repository:
    /// NAME:pull[,push]` or `registry:catalog:*`) as the registry asks.
    pub(crate) fn send(
        &self,
        registry: &str,
        scope: &str,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, HubFailure> {
        // Credentials and tokens go to the registry itself only: an upload location or a next
        // page elsewhere is asked without them.
        if origin(url).is_none() || origin(url) != origin(&self.base(registry)) {
            return self.once(&method, url, headers, body, None);
        }
        let key = (registry.to_owned(), scope.to_owned());
        let known = lock(&self.authorizations).get(&key).cloned();
        let response = self.once(&method, url, headers, body, known.as_deref())?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let secret = self.credentials.for_registry(registry)?;
        let username = match &secret {
            Some(Secret::Basic { username, .. }) => Some(username.clone()),
            Some(Secret::IdentityToken(_)) => Some("<identity token>".to_owned()),
            None => None,
        };
        let authorization = match parse_challenge(&challenge) {
            Some(Challenge::Basic) => match &secret {
                Some(Secret::Basic { username, password }) => Some(basic(username, password)),
                _ => None,
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                let plain = realm
                    .get(..7)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"));
                if plain && self.base(registry).starts_with("https://") {
                    return Err(HubFailure::Status {
                        status: 401,
                        detail: format!("its token service {realm} is plain HTTP; gp does not send credentials or ask for tokens over it"),
                    });
                }
                let token = self.token(&realm, service.as_deref(), scope, secret.as_ref())?;
                Some(format!("Bearer {token}"))
            }
            None => None,
        };
        let Some(authorization) = authorization else {
            return Err(HubFailure::Unauthorized { username });
        };
        if known.as_deref() == Some(authorization.as_str()) {
            return Err(HubFailure::Unauthorized { username });
        }
        let response = self.once(&method, url, headers, body, Some(&authorization))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(HubFailure::Unauthorized { username });
        }
        lock(&self.authorizations).insert(key, authorization);
        Ok(response)
    }

    fn once(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        authorization: Option<&str>,
    ) -> Result<Response, HubFailure> {
        let mut request = http::Request::builder().method(method.clone()).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let request = request.body(body).map_err(HubFailure::unreachable)?;
        self.agent.run(request).map_err(HubFailure::unreachable)
    }

    /// The bearer-token flow: `GET realm?service=…&scope=…`, with Basic credentials when there
    /// are any (or an identity token as a refresh token, POSTed as the OAuth2 form).
    fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        secret: Option<&Secret>,
    ) -> Result<String, HubFailure> {
        let query = match service {
            Some(service) => form_query(&[("service", service), ("scope", scope)]),
            None => form_query(&[("scope", scope)]),
        };
        let separator = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{separator}{query}");
        let response = match secret {
            Some(Secret::IdentityToken(token)) => {
                let form = form_query(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token),
                    ("service", service.unwrap_or("")),
                    ("scope", scope),
                    ("client_id", "gp"),
                ]);
                self.once(
                    &Method::POST,
                    realm,
                    &[("content-type", "application/x-www-form-urlencoded")],
                    form.as_bytes(),
                    None,
                )?
            }
            Some(Secret::Basic { username, password }) => self.once(
                &Method::GET,
                &url,
                &[],
                &[],
                Some(&basic(username, password)),
            )?,
            None => self.once(&Method::GET, &url, &[], &[], None)?,
        };
        let username = match secret {
            Some(Secret::Basic { username, .. }) => Some(username.clone()),
            Some(Secret::IdentityToken(_)) => Some("<identity token>".to_owned()),
            None => None,
        };
        match response.status().as_u16() {
            200 => {}
            401 | 403 => return Err(HubFailure::Unauthorized { username }),
            status => {
                return Err(HubFailure::Status {
                    status,
                    detail: "from its token service".to_owned(),
                })
            }
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = read_limited(response, 1 << 20)?;
        let token: Token = serde_json::from_slice(&body).map_err(|_| HubFailure::Status {
            status: 200,
            detail: "its token service answered something that is not a token".to_owned(),
        })?;
        token
            .token
            .or(token.access_token)
            .ok_or_else(|| HubFailure::Status {
                status: 200,
                detail: "its token service answered no token".to_owned(),
            })
    }
}

/// A URL's origin: scheme, lowercase host and port (the scheme's default when none is
/// written), as `https://reg.example/…` and `https://REG.example:443/…` share one.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let port = uri.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some((scheme, uri.host()?.to_ascii_lowercase(), port))
}

/// Reads a response body of at most `limit` bytes.
pub(crate) fn read_limited(response: Response, limit: u64) -> Result<Vec<u8>, HubFailure> {
    let mut body = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| HubFailure::Unreachable {
            reason: format!("the answer broke off: {e}"),
            source: Some(Box::new(e)),
        })?;
    if body.len() as u64 > limit {
        return Err(HubFailure::Status {
            status: 200,
            detail: format!("an answer larger than {limit} bytes"),
        });
    }
    Ok(body)
}

/// The error codes of a registry's error body (`{"errors":[{"code":…,"message":…}]}`).
pub(crate) fn error_detail(response: Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(body) = read_limited(response, 64 << 10) else {
        return String::new();
    };
    match serde_json::from_slice::<Errors>(&body) {
        Ok(errors) => errors
            .errors
            .iter()
            .map(|e| {
                let code = e.code.as_deref().unwrap_or("");
                match e.message.as_deref() {
                    Some(m) if !m.is_empty() => format!("{code}: {m}"),
                    _ => code.to_owned(),
                }
            })
            .map(|s| crate::util::bounded(s, 200))
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::new(),
    }
}

fn basic(username: &str, password: &str) -> String {
    let pair = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[derive(Debug, PartialEq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// The first challenge of a `WWW-Authenticate` header gp can answer.
fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let params = parse_params(params);
            let realm = params.get("realm")?.clone();
            Some(Challenge::Bearer {
                realm,
                service: params.get("service").cloned(),
            })
        }
        _ => None,
    }
}

/// `key="value", key=value, …` (quoted values may hold commas).
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_owned());
        rest = tail.trim_start().trim_start_matches(',');
    }
    params
}

/// `k=v&…`, percent-encoded as a form.
fn form_query(pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        query.append_pair(key, value);
    }
    query.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_as_registries_write_them() {
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(""), None);
    }

    #[test]
    fn origins_compare_scheme_host_and_effective_port() {
        assert_eq!(
            origin("https://Reg.example:443/v2/x/blobs/uploads/1?_state=a"),
            origin("https://reg.example")
        );
        assert_eq!(
            origin("http://localhost/v2/"),
            origin("http://localhost:80")
        );
        assert_ne!(
            origin("https://reg.example:5000/v2/"),
            origin("https://reg.example")
        );
        assert_ne!(
            origin("http://reg.example/v2/"),
            origin("https://reg.example")
        );
        assert_ne!(
            origin("https://elsewhere.example/v2/"),
            origin("https://reg.example")
        );
        assert_eq!(origin("/v2/relative"), None);
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        let t = Transport::new(
            Credentials::Anonymous,
            false,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert_eq!(t.base("localhost:5000"), "http://localhost:5000");
        assert_eq!(t.base("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(t.base("ghcr.io"), "https://ghcr.io");
        let plain = Transport::new(
            Credentials::Anonymous,
            true,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert_eq!(plain.base("ghcr.io"), "http://ghcr.io");
    }
}
