//! Every error a route can answer, with its status and exact body, and no path of this
//! machine in any of them.

use super::{get, post_json, send, web_server, Running};

// Long: a table of cases, each with the exact message a user sees, in one place.
#[test]
fn every_error_has_its_status_and_exact_body() {
    let (_base, _manager, server) = web_server(|b| b.body_limit(64));
    let running = Running::start(&server);

    let missing = get(running.addr, "/nothing/here");
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.error_body(),
        serde_json::json!({"error": "no route for GET /nothing/here"})
    );
    // A typed parameter that does not fit is no route either.
    assert_eq!(get(running.addr, "/web/items/4x").status, 404);
    // No trailing-slash redirect.
    assert_eq!(get(running.addr, "/web/empty/").status, 404);

    let wrong = send(running.addr, "DELETE /web/echo/1 HTTP/1.1", b"");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD"));
    assert_eq!(
        wrong.error_body(),
        serde_json::json!({"error": "method DELETE is not allowed on /web/echo/1; allowed: GET, HEAD"})
    );
    let head = send(running.addr, "HEAD /web/files/x HTTP/1.1", b"");
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("content-length"), Some("1"));

    let failed = get(running.addr, "/web/fail");
    assert_eq!(failed.status, 500);
    assert_eq!(
        failed.error_body(),
        serde_json::json!({"error": "database unreachable", "plugin": "web", "label": "fail"})
    );
    let rejected = get(running.addr, "/web/reject");
    assert_eq!(
        (rejected.status, rejected.json()),
        (404, serde_json::json!({"error": "no item 7"}))
    );
    let panicked = get(running.addr, "/web/panic");
    assert_eq!(panicked.status, 500);
    assert_eq!(
        panicked.error_body(),
        serde_json::json!({"error": "the plugin panicked; the host log has the message", "plugin": "web", "label": "panic"})
    );
    assert_eq!(
        get(running.addr, "/web/empty").status,
        204,
        "the plugin keeps serving after a panic"
    );
    // Each way a plugin's response can be invalid, with the reason the client is sent.
    let mut invalid = Vec::new();
    for (query, reason) in [
        ("", "status 42 is not 100 to 599"),
        (
            "?what=content-type",
            "http.response.content_type is a int, not a string",
        ),
        (
            "?what=content-type-value",
            "http.response.content_type holds a value that is not allowed in a header",
        ),
    ] {
        let bad = get(running.addr, &format!("/web/bad-status{query}"));
        assert_eq!(bad.status, 500, "{query}");
        assert_eq!(
            bad.error_body(),
            serde_json::json!({"error": format!("the plugin's response is invalid: {reason}"), "plugin": "web", "label": "bad.status"})
        );
        invalid.push(bad);
    }

    let malformed = post_json(running.addr, "/web/echo", "{\"n\": ");
    assert_eq!(malformed.status, 400);
    assert_eq!(
        malformed.error_body(),
        serde_json::json!({"error": "the request body is not valid JSON: EOF while parsing a value at line 1 column 6", "plugin": "web", "label": "echo.post"})
    );
    let misfit = post_json(running.addr, "/web/json", r#"{"nom": 1}"#);
    assert_eq!(misfit.status, 400);
    assert!(
        misfit.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("the request body does not fit "),
        "{}",
        misfit.text()
    );

    let big = "x".repeat(65);
    let declared = send(
        running.addr,
        &format!("POST /web/echo HTTP/1.1\r\nContent-Length: {}", big.len()),
        big.as_bytes(),
    );
    assert_eq!(declared.status, 413);
    assert_eq!(
        declared.error_body(),
        serde_json::json!({"error": "the request body is larger than this route's limit of 64 bytes", "plugin": "web", "label": "echo.post"})
    );
    // Without a Content-Length (chunked), cut off while reading.
    let chunked = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let streamed = send(
        running.addr,
        "POST /web/echo HTTP/1.1\r\nTransfer-Encoding: chunked",
        chunked.as_bytes(),
    );
    assert_eq!(streamed.status, 413, "{}", streamed.text());
    let small = format!("{:x}\r\n{}\r\n0\r\n\r\n", 64, "y".repeat(64));
    assert_eq!(
        send(
            running.addr,
            "POST /web/echo HTTP/1.1\r\nTransfer-Encoding: chunked",
            small.as_bytes()
        )
        .status,
        200
    );

    // No error body holds a path of this machine.
    let replies = [&missing, &wrong, &failed, &panicked, &malformed, &declared];
    for reply in replies.into_iter().chain(&invalid) {
        let text = reply.text();
        assert!(
            !text.contains("/tmp") && !text.contains(".so") && !text.contains("/work"),
            "{text}"
        );
    }
}
