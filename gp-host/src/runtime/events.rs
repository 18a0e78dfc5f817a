//! Lifecycle and call events, delivered to the subscribers of a [`Manager`](crate::Manager).
//!
//! Here, in the runtime, because calls emit them: the manager emits lifecycle events to the
//! same [`Subscribers`].

use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::error::Error;
use crate::runtime::context::Context;
use crate::runtime::reaper::UnloadReport;
use crate::runtime::spec::Spec;
use crate::util::lock;

/// Something that happened in a [`Manager`](crate::Manager). Subscribers receive it by
/// reference, in the thread where it happened.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A plugin was loaded (its `on_load` hook succeeded) and is serving.
    Loaded {
        /// The plugin.
        spec: &'a Spec,
    },
    /// A plugin's load started: its library and `plugin.json` were verified and admitted,
    /// its routes are reserved, and its library is being mapped and its `on_load` run. Ends
    /// with [`Loaded`](Event::Loaded) or [`LoadAbandoned`](Event::LoadAbandoned).
    Loading {
        /// The version loading.
        spec: &'a Spec,
    },
    /// A load that had started ([`Loading`](Event::Loading)) failed: the plugin's routes are
    /// no longer reserved. Whoever asked for the load reports why (a
    /// [`LoadFailed`](Event::LoadFailed), for `load_plugins`).
    LoadAbandoned {
        /// The plugin.
        plugin: &'a str,
    },
    /// A plugin folder or library could not be loaded.
    LoadFailed {
        /// The plugin folder or library.
        path: &'a Path,
        /// Why.
        error: &'a Error,
    },
    /// A plugin was upgraded: every call from now on runs `to`.
    Upgraded {
        /// The version that served until now (its calls in flight finish on it).
        from: &'a Spec,
        /// The version serving now.
        to: &'a Spec,
    },
    /// An upgrade was refused; `running` keeps serving.
    UpgradeRefused {
        /// The plugin.
        plugin: &'a str,
        /// Why: an [`Error::UpgradeRefused`], which names the version that keeps serving.
        error: &'a Error,
    },
    /// A plugin was unloaded.
    Unloaded {
        /// What the unload did.
        report: &'a UnloadReport,
    },
    /// A call is about to start. Only delivered to [`subscribe`](crate::Manager::subscribe)rs.
    BeforeCall {
        /// The version the call runs on.
        spec: &'a Spec,
        /// The call's context, as the plugin will see it.
        ctx: &'a Context,
    },
    /// A call returned. Only delivered to [`subscribe`](crate::Manager::subscribe)rs.
    AfterCall {
        /// The version the call ran on.
        spec: &'a Spec,
        /// The call's context, as the plugin left it.
        ctx: &'a Context,
        /// What the call returned.
        outcome: &'a Result<(), Error>,
        /// How long it took.
        duration: Duration,
    },
}

impl Event<'_> {
    /// Whether this is a [`BeforeCall`](Event::BeforeCall) or [`AfterCall`](Event::AfterCall).
    pub fn is_call(&self) -> bool {
        matches!(self, Event::BeforeCall { .. } | Event::AfterCall { .. })
    }
}

/// Identifies a subscription, to end it with [`Manager::unsubscribe`](crate::Manager::unsubscribe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

type Handler = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

#[derive(Clone)]
struct Subscriber {
    id: u64,
    calls: bool,
    handler: Handler,
}

/// The subscribers of one manager. Reading the list takes no lock; calls check one counter
/// to learn that nobody watches them.
#[derive(Default)]
pub(crate) struct Subscribers {
    subscribers: ArcSwap<Vec<Subscriber>>,
    next_id: Mutex<u64>,
    call_subscribers: AtomicUsize,
}

impl Subscribers {
    pub(crate) fn subscribe(&self, calls: bool, handler: Handler) -> SubscriptionId {
        let mut next = lock(&self.next_id);
        *next += 1;
        let id = *next;
        let mut list = Vec::clone(&self.subscribers.load());
        list.push(Subscriber { id, calls, handler });
        if calls {
            self.call_subscribers.fetch_add(1, Ordering::Relaxed);
        }
        self.subscribers.store(Arc::new(list));
        SubscriptionId(id)
    }

    pub(crate) fn unsubscribe(&self, id: SubscriptionId) -> bool {
        let _edit = lock(&self.next_id);
        let mut list = Vec::clone(&self.subscribers.load());
        let Some(at) = list.iter().position(|s| s.id == id.0) else {
            return false;
        };
        if list.remove(at).calls {
            self.call_subscribers.fetch_sub(1, Ordering::Relaxed);
        }
        self.subscribers.store(Arc::new(list));
        true
    }

    /// Whether anyone wants call events.
    #[inline]
    pub(crate) fn watches_calls(&self) -> bool {
        self.call_subscribers.load(Ordering::Relaxed) != 0
    }

    /// Delivers `event`. A subscriber that panics is logged and skipped; the others still
    /// receive the event and the caller carries on.
    pub(crate) fn emit(&self, event: &Event<'_>) {
        let calls = event.is_call();
        for subscriber in self.subscribers.load().iter() {
            if calls && !subscriber.calls {
                continue;
            }
            let handler = &subscriber.handler;
            if panic::catch_unwind(AssertUnwindSafe(|| handler(event))).is_err() {
                tracing::error!(target: "gp", "an event subscriber panicked on {event:?}");
            }
        }
    }
}
