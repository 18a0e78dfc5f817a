// `#[plugin]` on a function, and on a module with no handler.
#[gp_sdk::plugin]
fn execute() {}

mod inner {
    #[gp_sdk::plugin]
    mod api {
        fn helper() {}
    }
}

fn main() {}
