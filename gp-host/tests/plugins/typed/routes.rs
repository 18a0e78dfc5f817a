//! Typed routes over real sockets: each argument read (or a 400 with the reason, before the
//! handler runs), each kind of response and error sent as the handler said.

use gp_host::http::PluginServer;
use gp_host::Manager;
use serde_json::json;

use super::typed;
use crate::harness::{base_dir, example};
use crate::http::{get, post_json, send, Running};

fn serving() -> (tempfile::TempDir, Manager, Running) {
    let base = base_dir();
    gp_host::build::install_library(example("sample-typed"), base.path()).unwrap();
    gp_host::build::install_library(typed(), base.path()).unwrap();
    let manager = Manager::new(base.path());
    let server = PluginServer::builder(manager.clone()).build();
    let report = manager.load_plugins();
    assert!(report.failed.is_empty(), "{report}");
    let running = Running::start(&server);
    (base, manager, running)
}

#[test]
fn sample_typed_serves_the_seeds_routes() {
    let (_base, _manager, running) = serving();
    let addr = running.addr;
    let reply = get(addr, "/api/plugin/sample/7");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"id": 7, "greeting": "sample plugin says: hello, sample 7"})
    );
    assert_eq!(
        get(addr, "/api/plugin/sample/7?shout=true").json()["greeting"],
        "SAMPLE PLUGIN SAYS: HELLO, SAMPLE 7"
    );
    // The handler's own error, with its status.
    let reply = get(addr, "/api/plugin/sample/0");
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.json(),
        json!({"error": "there is no sample 0: ids start at 1"})
    );
    // A parameter, a query and a body that do not parse: 400 with the reason.
    let reply = get(addr, "/api/plugin/sample/seven");
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({"error": "path parameter `id` is not a valid u64: \"seven\": invalid digit found in string"})
    );
    let reply = get(addr, "/api/plugin/sample/7?shout=loudly");
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({"error": "the query does not fit Options: provided string was not `true` or `false`"})
    );
    let reply = post_json(addr, "/api/plugin/samples", r#"{"name": "zed"}"#);
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json(), json!({"greeting": "sample plugin says: zed"}));
    let reply = post_json(addr, "/api/plugin/samples", r#"{"nom": "zed"}"#);
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({"error": "the request body does not fit Hello: missing field `name`"})
    );
}

#[test]
fn each_extractor_reads_its_part_of_the_request() {
    let (_base, _manager, running) = serving();
    let addr = running.addr;
    // Parameters by name, in any order.
    assert_eq!(get(addr, "/t/sum/40/2").json(), json!(42));
    assert_eq!(
        get(addr, "/t/sum/40/two").json(),
        json!({"error": "path parameter `b` is not a valid i32: \"two\": invalid digit found in string"})
    );
    // A query: repeated names, absent options, a missing field.
    assert_eq!(
        get(addr, "/t/page?limit=10&tags=a&tags=b").json(),
        json!({"limit": 10, "after": null, "tags": ["a", "b"]})
    );
    assert_eq!(
        get(addr, "/t/page?limit=1&after=x%20y").json(),
        json!({"limit": 1, "after": "x y", "tags": []})
    );
    let reply = get(addr, "/t/page?after=x");
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({"error": "the query does not fit Page: missing field `limit`"})
    );
    // The context alongside a parameter: the label, and a header set through it.
    let reply = get(addr, "/t/ctx/abc");
    assert_eq!(reply.text(), "t.ctx abc");
    assert_eq!(reply.header("x-seen"), Some("abc"));
    // Headers, every value of a repeated one.
    let reply = send(
        addr,
        "GET /t/headers HTTP/1.1\r\nX-Who: ann\r\nX-Who: bob",
        b"",
    );
    assert_eq!(reply.text(), "ann+bob");
    // The raw body, and bytes back.
    let reply = send(addr, "POST /t/body HTTP/1.1\r\nContent-Length: 3", b"abc");
    assert_eq!(reply.body, b"cba");
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );
    // A catch-all parameter and the request itself.
    assert_eq!(
        get(addr, "/t/files/a/b.txt").json(),
        json!({"rest": "a/b.txt", "path": "/t/files/a/b.txt", "route": "/t/files/*rest"})
    );
}

#[test]
fn each_response_and_error_is_sent_as_the_handler_said() {
    let (_base, _manager, running) = serving();
    let addr = running.addr;
    let reply = send(addr, "POST /t/created HTTP/1.1\r\nContent-Length: 0", b"");
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("location"), Some("/t/created/7"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json(), json!({"id": 7}));
    assert_eq!(send(addr, "DELETE /t/gone HTTP/1.1", b"").status, 204);
    let reply = get(addr, "/t/nothing");
    assert_eq!((reply.status, reply.body.len()), (204, 0));
    // An error type of the plugin's own, with its status and message.
    let reply = get(addr, "/t/fail/teapot");
    assert_eq!(reply.status, 418);
    assert_eq!(reply.json(), json!({"error": "short and stout"}));
    let reply = get(addr, "/t/fail/broken");
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json(), json!({"error": "broken: a wire"}));
    assert_eq!(get(addr, "/t/fail/no").text(), "fine");
    // (StatusCode, String) as the answer and as the error.
    let reply = get(addr, "/t/status/202");
    assert_eq!((reply.status, reply.text()), (202, "status 202"));
    let reply = get(addr, "/t/status/1000");
    assert_eq!(reply.status, 422);
    assert_eq!(reply.json(), json!({"error": "1000 is no status"}));
}
