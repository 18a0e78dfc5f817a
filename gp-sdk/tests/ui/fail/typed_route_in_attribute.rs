// A route in `#[plugin(...)]` rather than on its handler.
#[gp_sdk::plugin(route(GET, "/items", label = "items"))]
mod api {
    #[label("count")]
    fn count() -> i64 {
        0
    }
}

fn main() {}
