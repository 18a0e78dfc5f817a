//! The JSON bodies the API answers with: a plugin as the API shows it, and what a change
//! did. Typed, so that a state or a result is one of a known set of words.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::AdminShared;
use crate::manager::report::{Synced, Upgrade};
use crate::metrics::PluginSummary;
use crate::runtime::reaper::{UnloadHook, UnloadReport};

/// Where a plugin is in its life, as the API names it.
#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
pub(super) enum PluginState {
    /// A version is loaded and answers calls.
    Serving,
    /// Unloaded, its last calls still running on the old version.
    Draining,
    /// Unloaded (until the next load; `disable` keeps it off).
    Unloaded,
    /// Disabled: unloaded, and kept off across restarts until enabled.
    Disabled,
    /// Its load is under way (its library mapping or its `on_load` running): its routes are
    /// reserved and answer 503 until it serves, or go if the load fails.
    Loading,
}

/// One plugin as the API shows it.
#[derive(Serialize)]
pub(super) struct PluginView {
    pub(super) name: String,
    state: PluginState,
    version: Option<String>,
    description: Option<String>,
    origin: Option<PathBuf>,
    sha256: Option<String>,
    abi_version: Option<String>,
    hooks: Hooks,
    /// Its configuration: the schema its library carries, and the hash of the `config.json`
    /// its instance opened with (never the values: a value may be a secret).
    config: Option<ConfigView>,
    routes: Vec<RouteView>,
    metrics: Option<PluginSummary>,
    /// The latency histogram: upper bound (ns) and count of each non-empty bucket.
    histogram: Vec<(u64, u64)>,
    disabled: Option<DisabledView>,
    rollback_to: Option<String>,
    /// Set when the plugin runs in a runner process of its own.
    #[cfg(feature = "isolate")]
    isolation: Option<crate::runtime::isolation::IsolationStatus>,
}

#[derive(Serialize)]
struct Hooks {
    on_load: bool,
    on_unload: bool,
}

#[derive(Serialize)]
struct ConfigView {
    /// The configuration type's JSON Schema, if the plugin takes one.
    schema: Option<serde_json::Value>,
    /// The SHA-256 of the `config.json` it was loaded with, if there was one.
    sha256: Option<String>,
}

impl ConfigView {
    /// `spec`'s configuration; `None` when it takes none and has no `config.json`.
    fn of(spec: &crate::runtime::spec::Spec) -> Option<ConfigView> {
        let schema = spec.details.config.clone();
        let sha256 = spec.config_sha256.clone();
        (schema.is_some() || sha256.is_some()).then_some(ConfigView { schema, sha256 })
    }
}

#[derive(Serialize)]
struct RouteView {
    method: String,
    route: String,
    label: String,
    /// Whether its handler is an `async fn`.
    #[serde(rename = "async")]
    asynchronous: bool,
}

#[derive(Serialize)]
struct DisabledView {
    reason: String,
    since_unix: u64,
}

/// The routes `manifest` declares, marked async as `details` say (the default details for a
/// disabled plugin, whose library is not read).
fn routes_of(
    manifest: &gp_core::manifest::Manifest,
    details: &gp_core::manifest::Details,
) -> Vec<RouteView> {
    manifest
        .http_services
        .as_ref()
        .map_or_else(Vec::new, |http| {
            http.routes
                .iter()
                .map(|r| RouteView {
                    method: r.method.as_str().to_owned(),
                    route: r.route.clone(),
                    label: r.label.clone(),
                    asynchronous: details.is_async(&r.label),
                })
                .collect()
        })
}

/// Every plugin (serving, draining, unloaded, loading or disabled), by name.
pub(super) fn views(shared: &AdminShared) -> Vec<PluginView> {
    let manager = &shared.manager;
    let stats = manager.stats();
    let mut views: BTreeMap<String, PluginView> = BTreeMap::new();
    for stat in &stats {
        let spec = manager.get_plugin(&stat.name).ok().map(|(s, _)| s);
        views.insert(
            stat.name.clone(),
            PluginView {
                name: stat.name.clone(),
                state: match (&spec, stat.in_flight) {
                    (Some(_), _) => PluginState::Serving,
                    (None, 1..) => PluginState::Draining,
                    (None, 0) => PluginState::Unloaded,
                },
                version: spec.as_ref().map(|s| s.version().to_string()),
                description: spec.as_ref().and_then(|s| s.manifest.description.clone()),
                origin: spec.as_ref().map(|s| s.origin.clone()),
                sha256: spec.as_ref().map(|s| s.sha256.clone()),
                abi_version: spec.as_ref().map(|s| s.abi_version.clone()),
                hooks: Hooks {
                    on_load: spec.as_ref().is_some_and(|s| s.has_on_load),
                    on_unload: spec.as_ref().is_some_and(|s| s.has_on_unload),
                },
                config: spec.as_ref().and_then(ConfigView::of),
                routes: spec
                    .as_ref()
                    .map_or_else(Vec::new, |s| routes_of(&s.manifest, &s.details)),
                metrics: Some(stat.summary()),
                histogram: stat.latency.buckets().collect(),
                disabled: None,
                rollback_to: spec
                    .as_ref()
                    .and_then(|_| manager.rollback_version(&stat.name))
                    .map(|v| v.to_string()),
                #[cfg(feature = "isolate")]
                isolation: manager
                    .executor(&stat.name)
                    .ok()
                    .and_then(|e| e.isolation()),
            },
        );
    }
    for loading in manager.loading() {
        let view = views
            .entry(loading.name().to_owned())
            .or_insert_with(|| PluginView::bare(loading.name()));
        view.state = PluginState::Loading;
        view.version = Some(loading.version().to_string());
        view.description = loading.manifest.description.clone();
        view.origin = Some(loading.origin.clone());
        view.sha256 = Some(loading.sha256.clone());
        view.abi_version = Some(loading.abi_version.clone());
        view.hooks = Hooks {
            on_load: loading.has_on_load,
            on_unload: loading.has_on_unload,
        };
        view.config = ConfigView::of(&loading);
        view.routes = routes_of(&loading.manifest, &loading.details);
    }
    for off in manager.disabled() {
        let view = views
            .entry(off.name.clone())
            .or_insert_with(|| PluginView::bare(&off.name));
        view.state = PluginState::Disabled;
        view.version = Some(off.manifest.version.to_string());
        view.description = off.manifest.description.clone();
        view.origin = Some(off.origin.clone());
        view.routes = routes_of(&off.manifest, &Default::default());
        view.disabled = Some(DisabledView {
            reason: off.reason,
            since_unix: off.since,
        });
    }
    views.into_values().collect()
}

impl PluginView {
    /// A plugin with no slot yet (disabled, or loading for the first time): the caller fills
    /// in what it knows.
    fn bare(name: &str) -> PluginView {
        PluginView {
            name: name.to_owned(),
            state: PluginState::Unloaded,
            version: None,
            description: None,
            origin: None,
            sha256: None,
            abi_version: None,
            hooks: Hooks {
                on_load: false,
                on_unload: false,
            },
            config: None,
            routes: Vec::new(),
            metrics: None,
            histogram: Vec::new(),
            disabled: None,
            rollback_to: None,
            #[cfg(feature = "isolate")]
            isolation: None,
        }
    }
}

/// What a change did: `{"result": …}` with the versions concerned.
#[derive(Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub(super) enum ChangeView {
    /// A plugin loaded.
    Loaded { version: String },
    /// A plugin moved from one version to another.
    Upgraded { from: String, to: String },
    /// Nothing to do: the same build is serving.
    Unchanged { version: String },
    /// The plugin's folder or package is gone: it was unloaded.
    Unloaded,
    /// Nothing there, nothing loaded.
    Nothing,
    /// A plugin installed from a URL or a registry.
    #[cfg_attr(not(feature = "install"), allow(dead_code))]
    Installed { plugin: String, version: String },
}

impl From<&Synced> for ChangeView {
    fn from(synced: &Synced) -> ChangeView {
        match synced {
            Synced::Loaded(spec) => ChangeView::Loaded {
                version: spec.version().to_string(),
            },
            Synced::Upgraded(u) => ChangeView::Upgraded {
                from: u.from.version().to_string(),
                to: u.to.version().to_string(),
            },
            Synced::Unchanged(spec) => ChangeView::Unchanged {
                version: spec.version().to_string(),
            },
            Synced::Unloaded => ChangeView::Unloaded,
            Synced::Nothing => ChangeView::Nothing,
        }
    }
}

impl From<&Upgrade> for ChangeView {
    fn from(upgrade: &Upgrade) -> ChangeView {
        match upgrade {
            Upgrade::Upgraded(u) => ChangeView::Upgraded {
                from: u.from.version().to_string(),
                to: u.to.version().to_string(),
            },
            Upgrade::Unchanged(spec) => ChangeView::Unchanged {
                version: spec.version().to_string(),
            },
        }
    }
}

/// What an unload (or a disable) did.
#[derive(Serialize)]
pub(super) struct UnloadView<'a> {
    result: &'static str,
    version: String,
    waited_ms: u64,
    still_running: usize,
    on_unload: &'a UnloadHook,
}

impl<'a> From<&'a UnloadReport> for UnloadView<'a> {
    fn from(report: &'a UnloadReport) -> UnloadView<'a> {
        UnloadView {
            result: "unloaded",
            version: report.spec.version().to_string(),
            waited_ms: report.waited.as_millis() as u64,
            still_running: report.still_running,
            on_unload: &report.on_unload,
        }
    }
}
