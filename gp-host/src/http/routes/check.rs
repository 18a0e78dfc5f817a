//! The admission check the HTTP layer registers with a manager: refuses a plugin whose routes
//! conflict with those of the plugins serving, or with each other.
//!
//! The check keeps a route table of its own, which follows what the manager gives it rather
//! than the served table: the manager runs checks under its change lock with every plugin
//! serving or disabled (`serving`), while the served table learns of a change from an event
//! sent after that lock is released, and may not have caught up. Each check first brings its
//! table in step with `serving`, which costs a look at each plugin's build and the routes of
//! the plugins that changed since the last check, then tries the candidate's routes in it:
//! kept if they pass (its load reserves its place, so the next check finds it there unchanged
//! and does nothing for it), taken out if refused. A load is checked twice, as it reserves its
//! place and as its version goes into its slot; the second check costs nothing more than the
//! look at each plugin when nothing came in meanwhile that was not checked against it. Nothing
//! is built whole per check.

use std::collections::{HashMap, HashSet};

use gp_core::manifest::HttpServices;

use super::{Conflict, Holder, PluginRoutes, RouteTable};
use crate::runtime::spec::Spec;

/// The routes of a plugin that conflict with those serving, or with each other: the HTTP
/// layer's refusal at admission (the `reason` of [`Error::Refused`](crate::Error::Refused)).
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(Conflict::message).collect::<Vec<_>>().join("; "))]
pub(crate) struct RouteConflicts(Vec<Conflict>);

/// The admission check's state: the routes of the plugins the last check was given.
#[derive(Default)]
pub(crate) struct RouteCheck {
    table: RouteTable,
    /// What each plugin in `table` is, to tell whether the next check's spec is the same.
    known: HashMap<String, Known>,
}

/// What a plugin in the check's table is.
#[derive(Debug, PartialEq)]
enum Known {
    /// A loaded build, by its SHA-256: its embedded manifest, and so its routes, are checked
    /// against its `plugin.json` at load, so the same build declares the same routes.
    Build(String),
    /// A disabled plugin (the manager gives it no build): its routes themselves.
    Routes(Option<HttpServices>),
}

impl Known {
    fn of(spec: &Spec) -> Known {
        if spec.sha256.is_empty() {
            Known::Routes(spec.manifest.http_services.clone())
        } else {
            Known::Build(spec.sha256.clone())
        }
    }

    fn is(&self, spec: &Spec) -> bool {
        match self {
            Known::Build(sha256) => !spec.sha256.is_empty() && *sha256 == spec.sha256,
            Known::Routes(http) => spec.sha256.is_empty() && *http == spec.manifest.http_services,
        }
    }
}

impl RouteCheck {
    /// Refuses `candidate` if one of its routes conflicts with a route of `serving` (every
    /// other plugin serving or disabled, as [`Manager::admit`](crate::Manager::admit) gives
    /// them) or with another of its own.
    pub(crate) fn check(
        &mut self,
        candidate: &Spec,
        serving: &[&Spec],
        loading: &dyn Fn(&str) -> bool,
    ) -> Result<(), RouteConflicts> {
        if candidate.manifest.http_services.is_none() {
            return Ok(());
        }
        let name = candidate.name();
        let kept = self
            .known
            .get(name)
            .is_some_and(|known| known.is(candidate));
        let changed = self.follow(serving, name);
        if kept && !changed && self.table.blocked.is_empty() {
            // This build passed an earlier check and its routes stayed in (a load's second
            // check, as its version goes into its slot). What came in since was checked
            // against them, and none of the others' routes is left out, so every route of
            // `serving` is in the routers with these and none conflicts with them.
            return Ok(());
        }
        if self.known.remove(name).is_some() {
            // Out first (a route of another's it kept out goes in), then in again last, as
            // a fresh check would try it.
            self.table.set(&PluginRoutes::none(name));
        }
        let mut conflicts = self
            .table
            .set(&PluginRoutes::serving(&candidate.manifest, None));
        // Which of the others holds each route (this table holds them all as served): a
        // disabled plugin comes without a build.
        for conflict in &mut conflicts {
            let plugin = conflict.served.plugin.as_str();
            conflict.held_by = if loading(plugin) {
                Holder::Loading
            } else if serving
                .iter()
                .any(|s| s.name() == plugin && s.sha256.is_empty())
            {
                Holder::Disabled
            } else {
                Holder::Serving
            };
        }
        if conflicts.is_empty() {
            // Kept, as the build it is: its load reserves its place, so the next check finds
            // it in `serving` unchanged and has nothing to do for it (or takes it out if the
            // load went no further, or puts in the version `serving` has instead).
            self.known.insert(name.to_owned(), Known::of(candidate));
            Ok(())
        } else {
            // Refused: out again; the version serving, if any, goes back in at the next check.
            self.table.set(&PluginRoutes::none(name));
            Err(RouteConflicts(conflicts))
        }
    }

    /// Brings the table in step with `serving`: takes out the plugins no longer there, puts
    /// in (in name order) those new or changed since the last check; leaves `candidate`'s
    /// routes as they are (`serving` goes without it). Costs a look-up per plugin (no
    /// allocation unless one left) and the routes of those that changed. Whether it changed
    /// the table.
    fn follow(&mut self, serving: &[&Spec], candidate: &str) -> bool {
        let mut still_there = 0;
        let mut changed: Vec<&Spec> = Vec::new();
        for spec in serving {
            match self.known.get(spec.name()) {
                Some(known) => {
                    still_there += 1;
                    if !known.is(spec) {
                        changed.push(spec);
                    }
                }
                None => changed.push(spec),
            }
        }
        let others = self.known.len() - usize::from(self.known.contains_key(candidate));
        let mut left = false;
        if still_there < others {
            let present: HashSet<&str> = serving.iter().map(|s| s.name()).collect();
            let gone: Vec<String> = self
                .known
                .keys()
                .filter(|name| *name != candidate && !present.contains(name.as_str()))
                .cloned()
                .collect();
            for name in gone {
                self.known.remove(&name);
                self.table.set(&PluginRoutes::none(&name));
                left = true;
            }
        }
        changed.sort_by(|a, b| a.name().cmp(b.name()));
        let entered = !changed.is_empty();
        for spec in changed {
            self.table.set(&PluginRoutes::serving(&spec.manifest, None));
            self.known.insert(spec.name().to_owned(), Known::of(spec));
        }
        left || entered
    }
}

/// A check with nothing learnt yet: what a fresh table would say.
#[cfg(test)]
pub(crate) fn admit(candidate: &Spec, serving: &[Spec]) -> Result<(), RouteConflicts> {
    let serving: Vec<&Spec> = serving.iter().collect();
    RouteCheck::default().check(candidate, &serving, &|_| false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::tests::spec;

    /// `spec` as a loaded build: known by its SHA-256.
    fn build(name: &str, sha256: &str, routes: &[(&str, &str, &str)]) -> Spec {
        let mut spec = spec(name, "beego", routes);
        spec.sha256 = sha256.into();
        spec
    }

    /// The check that followed every change answers as a fresh one would.
    fn agrees(check: &mut RouteCheck, candidate: &Spec, serving: &[Spec]) -> Result<(), String> {
        let refs: Vec<&Spec> = serving.iter().collect();
        let followed = check
            .check(candidate, &refs, &|_| false)
            .map_err(|e| e.to_string());
        let fresh = admit(candidate, serving).map_err(|e| e.to_string());
        assert_eq!(followed, fresh, "{} against {serving:?}", candidate.name());
        followed
    }

    #[test]
    fn a_kept_candidate_is_checked_again_as_a_fresh_check_would() {
        let mut check = RouteCheck::default();
        let a = build("a", "a1", &[("GET", "/x/:id", "a.x")]);
        let b = build("b", "b1", &[("GET", "/y/:id", "b.y")]);
        let c = build("c", "c1", &[("GET", "/x/:key", "c.x")]);
        // A load's two checks, with another load admitted in between: both pass.
        agrees(&mut check, &a, &[]).unwrap();
        agrees(&mut check, &b, std::slice::from_ref(&a)).unwrap();
        agrees(&mut check, &a, std::slice::from_ref(&b)).unwrap();
        // `d` disabled meanwhile (its routes reserved, never checked), taking `/x` from
        // `a` kept: the next check, for another plugin, leaves d's route out of the table;
        // a's second check, with nothing new since, still meets it.
        let off = build("d", "", &[("GET", "/x/:name", "d.x")]);
        agrees(&mut check, &a, &[]).unwrap();
        let e = build("e", "e1", &[("GET", "/e", "e.e")]);
        agrees(&mut check, &e, &[a.clone(), off.clone()]).unwrap();
        agrees(&mut check, &a, &[e.clone(), off.clone()]).unwrap_err();
        agrees(&mut check, &c, &[b.clone(), off.clone()]).unwrap_err();
        agrees(&mut check, &c, std::slice::from_ref(&b)).unwrap();
        agrees(&mut check, &a, &[b.clone(), off.clone()]).unwrap_err();
        // `c` kept, its load given up (not in `serving`): `a` takes `/x` without it.
        agrees(&mut check, &a, std::slice::from_ref(&b)).unwrap();
        // `a` kept and then refused (a route another build of `c` now holds), twice over.
        agrees(&mut check, &a, &[b.clone(), c.clone()]).unwrap_err();
        agrees(&mut check, &a, &[b.clone(), c.clone()]).unwrap_err();
        agrees(&mut check, &b, std::slice::from_ref(&c)).unwrap();
    }

    #[test]
    fn follows_loads_upgrades_unloads_and_disabled_plugins_as_given() {
        let mut check = RouteCheck::default();
        let a1 = build("a", "a1", &[("GET", "/x/:id", "a.x")]);
        let a2 = build("a", "a2", &[("GET", "/z/:id", "a.z")]);
        let b = build("b", "b1", &[("GET", "/x/:name", "b.x")]);
        let c = build("c", "c1", &[("GET", "/z/:key", "c.z")]);
        agrees(&mut check, &a1, &[]).unwrap();
        // `b` clashes with `a` 1.0 while it serves.
        let refused = agrees(&mut check, &b, std::slice::from_ref(&a1)).unwrap_err();
        assert!(
            refused.contains("of plugin `a`, which is serving: "),
            "{refused}"
        );
        // The same while `a` is still loading (its routes reserved) says so.
        let refused = RouteCheck::default()
            .check(&b, &[&a1], &|plugin| plugin == "a")
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("of plugin `a`, which is loading: "),
            "{refused}"
        );
        // `a` upgrades away from `/x`: the check drops the version it replaces.
        agrees(&mut check, &a2, &[]).unwrap();
        agrees(&mut check, &b, std::slice::from_ref(&a2)).unwrap();
        agrees(&mut check, &c, &[a2.clone(), b.clone()]).unwrap_err();
        // `a` unloaded: `c` fits.
        agrees(&mut check, &c, std::slice::from_ref(&b)).unwrap();
        // `c` disabled (no build, its routes reserved), then with other routes.
        let mut off = c.clone();
        off.sha256.clear();
        let refused = agrees(&mut check, &a2, &[b.clone(), off.clone()]).unwrap_err();
        assert!(
            refused.contains("of plugin `c`, which is disabled (its routes stay reserved): "),
            "{refused}"
        );
        off.manifest = spec("c", "beego", &[("GET", "/w", "c.w")]).manifest;
        agrees(&mut check, &a2, &[b.clone(), off]).unwrap();
        // A plugin with no routes is not checked, and changes nothing.
        let mut plain = build("plain", "p1", &[("GET", "/x/:other", "plain.x")]);
        plain.manifest.http_services = None;
        agrees(&mut check, &plain, std::slice::from_ref(&b)).unwrap();
        agrees(&mut check, &a1, std::slice::from_ref(&b)).unwrap_err();
    }
}
