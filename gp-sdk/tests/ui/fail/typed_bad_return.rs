// A route handler returning what is not a response, and an error type that is not one.
#[gp_sdk::plugin]
mod api {
    #[route(GET, "/count")]
    fn count() -> u32 {
        7
    }

    #[route(GET, "/parse/:n")]
    fn parse(n: String) -> Result<String, std::num::ParseIntError> {
        n.parse::<u32>().map(|n| n.to_string())
    }
}

fn main() {}
