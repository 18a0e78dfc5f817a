//! `gp serve`: keep the plugins of a base directory loaded, serve their HTTP routes on one
//! listener and their metrics on another, until Ctrl-C or SIGTERM.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::failure::Failure;
use gp_host::http::{
    serve_listener, serve_listener_tls, Admin, AdminToken, ListenLimits, PluginServer, ServeConfig,
};
use gp_host::{Error, Manager};

use super::shared::{DEFAULT_ADMIN, DEFAULT_LISTEN};

#[derive(clap::Args)]
#[command(after_help = EXIT_CODES)]
pub struct Args {
    /// Read the settings from this TOML file (default: $GP_SERVE_CONFIG, if set): one key per
    /// flag (--body-limit is body-limit, --no-preflight is preflight = false), each also
    /// settable as GP_SERVE_<KEY>; flags win over the environment, which wins over the file (a
    /// flag that takes no value takes =true or =false: --watch=false undoes watch = true)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective settings as TOML (what --config reads) and exit
    #[arg(long)]
    pub print_config: bool,
    /// The plugin base directory (default: $GP_HOME/plugins)
    dir: Option<PathBuf>,
    /// Create the base directory if missing (else a mistyped path is an error, not an empty
    /// server); $GP_HOME/plugins, the default, is always created
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set, value_name = "BOOL")]
    create: bool,
    /// Print the GUI's sign-in link (it holds the admin token) even when standard output is
    /// not a terminal, where it is otherwise left out (a service's collected logs)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set, value_name = "BOOL")]
    print_signin_link: bool,
    /// How often the GUI's charts sample each plugin's rates and p99 (15 minutes are kept)
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    history_interval: Duration,
    /// Follow the directory: load new plugin folders, upgrade changed ones (newer versions
    /// only), unload removed ones
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set, value_name = "BOOL")]
    watch: bool,
    /// Reload a rebuild whose version did not change (another library or plugin.json under
    /// the same version), for the edit-build-reload loop while developing a plugin
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set, value_name = "BOOL")]
    dev: bool,
    /// Run this plugin in a runner process of its own ("all": every plugin): a crash costs
    /// one request (502) and a restart, not the server; repeatable
    #[arg(long, value_name = "NAME|all")]
    isolate: Vec<String>,
    /// Load new builds straight into this process, without first loading each in a throwaway
    /// runner (which turns a library that crashes the loader into an error instead of a crash)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set, value_name = "BOOL")]
    no_preflight: bool,
    /// Where to serve the plugins' routes, GET /-/healthz and GET /-/readyz (port 0 picks a
    /// free port)
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Also serve GET /metrics here, read-only and without a token, for scrapers inside a
    /// cluster (the admin listener stays loopback)
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// A plugin this server cannot do without: start-up fails (exit 1) unless it loads (or a
    /// --follow will install it), and GET /-/readyz answers 503 while it does not serve;
    /// repeatable
    #[arg(long, value_name = "NAME")]
    required: Vec<String>,
    /// How to write the log: text (on standard error), or json (one object per line on
    /// standard output, gp serve's own lines included, for log collectors)
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Where to serve the management API (/api/v1), its GUI (/ui/), GET /metrics and GET
    /// /stats, for operators (port 0 picks a free port). Loopback only
    #[arg(long, default_value = DEFAULT_ADMIN)]
    admin: SocketAddr,
    /// The management API's token, read from this file (else from $GP_ADMIN_TOKEN, else a
    /// new one is written to <runtime dir>/admin-token, readable by you only)
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// A token that may only read the management API, from this file
    #[arg(long)]
    read_only_token_file: Option<PathBuf>,
    /// Another host name the admin listener answers to (besides 127.0.0.1, localhost, [::1])
    #[arg(long = "admin-host")]
    admin_hosts: Vec<String>,
    /// Serve the admin listener over TLS with this certificate chain (PEM); needs
    /// --admin-tls-key. Required for a non-loopback --admin
    #[arg(long, value_name = "PEM")]
    admin_tls_cert: Option<PathBuf>,
    /// The private key of --admin-tls-cert (PEM)
    #[arg(long, value_name = "PEM")]
    admin_tls_key: Option<PathBuf>,
    /// Accept only packages signed by this public key (base64, or a .pub file): in the
    /// directory and uploaded through the management API; repeatable. Required for a
    /// non-loopback --admin
    #[arg(long = "public-key", value_name = "KEY")]
    public_keys: Vec<String>,
    /// How long a route's call may take before the client gets 504
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The largest request body a route accepts, in bytes
    #[arg(long, default_value_t = gp_host::http::DEFAULT_BODY_LIMIT)]
    body_limit: usize,
    /// How many calls each plugin may run at once; beyond it requests wait in the plugin's
    /// queue
    #[arg(long, default_value_t = gp_host::http::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// How many requests may wait for one plugin's slots; beyond it, 503 with Retry-After
    #[arg(long, default_value_t = gp_host::http::DEFAULT_QUEUE)]
    queue: usize,
    /// How long a request waits for a slot before 503 (never past its timeout: 504)
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    queue_wait: Duration,
    /// Calls of a plugin whose recent calls all took less than this run on the async workers
    /// rather than the blocking pool (saves two thread hand-offs); 0 keeps every call on the
    /// pool
    #[arg(long, default_value = "50us", value_parser = humantime::parse_duration)]
    inline_budget: Duration,
    /// Log no line per request (target gp::access; written by a thread of its own)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set, value_name = "BOOL")]
    no_access_log: bool,
    /// On Ctrl-C or SIGTERM, how long to let requests in flight finish before unloading
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// How long an unload (every plugin at once, on shutdown) waits for calls still running
    /// before it gives up on them
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// How long a plugin's on_load or on_unload hook may run
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    hook_timeout: Duration,
    /// How long a client may take to send a request's line and headers (both listeners)
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: Duration,
    /// How long a connection may stay open with no request in flight: from accept to its
    /// first request, then between requests (both listeners)
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// How many connections each listener keeps open (default: a quarter of the descriptor
    /// limit, RLIMIT_NOFILE, at most 10000); past it the connection idle the longest is
    /// closed, and a new one is refused only when none is idle
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// How long a client may take to send a request's body to a plugin route; past it 408
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    body_timeout: Duration,
    /// How many bytes of request bodies the plugin listener holds at once, across all
    /// requests; a body past it gets 503
    #[arg(long, default_value_t = gp_host::http::DEFAULT_BODY_BUDGET, value_name = "BYTES")]
    body_budget: usize,
    /// Keep a plugin at what a registry names: an oci://…:TAG reference (a tag that moves, such
    /// as `stable`) or NAME@RANGE under --registry; checked every --follow-every, verified and
    /// upgraded like `gp install` (into DIR as NAME.plg); repeatable
    #[arg(long, value_name = "oci://…:TAG|NAME@RANGE")]
    follow: Vec<String>,
    /// How often --follow checks the registry
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    follow_every: Duration,
    /// Up to this much more before each --follow check, at random, so that replicas do not
    /// all ask the registry at once
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    follow_jitter: Duration,
    /// Follow a tag that moves back to an older version (a rollback by moving the tag);
    /// without it, such a version is refused and what is loaded keeps serving
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set, value_name = "BOOL")]
    allow_downgrade: bool,
    /// The registry the GUI's Hub page searches and installs from (with --registry
    /// HOST[:PORT]/NAMESPACE, or GP_REGISTRY), and --follow's
    #[command(flatten)]
    registry: super::hub::RegistryArgs,
}

/// `gp serve` with `config`, the settings resolved from the file, the environment and the
/// flags (`serve_config`).
pub fn exec(config: ServeConfig) -> Result<ExitCode, Failure> {
    // Checked before anything is written there (the admin token is, before the plugins load).
    let Some(dir) = super::serve_start::base_dir(config.dir.clone(), config.create)? else {
        return Ok(ExitCode::FAILURE);
    };
    let trust = super::shared::required_signers(&config.public_keys)?;
    let checked = trust.is_some();
    let Some(tls) = admin_tls(&config, checked)? else {
        return Ok(ExitCode::FAILURE);
    };
    let mut manager = config.manager(&dir);
    if let Some(trust) = trust {
        manager = manager.trust(trust);
    }
    let manager = manager.build();
    // Before loading: the server checks every plugin's routes against the others'.
    let server = plugin_server(&config, &manager);
    let (token, token_file) = admin_token(&manager, config.token_file.as_deref())?;
    // The sign-in link carries the token: only to a terminal (a person), never into logs a
    // service manager collects, unless asked for.
    let signin = (std::io::stdout().is_terminal() || config.print_signin_link)
        .then(|| token.secret().to_owned());
    let mut admin = Admin::builder(manager.clone(), token)
        .server(server.clone())
        .history_interval(config.history_interval);
    if let Some(path) = &config.read_only_token_file {
        admin = admin.read_only_token(AdminToken::from_file(path)?);
    }
    for host in &config.admin_hosts {
        admin = admin.allow_host(host);
    }
    let (follows, hub_namespace, hub_client) = registry(&config)?;
    if let (Some(namespace), Some(client)) = (hub_namespace, &hub_client) {
        admin = admin.hub(namespace, client.clone());
    }
    let admin = admin.build();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            path: dir.clone(),
            source: e,
        })?;
    let limits = config.listen_limits();
    let loader = super::serve_load::Loader {
        manager: manager.clone(),
        admin: admin.clone(),
        server: server.clone(),
        dir,
        checked,
        watch: config.watch,
        follows,
        hub_client,
        follow: gp_host::FollowOptions::every(config.follow_every)
            .jitter(config.follow_jitter)
            .allow_downgrade(config.allow_downgrade),
    };
    let mut started = None;
    let served = runtime.block_on(serve(
        (server, admin),
        (token_file, signin),
        Listeners {
            plugins: config.listen,
            admin: config.admin,
            metrics: config.metrics,
        },
        (tls, limits),
        (loader, &mut started),
    ));
    let (following, watcher) = started
        .as_ref()
        .map(|s| s.stop_starting())
        .unwrap_or_default();
    super::serve_load::stop_loading(&manager, started.as_deref(), config.hook_timeout);
    let stuck = super::serve_stop::shut_down(
        &manager,
        following,
        watcher,
        runtime,
        (
            config.drain_timeout,
            config.hook_timeout,
            config.hook_timeout + super::serve_load::LOAD_SLACK,
        ),
    );
    served?;
    Ok(if stuck {
        ExitCode::from(super::serve_stop::STUCK_EXIT_CODE)
    } else if started.is_some_and(|s| s.failed()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The admin listener's TLS, if configured; `None` (said on stderr) when a non-loopback
/// admin listener lacks TLS or signed packages (`signed`).
#[allow(clippy::option_option)] // None: refused; Some(None): plain HTTP on loopback
fn admin_tls(
    config: &ServeConfig,
    signed: bool,
) -> Result<Option<Option<Arc<rustls::ServerConfig>>>, Failure> {
    if !config.admin.ip().is_loopback() {
        // Anyone who reaches it with the token runs code here (upgrade, install): it must be
        // encrypted, and what it installs must be signed.
        let missing = match (config.admin_tls_cert.is_some(), signed) {
            (false, _) => Some("TLS (--admin-tls-cert and --admin-tls-key)"),
            (true, false) => Some("signed packages (--public-key)"),
            (true, true) => None,
        };
        if let Some(missing) = missing {
            crate::log::error(format_args!(
                "--admin {} is not a loopback address, which needs {missing}: the management API can upgrade plugins, so a leaked token means running code on this machine",
                config.admin
            ));
            return Ok(None);
        }
    }
    match (&config.admin_tls_cert, &config.admin_tls_key) {
        (Some(cert), Some(key)) => Ok(Some(Some(super::serve_start::tls_config(cert, key)?))),
        (None, None) => Ok(Some(None)),
        _ => Err(Failure::usage(
            "admin-tls-cert and admin-tls-key go together: give both, or neither",
        )),
    }
}

/// The addresses `gp serve` listens on.
struct Listeners {
    plugins: SocketAddr,
    admin: SocketAddr,
    metrics: Option<SocketAddr>,
}

/// What `gp serve --help` says of how it ends.
const EXIT_CODES: &str = "\
Start-up: both listeners open first, then the plugins load behind them, up to 8 at once; while
a plugin loads, its routes answer 503 with Retry-After and the management API lists it as
loading. A plugin that fails to load is listed in the report (and the API's failures) and left
out: gp serve serves the others. The report, the routes and a line starting with \"ready:\"
follow once every plugin folder was tried.

Shutdown: on Ctrl-C or SIGTERM, requests in flight get --grace to finish, then every plugin
unloads at once: calls still running are cancelled and get --drain-timeout to return, then each
plugin's on_unload gets --hook-timeout. gp serve exits within the sum of the three, even when a
plugin ignores cancellation, plus 1 s to settle and, when a load was under way (at start-up, a
follower's install, the watcher's change), --hook-timeout + 5 s for it to end. A shutdown during
start-up starts no further load; a plugin in the middle of its load finishes it (its on_load
within --hook-timeout) and unloads with the others. Nothing a follower downloads or the watcher
sees after the shutdown began is loaded; a follower or the watcher still busy after that wait
is named and left to end with the process.

Required plugins (--required): one that does not load at start-up stops gp serve (exit 1), but
one a --follow names (the last part of its repository, or its NAME@RANGE): a replica that
starts empty answers 503 on /-/readyz until its follower has installed it.

Exit status: 0 after a clean shutdown, whether or not every plugin loaded; 1 on an error (a
listener that cannot bind, a base directory that is missing, a watcher that cannot start, a
required plugin that did not load); 2 for arguments or settings it cannot read (an unknown key,
a value of the wrong kind); 3 if calls were still running at
the end of --drain-timeout (or the unload itself did not end within --drain-timeout +
--hook-timeout + 1 s): each such plugin is named on stderr with its version, its on_unload
is not run, and its calls end with the process.";

/// The plugin server `config` configures, over `manager`.
fn plugin_server(config: &ServeConfig, manager: &Manager) -> PluginServer {
    let mut builder = config.plugin_server(manager.clone());
    // Lines written as text into the log's buffer, not formatted as events, when the log
    // would show them at all (as JSON, they are events like any other).
    if config.access_log
        && config.log_format == gp_host::http::LogFormat::Text
        && tracing::enabled!(target: "gp::access", tracing::Level::INFO)
    {
        builder =
            builder.access_log_to_prefixed(crate::log::AccessLines, crate::log::ACCESS_PREFIX);
    }
    builder.build()
}

/// What `config` says about registries: the plugins to follow, the namespace the Hub page
/// searches, and the client both use (`--username`'s credentials are for the --registry host,
/// or else the first followed one).
#[allow(clippy::type_complexity)] // three things, named where they are used
fn registry(
    config: &ServeConfig,
) -> Result<
    (
        Vec<gp_host::Follow>,
        Option<gp_host::hub::Namespace>,
        Option<gp_host::hub::Client>,
    ),
    Failure,
> {
    let args = super::hub::RegistryArgs {
        registry: config.registry.clone(),
        username: config.username.clone(),
        password_stdin: config.password_stdin,
        password_file: config.password_file.clone(),
        plain_http: config.plain_http,
    };
    let configured = args.registry.is_some() || std::env::var_os("GP_REGISTRY").is_some();
    let follows = config
        .follow
        .iter()
        .map(|target| super::hub::follow_target(&args, target))
        .collect::<Result<Vec<_>, _>>()?;
    if !follows.is_empty() && config.follow_every < Duration::from_secs(1) {
        return Err(Failure::usage(format!(
            "--follow-every {}: check a registry at most once a second",
            humantime::format_duration(config.follow_every)
        )));
    }
    let hub_namespace = configured
        .then(|| args.namespace("the Hub page"))
        .transpose()?;
    let home_registry = if let Some(namespace) = &hub_namespace {
        Some(namespace.registry.clone())
    } else {
        follows.first().map(|f| match f {
            gp_host::Follow::Tag(reference) => reference.registry.clone(),
            gp_host::Follow::Range { namespace, .. } => namespace.registry.clone(),
        })
    };
    let hub_client = match &home_registry {
        Some(registry) => Some(args.client(registry)?),
        None => None,
    };
    Ok((follows, hub_namespace, hub_client))
}

/// The admin token: from `--token-file`, else `$GP_ADMIN_TOKEN`, else a new one written to
/// the runtime directory. Returns it and where it is kept (`None` for the variable).
fn admin_token(
    manager: &Manager,
    file: Option<&std::path::Path>,
) -> Result<(AdminToken, Option<PathBuf>), Failure> {
    if let Some(file) = file {
        return Ok((AdminToken::from_file(file)?, Some(file.to_owned())));
    }
    if let Ok(text) = std::env::var("GP_ADMIN_TOKEN") {
        let token = AdminToken::new(&text)
            .map_err(|invalid| Failure::unusable("$GP_ADMIN_TOKEN", invalid.to_string()))?;
        return Ok((token, None));
    }
    let token = AdminToken::generate();
    let path = manager.runtime_dir().join("admin-token");
    token.write_to(&path)?;
    Ok((token, Some(path)))
}

/// Says where `gp serve` listens, with which token, and (to a person) the sign-in link.
fn announce(
    (plugins_addr, ops_addr, scrape): (SocketAddr, SocketAddr, Option<SocketAddr>),
    scheme: &str,
    token_file: Option<PathBuf>,
    signin: Option<String>,
) {
    crate::log::said(format_args!("serving plugin routes on http://{plugins_addr}/ (health: /-/healthz, readiness: /-/readyz)"));
    crate::log::said(format_args!(
        "serving metrics on {scheme}://{ops_addr}/metrics and {scheme}://{ops_addr}/stats"
    ));
    if let Some(addr) = scrape {
        crate::log::said(format_args!(
            "serving metrics read-only on http://{addr}/metrics"
        ));
    }
    let token = token_file.map_or_else(
        || "the token in $GP_ADMIN_TOKEN".to_owned(),
        |f| format!("the token in {}", f.display()),
    );
    crate::log::said(format_args!(
        "managing plugins at {scheme}://{ops_addr}/ui/ and {scheme}://{ops_addr}/api/v1 with {token}"
    ));
    if let Some(secret) = signin {
        // In the fragment, which a browser never sends: the page reads it, keeps it and
        // takes it out of the address bar.
        crate::log::said(format_args!(
            "sign in to the GUI: {scheme}://{ops_addr}/ui/#token={}",
            super::serve_start::fragment_encoded(&secret)
        ));
    }
}

async fn serve(
    (server, admin): (PluginServer, Admin),
    (token_file, signin): (Option<PathBuf>, Option<String>),
    listeners: Listeners,
    (tls, limits): (Option<Arc<rustls::ServerConfig>>, ListenLimits),
    (loader, started): (
        super::serve_load::Loader,
        &mut Option<Arc<super::serve_load::Started>>,
    ),
) -> Result<(), Failure> {
    let grace = limits.grace;
    let bind = |addr: SocketAddr, flag: &'static str| async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| super::serve_start::cannot_bind(addr, flag, e))?;
        let local = listener
            .local_addr()
            .map_err(|e| super::serve_start::cannot_listen(addr, e))?;
        Ok::<_, Failure>((listener, local))
    };
    let (plugins, plugins_addr) = bind(listeners.plugins, "--listen").await?;
    let (ops, ops_addr) = bind(listeners.admin, "--admin").await?;
    let scrape = match listeners.metrics {
        Some(addr) => Some(bind(addr, "--metrics").await?),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    announce(
        (
            plugins_addr,
            ops_addr,
            scrape.as_ref().map(|(_, addr)| *addr),
        ),
        scheme,
        token_file,
        signin,
    );
    let _ = std::io::stdout().flush();

    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let stopped = |stop: &tokio::sync::broadcast::Sender<()>| {
        let mut receiver = stop.subscribe();
        async move {
            let _ = receiver.recv().await;
        }
    };
    // The plugin server on its own, without a router's layers in front.
    let plugin_task = tokio::spawn(serve_listener(
        plugins,
        server.clone(),
        stopped(&stop),
        limits,
    ));
    let admin_task = match tls {
        None => tokio::spawn(serve_listener(ops, admin.router(), stopped(&stop), limits)),
        Some(config) => tokio::spawn(serve_listener_tls(
            ops,
            admin.router(),
            stopped(&stop),
            limits,
            config,
        )),
    };
    // Read-only: the metrics router has no route that changes anything, and no token.
    let scrape_task = scrape.map(|(listener, _)| {
        let router = gp_host::http::scrape_router(loader.manager.clone(), Some(server.clone()));
        tokio::spawn(serve_listener(listener, router, stopped(&stop), limits))
    });
    // The listeners accept from here on; the plugins load behind them.
    let loading = super::serve_load::start(loader, plugins_addr);
    *started = Some(Arc::clone(&loading));
    tokio::select! {
        () = shutdown_signal() => {},
        () = loading.stop.notified() => {},
    }
    crate::log::said(format_args!(
        "shutting down: finishing requests in flight (up to {grace:?}), then unloading"
    ));
    let _ = std::io::stdout().flush();
    let _ = stop.send(());
    let finished = async {
        let _ = plugin_task.await;
        let _ = admin_task.await;
        if let Some(task) = scrape_task {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(grace, finished).await.is_err() {
        crate::log::warning(format_args!(
            "requests still in flight after {grace:?}; unloading anyway"
        ));
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM (what service managers and container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
