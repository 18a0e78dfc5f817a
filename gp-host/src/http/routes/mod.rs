//! The route table: every serving plugin's routes in one matcher per method, checked for
//! conflicts, changed one plugin at a time, and looked up per request.
//!
//! One [matchit] router per method, so that two routes conflict only when they share a method
//! and their patterns are identical or ambiguous (`/a/:id` and `/a/:name`), which is matchit's
//! rule. Static segments take priority over parameters, parameters over catch-alls.
//!
//! A change replaces one plugin's routes ([`RouteTable::set`]): it removes that plugin's
//! routes from the routers and inserts its new ones, so it costs the routes of that plugin,
//! whatever the others hold. [`live`] publishes the table to requests; [`check`] is the
//! admission check, with a table of its own kept in step with what the manager gives it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gp_core::manifest::{parse_route, HttpMethod, Manifest, ParamType, Route, Segment};

use crate::http::stats::RouteStats;
use crate::runtime::executor::Executor;
use crate::runtime::spec::Spec;

pub(crate) mod check;
pub(crate) mod live;
mod params;

use params::decode;
pub(crate) use params::Params;

/// How much of a disable reason a disabled plugin's routes answer with, in bytes.
pub(crate) const PUBLIC_REASON: usize = 200;

/// One route of one plugin, as the table serves it.
#[derive(Debug)]
pub(crate) struct RouteEntry {
    pub(crate) plugin: String,
    pub(crate) method: HttpMethod,
    /// The route as declared (`/items/:id`).
    pub(crate) route: String,
    /// Shared with each call's context.
    pub(crate) label: Arc<str>,
    /// The route in matchit's syntax: what it is inserted and removed under.
    pattern: String,
    /// Parameters whose values must have a type (beego's `:id:int`).
    typed: Vec<(String, ParamType)>,
    /// Every parameter's name, in the route's order: what a request's [`Params`] point at.
    params: Box<[String]>,
    pub(crate) executor: Option<Executor>,
    /// Whether its plugin runs isolated (its requests are then batched).
    #[cfg_attr(not(feature = "isolate"), allow(dead_code))]
    pub(crate) isolated: bool,
    /// Whether its handler is an `async fn` (the plugin's details say): its calls never run
    /// inline on the async workers, since the plugin blocks the calling thread on its own
    /// runtime until the future ends.
    pub(crate) asynchronous: bool,
    /// Why the route is reserved rather than served, if it is (it answers 503).
    pub(crate) reserved: Option<Reserved>,
    /// The route's metrics, found once.
    pub(crate) stats: RouteStats,
    /// What the access log says of the route, made once: ` plugin=… label=… request_id=`.
    pub(crate) log_tail: Box<str>,
}

impl RouteEntry {
    /// Whether `spec` still declares this route (same method, route and label).
    pub(crate) fn declared_by(&self, spec: &Spec) -> bool {
        spec.manifest.http_services.as_ref().is_some_and(|http| {
            http.routes.iter().any(|r| {
                r.method == self.method && r.route == self.route && *r.label == *self.label
            })
        })
    }

    fn describe(&self) -> String {
        format!("{} {} (label {:?})", self.method, self.route, self.label)
    }
}

/// Why a plugin's routes are held for it without calling it: each answers 503.
#[derive(Debug, Clone)]
pub(crate) enum Reserved {
    /// The plugin is disabled, for this reason (cut to [`PUBLIC_REASON`] bytes).
    Disabled(String),
    /// The plugin's load is under way: its library mapping or its `on_load` running.
    Loading,
}

/// Two routes that cannot both be served.
#[derive(Debug)]
pub(crate) struct Conflict {
    pub(crate) refused: Arc<RouteEntry>,
    pub(crate) served: Arc<RouteEntry>,
    /// What the plugin holding `served` is doing, as the message says it.
    pub(crate) held_by: Holder,
}

/// Why a plugin holds a route that another conflicts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// It serves it.
    Serving,
    /// It is loading: its routes are reserved.
    Loading,
    /// It is disabled: its routes stay reserved.
    Disabled,
}

impl Holder {
    /// What the table knows of the plugin holding `entry`: the entry's own state.
    fn of(entry: &RouteEntry) -> Holder {
        match entry.reserved {
            None => Holder::Serving,
            Some(Reserved::Loading) => Holder::Loading,
            Some(Reserved::Disabled(_)) => Holder::Disabled,
        }
    }

    fn says(self) -> &'static str {
        match self {
            Holder::Serving => "which is serving",
            Holder::Loading => "which is loading",
            Holder::Disabled => "which is disabled (its routes stay reserved)",
        }
    }
}

impl Conflict {
    /// What a user sees: both plugins, both routes, both labels, and what to do.
    pub(crate) fn message(&self) -> String {
        let (refused, served) = (&self.refused, &self.served);
        if refused.plugin == served.plugin {
            format!(
                "route {} conflicts with its own route {}: the two match the same requests; make them differ by a literal segment",
                refused.describe(),
                served.describe()
            )
        } else {
            format!(
                "route {} conflicts with route {} of plugin `{}`, {}: the two match the same requests; change one of them, or unload `{}` first",
                refused.describe(),
                served.describe(),
                served.plugin,
                self.held_by.says(),
                served.plugin
            )
        }
    }
}

/// What a request's method and path lead to.
pub(crate) enum Lookup<'t> {
    /// A route, with its parameters (names and percent-decoded values).
    Found {
        entry: &'t Arc<RouteEntry>,
        params: Params,
    },
    /// The path exists under other methods only.
    WrongMethod { allow: Vec<&'static str> },
    /// No route has this path.
    NotFound,
}

/// A plugin's routes as the table will hold them: what [`RouteTable::set`] puts in place.
#[derive(Debug, Clone)]
pub(crate) struct PluginRoutes {
    pub(crate) plugin: String,
    pub(crate) entries: Vec<Arc<RouteEntry>>,
}

impl PluginRoutes {
    /// The routes of a loaded plugin, called through `executor`.
    pub(crate) fn serving(manifest: &Manifest, executor: Option<Executor>) -> PluginRoutes {
        PluginRoutes::of(manifest, executor, None)
    }

    /// The routes of a disabled plugin, kept reserved: they answer 503 with `reason`, cut to
    /// its first [`PUBLIC_REASON`] bytes (anyone may send a request; the whole reason is for
    /// the management API).
    pub(crate) fn disabled(manifest: &Manifest, reason: &str) -> PluginRoutes {
        let reason = crate::util::truncated(reason, PUBLIC_REASON);
        PluginRoutes::of(manifest, None, Some(Reserved::Disabled(reason)))
    }

    /// The routes of a plugin whose load is under way, kept reserved: they answer 503 (with
    /// `Retry-After`) until it serves, or go if its load fails.
    pub(crate) fn loading(manifest: &Manifest) -> PluginRoutes {
        PluginRoutes::of(manifest, None, Some(Reserved::Loading))
    }

    /// No routes: the plugin is gone.
    pub(crate) fn none(plugin: &str) -> PluginRoutes {
        PluginRoutes {
            plugin: plugin.to_owned(),
            entries: Vec::new(),
        }
    }

    fn of(manifest: &Manifest, executor: Option<Executor>, reserved: Option<Reserved>) -> Self {
        #[cfg(feature = "isolate")]
        let isolated = executor.as_ref().is_some_and(|e| e.isolation().is_some());
        #[cfg(not(feature = "isolate"))]
        let isolated = false;
        let details = executor.as_ref().and_then(Executor::spec);
        let entries = manifest.http_services.as_ref().map(|http| {
            http.routes
                .iter()
                .map(|route| {
                    let (pattern, typed, params) = pattern(route, http.driver);
                    Arc::new(RouteEntry {
                        plugin: manifest.name.clone(),
                        method: route.method,
                        route: route.route.clone(),
                        label: Arc::from(route.label.as_str()),
                        pattern,
                        typed,
                        params,
                        executor: executor.clone(),
                        isolated,
                        asynchronous: details
                            .as_ref()
                            .is_some_and(|spec| spec.details.is_async(&route.label)),
                        reserved: reserved.clone(),
                        stats: RouteStats::default(),
                        log_tail: format!(
                            " plugin={} label={} request_id=",
                            manifest.name, route.label
                        )
                        .into(),
                    })
                })
                .collect()
        });
        PluginRoutes {
            plugin: manifest.name.clone(),
            entries: entries.unwrap_or_default(),
        }
    }
}

/// Every route being served.
#[derive(Default, Clone)]
pub(crate) struct RouteTable {
    by_method: ByMethod,
    /// matchit's pattern → the entry it holds, per method: to name the route a conflict is with.
    patterns: HashMap<(HttpMethod, String), Arc<RouteEntry>>,
    /// Each plugin's routes in the routers, in the order declared, by plugin name: what a
    /// change removes, and the order [`entries`](Self::entries) lists.
    plugins: BTreeMap<String, Vec<Arc<RouteEntry>>>,
    /// Routes left out for a conflict (none, unless admission could not refuse them), in the
    /// order they were refused: tried again whenever routes leave.
    blocked: Vec<Arc<RouteEntry>>,
}

/// One matchit router per method, found by the method's position: a request's look-up hashes
/// nothing.
#[derive(Default, Clone)]
struct ByMethod([matchit::Router<Arc<RouteEntry>>; HttpMethod::ALL.len()]);

impl ByMethod {
    fn slot(method: HttpMethod) -> usize {
        match method {
            HttpMethod::Get => 0,
            HttpMethod::Post => 1,
            HttpMethod::Put => 2,
            HttpMethod::Patch => 3,
            HttpMethod::Delete => 4,
            HttpMethod::Head => 5,
            HttpMethod::Options => 6,
        }
    }

    fn get(&self, method: HttpMethod) -> &matchit::Router<Arc<RouteEntry>> {
        &self.0[ByMethod::slot(method)]
    }

    fn get_mut(&mut self, method: HttpMethod) -> &mut matchit::Router<Arc<RouteEntry>> {
        &mut self.0[ByMethod::slot(method)]
    }
}

/// `route` in matchit's syntax, with the typed parameters it declares and every parameter's
/// name.
fn pattern(
    route: &Route,
    driver: gp_core::manifest::HttpDriver,
) -> (String, Vec<(String, ParamType)>, Box<[String]>) {
    // The manifest was validated at load, so the route parses.
    let segments = parse_route(&route.route, driver).unwrap_or_default();
    let typed = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Typed(p, kind) => Some(((*p).to_owned(), *kind)),
            _ => None,
        })
        .collect();
    let names = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Param(p) | Segment::Typed(p, _) | Segment::CatchAll(p) => {
                Some((*p).to_owned())
            }
            Segment::Literal(_) => None,
        })
        .collect();
    (matchit_path(&segments), typed, names)
}

/// Route segments in matchit's (and axum's) syntax: `/items/{id}`, `/files/{*rest}`.
pub(crate) fn matchit_path(segments: &[Segment<'_>]) -> String {
    if segments.is_empty() {
        return "/".into();
    }
    segments
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => format!("/{l}"),
            Segment::Param(p) | Segment::Typed(p, _) => format!("/{{{p}}}"),
            Segment::CatchAll(p) => format!("/{{*{p}}}"),
        })
        .collect()
}

impl RouteTable {
    /// The table serving `specs` (in this order), with `executor` giving each plugin's
    /// executor. A route that conflicts with one inserted before it is left out and reported.
    #[cfg(test)]
    pub(crate) fn build<'s>(
        specs: impl IntoIterator<Item = &'s Spec>,
        executor: impl Fn(&str) -> Option<Executor>,
    ) -> (RouteTable, Vec<Conflict>) {
        let mut table = RouteTable::default();
        let mut conflicts = Vec::new();
        for spec in specs {
            let routes = PluginRoutes::serving(&spec.manifest, executor(spec.name()));
            conflicts.append(&mut table.set(&routes));
        }
        (table, conflicts)
    }

    /// Puts `routes` in place of the plugin's routes in the table, and returns the routes
    /// left out because they conflict with others (or with each other). Costs the routes
    /// this plugin had and has, plus those left out before (none, normally), whatever the
    /// other plugins hold.
    pub(crate) fn set(&mut self, routes: &PluginRoutes) -> Vec<Conflict> {
        if self.replace_in_place(routes) {
            return Vec::new();
        }
        let removed = self.remove(&routes.plugin);
        let conflicts: Vec<Conflict> = routes
            .entries
            .iter()
            .filter_map(|entry| self.insert(entry))
            .collect();
        if removed && !self.blocked.is_empty() {
            // A route that conflicted with one just removed may fit now.
            for entry in std::mem::take(&mut self.blocked) {
                if let Some(conflict) = self.insert(&entry) {
                    self.blocked.push(conflict.refused);
                }
            }
        }
        self.blocked
            .extend(conflicts.iter().map(|c| Arc::clone(&c.refused)));
        conflicts
    }

    /// Puts `routes` in place of the plugin's when they are the same routes, in the same
    /// order, all served (a load that ends its reservation, a disable or an enable of the
    /// same version): the routers keep their trees and only their values change, which costs
    /// a look-up a route instead of a removal and an insertion. False, changing nothing,
    /// otherwise.
    fn replace_in_place(&mut self, routes: &PluginRoutes) -> bool {
        let Some(current) = self.plugins.get(&routes.plugin) else {
            return false;
        };
        let same = current.len() == routes.entries.len()
            && current
                .iter()
                .zip(&routes.entries)
                .all(|(old, new)| old.method == new.method && old.pattern == new.pattern);
        if !same || self.blocked.iter().any(|e| e.plugin == routes.plugin) {
            return false;
        }
        // A pattern looked up as a path finds its own route (a parameter matches its own
        // `{name}`); one that does not (escaped braces, say) takes the long way.
        let found = current.iter().all(|old| {
            self.by_method
                .get(old.method)
                .at(old.pattern.as_str())
                .is_ok_and(|m| Arc::ptr_eq(m.value, old))
        });
        if !found {
            return false;
        }
        for (old, new) in current.iter().zip(&routes.entries) {
            if let Ok(m) = self
                .by_method
                .get_mut(old.method)
                .at_mut(old.pattern.as_str())
            {
                *m.value = Arc::clone(new);
            }
            self.patterns
                .insert((new.method, new.pattern.clone()), Arc::clone(new));
        }
        self.plugins
            .insert(routes.plugin.clone(), routes.entries.clone());
        true
    }

    /// Removes every route of `plugin` (served or left out); whether it had any.
    fn remove(&mut self, plugin: &str) -> bool {
        self.blocked.retain(|e| e.plugin != plugin);
        let Some(entries) = self.plugins.remove(plugin) else {
            return false;
        };
        for entry in &entries {
            self.by_method
                .get_mut(entry.method)
                .remove(entry.pattern.as_str());
            self.patterns.remove(&(entry.method, entry.pattern.clone()));
        }
        !entries.is_empty()
    }

    /// Inserts one route; the conflict if it cannot be served.
    fn insert(&mut self, entry: &Arc<RouteEntry>) -> Option<Conflict> {
        let router = self.by_method.get_mut(entry.method);
        match router.insert(entry.pattern.as_str(), Arc::clone(entry)) {
            Ok(()) => {
                self.patterns
                    .insert((entry.method, entry.pattern.clone()), Arc::clone(entry));
                self.plugins
                    .entry(entry.plugin.clone())
                    .or_default()
                    .push(Arc::clone(entry));
                None
            }
            Err(matchit::InsertError::Conflict { with }) => {
                let served = self
                    .patterns
                    .get(&(entry.method, with))
                    .map(Arc::clone)
                    // matchit names a route it holds, so this is not expected; the
                    // message still names the refused route.
                    .unwrap_or_else(|| Arc::clone(entry));
                Some(Conflict {
                    refused: Arc::clone(entry),
                    held_by: Holder::of(&served),
                    served,
                })
            }
            Err(other) => {
                tracing::warn!(target: "gp::http", plugin = entry.plugin, route = entry.route, "route not served: {other}");
                None
            }
        }
    }

    /// The plugins whose routes are reserved (disabled, or loading).
    pub(crate) fn reserved_plugins(&self) -> Vec<String> {
        self.plugins
            .iter()
            // A plugin's routes are all served or all reserved: its first one says which.
            .filter(|(_, entries)| entries.first().is_some_and(|e| e.reserved.is_some()))
            .map(|(plugin, _)| plugin.clone())
            .collect()
    }

    /// Whether `plugin`'s routes are in the table and served (not reserved, not left out).
    pub(crate) fn serves(&self, plugin: &str) -> bool {
        self.plugins
            .get(plugin)
            .and_then(|entries| entries.first())
            .is_some_and(|entry| entry.reserved.is_none())
    }

    /// The plugins that have routes in the table (served or left out).
    pub(crate) fn plugin_names(&self) -> impl Iterator<Item = &str> {
        self.plugins
            .keys()
            .map(String::as_str)
            .chain(self.blocked.iter().map(|e| e.plugin.as_str()))
    }

    /// The route a request to `method path` goes to. A `HEAD` without a `HEAD` route goes to
    /// the `GET` route.
    pub(crate) fn lookup(&self, method: HttpMethod, path: &str) -> Lookup<'_> {
        if let Some(matched) = self.served(method, path) {
            return Lookup::Found {
                entry: matched.value,
                params: Params::found(matched.value, path, &matched.params),
            };
        }
        let mut allow: Vec<&'static str> = HttpMethod::ALL
            .into_iter()
            .filter(|&m| m != method && self.matched(m, path).is_some())
            .map(HttpMethod::as_str)
            .collect();
        if allow.is_empty() {
            return Lookup::NotFound;
        }
        if allow.contains(&"GET") && !allow.contains(&"HEAD") && method != HttpMethod::Head {
            allow.push("HEAD");
        }
        Lookup::WrongMethod { allow }
    }

    /// The entry serving `method path`, as [`lookup`](Self::lookup) finds it, without
    /// copying out its parameters: what a call checks again just before it runs.
    pub(crate) fn resolve(&self, method: HttpMethod, path: &str) -> Option<&Arc<RouteEntry>> {
        self.served(method, path).map(|m| m.value)
    }

    /// [`resolve`](Self::resolve), if the route is still `plugin`'s and served (it has an
    /// executor): what a call about to run checks, since its request was routed.
    pub(crate) fn still_served(
        &self,
        method: HttpMethod,
        path: &str,
        plugin: &str,
    ) -> Option<&Arc<RouteEntry>> {
        self.resolve(method, path)
            .filter(|entry| entry.plugin == plugin && entry.executor.is_some())
    }

    /// The match that serves `method path`: its own route, or for a `HEAD` without one, the
    /// `GET` route.
    fn served<'t, 'p>(
        &'t self,
        method: HttpMethod,
        path: &'p str,
    ) -> Option<matchit::Match<'t, 'p, &'t Arc<RouteEntry>>> {
        match self.matched(method, path) {
            None if method == HttpMethod::Head => self.matched(HttpMethod::Get, path),
            found => found,
        }
    }

    /// matchit's match for `method path`, if every typed parameter accepts its value.
    fn matched<'t, 'p>(
        &'t self,
        method: HttpMethod,
        path: &'p str,
    ) -> Option<matchit::Match<'t, 'p, &'t Arc<RouteEntry>>> {
        let matched = self.by_method.get(method).at(path).ok()?;
        let entry = matched.value;
        let accepted = entry.typed.is_empty()
            || matched.params.iter().all(|(name, raw)| {
                entry
                    .typed
                    .iter()
                    .find(|(n, _)| n == name)
                    .is_none_or(|(_, kind)| kind.accepts(&decode(raw)))
            });
        accepted.then_some(matched)
    }

    /// Every route served, plugins by name, each plugin's in the order it declares them.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Arc<RouteEntry>> {
        self.plugins.values().flatten()
    }
}

#[cfg(test)]
mod tests;
