//! `examples/dispatch-typed`: the seed's label dispatch in the typed form, its counters in
//! state, its step from an optional configuration.

use gp_host::http::PluginServer;
use gp_host::{Error, Manager};
use serde::Deserialize;
use serde_json::json;

use crate::harness::{base_dir, example};
use crate::http::{get, post_json, send, Running};

#[derive(Deserialize, Debug, PartialEq)]
struct Counted {
    count: i64,
    result: i64,
}

fn loaded(config: Option<&str>) -> (tempfile::TempDir, Manager, Result<(), Error>) {
    let base = base_dir();
    gp_host::build::install_library(example("dispatch-typed"), base.path()).unwrap();
    if let Some(config) = config {
        std::fs::write(base.path().join("dispatch-typed/config.json"), config).unwrap();
    }
    let manager = Manager::new(base.path());
    let mut report = manager.load_plugins();
    let outcome = report.failed.pop().map_or(Ok(()), |f| Err(f.error));
    (base, manager, outcome)
}

#[test]
fn its_labels_are_called_typed() {
    let (_base, manager, loaded) = loaded(None);
    loaded.unwrap();
    let counter = manager.executor("dispatch-typed").unwrap();
    let added: Counted = counter
        .call("counter.add", &json!({"count": 2, "by": 3}))
        .unwrap();
    assert_eq!(
        added,
        Counted {
            count: 5,
            result: 5
        }
    );
    let read: Counted = counter.call("counter.get", &json!({})).unwrap();
    assert_eq!(
        read,
        Counted {
            count: 0,
            result: 0
        }
    );
    let error = counter
        .call::<_, Counted>("counter.add", &json!({"count": i64::MAX}))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `dispatch-typed` failed: count 9223372036854775807 + 1 overflows"
    );
}

#[test]
fn its_routes_keep_counters_in_state_stepped_by_the_configuration() {
    let (_base, manager, loaded) = loaded(Some(r#"{"step": 5}"#));
    loaded.unwrap();
    let server = PluginServer::builder(manager.clone()).build();
    let running = Running::start(&server);
    let addr = running.addr;
    let bump = send(
        addr,
        "POST /api/typed-counter/hits HTTP/1.1\r\nContent-Length: 0",
        b"",
    );
    assert_eq!(
        bump.json(),
        json!({"name": "hits", "count": 5}),
        "the configured step"
    );
    let bump = post_json(addr, "/api/typed-counter/hits", r#"{"by": 2}"#);
    assert_eq!(bump.json(), json!({"name": "hits", "count": 7}));
    assert_eq!(
        get(addr, "/api/typed-counter/hits").json(),
        json!({"name": "hits", "count": 7})
    );
    assert_eq!(
        get(addr, "/api/typed-counter/misses").json(),
        json!({"name": "misses", "count": 0})
    );
    let bad = post_json(addr, "/api/typed-counter/hits", r#"{"by": "two"}"#);
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.json(),
        json!({"error": "send {\"by\": <integer>}, or no body: invalid type: string \"two\", expected i64 at line 1 column 12"})
    );
}

#[test]
fn a_step_of_zero_is_refused_by_its_on_load() {
    let (_base, _manager, loaded) = loaded(Some(r#"{"step": 0}"#));
    let error = loaded.unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `dispatch-typed` 0.1.0: its on_load hook failed: a step of 0 would count nothing: set `step` to another integer"
    );
}
