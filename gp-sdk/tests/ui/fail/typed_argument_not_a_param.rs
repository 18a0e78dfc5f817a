// An argument named after no parameter of the route (a typo), which leaves `:id` unbound too.
#[gp_sdk::plugin]
mod api {
    #[route(GET, "/items/:id")]
    fn get(ids: u64) -> String {
        ids.to_string()
    }
}

fn main() {}
