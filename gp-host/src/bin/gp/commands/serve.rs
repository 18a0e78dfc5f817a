//! `gp serve`: keep the plugins of a base directory loaded, serve their HTTP routes on one
//! listener and their metrics on another, until Ctrl-C or SIGTERM.

use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use gp_host::http::{admin_router, PluginServer};
use gp_host::{Error, Manager};

use super::shared::{DEFAULT_ADMIN, DEFAULT_LISTEN};

#[derive(clap::Args)]
pub struct Args {
    /// The plugin base directory
    dir: PathBuf,
    /// Follow the directory: load new plugin folders, upgrade changed ones (newer versions
    /// only), unload removed ones
    #[arg(long)]
    watch: bool,
    /// Reload a rebuild whose version did not change (another library or plugin.json under
    /// the same version), for the edit-build-reload loop while developing a plugin
    #[arg(long)]
    dev: bool,
    /// Where to serve the plugins' routes, and GET /-/healthz (port 0 picks a free port)
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Where to serve GET /metrics and GET /stats, for operators (port 0 picks a free port)
    #[arg(long, default_value = DEFAULT_ADMIN)]
    admin: SocketAddr,
    /// How long a route's call may take before the client gets 504
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The largest request body a route accepts, in bytes
    #[arg(long, default_value_t = gp_host::http::DEFAULT_BODY_LIMIT)]
    body_limit: usize,
    /// How many calls each plugin may run at once; beyond it requests get 503
    #[arg(long, default_value_t = gp_host::http::DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// On Ctrl-C or SIGTERM, how long to let requests in flight finish before unloading
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    grace: Duration,
}

pub fn exec(args: Args) -> Result<ExitCode, Error> {
    let manager = Manager::builder(&args.dir)
        .reload_same_version(args.dev)
        .build();
    // Before loading: the server checks every plugin's routes against the others'.
    let server = PluginServer::builder(manager.clone())
        .timeout(args.timeout)
        .max_timeout(args.timeout.max(gp_host::http::DEFAULT_MAX_TIMEOUT))
        .body_limit(args.body_limit)
        .concurrency(args.concurrency)
        .build();
    let report = manager.load_plugins();
    print!("{report}");
    if matches!(report.failed.first(), Some(f) if matches!(f.error, Error::MissingBaseDir { .. })) {
        return Ok(ExitCode::FAILURE);
    }
    let _watcher = if args.watch {
        Some(manager.watch()?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            path: args.dir.clone(),
            source: e,
        })?;
    runtime.block_on(serve(&manager, server, args.listen, args.admin, args.grace))?;
    // Everything stopped serving: unload, so that every plugin's on_unload runs.
    for spec in manager.list() {
        if let Err(error) = manager.unload(spec.name()) {
            eprintln!("error: {error}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    manager: &Manager,
    server: PluginServer,
    listen: SocketAddr,
    admin: SocketAddr,
    grace: Duration,
) -> Result<(), Error> {
    let bind = |addr: SocketAddr| async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| cannot_listen(addr, e))?;
        let local = listener.local_addr().map_err(|e| cannot_listen(addr, e))?;
        Ok::<_, Error>((listener, local))
    };
    let (plugins, plugins_addr) = bind(listen).await?;
    let (ops, ops_addr) = bind(admin).await?;
    for route in server.routes() {
        println!(
            "route {} http://{plugins_addr}{} -> {} ({})",
            route.method, route.route, route.plugin, route.label
        );
    }
    println!("serving plugin routes on http://{plugins_addr}/ (health: /-/healthz)");
    println!("serving metrics on http://{ops_addr}/metrics and http://{ops_addr}/stats");
    let _ = std::io::stdout().flush();

    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let stopped = |stop: &tokio::sync::broadcast::Sender<()>| {
        let mut receiver = stop.subscribe();
        async move {
            let _ = receiver.recv().await;
        }
    };
    let app = server.router();
    let plugin_task = tokio::spawn(
        axum::serve(
            plugins,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopped(&stop))
        .into_future(),
    );
    let admin_task = tokio::spawn(
        axum::serve(ops, admin_router(manager.clone(), Some(server)))
            .with_graceful_shutdown(stopped(&stop))
            .into_future(),
    );
    shutdown_signal().await;
    println!("shutting down: finishing requests in flight (up to {grace:?}), then unloading");
    let _ = std::io::stdout().flush();
    let _ = stop.send(());
    let finished = async {
        let _ = plugin_task.await;
        let _ = admin_task.await;
    };
    if tokio::time::timeout(grace, finished).await.is_err() {
        eprintln!("warning: requests still in flight after {grace:?}; unloading anyway");
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

fn cannot_listen(addr: SocketAddr, e: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(addr.to_string()),
        source: e,
    }
}
