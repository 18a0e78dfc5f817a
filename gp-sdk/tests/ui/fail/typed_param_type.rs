// A path parameter of a type that does not parse from text.
#[gp_sdk::plugin]
mod api {
    #[route(GET, "/items/:id")]
    fn get(id: Vec<u8>) -> String {
        format!("{id:?}")
    }
}

fn main() {}
