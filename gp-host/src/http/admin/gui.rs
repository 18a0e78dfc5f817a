//! The GUI: static files compiled into the binary (no build step, nothing fetched at run
//! time), served with a strict content security policy. The page talks to `/api/v1` with the
//! token from `gp serve`'s sign-in link (`/ui/#token=…`: in the fragment, which a browser
//! never sends to a server, read by the page before it routes and then removed from the
//! address bar with `history.replaceState`) or entered by hand, kept in the tab's session
//! storage.
//!
//! Every file the page is made of is one line of [`FILES`], which is all the router serves
//! (besides the redirects to `/ui/`), each answer with the same security headers. A unit
//! test follows every link and import from `index.html`: one that names a file missing from
//! the table fails the build's tests instead of leaving a blank page, and so does a file in
//! the table that nothing uses.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::http::admin::auth::check_host_and_origin;
use crate::http::admin::AdminShared;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One file under `gui/`, served at the same path under `/ui/`: `(URL path, content type,
/// body)`.
macro_rules! gui_file {
    ($path:literal, $content_type:expr) => {
        (
            concat!("/ui/", $path),
            $content_type,
            include_str!(concat!("gui/", $path)),
        )
    };
}

/// What the GUI serves: `(URL path, content type, body)`. The page is `/ui/` itself; it
/// links the style sheets and loads `app.js` as a module, which imports the other modules
/// by relative path (no build step, no bundler).
const FILES: &[(&str, &str, &str)] = &[
    ("/ui/", HTML, include_str!("gui/index.html")),
    gui_file!("style/base.css", CSS),
    gui_file!("style/tables.css", CSS),
    gui_file!("style/forms.css", CSS),
    gui_file!("style/panels.css", CSS),
    gui_file!("app.js", JS),
    gui_file!("dom.js", JS),
    gui_file!("api.js", JS),
    gui_file!("status.js", JS),
    gui_file!("confirm.js", JS),
    gui_file!("refresh.js", JS),
    gui_file!("store.js", JS),
    gui_file!("events.js", JS),
    gui_file!("actions.js", JS),
    gui_file!("router.js", JS),
    gui_file!("views/parts.js", JS),
    gui_file!("views/overview.js", JS),
    gui_file!("views/plugins.js", JS),
    gui_file!("views/plugin.js", JS),
    gui_file!("views/histogram.js", JS),
    gui_file!("views/charts.js", JS),
    gui_file!("views/try.js", JS),
    gui_file!("views/routes.js", JS),
    gui_file!("views/hub.js", JS),
];

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn headers(State(shared): State<Arc<AdminShared>>, request: Request, next: Next) -> Response {
    if let Err(refused) = check_host_and_origin(&shared.allowed_hosts, request.headers()) {
        return *refused;
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn router(shared: Arc<AdminShared>) -> axum::Router {
    let mut router = axum::Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }));
    for &(path, content_type, body) in FILES {
        router = router.route(path, get(move || async move { asset(content_type, body) }));
    }
    router.layer(axum::middleware::from_fn_with_state(shared, headers))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::{CSS, FILES, HTML, JS};

    /// The module specifiers of the static `import` and `export ... from` statements in a
    /// JavaScript module. Each statement starts a line (they are at the top level); the
    /// specifier is the first string after `import` (an import clause holds no other
    /// string), or the string after `from` in a re-export.
    fn imports(source: &str) -> Vec<&str> {
        let mut found = Vec::new();
        let line_starts = std::iter::once(0).chain(source.match_indices('\n').map(|(i, _)| i + 1));
        for start in line_starts {
            let rest = &source[start..];
            let keyword = rest
                .strip_prefix("import")
                .filter(|after| after.starts_with([' ', '{', '*', '\'', '"']));
            let after = if let Some(after) = keyword {
                after
            } else if rest.starts_with("export *") || rest.starts_with("export {") {
                let Some(end) = rest.find(';') else { continue };
                match rest[..end].rfind(" from ") {
                    Some(from) => &rest[from..end],
                    None => continue,
                }
            } else {
                continue;
            };
            if let Some(specifier) = first_string(after) {
                found.push(specifier);
            }
        }
        found
    }

    /// The first string literal (quoted with ' or ") in `text`.
    fn first_string(text: &str) -> Option<&str> {
        let open = text.find(['\'', '"'])?;
        let quote = &text[open..=open];
        let inside = &text[open + 1..];
        Some(&inside[..inside.find(quote)?])
    }

    /// The site paths (starting with `/`) that `src` and `href` attributes of a page name.
    fn links(html: &str) -> Vec<&str> {
        ["src=\"", "href=\""]
            .iter()
            .flat_map(|attribute| html.match_indices(attribute))
            .filter_map(|(at, attribute)| {
                let value = &html[at + attribute.len()..];
                Some(&value[..value.find('"')?])
            })
            .filter(|value| value.starts_with('/'))
            .collect()
    }

    /// `specifier` (`./x.js`, `../x.js`) as a path on the site, relative to the module at
    /// `from`.
    fn resolve(from: &str, specifier: &str) -> String {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop(); // the importing file's own name
        for part in specifier.split('/') {
            match part {
                "." => {}
                ".." => {
                    parts.pop();
                }
                name => parts.push(name),
            }
        }
        parts.join("/")
    }

    /// What each served file leads the browser to load: the links of the page, the imports
    /// of a module (each as a site path, with the specifier as written).
    fn edges() -> BTreeMap<&'static str, Vec<(String, &'static str)>> {
        FILES
            .iter()
            .map(|&(path, content_type, body)| {
                let targets = if content_type == HTML {
                    links(body).into_iter().map(|l| (l.to_owned(), l)).collect()
                } else if content_type == JS {
                    let specifiers = imports(body);
                    specifiers
                        .into_iter()
                        .map(|s| (resolve(path, s), s))
                        .collect()
                } else {
                    Vec::new()
                };
                (path, targets)
            })
            .collect()
    }

    #[test]
    fn every_link_and_import_names_a_served_file_and_every_served_file_is_reached() {
        let served: BTreeSet<&str> = FILES.iter().map(|&(path, _, _)| path).collect();
        assert_eq!(served.len(), FILES.len(), "a path is twice in FILES");
        let edges = edges();
        // It sees real edges, so that it cannot pass by reading nothing.
        let page = &edges["/ui/"];
        assert!(
            page.iter().any(|(path, _)| path == "/ui/app.js"),
            "index.html loads app.js: {page:?}"
        );
        assert!(
            edges["/ui/app.js"].len() > 2,
            "app.js imports the other modules: {:?}",
            edges["/ui/app.js"]
        );
        // A classic script cannot import: app.js must be loaded as a module.
        assert!(FILES[0]
            .2
            .contains(r#"<script type="module" src="/ui/app.js">"#));
        for (from, targets) in &edges {
            for (path, written) in targets {
                if from.ends_with(".js") {
                    assert!(
                        written.starts_with("./") || written.starts_with("../"),
                        "{from} imports {written:?}: a browser without an import map needs ./ or ../"
                    );
                }
                assert!(
                    served.contains(path.as_str()),
                    "{from} loads {written:?} ({path}), which FILES in gui.rs does not serve: add a line for it"
                );
            }
        }
        // Loads this test cannot follow.
        for &(path, content_type, body) in FILES {
            assert!(
                !(content_type == JS && body.contains("import(")),
                "{path} imports dynamically, which this test cannot follow: use a static import"
            );
            assert!(
                !(content_type == CSS && body.contains("@import")),
                "{path} imports a style sheet, which this test cannot follow: link it from index.html"
            );
        }
        // Everything in the table is reached from the page.
        let mut reached = BTreeSet::from(["/ui/"]);
        let mut next = vec!["/ui/"];
        while let Some(from) = next.pop() {
            for (path, _) in &edges[from] {
                if let Some(&path) = served.get(path.as_str()) {
                    if reached.insert(path) {
                        next.push(path);
                    }
                }
            }
        }
        let unused: Vec<&&str> = served.difference(&reached).collect();
        assert!(
            unused.is_empty(),
            "FILES in gui.rs serves {unused:?}, but index.html and the modules it imports never load them"
        );
    }

    #[test]
    fn each_file_is_served_with_the_content_type_of_its_ending() {
        // A module script with another type is refused by the browser (strict MIME checks).
        for &(path, content_type, _) in FILES {
            let expected = match path.rsplit_once('.').map(|(_, ending)| ending) {
                Some("js") => JS,
                Some("css") => CSS,
                _ => HTML,
            };
            assert_eq!(content_type, expected, "{path}");
        }
    }

    #[test]
    fn the_import_reader_finds_every_form_of_static_import_and_nothing_else() {
        let source = "// a module\n\
            import { h, setText } from './dom.js';\n\
            import {\n  api,\n  token,\n} from \"../api.js\";\n\
            import * as all from './all.js';\n\
            import './side-effect.js';\n\
            export { a } from './again.js';\n\
            export * from './every.js';\n\
            export { local };\n\
            export function f() {\n  return 'failed to load from ' + x;\n}\n\
            const text = \"import x from './not-a-module.js'\";\n\
            importance = 'high';\n";
        assert_eq!(
            imports(source),
            [
                "./dom.js",
                "../api.js",
                "./all.js",
                "./side-effect.js",
                "./again.js",
                "./every.js"
            ]
        );
        assert_eq!(
            links("<link rel=\"icon\" href=\"data:,\"><a href=\"#/\">x</a><script type=\"module\" src=\"/ui/app.js\"></script><link href=\"/ui/a.css\">"),
            ["/ui/app.js", "/ui/a.css"]
        );
        assert_eq!(resolve("/ui/views/hub.js", "../dom.js"), "/ui/dom.js");
        assert_eq!(resolve("/ui/app.js", "./views/hub.js"), "/ui/views/hub.js");
    }
}
