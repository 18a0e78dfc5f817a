//! The context of a call as the host holds it (the plugin's view of it is `scope`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gp_core::Value;
use serde::Serialize;

use crate::runtime::values::Values;
#[cfg(feature = "http")]
use crate::runtime::values::{Deferred, Key, Later};

/// The context of one call: the values a plugin reads and writes, the call's label, its
/// cancellation token and deadline.
///
/// The host owns it; the plugin sees it through the ABI-stable [`gp_core::HostContext`]
/// trait, which borrows values without copying them and stores integers inline, so a get
/// and a set cost two hash lookups.
///
/// ```
/// use gp_host::Context;
/// let mut ctx = Context::new().with_label("plugin.get");
/// ctx.set("count", 41);
/// assert_eq!(ctx.get("count").and_then(|v| v.as_i64()), Some(41));
/// ```
#[derive(Debug, Default)]
pub struct Context {
    pub(crate) values: Values,
    /// Shared, so that a route's call takes its label without copying it.
    label: Option<Arc<str>>,
    cancel: CancelToken,
    deadline: Option<Instant>,
    /// The keys a plugin set or removed, when they are noted (see `journal_changes`).
    pub(crate) journal: Option<Vec<String>>,
}

impl Context {
    /// An empty context: no values, no label, not cancelled, no deadline.
    pub fn new() -> Context {
        Context::default()
    }

    /// Sets the label the plugin sees (`ctx.label()` in the plugin).
    pub fn with_label(mut self, label: impl Into<String>) -> Context {
        self.label = Some(Arc::from(label.into()));
        self
    }

    /// [`with_label`](Self::with_label) with a label shared rather than copied (a route's).
    #[cfg(feature = "http")]
    pub(crate) fn with_shared_label(mut self, label: Arc<str>) -> Context {
        self.label = Some(label);
        self
    }

    /// Gives the call a deadline `timeout` from now; past it the plugin sees itself cancelled.
    pub fn with_timeout(mut self, timeout: Duration) -> Context {
        self.deadline = Some(Instant::now() + timeout);
        self
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// Stores `value` under `key`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.values.insert(key.into(), value.into());
    }

    /// Adds a key the context neither holds nor offers deferred (checked in debug builds):
    /// [`set`](Self::set) without looking for the key first (one of gp's own is not copied).
    #[cfg(feature = "http")]
    pub(crate) fn add(&mut self, key: impl Into<Key>, value: impl Into<Value>) {
        self.values.add(key.into(), value.into());
    }

    /// An empty context with room for `n` values before its map grows.
    #[cfg(feature = "http")]
    pub(crate) fn with_capacity(n: usize) -> Context {
        Context {
            values: Values::with_capacity(n),
            ..Context::default()
        }
    }

    /// Offers the keys of `source`, made into values only when first read (see
    /// [`Deferred`]): a request's parts, most of which a call never looks at. The context
    /// holds none of its keys (checked in debug builds).
    #[cfg(feature = "http")]
    pub(crate) fn defer(&mut self, source: impl Deferred + 'static) {
        self.values.defer(Later::new(source));
    }

    /// Serialises `value` (through JSON) and stores it under `key`.
    pub fn set_as<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let json = serde_json::to_value(value)?;
        self.set(key, Value::from(json));
        Ok(())
    }

    /// Removes the value stored under `key` and returns it.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.values.remove(key)
    }

    /// The value of one of gp's own keys that is never deferred (a response's), without
    /// looking among the deferred ones (checked in debug builds).
    #[cfg(feature = "http")]
    pub(crate) fn get_own(&self, key: &'static str) -> Option<&Value> {
        self.values.get_own(key)
    }

    /// [`remove`](Self::remove) for one of gp's own keys that is never deferred, as
    /// [`get_own`](Self::get_own).
    #[cfg(feature = "http")]
    pub(crate) fn remove_own(&mut self, key: &'static str) -> Option<Value> {
        self.values.remove_own(key)
    }

    /// Applies what an isolated call changed, back from its runner: `values` set, `removed`
    /// gone.
    #[cfg(feature = "isolate")]
    pub(crate) fn apply_changes(&mut self, values: Vec<(String, Value)>, removed: Vec<String>) {
        for key in removed {
            self.values.remove(&key);
        }
        for (key, value) in values {
            self.values.insert(key, value);
        }
    }

    /// From now on, notes the keys the plugin sets or removes (a runner's context, which
    /// sends only those back).
    #[cfg(feature = "isolate")]
    pub(crate) fn journal_changes(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// The values of the keys noted since [`journal_changes`](Self::journal_changes), moved
    /// out, and the noted keys that hold no value now.
    #[cfg(feature = "isolate")]
    pub(crate) fn take_changes(&mut self) -> (Vec<(String, Value)>, Vec<String>) {
        let mut keys = self.journal.take().unwrap_or_default();
        keys.sort_unstable();
        keys.dedup();
        let (mut set, mut removed) = (Vec::new(), Vec::new());
        for key in keys {
            match self.values.remove(&key) {
                Some(value) => set.push((key, value)),
                None => removed.push(key),
            }
        }
        (set, removed)
    }

    /// Every key and value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.values.iter()
    }

    /// The values as a JSON object (sorted by key).
    pub fn to_json(&self) -> serde_json::Value {
        let sorted: std::collections::BTreeMap<_, _> = self
            .values
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_json()))
            .collect();
        serde_json::Value::Object(sorted.into_iter().collect())
    }

    /// The label.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Sets or clears the label.
    pub fn set_label(&mut self, label: Option<String>) {
        self.label = label.map(Arc::from);
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Sets or clears the deadline.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// A handle that cancels this context from another thread.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Whether the context was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Whether the deadline has passed.
    pub fn is_past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Cancels a call from another thread. Cloning shares the token.
///
/// Cancellation is cooperative: the plugin sees it through `ctx.is_cancelled()` and is
/// expected to return promptly; the host cannot stop native code that ignores it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every call whose context holds this token.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}
