//! [`ServeConfig`]: every setting of `gp serve` as one serde structure, what `gp serve
//! --config gp.toml` reads, and the builders it configures for an application that serves
//! plugins the way `gp serve` does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::{ListenLimits, PluginServer, PluginServerBuilder};
use crate::manager::{Manager, ManagerBuilder};

/// Where `gp serve` serves plugin routes unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where `gp serve` serves the management API unless told otherwise (9464: the port
/// OpenTelemetry's Prometheus exporter uses by default).
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9464";
/// How often followers check the registry unless told otherwise.
pub const DEFAULT_FOLLOW_EVERY: Duration = Duration::from_secs(60);
/// The most a follower's check is delayed at random unless told otherwise.
pub const DEFAULT_FOLLOW_JITTER: Duration = Duration::from_secs(5);

/// How `gp serve` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// A line of text per event, for people.
    #[default]
    Text,
    /// A JSON object per line, for log collectors.
    Json,
}

/// Every setting of `gp serve`: the keys of `gp.toml`, one per command-line flag (the flag's
/// name without its dashes, `--body-limit` → `body-limit`; `--no-preflight` →
/// `preflight = false`). Deserialize it from any serde format; unknown keys are refused.
/// Durations are written as `"30s"`, `"1m 30s"`, `"250ms"`.
///
/// It holds no secret: tokens and passwords come from the files it names (`token-file`,
/// `password-file`), so it can be printed, logged and kept in a ConfigMap.
///
/// ```
/// let config: gp_host::http::ServeConfig = toml::from_str(r#"
///     listen = "0.0.0.0:8080"
///     required = ["sample"]
///     timeout = "5s"
/// "#).unwrap();
/// assert_eq!(config.timeout, std::time::Duration::from_secs(5));
/// assert!(config.preflight);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
#[non_exhaustive]
pub struct ServeConfig {
    /// The plugin base directory (default: `$GP_HOME/plugins`).
    pub dir: Option<PathBuf>,
    /// Create the base directory if it is missing.
    pub create: bool,
    /// Where plugin routes, `/-/healthz` and `/-/readyz` are served.
    pub listen: SocketAddr,
    /// Where the management API, its GUI, `/metrics` and `/stats` are served (token;
    /// loopback unless TLS and `public-key` are set).
    pub admin: SocketAddr,
    /// Where `/metrics` is also served, read-only and without a token, for scrapers inside a
    /// cluster (default: nowhere else).
    pub metrics: Option<SocketAddr>,
    /// Plugins this server cannot do without: start-up fails unless each loads, and
    /// `/-/readyz` answers 503 while one does not serve.
    pub required: Vec<String>,
    /// Follow the base directory: load, upgrade and unload as its folders change.
    pub watch: bool,
    /// Reload a rebuild whose version did not change (while developing a plugin).
    pub dev: bool,
    /// Plugins run in a runner process of their own (`"all"`: every plugin).
    pub isolate: Vec<String>,
    /// Load each new build in a throwaway runner before this process maps it.
    pub preflight: bool,
    /// The management API's token, read from this file.
    pub token_file: Option<PathBuf>,
    /// A read-only token for the management API, read from this file.
    pub read_only_token_file: Option<PathBuf>,
    /// Other host names the admin listener answers to (key `admin-host`, as the flag).
    #[serde(rename = "admin-host")]
    pub admin_hosts: Vec<String>,
    /// The admin listener's TLS certificate chain (PEM).
    pub admin_tls_cert: Option<PathBuf>,
    /// The private key of `admin-tls-cert` (PEM).
    pub admin_tls_key: Option<PathBuf>,
    /// Accept only packages signed by these public keys, base64 or `.pub` files (key
    /// `public-key`, as the flag).
    #[serde(rename = "public-key")]
    pub public_keys: Vec<String>,
    /// How long a route's call may take before 504.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The largest request body a route accepts, in bytes.
    pub body_limit: usize,
    /// How long a client may take to send a request's body.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// The bytes of request bodies held at once across all requests.
    pub body_budget: usize,
    /// Calls each plugin may run at once.
    pub concurrency: usize,
    /// Requests that may wait for one plugin's slots.
    pub queue: usize,
    /// How long a request waits for a slot before 503.
    #[serde(with = "humantime_serde")]
    pub queue_wait: Duration,
    /// Calls of a plugin whose recent calls were all faster than this run on the async
    /// workers (0: never).
    #[serde(with = "humantime_serde")]
    pub inline_budget: Duration,
    /// A log line per request (target `gp::access`).
    pub access_log: bool,
    /// How the log is written.
    pub log_format: LogFormat,
    /// On shutdown, how long requests in flight may take to finish.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// How long an unload waits for calls still running.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// How long a plugin's `on_load` or `on_unload` may run.
    #[serde(with = "humantime_serde")]
    pub hook_timeout: Duration,
    /// How long a client may take to send a request's line and headers.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How many connections each listener keeps open (default: a quarter of RLIMIT_NOFILE,
    /// at most 10,000).
    pub max_connections: Option<usize>,
    /// How often the GUI's charts sample each plugin.
    #[serde(with = "humantime_serde")]
    pub history_interval: Duration,
    /// Print the GUI's sign-in link even when standard output is not a terminal.
    pub print_signin_link: bool,
    /// Plugins kept at what a registry names: `oci://…:TAG` or `NAME@RANGE`.
    pub follow: Vec<String>,
    /// How often followers check the registry.
    #[serde(with = "humantime_serde")]
    pub follow_every: Duration,
    /// Up to this much more before each check, at random: replicas do not all ask at once.
    #[serde(with = "humantime_serde")]
    pub follow_jitter: Duration,
    /// Follow a tag moved back to an older version (a rollback by tag).
    pub allow_downgrade: bool,
    /// The registry and namespace, `HOST[:PORT]/NAMESPACE` (default: `$GP_REGISTRY`).
    pub registry: Option<String>,
    /// The user name to log in to the registry with.
    pub username: Option<String>,
    /// Read `username`'s password from standard input.
    pub password_stdin: bool,
    /// Read `username`'s password from this file (a mounted secret).
    pub password_file: Option<PathBuf>,
    /// Talk plain HTTP to the registry.
    pub plain_http: bool,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            dir: None,
            create: false,
            listen: DEFAULT_LISTEN.parse().expect("a socket address"),
            admin: DEFAULT_ADMIN.parse().expect("a socket address"),
            metrics: None,
            required: Vec::new(),
            watch: false,
            dev: false,
            isolate: Vec::new(),
            preflight: true,
            token_file: None,
            read_only_token_file: None,
            admin_hosts: Vec::new(),
            admin_tls_cert: None,
            admin_tls_key: None,
            public_keys: Vec::new(),
            timeout: crate::http::DEFAULT_TIMEOUT,
            body_limit: crate::http::DEFAULT_BODY_LIMIT,
            body_timeout: crate::http::DEFAULT_BODY_TIMEOUT,
            body_budget: crate::http::DEFAULT_BODY_BUDGET,
            concurrency: crate::http::DEFAULT_CONCURRENCY,
            queue: crate::http::DEFAULT_QUEUE,
            queue_wait: crate::http::DEFAULT_QUEUE_WAIT,
            inline_budget: crate::http::DEFAULT_INLINE_BUDGET,
            access_log: true,
            log_format: LogFormat::Text,
            grace: crate::http::DEFAULT_GRACE,
            drain_timeout: crate::DEFAULT_DRAIN_TIMEOUT,
            hook_timeout: crate::DEFAULT_HOOK_TIMEOUT,
            header_timeout: crate::http::DEFAULT_HEADER_TIMEOUT,
            idle_timeout: crate::http::DEFAULT_IDLE_TIMEOUT,
            max_connections: None,
            history_interval: DEFAULT_HISTORY_INTERVAL,
            print_signin_link: false,
            follow: Vec::new(),
            follow_every: DEFAULT_FOLLOW_EVERY,
            follow_jitter: DEFAULT_FOLLOW_JITTER,
            allow_downgrade: false,
            registry: None,
            username: None,
            password_stdin: false,
            password_file: None,
            plain_http: false,
        }
    }
}

/// How often the GUI's charts sample (the admin's `DEFAULT_HISTORY_INTERVAL`, here too
/// without the `admin` feature).
const DEFAULT_HISTORY_INTERVAL: Duration = Duration::from_secs(10);

impl ServeConfig {
    /// The longest `gp serve` takes to exit after SIGTERM (a container's termination grace
    /// period must be longer): requests in flight get `grace`; a load under way then (at
    /// start-up, a follower's install, the watcher's change) gets `hook-timeout` + 5 s to end;
    /// calls still running get `drain-timeout`, then each `on_unload` `hook-timeout`; the
    /// runtime 1 s to settle. Without a load under way, it is `hook-timeout` + 5 s shorter.
    pub fn shutdown_bound(&self) -> Duration {
        self.grace + self.drain_timeout + self.hook_timeout * 2 + Duration::from_secs(6)
    }

    /// A manager over `dir` with these settings: timeouts, `dev`, `preflight`, `required`,
    /// `isolate` (feature `isolate`). Trust (`public-key`) is the caller's to add.
    pub fn manager(&self, dir: impl Into<PathBuf>) -> ManagerBuilder {
        let builder = Manager::builder(dir)
            .drain_timeout(self.drain_timeout)
            .hook_timeout(self.hook_timeout)
            .reload_same_version(self.dev)
            .require(self.required.iter().cloned());
        #[cfg(feature = "isolate")]
        let builder = {
            let builder = builder.preflight(self.preflight);
            if self.isolate.iter().any(|name| name == "all") {
                builder.isolation(crate::isolation::Isolation::all())
            } else if self.isolate.is_empty() {
                builder
            } else {
                builder.isolation(crate::isolation::Isolation::named(self.isolate.clone()))
            }
        };
        builder
    }

    /// A plugin server over `manager` with these limits.
    pub fn plugin_server(&self, manager: Manager) -> PluginServerBuilder {
        PluginServer::builder(manager)
            .timeout(self.timeout)
            .max_timeout(self.timeout.max(crate::http::DEFAULT_MAX_TIMEOUT))
            .body_limit(self.body_limit)
            .body_timeout(self.body_timeout)
            .body_budget(self.body_budget)
            .concurrency(self.concurrency)
            .queue(self.queue, self.queue_wait)
            .inline_budget((!self.inline_budget.is_zero()).then_some(self.inline_budget))
            .access_log(self.access_log)
    }

    /// The limits of a listener, as these settings have them.
    pub fn listen_limits(&self) -> ListenLimits {
        ListenLimits::default()
            .with_header_timeout(self.header_timeout)
            .with_idle_timeout(self.idle_timeout)
            .with_max_connections(
                self.max_connections
                    .unwrap_or_else(crate::http::default_max_connections),
            )
            .with_grace(self.grace)
    }
}
