//! The context's values across the boundary, in each way a plugin reaches them: the table it
//! reads and overwrites itself (a gp-core 0.1.4 plugin under this host, through `call_with`;
//! a 0.1.3 plugin, through `call`), the vtable alone (a 0.1.2 plugin under this host; a 0.1.4
//! plugin under a host built from gp-core 0.1.2), and
//! the table with every write sent to the host (an isolated runner, which notes what a call
//! changed). One plugin body, the same values in, the same values out.

use std::time::Duration;

use gp_host::isolation::Isolation;
use gp_host::{Context, Manager, Value};
use serde_json::json;

use crate::harness::{base_dir, custom_fixture, host_fixture, Interface};

/// Overwrites keys of each kind (in place when the table allows it), adds new ones, removes
/// one, then adds enough keys that the host moves them out of the table, and reads and
/// overwrites again after that.
const SEMANTICS: &str = r#"use gp_sdk::{plugin_entry, Context, Result, Value};

#[plugin_entry(description = "The context's semantics, through whichever path the host offers")]
fn run(ctx: &mut Context) -> Result {
    // Overwrites: an integer by an integer, a string by a longer one, a map by a list that
    // holds it, and a key the host set by a float.
    let n = ctx.get_i64("n").unwrap_or(0);
    ctx.set("n", n * 2);
    let text = ctx.get_str("text").unwrap_or("").to_owned();
    ctx.set("text", format!("{text}, and then some"));
    let doc = ctx.get("doc").cloned().unwrap_or(Value::Null);
    ctx.set("doc", vec![doc.clone(), Value::from("wrapped")]);
    ctx.set("ratio", 0.5);
    // New keys: nested JSON back, bytes that are not UTF-8, a large value.
    ctx.set("doc_copy", doc);
    ctx.set("bytes", vec![0u8, 159, 146, 150, 255]);
    ctx.set("big", "x".repeat(256 * 1024));
    // A key removed, and whether it was there; a key read as it reads now.
    let removed = ctx.remove("gone");
    ctx.set("removed", removed.map(|v| v.kind()).unwrap_or("nothing"));
    ctx.set("gone_after", ctx.get("gone").is_some());
    ctx.set("n_read_back", ctx.get_i64("n").unwrap_or(-1));
    // Past the table's 16 values: reads and overwrites then go to the host.
    for i in 0..24 {
        ctx.set(&format!("k{i}"), i64::from(i));
    }
    ctx.set("k3", -3);
    ctx.set("n", ctx.get_i64("n").unwrap_or(0) + 1);
    ctx.set("k7_read", ctx.get_i64("k7").unwrap_or(-1));
    ctx.set("keys", ctx.keys().len() as i64);
    Ok(())
}
"#;

/// A host built from a gp-core of its own (the `WithoutTable` copy: 0.1.2): loads the library
/// named by its argument with abi_stable's checks against that gp-core, calls `execute` on a
/// context holding the values the tests start from, and prints the values after as one JSON
/// object. It binds no host services, as a 0.1.1 host would not; the plugin then keeps its
/// call state itself.
const OLDER_HOST: &str = r#"use std::collections::BTreeMap;

use abi_stable::library::RootModule;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RMut;
use abi_stable::std_types::{RDuration, ROption, RStr, RString, RVec};
use gp_core::{HostContext, HostContext_TO, LogLevel, PluginModRef, Value};

struct Values(BTreeMap<String, Value>);

impl HostContext for Values {
    fn get(&self, key: RStr<'_>) -> ROption<&Value> {
        self.0.get(key.as_str()).into()
    }
    fn set(&mut self, key: RStr<'_>, value: Value) {
        self.0.insert(key.as_str().to_owned(), value);
    }
    fn set_i64(&mut self, key: RStr<'_>, value: i64) {
        self.set(key, Value::Int(value));
    }
    fn set_f64(&mut self, key: RStr<'_>, value: f64) {
        self.set(key, Value::Float(value));
    }
    fn remove(&mut self, key: RStr<'_>) -> ROption<Value> {
        self.0.remove(key.as_str()).into()
    }
    fn keys(&self) -> RVec<RString> {
        self.0.keys().map(|k| RString::from(k.as_str())).collect()
    }
    fn label(&self) -> ROption<RStr<'_>> {
        ROption::RNone
    }
    fn is_cancelled(&self) -> bool {
        false
    }
    fn remaining(&self) -> ROption<RDuration> {
        ROption::RNone
    }
    fn log(&self, _: LogLevel, message: RStr<'_>) {
        eprintln!("{message}");
    }
}

fn main() {
    let path = std::env::args().nth(1).expect("a library");
    let module = match PluginModRef::load_from_file(path.as_ref()) {
        Ok(module) => module,
        Err(e) => {
            println!("refused: {e}");
            std::process::exit(2);
        }
    };
    let start: serde_json::Value = serde_json::from_str(&std::env::args().nth(2).unwrap()).unwrap();
    let mut values = Values(BTreeMap::new());
    for (key, value) in start.as_object().unwrap() {
        values.0.insert(key.clone(), Value::from(value.clone()));
    }
    let outcome = (module.execute())(HostContext_TO::from_ptr(RMut::new(&mut values), TD_Opaque));
    assert!(outcome.is_ok(), "{outcome:?}");
    let after: serde_json::Map<String, serde_json::Value> =
        values.0.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
    println!("{}", serde_json::Value::Object(after));
}
"#;

/// The values every test starts the call with.
fn start() -> serde_json::Value {
    json!({
        "n": 21,
        "text": "original",
        "doc": {"a": [1, {"b": null}], "c": "é"},
        "ratio": 3,
        "gone": true,
    })
}

/// What every path must leave in the context.
fn expected() -> serde_json::Value {
    let doc = json!({"a": [1, {"b": null}], "c": "é"});
    let mut expected = json!({
        "n": 43,
        "text": "original, and then some",
        "doc": [doc.clone(), "wrapped"],
        "ratio": 0.5,
        "doc_copy": doc,
        "bytes": [0, 159, 146, 150, 255],
        "big": "x".repeat(256 * 1024),
        "removed": "bool",
        "gone_after": false,
        "n_read_back": 42,
        "k7_read": 7,
        // 10 keys before the loop (start's 5 less `gone`, plus 6 new), 24 in it, `k7_read`.
        "keys": 35,
    });
    for i in 0..24 {
        expected[format!("k{i}")] = json!(if i == 3 { -3 } else { i });
    }
    expected
}

fn context() -> Context {
    let mut ctx = Context::new();
    for (key, value) in start().as_object().unwrap() {
        ctx.set(key.as_str(), Value::from(value.clone()));
    }
    ctx
}

/// Calls the plugin built against `interface` through a manager built with `isolation`, and
/// checks the values after.
fn check_in_this_host(name: &str, interface: Interface, isolation: Option<Isolation>) {
    let library = custom_fixture(name, "1.0.0", SEMANTICS, interface);
    let base = base_dir();
    gp_host::build::install_library(library, base.path()).unwrap();
    let mut builder = Manager::builder(base.path());
    if let Some(isolation) = isolation {
        builder = builder.isolation(isolation);
    }
    let manager = builder.build();
    let report = manager.load_plugins();
    assert!(report.is_ok(), "{report}");
    let executor = manager.executor(name).unwrap();
    let mut ctx = context();
    executor.execute(&mut ctx).unwrap();
    assert_same(ctx.to_json(), expected());
    // Again on the context the first call left: the same code, other values in the slots.
    executor.execute(&mut ctx).unwrap();
    assert_eq!(ctx.get("n").and_then(Value::as_i64), Some(43 * 2 + 1));
    assert_eq!(
        ctx.get("keys").and_then(Value::as_i64),
        Some(36),
        "now with `keys`"
    );
}

/// `actual == expected`, naming the keys that differ rather than printing 256 KiB.
fn assert_same(actual: serde_json::Value, expected: serde_json::Value) {
    let (actual, expected) = (actual.as_object().unwrap(), expected.as_object().unwrap());
    let mut differ: Vec<String> = Vec::new();
    for key in actual.keys().chain(expected.keys()) {
        if actual.get(key) != expected.get(key) && !differ.contains(key) {
            let shown = |v: Option<&serde_json::Value>| {
                let text = v.map_or("(absent)".to_owned(), |v| v.to_string());
                text.chars().take(80).collect::<String>()
            };
            differ.push(key.clone());
            eprintln!(
                "{key}: {} instead of {}",
                shown(actual.get(key)),
                shown(expected.get(key))
            );
        }
    }
    assert!(differ.is_empty(), "these keys differ: {differ:?}");
}

#[test]
fn a_plugin_reads_and_overwrites_the_table_as_it_would_through_the_host() {
    check_in_this_host("table-semantics", Interface::Real, None);
}

#[test]
fn a_plugin_built_before_the_table_goes_through_the_host_with_the_same_outcome() {
    check_in_this_host("vtable-semantics", Interface::WithoutTable, None);
}

#[test]
fn a_plugin_built_against_0_1_3_reads_the_table_without_the_calls_information() {
    check_in_this_host("table-0-1-3-semantics", Interface::WithoutInstance, None);
}

#[test]
fn an_isolated_plugin_has_every_write_noted_and_the_same_outcome() {
    let isolation = Isolation {
        backoff: Duration::from_millis(10),
        ..Isolation::all().program(env!("CARGO_BIN_EXE_gp"))
    };
    check_in_this_host("isolated-semantics", Interface::Real, Some(isolation));
}

#[test]
fn a_plugin_built_against_0_1_4_runs_under_a_host_built_from_0_1_2() {
    let host = host_fixture("host-0-1-2", OLDER_HOST, Interface::WithoutTable);
    let plugin = custom_fixture("table-semantics", "1.0.0", SEMANTICS, Interface::Real);
    let output = std::process::Command::new(host)
        .arg(plugin)
        .arg(start().to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_same(serde_json::from_str(&stdout).unwrap(), expected());

    // And the other way round, the older host refuses nothing it should not: a 0.1.2 plugin
    // loads there as well.
    let older = custom_fixture(
        "vtable-semantics",
        "1.0.0",
        SEMANTICS,
        Interface::WithoutTable,
    );
    let output = std::process::Command::new(host)
        .arg(older)
        .arg(start().to_string())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_same(serde_json::from_slice(&output.stdout).unwrap(), expected());
}
