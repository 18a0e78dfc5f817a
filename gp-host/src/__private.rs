//! Plumbing for gp's own benchmarks and tests, not part of the stable API: what they need to
//! measure a plugin as a host runs it, or to see which call protection the process chose.
//! Everything here may change in any release.

use crate::error::Error;

/// Runs `f` with `ctx` seen as a plugin sees it (the ABI trait object), tagged with `plugin`:
/// for benchmarks that compare a plugin call with the same code run in-process. The thread is
/// not inside a call for the host's services ([`gp_core::HostServices`]): a plugin that logs
/// or panics in `f` is treated as outside a call.
pub fn with_host_context<R>(
    ctx: &mut crate::Context,
    plugin: &str,
    f: impl FnOnce(gp_core::HostContextMut<'_>) -> R,
) -> R {
    crate::runtime::scope::outside_a_call(ctx, plugin, f)
}

/// [`with_host_context`] with the table of the context's values as well, as a host built
/// against gp-core 0.1.3 or later hands both to a plugin's `call` entry point.
pub fn with_call_table<R>(
    ctx: &mut crate::Context,
    plugin: &str,
    f: impl FnOnce(gp_core::HostContextMut<'_>, gp_core::CallTable) -> R,
) -> R {
    crate::runtime::scope::outside_a_call_with_table(ctx, plugin, f)
}

/// [`verify`](crate::verify)s a library and hands it this host's services, as a
/// [`Manager`](crate::Manager) does when it loads one: for benchmarks that call a library's
/// functions directly and must measure the plugin as a host runs it.
pub fn bind_host(path: &std::path::Path) -> Result<(), Error> {
    let (_, module) = crate::library::verified(path)?;
    module.bind_host(crate::runtime::scope::SERVICES);
    Ok(())
}

/// How calls are protected in this process: `"membarrier"` (readers pay a compiler fence) or
/// `"fences"` (the fallback: readers pay a full fence).
pub fn call_barrier() -> &'static str {
    crate::runtime::rcu::barrier_name()
}

/// One message to an isolated version's runner and its answer, with no call: the bare
/// channel's round trip, for benchmarks. `None` if the version is not isolated.
#[cfg(feature = "isolate")]
pub fn ping_runner(executor: &crate::Executor) -> Option<Result<(), Error>> {
    executor.ping_runner()
}

/// The HTTP route tables as a [`PluginServer`](crate::http::PluginServer) keeps them, without
/// plugins, sockets or a manager: for the route-table benchmark.
#[cfg(feature = "http")]
pub mod routes {
    use crate::http::routes::check::RouteCheck;
    use crate::http::routes::live::LiveTable;
    use crate::http::routes::{Lookup, PluginRoutes};
    use crate::runtime::spec::Spec;
    use gp_core::manifest::{HttpMethod, Manifest};

    /// A loaded plugin known by its manifest and its build (any text that differs between
    /// builds, as a SHA-256 does).
    pub fn spec(manifest: Manifest, build: &str) -> Spec {
        Spec {
            dir: manifest.name.clone().into(),
            origin: manifest.name.clone().into(),
            manifest,
            library: "lib.so".into(),
            sha256: build.to_owned(),
            abi_version: gp_core::ABI_VERSION.to_owned(),
            has_on_load: false,
            has_on_unload: false,
            config_sha256: None,
            details: Default::default(),
        }
    }

    /// The admission check's table and the served table of one server.
    #[derive(Default)]
    pub struct RouteTables {
        check: RouteCheck,
        served: LiveTable,
    }

    impl RouteTables {
        /// Tables with no routes.
        pub fn new() -> RouteTables {
            RouteTables::default()
        }

        /// What a server pays for a load or an upgrade of `candidate` while `serving` are the
        /// other plugins (as the manager hands them to the check): the admission check, then,
        /// if it admits, the served table's change (as on the lifecycle event). The refusal's
        /// message otherwise.
        pub fn load(&mut self, candidate: &Spec, serving: &[Spec]) -> Result<(), String> {
            let serving: Vec<&Spec> = serving.iter().collect();
            self.check
                .check(candidate, &serving, &|_| false)
                .map_err(|e| e.to_string())?;
            self.served
                .change(vec![PluginRoutes::serving(&candidate.manifest, None)]);
            Ok(())
        }

        /// Puts the routes of `specs` in the served table in one change, unchecked, as a
        /// server does when it starts following a manager.
        pub fn serve(&mut self, specs: &[Spec]) {
            let changes = specs
                .iter()
                .map(|s| PluginRoutes::serving(&s.manifest, None))
                .collect();
            self.served.change(changes);
        }

        /// What a server pays for an unload of `plugin` (the served table's change).
        pub fn unload(&mut self, plugin: &str) {
            self.served.change(vec![PluginRoutes::none(plugin)]);
        }

        /// The label of the route `method path` goes to, as a request looks it up.
        pub fn lookup(&self, method: HttpMethod, path: &str) -> Option<String> {
            match self.served.load().lookup(method, path) {
                Lookup::Found { entry, .. } => Some(entry.label.to_string()),
                _ => None,
            }
        }

        /// Whether `method path` has a route, looked up as a request does (the table loaded,
        /// the route and its parameters found), without copying its label.
        pub fn serves(&self, method: HttpMethod, path: &str) -> bool {
            matches!(
                self.served.load().lookup(method, path),
                Lookup::Found { .. }
            )
        }

        /// How many routes are served.
        pub fn len(&self) -> usize {
            self.served.load().entries().count()
        }

        /// Whether no route is served.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }
}
