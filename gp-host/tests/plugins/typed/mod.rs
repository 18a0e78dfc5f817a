//! The typed form (`#[gp_sdk::plugin] mod`): `examples/sample-typed`, `examples/dispatch-typed`,
//! `examples/sample-async` and the `typed` and `waits` fixtures, built once per test run,
//! called through the host (`labels`, `state`, `config`, `dispatch`, `asynchronous`) and over
//! HTTP (`routes`, `dispatch`, `asynchronous`).

mod asynchronous;
mod config;
mod dispatch;
mod labels;
mod routes;
mod state;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::harness::{build_workspace, target_dir};

/// Every form of handler `examples/sample-typed` does not show: each extractor, each kind of
/// response and error, scalar and struct labels, and no fallback.
const TYPED: &str = r#"
#[gp_sdk::plugin(name = "typed", driver = "beego")]
mod typed {
    use gp_sdk::http::{Body, HeaderMap, IntoErrorResponse, Json, Query, Response, StatusCode};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use gp_sdk::{Context, Request};
    use serde::{Deserialize, Serialize};

    #[route(GET, "/t/sum/:a/:b")]
    fn sum(b: i32, a: i32) -> Json<i64> {
        Json(i64::from(a) + i64::from(b))
    }

    #[derive(Deserialize)]
    pub struct Page {
        limit: u32,
        after: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[route(GET, "/t/page")]
    fn page(Query(page): Query<Page>) -> Json<serde_json::Value> {
        Json(serde_json::json!({ "limit": page.limit, "after": page.after, "tags": page.tags }))
    }

    #[route(GET, "/t/ctx/:id", label = "t.ctx")]
    fn with_context(id: String, ctx: &mut Context) -> gp_sdk::Result<String> {
        ctx.set_header("x-seen", &id);
        Ok(format!("{} {id}", ctx.label().unwrap_or_default()))
    }

    #[route(GET, "/t/headers")]
    fn headers(headers: HeaderMap) -> String {
        let who: Vec<&str> = headers.get_all("x-who").iter().filter_map(|v| v.to_str().ok()).collect();
        who.join("+")
    }

    #[route(POST, "/t/body")]
    fn body(body: Body) -> Vec<u8> {
        body.0.into_iter().rev().collect()
    }

    // The request first: the generated code reads it last, after the arguments that need
    // the context mutably.
    #[route(GET, "/t/files/*rest")]
    fn files(request: Request<'_>, rest: String) -> Json<serde_json::Value> {
        Json(serde_json::json!({ "rest": rest, "path": request.path(), "route": request.route() }))
    }

    #[route(POST, "/t/created")]
    fn created() -> Response {
        Response::new(StatusCode::CREATED)
            .header("location", "/t/created/7")
            .json(&serde_json::json!({ "id": 7 }))
    }

    #[route(DELETE, "/t/gone")]
    fn gone() -> StatusCode {
        StatusCode::NO_CONTENT
    }

    #[route(GET, "/t/nothing")]
    fn nothing() {}

    pub enum ItemError {
        Teapot,
        Broken(String),
    }

    impl IntoErrorResponse for ItemError {
        fn status(&self) -> StatusCode {
            match self {
                ItemError::Teapot => StatusCode::IM_A_TEAPOT,
                ItemError::Broken(_) => StatusCode::INTERNAL_SERVER_ERROR,
            }
        }
        fn message(&self) -> String {
            match self {
                ItemError::Teapot => "short and stout".to_owned(),
                ItemError::Broken(why) => format!("broken: {why}"),
            }
        }
    }

    #[route(GET, "/t/fail/:how")]
    fn fail(how: String) -> Result<&'static str, ItemError> {
        match how.as_str() {
            "teapot" => Err(ItemError::Teapot),
            "broken" => Err(ItemError::Broken("a wire".to_owned())),
            _ => Ok("fine"),
        }
    }

    #[route(GET, "/t/status/:code")]
    fn status(code: u16) -> Result<(StatusCode, String), (StatusCode, String)> {
        match StatusCode::from_u16(code) {
            Ok(status) => Ok((status, format!("status {code}"))),
            Err(_) => Err((StatusCode::UNPROCESSABLE_ENTITY, format!("{code} is no status"))),
        }
    }

    #[derive(Serialize, Deserialize)]
    pub struct Add {
        a: i64,
        b: i64,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Sum {
        sum: i64,
    }

    #[label("add")]
    fn add(input: Add) -> Result<Sum, String> {
        match input.a.checked_add(input.b) {
            Some(sum) => Ok(Sum { sum }),
            None => Err(format!("{} + {} overflows", input.a, input.b)),
        }
    }

    #[label]
    fn double(n: i64) -> i64 {
        n * 2
    }

    #[label("touch")]
    fn touch(ctx: &mut Context) {
        ctx.set("touched", true);
    }

    /// How many states were built and dropped: statics outlive an instance (the build stays
    /// mapped), so a test sees the ones before.
    static OPENED: AtomicUsize = AtomicUsize::new(0);
    static CLOSED: AtomicUsize = AtomicUsize::new(0);

    pub struct State {
        id: usize,
        greeting: String,
    }

    impl Drop for State {
        fn drop(&mut self) {
            CLOSED.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The typed fixture's configuration.
    #[derive(Deserialize, gp_sdk::schema::ConfigSchema)]
    pub struct Config {
        /// What it greets with.
        greeting: String,
    }

    #[on_load]
    fn open(config: Option<Config>, ctx: &mut Context) -> Result<State, String> {
        let greeting = config.map_or_else(|| "hello".to_owned(), |c| c.greeting);
        if greeting.starts_with("fail:") {
            return Err(format!("cannot greet with {greeting:?}"));
        }
        ctx.info(format!("opening with {greeting:?}"));
        let id = OPENED.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(State { id, greeting })
    }

    #[derive(Serialize)]
    pub struct Counts {
        id: usize,
        opened: usize,
        closed: usize,
    }

    #[label("counts")]
    fn counts(state: &State) -> Counts {
        Counts {
            id: state.id,
            opened: OPENED.load(Ordering::SeqCst),
            closed: CLOSED.load(Ordering::SeqCst),
        }
    }

    #[label("greeting")]
    fn greeting(state: &State) -> String {
        state.greeting.clone()
    }

    /// Logs the greeting, as a careless plugin might log a secret it was given.
    #[label("announce")]
    fn announce(state: &State, ctx: &mut Context) {
        ctx.info(format!("the greeting is {:?}", state.greeting));
    }

    #[route(GET, "/t/greet/:name")]
    fn greet(name: String, state: &State) -> String {
        format!("{} {name} (instance {})", state.greeting, state.id)
    }
}
"#;

/// The `typed` fixture's library.
pub fn typed() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let crates = [("typed", "1.0.0", TYPED)];
        let mut built = build_workspace(
            &target_dir().join("fixtures/typed"),
            &crates,
            "serde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\n",
        );
        built.remove("typed").expect("the typed fixture was built")
    })
}
