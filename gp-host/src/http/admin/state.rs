//! What the management plane keeps: its settings, and what it learns from the manager's
//! lifecycle events (the last load failure of each folder, each plugin's previous version,
//! where unloaded plugins came from, routes refused, the recent events for newcomers).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::{AdminBuilder, AdminToken};
use crate::error::Error;
use crate::http::PluginServer;
use crate::manager::Manager;
use crate::runtime::events::{Event, SubscriptionId};
use crate::util::lock;

/// How many lifecycle events the API remembers for `GET /api/v1/events` newcomers.
const RECENT_EVENTS: usize = 100;

/// The registry the Hub page searches and installs from.
pub(crate) struct Hub {
    #[cfg(feature = "hub")]
    pub(super) namespace: crate::hub::Namespace,
    #[cfg(feature = "hub")]
    pub(super) client: crate::hub::Client,
}

/// The management plane's state, shared by its handlers and its lifecycle subscription.
pub(crate) struct AdminShared {
    pub(super) manager: Manager,
    pub(super) server: Option<PluginServer>,
    pub(crate) token: AdminToken,
    pub(crate) read_only: Option<AdminToken>,
    pub(crate) allowed_hosts: Vec<String>,
    pub(super) upload_limit: usize,
    pub(super) hub: Option<Arc<Hub>>,
    /// The last load failure of each folder or package that has no plugin loaded from it.
    pub(super) failures: Mutex<BTreeMap<PathBuf, String>>,
    /// The host's own folders (base and runtime directories, absolute, longest first), which
    /// an error's message shows relative to them.
    roots: Vec<String>,
    /// Plugins refused for their routes (an admission check), by origin, with why.
    pub(super) refused: Mutex<BTreeMap<PathBuf, String>>,
    pub(super) recent: Mutex<VecDeque<serde_json::Value>>,
    pub(super) events: tokio::sync::broadcast::Sender<serde_json::Value>,
    pub(super) ready: AtomicBool,
    subscription: Mutex<Option<SubscriptionId>>,
    /// The last 15 minutes of each plugin's rates and p99 (`GET /api/v1/history`).
    pub(super) history: super::history::History,
}

impl Drop for AdminShared {
    fn drop(&mut self) {
        if let Some(id) = lock(&self.subscription).take() {
            self.manager.unsubscribe(id);
        }
    }
}

/// A lifecycle event as `GET /api/v1/events` sends it (with `at_unix_ms` added).
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum EventView<'a> {
    Loading {
        plugin: &'a str,
        version: String,
    },
    LoadAbandoned {
        plugin: &'a str,
    },
    Loaded {
        plugin: &'a str,
        version: String,
    },
    LoadFailed {
        origin: &'a std::path::Path,
        error: String,
    },
    Upgraded {
        plugin: &'a str,
        from: String,
        to: String,
    },
    UpgradeRefused {
        plugin: &'a str,
        error: String,
    },
    Unloaded {
        plugin: &'a str,
        version: String,
    },
}

/// An event with the time it was recorded.
#[derive(Serialize)]
struct Stamped<'a> {
    #[serde(flatten)]
    event: EventView<'a>,
    at_unix_ms: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl AdminShared {
    pub(super) fn new(built: AdminBuilder) -> AdminShared {
        let (events, _) = tokio::sync::broadcast::channel(256);
        let roots = roots(&built.manager);
        AdminShared {
            manager: built.manager,
            server: built.server,
            token: built.token,
            read_only: built.read_only,
            allowed_hosts: built.hosts,
            upload_limit: built.upload_limit,
            hub: built.hub,
            failures: Mutex::new(BTreeMap::new()),
            roots,
            refused: Mutex::new(BTreeMap::new()),
            recent: Mutex::new(VecDeque::new()),
            events,
            ready: AtomicBool::new(false),
            subscription: Mutex::new(None),
            history: super::history::History::new(built.history_interval),
        }
    }

    /// Subscribes `shared` to its manager's lifecycle events (weakly: the subscription ends
    /// when the plane is dropped).
    pub(super) fn follow(shared: &Arc<AdminShared>) {
        let weak = Arc::downgrade(shared);
        let id = shared.manager.subscribe_lifecycle(move |event| {
            if let Some(shared) = weak.upgrade() {
                shared.record(event);
            }
        });
        *lock(&shared.subscription) = Some(id);
    }

    /// Samples the plugins' rates into `history` every interval, on a thread of its own that
    /// ends once the plane is dropped (it holds it weakly).
    pub(super) fn sample_history(shared: &Arc<AdminShared>) {
        let weak = Arc::downgrade(shared);
        let interval = shared.history.interval;
        let _ = std::thread::Builder::new()
            .name("gp-admin-history".into())
            .spawn(move || {
                // The first sample is measured against the counters as they are now.
                if let Some(shared) = weak.upgrade() {
                    shared.history.take(&shared.manager, interval);
                    shared.history.clear();
                }
                let mut last = std::time::Instant::now();
                loop {
                    std::thread::sleep(interval);
                    let Some(shared) = weak.upgrade() else {
                        return;
                    };
                    let now = std::time::Instant::now();
                    shared.history.take(&shared.manager, now - last);
                    last = now;
                }
            });
    }

    /// The first load is done: `GET /api/v1/readyz` answers 200 from now on.
    pub(super) fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// `message` with this host's base and runtime directories made relative: `BASE/x` →
    /// `x`, `BASE` alone → `.`; a longer name that only starts like one is left alone.
    pub(super) fn relative(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for root in &self.roots {
            let mut done = String::with_capacity(out.len());
            let mut rest = out.as_str();
            while let Some(at) = rest.find(root.as_str()) {
                done.push_str(&rest[..at]);
                let after = &rest[at + root.len()..];
                match after.chars().next() {
                    Some('/') => rest = &after[1..],
                    Some(c) if c.is_alphanumeric() || "-_.~".contains(c) => {
                        done.push_str(root);
                        rest = after;
                    }
                    _ => {
                        done.push('.');
                        rest = after;
                    }
                }
            }
            done.push_str(rest);
            out = done;
        }
        out
    }

    /// Remembers what `event` says, and sends it to the event stream.
    fn record(&self, event: &Event<'_>) {
        let view = match event {
            // A load under way (its routes reserved), and one that gave up: the GUI's
            // plugins view shows the plugin loading, then not, without waiting to refresh.
            Event::Loading { spec } => EventView::Loading {
                plugin: spec.name(),
                version: spec.version().to_string(),
            },
            Event::LoadAbandoned { plugin } => EventView::LoadAbandoned { plugin },
            Event::Loaded { spec } => {
                lock(&self.failures).remove(&spec.origin);
                lock(&self.refused).remove(&spec.origin);
                EventView::Loaded {
                    plugin: spec.name(),
                    version: spec.version().to_string(),
                }
            }
            Event::LoadFailed { path, error } => {
                lock(&self.failures).insert(path.to_path_buf(), error.to_string());
                if let Error::Refused { reason, .. } = error {
                    lock(&self.refused).insert(path.to_path_buf(), reason.to_string());
                }
                EventView::LoadFailed {
                    origin: path,
                    error: error.to_string(),
                }
            }
            Event::Upgraded { from, to } => {
                lock(&self.failures).remove(&to.origin);
                lock(&self.refused).remove(&to.origin);
                EventView::Upgraded {
                    plugin: to.name(),
                    from: from.version().to_string(),
                    to: to.version().to_string(),
                }
            }
            Event::UpgradeRefused { plugin, error } => {
                if let Error::UpgradeRefused { source, .. } = error {
                    if let Error::Refused { path, reason, .. } = &**source {
                        lock(&self.refused).insert(path.clone(), reason.to_string());
                    }
                }
                EventView::UpgradeRefused {
                    plugin,
                    error: error.to_string(),
                }
            }
            Event::Unloaded { report } => EventView::Unloaded {
                plugin: report.spec.name(),
                version: report.spec.version().to_string(),
            },
            _ => return,
        };
        let stamped = Stamped {
            event: view,
            at_unix_ms: now_ms(),
        };
        let json = serde_json::to_value(stamped).expect("an event serialises");
        {
            let mut recent = lock(&self.recent);
            if recent.len() == RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back(json.clone());
        }
        let _ = self.events.send(json);
    }
}

/// The folders [`AdminShared::relative`] takes out of messages: the manager's base and
/// runtime directories, as given and normalised, absolute only, longest first.
fn roots(manager: &Manager) -> Vec<String> {
    let mut roots: Vec<String> = [manager.base_dir(), manager.runtime_dir()]
        .into_iter()
        .flat_map(|dir| [dir.to_owned(), crate::util::normalize(dir)])
        .filter(|dir| dir.is_absolute() && dir.parent().is_some())
        .map(|dir| dir.to_string_lossy().trim_end_matches('/').to_owned())
        .collect();
    roots.sort_by_key(|root| std::cmp::Reverse(root.len()));
    roots.dedup();
    roots
}
