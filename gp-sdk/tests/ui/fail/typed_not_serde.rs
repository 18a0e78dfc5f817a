// A label's input and a route's JSON answer of types serde cannot read or write.
#[gp_sdk::plugin]
mod api {
    use gp_sdk::http::Json;

    pub struct Point {
        pub x: i64,
    }

    #[label("move")]
    fn shift(point: Point) -> i64 {
        point.x
    }

    #[route(GET, "/origin")]
    fn origin() -> Json<Point> {
        Json(Point { x: 0 })
    }
}

fn main() {}
