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

/// How much of a disable reason a disabled plugin's routes answer with, in bytes.
pub(crate) const PUBLIC_REASON: usize = 200;

/// One route of one plugin, as the table serves it.
#[derive(Debug)]
pub(crate) struct RouteEntry {
    pub(crate) plugin: String,
    pub(crate) method: HttpMethod,
    /// The route as declared (`/items/:id`).
    pub(crate) route: String,
    pub(crate) label: String,
    /// The route in matchit's syntax: what it is inserted and removed under.
    pattern: String,
    /// Parameters whose values must have a type (beego's `:id:int`).
    typed: Vec<(String, ParamType)>,
    pub(crate) executor: Option<Executor>,
    /// Why the route is reserved rather than served, if it is (it answers 503).
    pub(crate) reserved: Option<Reserved>,
    /// The route's metrics, found once.
    pub(crate) stats: RouteStats,
}

impl RouteEntry {
    /// Whether `spec` still declares this route (same method, route and label).
    pub(crate) fn declared_by(&self, spec: &Spec) -> bool {
        spec.manifest.http_services.as_ref().is_some_and(|http| {
            http.routes
                .iter()
                .any(|r| r.method == self.method && r.route == self.route && r.label == self.label)
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
                "route {} conflicts with route {} of plugin `{}`, which is serving: the two match the same requests; change one of them, or unload `{}` first",
                refused.describe(),
                served.describe(),
                served.plugin,
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
        params: Vec<(String, String)>,
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
        let entries = manifest.http_services.as_ref().map(|http| {
            http.routes
                .iter()
                .map(|route| {
                    let (pattern, typed) = pattern(route, http.driver);
                    Arc::new(RouteEntry {
                        plugin: manifest.name.clone(),
                        method: route.method,
                        route: route.route.clone(),
                        label: route.label.clone(),
                        pattern,
                        typed,
                        executor: executor.clone(),
                        reserved: reserved.clone(),
                        stats: RouteStats::default(),
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
    by_method: HashMap<HttpMethod, matchit::Router<Arc<RouteEntry>>>,
    /// matchit's pattern → the entry it holds, per method: to name the route a conflict is with.
    patterns: HashMap<(HttpMethod, String), Arc<RouteEntry>>,
    /// Each plugin's routes in the routers, in the order declared, by plugin name: what a
    /// change removes, and the order [`entries`](Self::entries) lists.
    plugins: BTreeMap<String, Vec<Arc<RouteEntry>>>,
    /// Routes left out for a conflict (none, unless admission could not refuse them), in the
    /// order they were refused: tried again whenever routes leave.
    blocked: Vec<Arc<RouteEntry>>,
}

/// `route` in matchit's syntax, with the typed parameters it declares.
fn pattern(
    route: &Route,
    driver: gp_core::manifest::HttpDriver,
) -> (String, Vec<(String, ParamType)>) {
    // The manifest was validated at load, so the route parses.
    let segments = parse_route(&route.route, driver).unwrap_or_default();
    let typed = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Typed(p, kind) => Some(((*p).to_owned(), *kind)),
            _ => None,
        })
        .collect();
    (matchit_path(&segments), typed)
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

    /// Removes every route of `plugin` (served or left out); whether it had any.
    fn remove(&mut self, plugin: &str) -> bool {
        self.blocked.retain(|e| e.plugin != plugin);
        let Some(entries) = self.plugins.remove(plugin) else {
            return false;
        };
        for entry in &entries {
            if let Some(router) = self.by_method.get_mut(&entry.method) {
                router.remove(entry.pattern.as_str());
            }
            self.patterns.remove(&(entry.method, entry.pattern.clone()));
        }
        !entries.is_empty()
    }

    /// Inserts one route; the conflict if it cannot be served.
    fn insert(&mut self, entry: &Arc<RouteEntry>) -> Option<Conflict> {
        let router = self.by_method.entry(entry.method).or_default();
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
        if let Some(found) = self.find(method, path) {
            return found;
        }
        if method == HttpMethod::Head {
            if let Some(found) = self.find(HttpMethod::Get, path) {
                return found;
            }
        }
        let mut allow: Vec<&'static str> = HttpMethod::ALL
            .into_iter()
            .filter(|&m| m != method && self.find(m, path).is_some())
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
        let matched = match self.matched(method, path) {
            None if method == HttpMethod::Head => self.matched(HttpMethod::Get, path),
            found => found,
        };
        matched.map(|m| m.value)
    }

    fn find(&self, method: HttpMethod, path: &str) -> Option<Lookup<'_>> {
        let matched = self.matched(method, path)?;
        let params = matched
            .params
            .iter()
            .map(|(name, raw)| (name.to_owned(), decode(raw).into_owned()))
            .collect();
        Some(Lookup::Found {
            entry: matched.value,
            params,
        })
    }

    /// matchit's match for `method path`, if every typed parameter accepts its value.
    fn matched<'t, 'p>(
        &'t self,
        method: HttpMethod,
        path: &'p str,
    ) -> Option<matchit::Match<'t, 'p, &'t Arc<RouteEntry>>> {
        let matched = self.by_method.get(&method)?.at(path).ok()?;
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

/// A path parameter percent-decoded (borrowed unless it had escapes).
fn decode(raw: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(raw).decode_utf8_lossy()
}

#[cfg(test)]
mod tests {
    use super::check::admit;
    use super::*;
    use gp_core::manifest::Manifest;

    pub(super) fn spec(name: &str, driver: &str, routes: &[(&str, &str, &str)]) -> Spec {
        let routes: Vec<serde_json::Value> = routes
            .iter()
            .map(|(m, r, l)| serde_json::json!({"method": m, "route": r, "label": l}))
            .collect();
        let json = serde_json::json!({
            "name": name, "version": "1.0.0",
            "source": {"mode": "local_so", "path": "lib.so"},
            "http_services": {"driver": driver, "routes": routes},
        });
        Spec {
            manifest: Manifest::from_plugin_json(&json.to_string()).unwrap(),
            dir: name.into(),
            origin: name.into(),
            library: "lib.so".into(),
            sha256: String::new(),
            abi_version: "0.1.1".into(),
            has_on_load: false,
            has_on_unload: false,
        }
    }

    fn found(
        table: &RouteTable,
        method: HttpMethod,
        path: &str,
    ) -> Option<(String, Vec<(String, String)>)> {
        // The call's second look, without parameters, finds what the first found.
        let resolved = table.resolve(method, path).map(|e| e.label.clone());
        let looked = match table.lookup(method, path) {
            Lookup::Found { entry, .. } => Some(entry.label.clone()),
            _ => None,
        };
        assert_eq!(resolved, looked, "{method} {path}");
        match table.lookup(method, path) {
            Lookup::Found { entry, params } => Some((entry.label.clone(), params)),
            _ => None,
        }
    }

    #[test]
    fn static_beats_parameters_and_parameters_are_decoded() {
        let a = spec(
            "a",
            "beego",
            &[
                ("GET", "/files/*", "splat"),
                ("GET", "/files/readme", "static"),
                ("GET", "/items/:name", "param"),
                ("GET", "/items/new", "new"),
            ],
        );
        let (table, conflicts) = RouteTable::build([&a], |_| None);
        assert!(conflicts.is_empty(), "{conflicts:?}");
        assert_eq!(
            found(&table, HttpMethod::Get, "/files/readme").unwrap().0,
            "static"
        );
        assert_eq!(
            found(&table, HttpMethod::Get, "/files/a/b%2Fc").unwrap(),
            ("splat".into(), vec![("splat".into(), "a/b/c".into())])
        );
        assert_eq!(
            found(&table, HttpMethod::Get, "/items/new").unwrap().0,
            "new"
        );
        assert_eq!(
            found(&table, HttpMethod::Get, "/items/a%20b").unwrap(),
            ("param".into(), vec![("name".into(), "a b".into())])
        );
        // No trailing-slash redirect, no extension stripping.
        assert!(matches!(
            table.lookup(HttpMethod::Get, "/items/new/"),
            Lookup::NotFound
        ));
        assert_eq!(
            found(&table, HttpMethod::Get, "/items/x.json").unwrap().1,
            vec![("name".into(), "x.json".into())]
        );
        // A parameter and a catch-all at the same place are ambiguous: matchit refuses them.
        let b = spec("b", "beego", &[("GET", "/items/*", "b.splat")]);
        assert!(admit(&b, &[a])
            .unwrap_err()
            .to_string()
            .contains("conflicts with route GET /items/:name"));
    }

    #[test]
    fn typed_parameters_must_fit_and_head_falls_back_to_get() {
        let a = spec(
            "a",
            "beego",
            &[
                ("GET", "/items/:id:int", "get"),
                ("DELETE", "/items/:id:int", "delete"),
            ],
        );
        let (table, _) = RouteTable::build([&a], |_| None);
        assert_eq!(
            found(&table, HttpMethod::Get, "/items/42").unwrap().0,
            "get"
        );
        assert!(matches!(
            table.lookup(HttpMethod::Get, "/items/4x"),
            Lookup::NotFound
        ));
        assert!(found(&table, HttpMethod::Head, "/items/4x").is_none());
        assert_eq!(
            found(&table, HttpMethod::Head, "/items/42").unwrap().0,
            "get"
        );
        match table.lookup(HttpMethod::Post, "/items/42") {
            Lookup::WrongMethod { allow } => assert_eq!(allow, ["GET", "DELETE", "HEAD"]),
            _ => panic!("expected 405"),
        }
    }

    #[test]
    fn conflicts_name_both_plugins_routes_and_labels() {
        let a = spec("a", "axum", &[("GET", "/items/{id}", "a.get")]);
        let same = spec("b", "axum", &[("GET", "/items/{id}", "b.get")]);
        let renamed = spec("b", "beego", &[("GET", "/items/:key", "b.get")]);
        let other_method = spec("b", "axum", &[("POST", "/items/{id}", "b.post")]);
        let serving = [a];
        assert_eq!(
            admit(&same, &serving).unwrap_err().to_string(),
            "route GET /items/{id} (label \"b.get\") conflicts with route GET /items/{id} (label \"a.get\") of plugin `a`, which is serving: the two match the same requests; change one of them, or unload `a` first"
        );
        assert_eq!(
            admit(&renamed, &serving).unwrap_err().to_string(),
            "route GET /items/:key (label \"b.get\") conflicts with route GET /items/{id} (label \"a.get\") of plugin `a`, which is serving: the two match the same requests; change one of them, or unload `a` first"
        );
        admit(&other_method, &serving).unwrap();
        let own = spec(
            "c",
            "beego",
            &[("GET", "/x/:a", "one"), ("GET", "/x/:b", "two")],
        );
        assert_eq!(
            admit(&own, &[]).unwrap_err().to_string(),
            "route GET /x/:b (label \"two\") conflicts with its own route GET /x/:a (label \"one\"): the two match the same requests; make them differ by a literal segment"
        );
    }
}
