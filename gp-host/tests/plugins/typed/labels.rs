//! Typed labels through the host: `Executor::call::<In, Out>` against `#[label]` handlers, the
//! seed's direct call through a `#[fallback]`, and the errors a caller sees.

use gp_host::{Context, Error, Manager};
use serde::{Deserialize, Serialize};

use super::typed;
use crate::harness::{base_dir, example};

fn loaded() -> (tempfile::TempDir, Manager) {
    let base = base_dir();
    gp_host::build::install_library(example("sample-typed"), base.path()).unwrap();
    gp_host::build::install_library(typed(), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    (base, manager)
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Sum {
    sum: i64,
}

#[test]
fn a_typed_call_writes_the_input_as_values_and_reads_the_output_back() {
    let (_base, manager) = loaded();
    let typed = manager.executor("typed").unwrap();
    let sum: Sum = typed.call("add", &Add { a: 2, b: 40 }).unwrap();
    assert_eq!(sum, Sum { sum: 42 });
    // A scalar is the value under `input`, and comes back under `result`.
    assert_eq!(typed.call::<i64, i64>("double", &21).unwrap(), 42);
    // A handler that takes only the context, and returns nothing.
    let mut ctx = Context::new().with_label("touch");
    typed.execute(&mut ctx).unwrap();
    assert_eq!(ctx.get("touched").and_then(|v| v.as_bool()), Some(true));
    // The same labels through the untyped call: the values are the struct's fields.
    let mut ctx = Context::new().with_label("add");
    ctx.set("a", 1);
    ctx.set("b", 2);
    typed.execute(&mut ctx).unwrap();
    assert_eq!(ctx.get("sum").and_then(|v| v.as_i64()), Some(3));
}

#[test]
fn typed_call_errors_say_which_side_and_what_did_not_fit() {
    let (_base, manager) = loaded();
    let typed = manager.executor("typed").unwrap();
    // The handler's own error.
    let error = typed
        .call::<_, Sum>("add", &Add { a: i64::MAX, b: 1 })
        .unwrap_err();
    assert!(matches!(error, Error::Failed { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "plugin `typed` failed: 9223372036854775807 + 1 overflows"
    );
    // The input does not fit the handler's type: the plugin says so, before the handler runs.
    let error = typed.call::<_, i64>("double", &"two").unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `typed` failed: the call's values do not fit i64: invalid type: string \"two\", expected i64"
    );
    let error = typed
        .call::<_, Sum>("add", &serde_json::json!({"a": 1}))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `typed` failed: the call's values do not fit Add: missing field `b`"
    );
    // The output does not fit the caller's type: the host says so, after the call.
    let error = typed.call::<_, Sum>("double", &4).unwrap_err();
    assert!(matches!(error, Error::Values { .. }), "{error:?}");
    assert_eq!(error.kind(), gp_host::ErrorKind::Call);
    assert_eq!(
        error.to_string(),
        "plugin `typed`, label `double`: the values after the call do not fit plugins::typed::labels::Sum: missing field `sum`"
    );
    // An input that does not serialise is refused before any call.
    let mut map = std::collections::HashMap::new();
    map.insert((1, 2), 3);
    let error = typed.call::<_, i64>("double", &map).unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `typed`, label `double`: the input does not serialise: key must be a string"
    );
}

#[test]
fn a_label_no_handler_takes_is_refused_with_the_labels_there_are() {
    let (_base, manager) = loaded();
    let typed = manager.executor("typed").unwrap();
    let known = "`sum`, `page`, `t.ctx`, `headers`, `body`, `files`, `created`, `gone`, `nothing`, `fail`, `status`, `add`, `double`, `touch`, `counts`, `greeting`, `announce`, `greet`";
    let mut ctx = Context::new().with_label("subtract");
    let error = typed.execute(&mut ctx).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("plugin `typed` failed: label `subtract` is not one of this plugin's: {known}")
    );
    let error = typed.execute(&mut Context::new()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("plugin `typed` failed: the call has no label: call with one of this plugin's labels, {known}")
    );
    // A route's label called directly has no request to read its parameters from.
    let mut ctx = Context::new().with_label("sum");
    assert_eq!(
        typed.execute(&mut ctx).unwrap_err().to_string(),
        "plugin `typed` failed: this call did not come from an HTTP route (the context has no http.request.method)"
    );
}

#[test]
fn sample_typed_answers_the_seeds_direct_call_and_its_label() {
    let (_base, manager) = loaded();
    let (spec, sample) = manager.get_plugin("sample-typed").unwrap();
    // The manifest's routes are the handlers', with their labels.
    let routes: Vec<String> = spec
        .manifest
        .http_services
        .iter()
        .flat_map(|s| &s.routes)
        .map(|r| format!("{} {} {}", r.method.as_str(), r.route, r.label))
        .collect();
    assert_eq!(
        routes,
        [
            "GET /api/plugin/sample/:id plugin.get",
            "POST /api/plugin/samples plugin.post"
        ]
    );
    // The seed's host: no label, the Hello value under `sample`.
    let mut ctx = Context::new();
    ctx.set_as("sample", &serde_json::json!({"name": "ann"}))
        .unwrap();
    sample.execute(&mut ctx).unwrap();
    assert_eq!(
        ctx.get("greeting").and_then(|v| v.as_str()),
        Some("sample plugin says: ann")
    );
    // The same through its label, typed.
    #[derive(Serialize)]
    struct GreetIn {
        sample: serde_json::Value,
    }
    #[derive(Deserialize, Debug)]
    struct GreetOut {
        greeting: String,
    }
    let input = GreetIn {
        sample: serde_json::json!({"name": "bob"}),
    };
    let out: GreetOut = sample.call("greet", &input).unwrap();
    assert_eq!(out.greeting, "sample plugin says: bob");
    // The fallback refuses labels it does not know, naming the ones there are.
    let error = sample.call::<_, GreetOut>("nope", &input).unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `sample-typed` failed: label `nope` is not one of sample-typed's: plugin.get, plugin.post, greet, or no label"
    );
}
