// A label handler with two inputs, and a route handler taking the request and the context.
#[gp_sdk::plugin]
mod api {
    use gp_sdk::{Context, Request};

    #[label("add")]
    fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    #[route(GET, "/both")]
    fn both(request: Request<'_>, ctx: &mut Context) -> String {
        ctx.info("both");
        request.path().to_owned()
    }
}

fn main() {}
