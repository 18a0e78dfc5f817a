//! Who may use the API: a valid token, a known host, no foreign origin.

use super::{plane, raw};

#[test]
fn the_api_needs_a_valid_token_a_known_host_and_no_foreign_origin() {
    let plane = plane();
    let addr = plane.admin.addr;
    let none = raw(
        addr,
        &format!("GET /api/v1/plugins HTTP/1.1\r\nHost: {addr}"),
        b"",
    );
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer realm=\"gp\""));
    assert_eq!(
        none.json(),
        serde_json::json!({"error": "the management API needs a token: send `Authorization: Bearer <token>` (gp serve prints where its token file is)"})
    );
    let wrong = raw(
        addr,
        &format!("GET /api/v1/plugins HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer not-the-token-at-all"),
        b"",
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.json(),
        serde_json::json!({"error": "the token is not valid for this server"})
    );
    let rebinding = raw(
        addr,
        &format!(
            "GET /api/v1/plugins HTTP/1.1\r\nHost: evil.example:{}\r\nAuthorization: Bearer {}",
            addr.port(),
            plane.token.secret()
        ),
        b"",
    );
    assert_eq!(rebinding.status, 403);
    assert_eq!(
        rebinding.json(),
        serde_json::json!({"error": format!("host \"evil.example:{}\" is not one this admin listener answers to (127.0.0.1, localhost, [::1]): use one of them, or add the name with --admin-host", addr.port())})
    );
    // The GUI's page is checked the same way.
    let page = raw(
        addr,
        &format!("GET /ui/ HTTP/1.1\r\nHost: evil.example:{}", addr.port()),
        b"",
    );
    assert_eq!(page.status, 403);
    let foreign = raw(
        addr,
        &format!(
            "POST /api/v1/plugins/web/reload HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://evil.example\r\nAuthorization: Bearer {}\r\nContent-Type: application/json",
            plane.token.secret()
        ),
        b"{}",
    );
    assert_eq!(foreign.status, 403);
    assert_eq!(
        foreign.json(),
        serde_json::json!({"error": "origin \"http://evil.example\" may not use the management API: only pages it serves itself may"})
    );
    // A form post (not JSON) is refused, and so is a change with a read-only token.
    let form = plane.call_as(
        &plane.token,
        "POST",
        "/plugins/web/disable",
        "application/x-www-form-urlencoded",
        b"reason=x",
    );
    assert_eq!(form.status, 415);
    assert_eq!(
        form.json(),
        serde_json::json!({"error": "a change is sent as application/json, not \"application/x-www-form-urlencoded\""})
    );
    let read_only = plane.call_as(
        &plane.read_only,
        "POST",
        "/plugins/web/disable",
        "application/json",
        b"{}",
    );
    assert_eq!(read_only.status, 403);
    assert_eq!(
        read_only.json(),
        serde_json::json!({"error": "this token may only read: changes need the admin token"})
    );
    assert_eq!(
        plane
            .call_as(&plane.read_only, "GET", "/plugins", "application/json", b"")
            .status,
        200
    );
    // GET never changes anything: there is no GET on a change.
    let get_change = plane.call("GET", "/plugins/web/disable", "");
    assert_eq!(get_change.status, 405);
    assert!(plane.manager.get_plugin("web").is_ok());
    assert!(plane.manager.disabled().is_empty());
}
