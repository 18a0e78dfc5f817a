//! Unit tests of the route table: look-ups, conflicts, changes in place.

use super::check::admit;
use super::*;
use gp_core::manifest::Manifest;

pub(super) fn spec(name: &str, driver: &str, routes: &[(&str, &str, &str)]) -> Spec {
    let routes: Vec<serde_json::Value> = routes
        .iter()
        .map(|(m, r, l)| serde_json::json!({"method": m, "route": r, "label": l}))
        .collect();
    let json = serde_json::json!({
        "name": name, "version": "1.0.0",
        "source": {"mode": "local_so", "path": "lib.so"},
        "http_services": {"driver": driver, "routes": routes},
    });
    Spec {
        manifest: Manifest::from_plugin_json(&json.to_string()).unwrap(),
        dir: name.into(),
        origin: name.into(),
        library: "lib.so".into(),
        // A build (a disabled plugin comes without one).
        sha256: "test".into(),
        abi_version: "0.1.1".into(),
        has_on_load: false,
        has_on_unload: false,
        config_sha256: None,
        details: Default::default(),
    }
}

fn found(
    table: &RouteTable,
    method: HttpMethod,
    path: &str,
) -> Option<(String, Vec<(String, String)>)> {
    let found = match table.lookup(method, path) {
        Lookup::Found { entry, params } => Some((
            entry.label.to_string(),
            params
                .iter(entry, path)
                .map(|(name, value)| (name.to_owned(), value.into_owned()))
                .collect(),
        )),
        _ => None,
    };
    // The call's second look, without parameters, finds what the first found.
    let resolved = table.resolve(method, path).map(|e| e.label.to_string());
    assert_eq!(
        resolved,
        found.as_ref().map(|f| f.0.clone()),
        "{method} {path}"
    );
    found
}

#[test]
fn static_beats_parameters_and_parameters_are_decoded() {
    let a = spec(
        "a",
        "beego",
        &[
            ("GET", "/files/*", "splat"),
            ("GET", "/files/readme", "static"),
            ("GET", "/items/:name", "param"),
            ("GET", "/items/new", "new"),
        ],
    );
    let (table, conflicts) = RouteTable::build([&a], |_| None);
    assert!(conflicts.is_empty(), "{conflicts:?}");
    assert_eq!(
        found(&table, HttpMethod::Get, "/files/readme").unwrap().0,
        "static"
    );
    assert_eq!(
        found(&table, HttpMethod::Get, "/files/a/b%2Fc").unwrap(),
        ("splat".into(), vec![("splat".into(), "a/b/c".into())])
    );
    assert_eq!(
        found(&table, HttpMethod::Get, "/items/new").unwrap().0,
        "new"
    );
    assert_eq!(
        found(&table, HttpMethod::Get, "/items/a%20b").unwrap(),
        ("param".into(), vec![("name".into(), "a b".into())])
    );
    // No trailing-slash redirect, no extension stripping.
    assert!(matches!(
        table.lookup(HttpMethod::Get, "/items/new/"),
        Lookup::NotFound
    ));
    assert_eq!(
        found(&table, HttpMethod::Get, "/items/x.json").unwrap().1,
        vec![("name".into(), "x.json".into())]
    );
    // A parameter and a catch-all at the same place are ambiguous: matchit refuses them.
    let b = spec("b", "beego", &[("GET", "/items/*", "b.splat")]);
    assert!(admit(&b, &[a])
        .unwrap_err()
        .to_string()
        .contains("conflicts with route GET /items/:name"));
}

#[test]
fn the_same_routes_in_another_state_are_swapped_in_place() {
    let a = spec(
        "a",
        "axum",
        &[
            ("GET", "/a/{id}", "get"),
            ("GET", "/files/{*rest}", "files"),
            ("POST", "/a", "post"),
        ],
    );
    let (mut table, _) = RouteTable::build([&a], |_| None);
    let reserved = PluginRoutes::disabled(&a.manifest, "off");
    assert!(table.replace_in_place(&reserved));
    for (method, path) in [
        (HttpMethod::Get, "/a/7"),
        (HttpMethod::Get, "/files/x/y"),
        (HttpMethod::Post, "/a"),
    ] {
        let entry = table.resolve(method, path);
        assert!(
            entry.is_some_and(|e| e.reserved.is_some()),
            "{method} {path}"
        );
    }
    assert_eq!(
        found(&table, HttpMethod::Get, "/a/7").unwrap().1,
        [("id".to_owned(), "7".to_owned())]
    );
    // Other routes take the long way: removed, then inserted.
    let fewer = spec("a", "axum", &[("GET", "/a/{id}", "get")]);
    let fewer = PluginRoutes::serving(&fewer.manifest, None);
    assert!(!table.replace_in_place(&fewer));
    assert!(table.set(&fewer).is_empty());
    assert!(matches!(
        table.lookup(HttpMethod::Post, "/a"),
        Lookup::NotFound
    ));
    let entry = table.resolve(HttpMethod::Get, "/a/7");
    assert!(entry.is_some_and(|e| e.reserved.is_none()), "GET /a/7");
}

#[test]
fn typed_parameters_must_fit_and_head_falls_back_to_get() {
    let a = spec(
        "a",
        "beego",
        &[
            ("GET", "/items/:id:int", "get"),
            ("DELETE", "/items/:id:int", "delete"),
        ],
    );
    let (table, _) = RouteTable::build([&a], |_| None);
    assert_eq!(
        found(&table, HttpMethod::Get, "/items/42").unwrap().0,
        "get"
    );
    assert!(matches!(
        table.lookup(HttpMethod::Get, "/items/4x"),
        Lookup::NotFound
    ));
    assert!(found(&table, HttpMethod::Head, "/items/4x").is_none());
    assert_eq!(
        found(&table, HttpMethod::Head, "/items/42").unwrap().0,
        "get"
    );
    match table.lookup(HttpMethod::Post, "/items/42") {
        Lookup::WrongMethod { allow } => assert_eq!(allow, ["GET", "DELETE", "HEAD"]),
        _ => panic!("expected 405"),
    }
}

#[test]
fn conflicts_name_both_plugins_routes_and_labels() {
    let a = spec("a", "axum", &[("GET", "/items/{id}", "a.get")]);
    let same = spec("b", "axum", &[("GET", "/items/{id}", "b.get")]);
    let renamed = spec("b", "beego", &[("GET", "/items/:key", "b.get")]);
    let other_method = spec("b", "axum", &[("POST", "/items/{id}", "b.post")]);
    let serving = [a];
    assert_eq!(
        admit(&same, &serving).unwrap_err().to_string(),
        "route GET /items/{id} (label \"b.get\") conflicts with route GET /items/{id} (label \"a.get\") of plugin `a`, which is serving: the two match the same requests; change one of them, or unload `a` first"
    );
    assert_eq!(
        admit(&renamed, &serving).unwrap_err().to_string(),
        "route GET /items/:key (label \"b.get\") conflicts with route GET /items/{id} (label \"a.get\") of plugin `a`, which is serving: the two match the same requests; change one of them, or unload `a` first"
    );
    admit(&other_method, &serving).unwrap();
    let own = spec(
        "c",
        "beego",
        &[("GET", "/x/:a", "one"), ("GET", "/x/:b", "two")],
    );
    assert_eq!(
        admit(&own, &[]).unwrap_err().to_string(),
        "route GET /x/:b (label \"two\") conflicts with its own route GET /x/:a (label \"one\"): the two match the same requests; make them differ by a literal segment"
    );
}
