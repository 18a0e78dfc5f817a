//! Calling a plugin's own functions in its unit tests, without a host.
//!
//! ```
//! use gp_sdk::testing::TestContext;
//! use gp_sdk::{Context, Result};
//!
//! fn greet(ctx: &mut Context) -> Result {   // the function marked #[plugin_entry]
//!     let name = ctx.get_str("name").unwrap_or("world").to_owned();
//!     ctx.set("greeting", format!("hello {name}"));
//!     Ok(())
//! }
//!
//! let mut ctx = TestContext::new();
//! ctx.set("name", "gp");
//! ctx.call(greet).unwrap();
//! assert_eq!(ctx.get("greeting").and_then(|v| v.as_str()), Some("hello gp"));
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RMut;
use abi_stable::std_types::{RDuration, ROption, RStr, RString, RVec};
use gp_core::{HostContext, HostContext_TO, LogLevel, Value};

use crate::Context;

/// A stand-in for the host's call context: values in a map, a label, a cancellation flag and
/// a deadline you set, and the plugin's log messages collected.
#[derive(Debug, Default)]
pub struct TestContext {
    values: HashMap<String, Value>,
    label: Option<String>,
    cancelled: bool,
    remaining: Option<Duration>,
    logs: RefCell<Vec<(LogLevel, String)>>,
}

impl TestContext {
    /// An empty context: no values, no label, not cancelled, no deadline.
    pub fn new() -> TestContext {
        TestContext::default()
    }

    /// Sets the label the function sees (`ctx.label()`).
    pub fn with_label(mut self, label: impl Into<String>) -> TestContext {
        self.label = Some(label.into());
        self
    }

    /// Stores `value` under `key`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) -> &mut TestContext {
        self.values.insert(key.into(), value.into());
        self
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// Makes the function see itself cancelled (`ctx.is_cancelled()`).
    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    /// Makes the function see a deadline `remaining` away (`ctx.remaining()`).
    pub fn set_remaining(&mut self, remaining: Duration) {
        self.remaining = Some(remaining);
    }

    /// What the function logged, in order.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.borrow().clone()
    }

    /// Runs `f` (a plugin entry, a hook, or any function of the plugin) with a [`Context`]
    /// over this one.
    pub fn call<R>(&mut self, f: impl FnOnce(&mut Context<'_>) -> R) -> R {
        let host = HostContext_TO::from_ptr(RMut::new(self), TD_Opaque);
        f(&mut Context::__new(host))
    }
}

impl HostContext for TestContext {
    fn get(&self, key: RStr<'_>) -> ROption<&Value> {
        self.values.get(key.as_str()).into()
    }

    fn set(&mut self, key: RStr<'_>, value: Value) {
        self.values.insert(key.as_str().to_owned(), value);
    }

    fn set_i64(&mut self, key: RStr<'_>, value: i64) {
        self.set(key, Value::Int(value));
    }

    fn set_f64(&mut self, key: RStr<'_>, value: f64) {
        self.set(key, Value::Float(value));
    }

    fn remove(&mut self, key: RStr<'_>) -> ROption<Value> {
        self.values.remove(key.as_str()).into()
    }

    fn keys(&self) -> RVec<RString> {
        self.values
            .keys()
            .map(|k| RString::from(k.as_str()))
            .collect()
    }

    fn label(&self) -> ROption<RStr<'_>> {
        self.label.as_deref().map(RStr::from_str).into()
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    fn remaining(&self) -> ROption<RDuration> {
        self.remaining.map(RDuration::from).into()
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        self.logs
            .borrow_mut()
            .push((level, message.as_str().to_owned()));
    }
}
