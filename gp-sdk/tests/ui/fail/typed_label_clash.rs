// The same label on a route and on a label handler.
#[gp_sdk::plugin]
mod api {
    #[route(GET, "/items", label = "items")]
    fn list() -> String {
        String::new()
    }

    #[label("items")]
    fn count() -> i64 {
        0
    }
}

fn main() {}
