// A handler that takes the state of a module with no `#[on_load]`, and one that names another
// type than the one `#[on_load]` builds.
mod without {
    #[gp_sdk::plugin]
    mod api {
        pub struct Pool;

        #[label("query")]
        fn query(pool: &Pool) -> i64 {
            let _ = pool;
            0
        }
    }
}

#[gp_sdk::plugin]
mod api {
    pub struct Pool;
    pub struct Other;

    #[on_load]
    fn open() -> gp_sdk::Result<Pool> {
        Ok(Pool)
    }

    #[label("query")]
    fn query(other: &Other) -> i64 {
        let _ = other;
        0
    }
}

fn main() {}
