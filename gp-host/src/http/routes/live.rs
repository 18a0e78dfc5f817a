//! The table requests read: [`LiveTable`], two copies of the route table (left-right), so
//! that a change costs the routes it changes and a request never waits for one.
//!
//! Requests read the published copy through an [`ArcSwap`], as they read a table swapped
//! whole before, with no lock. A change is made on the other copy, the standby, which nothing
//! reads: it first catches up with the changes made to the published copy since it was last
//! published itself, then takes this change, and is published in one swap; the copy it
//! replaces becomes the standby, behind by this one change. So each change is applied twice,
//! at the cost of the routes it touches, and never copies the table.
//!
//! Why the standby is not read while it is changed: it is changed only through
//! [`Arc::get_mut`], which succeeds only when no one else holds the copy. `ArcSwap::swap`
//! pays every reader's debt on the copy it takes out before returning it, so a request that
//! loaded that copy before the swap holds a counted reference until its lookup ends, and
//! `get_mut` waits for it. Requests hold a copy for a lookup only (they take their route's
//! entry out, never the table across a call); if one is still held after a while (a thread
//! descheduled in the middle of a lookup), the change clones the published copy instead,
//! which costs the whole table once and is always correct. No `unsafe`: the type system
//! checks the exclusive access.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};

use super::{Conflict, PluginRoutes, RouteTable};
use crate::util::lock;

/// How long a change waits for the last reader of the standby copy before it clones the
/// published one instead.
const READER_WAIT: Duration = Duration::from_millis(5);

/// The route table requests read, changed one plugin at a time.
pub(crate) struct LiveTable {
    published: ArcSwap<RouteTable>,
    standby: Mutex<Standby>,
    /// Counts the copies published, twice each: odd while one is being swapped in.
    generation: AtomicU64,
}

/// The copy not published, and the changes the published copy has that it lacks.
struct Standby {
    table: Arc<RouteTable>,
    behind: Vec<PluginRoutes>,
}

impl Default for LiveTable {
    fn default() -> LiveTable {
        LiveTable {
            published: ArcSwap::from_pointee(RouteTable::default()),
            standby: Mutex::new(Standby {
                table: Arc::new(RouteTable::default()),
                behind: Vec::new(),
            }),
            generation: AtomicU64::new(0),
        }
    }
}

impl LiveTable {
    /// The table as it is now, for one lookup: hold it no longer (a change waits for the
    /// last reader of a copy before changing it).
    pub(crate) fn load(&self) -> Guard<Arc<RouteTable>> {
        self.published.load()
    }

    /// Which copy requests read now, as a number: odd while a change is being published.
    /// Read before [`load`](Self::load), an even number that [`unchanged_since`]
    /// (Self::unchanged_since) finds again later says that the copy loaded then is still the
    /// one published: a look-up in it then would find what the first found.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Whether no change has begun since [`generation`](Self::generation) returned
    /// `generation`.
    pub(crate) fn unchanged_since(&self, generation: u64) -> bool {
        generation % 2 == 0 && self.generation() == generation
    }

    /// Puts each of `changes` in place of its plugin's routes, at once for requests; returns
    /// the routes left out for a conflict. Changes are made one at a time, in call order.
    pub(crate) fn change(&self, changes: Vec<PluginRoutes>) -> Vec<Conflict> {
        let mut standby = lock(&self.standby);
        let Standby { table, behind } = &mut *standby;
        let copy = self.exclusive(table, behind);
        for change in behind.drain(..) {
            // Left out already, and reported, when the published copy took it.
            copy.set(&change);
        }
        let conflicts = changes.iter().flat_map(|c| copy.set(c)).collect();
        let ready = std::mem::replace(table, Arc::new(RouteTable::default()));
        self.generation.fetch_add(1, Ordering::SeqCst);
        *table = self.published.swap(ready);
        self.generation.fetch_add(1, Ordering::SeqCst);
        *behind = changes;
        conflicts
    }

    /// The standby copy, once no reader holds it (or a clone of the published copy, with
    /// nothing behind, if one still does after [`READER_WAIT`]).
    fn exclusive<'s>(
        &self,
        table: &'s mut Arc<RouteTable>,
        behind: &mut Vec<PluginRoutes>,
    ) -> &'s mut RouteTable {
        let since = Instant::now();
        while Arc::get_mut(table).is_none() {
            if since.elapsed() > READER_WAIT {
                tracing::debug!(target: "gp::http", "a request still reads the standby route table: cloning the published one");
                *table = Arc::new(RouteTable::clone(&self.published.load()));
                behind.clear();
                break;
            }
            std::thread::yield_now();
        }
        Arc::get_mut(table).expect("no other holder: checked or just made")
    }

    /// Whether the copies agree on every route (for tests).
    #[cfg(test)]
    fn settled(&self) -> bool {
        let mut standby = lock(&self.standby);
        let Standby { table, behind } = &mut *standby;
        let copy = self.exclusive(table, behind);
        for change in behind.drain(..) {
            copy.set(&change);
        }
        let published = self.published.load();
        let listed = |t: &RouteTable| -> Vec<String> {
            t.entries()
                .map(|e| format!("{} {} {} {}", e.plugin, e.method, e.route, e.label))
                .collect()
        };
        listed(copy) == listed(&published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::routes::Lookup;
    use gp_core::manifest::{HttpMethod, Manifest};

    fn manifest(name: &str, routes: &[&str]) -> Manifest {
        let routes: Vec<serde_json::Value> = routes
            .iter()
            .map(|r| serde_json::json!({"method": "GET", "route": r, "label": r}))
            .collect();
        let json = serde_json::json!({
            "name": name, "version": "1.0.0",
            "source": {"mode": "local_so", "path": "lib.so"},
            "http_services": {"driver": "axum", "routes": routes},
        });
        Manifest::from_plugin_json(&json.to_string()).unwrap()
    }

    fn label(table: &LiveTable, path: &str) -> Option<String> {
        match table.load().lookup(HttpMethod::Get, path) {
            Lookup::Found { entry, .. } => Some(format!("{}:{}", entry.plugin, entry.label)),
            _ => None,
        }
    }

    #[test]
    fn each_change_is_served_at_once_and_both_copies_end_alike() {
        let live = LiveTable::default();
        let a1 = PluginRoutes::serving(&manifest("a", &["/a/{id}", "/shared"]), None);
        let b = PluginRoutes::serving(&manifest("b", &["/b"]), None);
        assert!(live.change(vec![a1, b]).is_empty());
        assert_eq!(label(&live, "/a/1").as_deref(), Some("a:/a/{id}"));
        assert_eq!(label(&live, "/b").as_deref(), Some("b:/b"));
        // An upgrade: `a` drops `/shared`, which `c` then takes.
        let a2 = PluginRoutes::serving(&manifest("a", &["/a/{key}"]), None);
        assert!(live.change(vec![a2]).is_empty());
        assert_eq!(label(&live, "/a/1").as_deref(), Some("a:/a/{key}"));
        assert_eq!(label(&live, "/shared"), None);
        let c = PluginRoutes::serving(&manifest("c", &["/shared"]), None);
        assert!(live.change(vec![c]).is_empty());
        assert_eq!(label(&live, "/shared").as_deref(), Some("c:/shared"));
        // An unload.
        assert!(live.change(vec![PluginRoutes::none("b")]).is_empty());
        assert_eq!(label(&live, "/b"), None);
        assert!(live.settled());
    }

    #[test]
    fn a_generation_read_before_a_change_is_not_found_again_after_it() {
        let live = LiveTable::default();
        let before = live.generation();
        assert!(live.unchanged_since(before));
        let a = PluginRoutes::serving(&manifest("a", &["/a"]), None);
        assert!(live.change(vec![a]).is_empty());
        assert!(
            !live.unchanged_since(before),
            "a call routed before must look again"
        );
        let after = live.generation();
        assert!(live.unchanged_since(after));
        // Odd: a change under way when it was read.
        assert!(!live.unchanged_since(after + 1));
        // Even an empty change publishes a copy.
        assert!(live.change(Vec::new()).is_empty());
        assert!(!live.unchanged_since(after));
    }

    #[test]
    fn a_route_left_out_for_a_conflict_is_served_once_the_other_leaves() {
        let live = LiveTable::default();
        let a = PluginRoutes::serving(&manifest("a", &["/x/{id}"]), None);
        let b = PluginRoutes::serving(&manifest("b", &["/x/{name}", "/b"]), None);
        assert!(live.change(vec![a]).is_empty());
        let conflicts = live.change(vec![b]);
        assert_eq!(conflicts.len(), 1);
        assert_eq!(label(&live, "/x/1").as_deref(), Some("a:/x/{id}"));
        assert_eq!(label(&live, "/b").as_deref(), Some("b:/b"));
        assert!(live.change(vec![PluginRoutes::none("a")]).is_empty());
        assert_eq!(label(&live, "/x/1").as_deref(), Some("b:/x/{name}"));
        assert!(live.settled());
    }

    #[test]
    fn a_reader_holding_the_standby_copy_costs_a_clone_not_a_wrong_answer() {
        let live = LiveTable::default();
        let a = PluginRoutes::serving(&manifest("a", &["/a"]), None);
        live.change(vec![a]);
        // Held across the next change, which publishes the copy and makes this one the standby.
        let held = live.load();
        let b = PluginRoutes::serving(&manifest("b", &["/b"]), None);
        live.change(vec![b]);
        let c = PluginRoutes::serving(&manifest("c", &["/c"]), None);
        live.change(vec![c]);
        assert!(matches!(
            held.lookup(HttpMethod::Get, "/b"),
            Lookup::NotFound
        ));
        drop(held);
        for path in ["/a", "/b", "/c"] {
            assert!(label(&live, path).is_some(), "{path}");
        }
        assert!(live.settled());
    }
}
