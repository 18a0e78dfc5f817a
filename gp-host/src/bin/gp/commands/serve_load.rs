//! `gp serve`'s plugins, loaded behind its open listeners: on a thread of its own, once both
//! listeners are bound and their addresses printed, so that a slow `on_load` delays no other
//! plugin's routes and no listener (the manager loads up to 8 plugin folders at once, and a
//! plugin loading has its routes reserved: they answer 503 with `Retry-After`). What follows
//! the load (the report, the routes, the watcher, the followers) starts when every folder has
//! been tried.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gp_host::http::{Admin, PluginServer};
use gp_host::{Error, Manager};

/// What the loading thread needs, and what it starts afterwards.
pub struct Loader {
    /// The manager that loads them.
    pub manager: Manager,
    /// The management plane, ready (`readyz`) once every folder was tried.
    pub admin: Admin,
    /// The plugin server, whose routes are printed then.
    pub server: PluginServer,
    /// The base directory.
    pub dir: PathBuf,
    /// Whether packages must be signed (else the ones loaded unsigned are named).
    pub checked: bool,
    /// `--watch`.
    pub watch: bool,
    /// `--follow`, with the client and the interval to follow with.
    pub follows: Vec<gp_host::Follow>,
    /// The registry client `--follow` uses.
    pub hub_client: Option<gp_host::hub::Client>,
    /// `--follow-every`, `--follow-jitter`, `--allow-downgrade`.
    pub follow: gp_host::FollowOptions,
}

/// What the loading thread started, for the shutdown to stop; and whether start-up failed
/// (the base directory vanished, the watcher could not start): `gp serve` then stops, exit 1.
#[derive(Default)]
pub struct Started {
    state: Mutex<State>,
    failed: AtomicBool,
    /// Set once `load_plugins` returned.
    loaded: Mutex<bool>,
    loaded_now: std::sync::Condvar,
    /// Wakes the server when start-up failed.
    pub stop: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    /// Set by the shutdown: what the loading thread would start from then on, it does not.
    stopping: bool,
    following: Vec<gp_host::Following>,
    watcher: Option<gp_host::Watcher>,
}

impl Started {
    fn mark_loaded(&self) {
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.loaded_now.notify_all();
    }

    /// Whether start-up failed (said on stderr).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Keeps the loading thread from starting anything more, and hands over what it started.
    pub fn stop_starting(&self) -> (Vec<gp_host::Following>, Option<gp_host::Watcher>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.stopping = true;
        (std::mem::take(&mut state.following), state.watcher.take())
    }

    /// Waits up to `limit` for the plugin folders' loads to end (after
    /// `Manager::stop_loading`, the loads under way); whether they did.
    pub fn wait_loaded(&self, limit: Duration) -> bool {
        let loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let (loaded, _) = self
            .loaded_now
            .wait_timeout_while(loaded, limit, |loaded| !*loaded)
            .unwrap_or_else(|p| p.into_inner());
        *loaded
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Release);
        self.stop.notify_one();
    }
}

/// How much longer than the hook timeout a shutdown waits for a plugin still loading: its
/// library's mapping and checks, around its `on_load`.
pub const LOAD_SLACK: Duration = Duration::from_secs(5);

/// At shutdown: no folder starts loading from now on, and a load under way ends (its
/// `on_load` within `hook_timeout`) before the unload, so that it unloads with the others and
/// its `on_unload` runs; one still loading after that is named.
pub fn stop_loading(manager: &Manager, started: Option<&Started>, hook_timeout: Duration) {
    manager.stop_loading();
    let Some(started) = started else {
        return;
    };
    if started.wait_loaded(hook_timeout + LOAD_SLACK) {
        return;
    }
    for spec in manager.loading() {
        crate::log::error(format_args!(
            "plugin `{}` {} was still loading {} after the shutdown began: exiting without it",
            spec.name(),
            spec.version(),
            humantime::format_duration(hook_timeout + LOAD_SLACK),
        ));
    }
}

/// Loads the plugins on a thread of its own (`gp-start`), then prints the report and the
/// routes, starts following and watching, and prints the `ready:` line.
pub fn start(loader: Loader, plugins_addr: std::net::SocketAddr) -> Arc<Started> {
    let started = Arc::new(Started::default());
    let shared = Arc::clone(&started);
    let spawned = std::thread::Builder::new()
        .name("gp-start".into())
        .spawn(move || run(loader, plugins_addr, &shared));
    if let Err(e) = spawned {
        crate::log::error(format_args!(
            "cannot start a thread to load the plugins: {e}"
        ));
        started.fail();
        started.mark_loaded();
    }
    started
}

fn run(loader: Loader, plugins_addr: std::net::SocketAddr, started: &Started) {
    let Loader {
        manager,
        admin,
        server,
        dir,
        checked,
        watch,
        follows,
        hub_client,
        follow,
    } = loader;
    let report = manager.load_plugins();
    started.mark_loaded();
    // A shutdown during the load left folders untried: what they hold is not missing.
    let stopping = started
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .stopping;
    let missing = (!stopping)
        .then(|| required_not_loaded(&manager, &report, &follows))
        .flatten();
    if let Some(error) = missing {
        // The seed's Init(required): a server without them is no use; its orchestrator
        // restarts it, or an operator reads why.
        report_table(&report);
        crate::log::error(format_args!("{error}"));
        started.fail();
        return;
    }
    if stopping {
        // Cut short by the shutdown: what was tried is reported, nothing more is said or
        // started (no warning about an empty directory that was never read through).
        report_table(&report);
        return;
    }
    admin.mark_ready();
    report_table(&report);
    if !crate::log::json() {
        // Each route an event would be 16,384 of them for 256 plugins of 64 routes; the
        // management API lists them (GET /api/v1/routes).
        print_routes(&server, plugins_addr);
    }
    if !checked {
        super::shared::warn_unchecked_packages(report.loaded.iter().chain(&report.unchanged));
    }
    if matches!(report.failed.first(), Some(f) if matches!(f.error, Error::MissingBaseDir { .. })) {
        // Checked before the listeners opened: it went since. The report says so.
        started.fail();
        return;
    }
    super::serve_start::warn_if_empty(&report, &dir, watch);
    let mut state = started.state.lock().unwrap_or_else(|p| p.into_inner());
    if state.stopping {
        return;
    }
    // Following starts once the directory is loaded: the first check sees what is there.
    if let Some(client) = &hub_client {
        state.following = follows
            .into_iter()
            .map(|target| manager.follow_with(target, client.clone(), follow.clone()))
            .collect();
    }
    if watch {
        match manager.watch() {
            Ok(watcher) => state.watcher = Some(watcher),
            Err(error) => {
                crate::log::error(format_args!("{error}"));
                drop(state);
                started.fail();
                return;
            }
        }
    }
    drop(state);
    crate::log::said(format_args!(
        "ready: every plugin folder tried ({} loaded, {} failed, {} disabled)",
        report.loaded.len(),
        report.failed.len(),
        report.disabled.len()
    ));
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

/// The load report's table, for a person; with a JSON log, nothing: each load and each
/// failure was an event already.
fn report_table(report: &gp_host::LoadReport) {
    if !crate::log::json() {
        // Nobody reading standard output is no reason to stop serving.
        let _ = out!("{report}");
    }
}

/// The required plugins that did not load, as an error, but those a follower will install (a
/// fleet's replica starts with an empty base directory: `/-/readyz` answers 503 until its
/// followers have installed them).
fn required_not_loaded(
    manager: &Manager,
    report: &gp_host::LoadReport,
    follows: &[gp_host::Follow],
) -> Option<Error> {
    match manager.check_required(report) {
        Err(Error::RequiredNotLoaded { plugins }) => {
            let plugins: Vec<(String, String)> = plugins
                .into_iter()
                .filter(|(name, _)| !follows.iter().any(|f| f.name() == name))
                .collect();
            (!plugins.is_empty()).then_some(Error::RequiredNotLoaded { plugins })
        }
        Err(other) => Some(other),
        Ok(()) => None,
    }
}

/// Prints a line per route served, written a buffer at a time: standard output writes each
/// line on its own otherwise, and 256 plugins of 64 routes are 16,384 lines, a system call
/// each (a pipe's reader woken for each). Stops at the first failed write (nobody reads).
fn print_routes(server: &PluginServer, plugins_addr: std::net::SocketAddr) {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    for route in server.routes() {
        let line = writeln!(
            out,
            "route {} http://{plugins_addr}{} -> {} ({})",
            route.method, route.route, route.plugin, route.label
        );
        if line.is_err() {
            return;
        }
    }
    let _ = out.flush();
}
