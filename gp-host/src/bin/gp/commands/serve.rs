//! `gp serve`: keep the plugins of a base directory loaded and serve their metrics over HTTP
//! (GET /metrics in Prometheus text format, GET /stats as JSON) until Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use gp_host::{Error, Manager};

use super::shared::DEFAULT_LISTEN;

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
    /// The address to serve metrics on (port 0 picks a free port)
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
}

pub fn exec(args: Args) -> Result<ExitCode, Error> {
    let Args {
        dir,
        watch,
        dev,
        listen,
    } = args;
    let manager = Manager::builder(&dir).reload_same_version(dev).build();
    let report = manager.load_plugins();
    print!("{report}");
    if matches!(report.failed.first(), Some(f) if matches!(f.error, Error::MissingBaseDir { .. })) {
        return Ok(ExitCode::FAILURE);
    }
    let _watcher = if watch { Some(manager.watch()?) } else { None };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            path: dir.clone(),
            source: e,
        })?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| cannot_listen(listen, e))?;
        let local = listener
            .local_addr()
            .map_err(|e| cannot_listen(listen, e))?;
        println!("serving metrics on http://{local}/metrics and http://{local}/stats");
        let _ = std::io::stdout().flush();
        axum::serve(listener, gp_host::http::router(manager))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| cannot_listen(listen, e))
    })?;
    Ok(ExitCode::SUCCESS)
}

fn cannot_listen(addr: SocketAddr, e: std::io::Error) -> Error {
    Error::Io {
        path: PathBuf::from(addr.to_string()),
        source: e,
    }
}
