use std::fmt;
use std::time::Duration;

use abi_stable::std_types::RStr;
use gp_core::{CallInfo, CallTable, HostContextMut, StateHandle, Value};
use serde::{de::DeserializeOwned, Serialize};

use crate::Error;

/// The level of a message written with [`Context::log`].
pub use gp_core::LogLevel as Level;

/// The call a plugin is running in: its values, label, cancellation and deadline, and the
/// host's log.
///
/// Values live in the host; reading one borrows it (no copy), and integers, floats and
/// booleans are stored inline, so the typed getters ([`get_i64`](Self::get_i64), ...) never
/// allocate. Under a host built against gp-core 0.1.3 or later, reading a value and
/// overwriting one the context holds are done here, in the plugin, without a call into the
/// host (see [`gp_core::CallTable`]).
pub struct Context<'a> {
    host: HostContextMut<'a>,
    /// The host's table of the values, when it handed one over.
    table: Option<CallTable>,
    /// The call's label and the instance's state, when the host handed them over (gp-core
    /// 0.1.4 and later): a pointer, so that the context grows by one word.
    info: Option<&'a CallInfo<'a>>,
}

impl<'a> Context<'a> {
    /// Wraps the host's context. Used by the code `#[plugin_entry]` generates.
    #[doc(hidden)]
    pub fn __new(host: HostContextMut<'a>) -> Context<'a> {
        Context {
            host,
            table: None,
            info: None,
        }
    }

    /// Wraps the host's context and the table of its values. Used by the code
    /// `#[plugin_entry]` generates.
    ///
    /// # Safety
    ///
    /// `table` is the one a host handed the plugin with `host`, for the same call, and keeps
    /// [`CallTable`]'s contract for as long as `host` lives: the context reads and writes
    /// through its pointer.
    #[doc(hidden)]
    #[allow(unsafe_code)] // a contract to state, no unsafe operation
    pub unsafe fn __with_table(host: HostContextMut<'a>, table: CallTable) -> Context<'a> {
        Context {
            host,
            table: Some(table),
            info: None,
        }
    }

    /// Wraps the host's context, the table of its values and what came with them. Used by
    /// the code `#[plugin_entry]` generates.
    ///
    /// # Safety
    ///
    /// As [`__with_table`](Self::__with_table), and `info` is the one the host handed the
    /// plugin with them, for the same call: its state handle is the one this plugin's `open`
    /// returned for the calling instance (or none).
    #[doc(hidden)]
    #[allow(unsafe_code)] // a contract to state, no unsafe operation
    #[inline(always)]
    pub unsafe fn __with_info(
        host: HostContextMut<'a>,
        table: CallTable,
        info: &'a CallInfo<'a>,
    ) -> Context<'a> {
        Context {
            host,
            table: Some(table),
            info: Some(info),
        }
    }

    /// The calling instance's state handle: none unless the host handed one over.
    #[doc(hidden)]
    #[inline(always)]
    pub fn __state(&self) -> StateHandle {
        self.info.map_or(StateHandle::NONE, |info| info.state)
    }

    /// Whether the host was built against gp-core 0.1.3 or later (it handed over the table
    /// of the values): it reads the context keys added then, such as
    /// [`gp_core::http::CONTENT_TYPE`].
    pub(crate) fn host_reads_0_1_3_keys(&self) -> bool {
        self.table.is_some()
    }

    /// The host's context, for forwarding the plugin's own log events during the call.
    pub(crate) fn host(&self) -> &HostContextMut<'a> {
        &self.host
    }

    /// The value stored under `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&Value> {
        if let Some(value) = self.table.as_ref().and_then(|t| crate::table::find(t, key)) {
            return Some(value);
        }
        self.host.get(RStr::from_str(key)).into_option()
    }

    /// Path parameter `name` under its own key (`http.request.param.` + `name`), when the
    /// host set it (gp-host 0.2.1 on): found in the table without building the key, or asked
    /// of the host when there is no table or the context holds more values than the table
    /// does. `None` under a host that sets only the map of parameters
    /// (`http.request.params`).
    pub(crate) fn own_param(&self, name: &str) -> Option<&Value> {
        if let Some(table) = &self.table {
            if let Some(value) =
                crate::table::find_where(table, |key| gp_core::http::param_key_is(key, name))
            {
                return Some(value);
            }
            if !crate::table::is_empty(table) {
                // The table holds every value the host set (a parameter is never made later).
                return None;
            }
        }
        let key = gp_core::http::param_key(name);
        self.host.get(RStr::from_str(&key)).into_option()
    }

    /// The integer stored under `key`, if there is one.
    #[inline]
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// The number stored under `key` as a float, if there is one.
    #[inline]
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }

    /// The boolean stored under `key`, if there is one.
    #[inline]
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// The string stored under `key`, if there is one.
    #[inline]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The value stored under `key`, deserialised into `T`.
    ///
    /// A missing key reads as `null`, so `T = Option<U>` gives `None` for it; any other `T`
    /// gives an error that names the key.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<T, Error> {
        let value = self.get(key);
        let json = value.map_or(serde_json::Value::Null, Value::to_json);
        serde_json::from_value(json).map_err(|e| match value {
            None => Error::msg(format!("context value `{key}` is not set")),
            Some(v) => Error::msg(format!(
                "context value `{key}` ({}) does not fit {}: {e}",
                v.kind(),
                crate::http::short_type_name::<T>()
            )),
        })
    }

    /// Stores `value` under `key`.
    #[inline]
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        if let Some(slot) = self
            .table
            .as_mut()
            .and_then(|t| crate::table::find_mut(t, key))
        {
            // The old value is freed here, through the functions abi_stable's types carry.
            *slot = value;
            return;
        }
        let key = RStr::from_str(key);
        // Numbers take the scalar methods: passing a 40-byte `Value` by value costs more than
        // the store (see benches/README.md).
        match value {
            Value::Int(i) => self.host.set_i64(key, i),
            Value::Float(f) => self.host.set_f64(key, f),
            value => self.host.set(key, value),
        }
    }

    /// Serialises `value` and stores it under `key`.
    pub fn set_as<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        let json = serde_json::to_value(value)
            .map_err(|e| Error::msg(format!("cannot store `{key}`: {e}")))?;
        self.set(key, Value::from(json));
        Ok(())
    }

    /// Removes the value stored under `key` and returns it.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.host.remove(RStr::from_str(key)).into_option()
    }

    /// Every key that holds a value, in no particular order.
    pub fn keys(&self) -> Vec<String> {
        self.host.keys().into_iter().map(String::from).collect()
    }

    /// The label the host called the plugin with, such as an HTTP route's label.
    #[inline]
    pub fn label(&self) -> Option<&str> {
        match self.info {
            Some(info) => info.label.as_ref().into_option().map(|s| s.as_str()),
            None => self.host.label().into_option().map(|s| s.as_str()),
        }
    }

    /// Whether the call was cancelled or is past its deadline. A long-running plugin checks
    /// it regularly and returns [`Error::cancelled`] when it is set.
    pub fn is_cancelled(&self) -> bool {
        self.host.is_cancelled()
    }

    /// `Err(Error::cancelled())` once the call is cancelled, for use with `?` in loops.
    pub fn check_cancelled(&self) -> Result<(), Error> {
        if self.is_cancelled() {
            Err(Error::cancelled())
        } else {
            Ok(())
        }
    }

    /// The time left before the call's deadline, if it has one.
    pub fn remaining(&self) -> Option<Duration> {
        self.host.remaining().into_option().map(Into::into)
    }

    /// Writes `message` to the host's log (its `tracing` subscriber), tagged with the
    /// plugin's name.
    pub fn log(&self, level: Level, message: impl fmt::Display) {
        self.host.log(level, RStr::from_str(&message.to_string()));
    }

    /// [`log`](Self::log) at [`Level::Info`].
    pub fn info(&self, message: impl fmt::Display) {
        self.log(Level::Info, message);
    }

    /// [`log`](Self::log) at [`Level::Warn`].
    pub fn warn(&self, message: impl fmt::Display) {
        self.log(Level::Warn, message);
    }

    /// [`log`](Self::log) at [`Level::Error`].
    pub fn error(&self, message: impl fmt::Display) {
        self.log(Level::Error, message);
    }

    /// [`log`](Self::log) at [`Level::Debug`].
    pub fn debug(&self, message: impl fmt::Display) {
        self.log(Level::Debug, message);
    }
}
