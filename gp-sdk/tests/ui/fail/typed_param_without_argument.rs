// A route parameter the handler takes no argument for.
#[gp_sdk::plugin]
mod api {
    #[route(GET, "/items/:id/parts/:part")]
    fn get(id: u64) -> String {
        id.to_string()
    }
}

fn main() {}
