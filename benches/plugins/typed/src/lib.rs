//! Benchmark plugin: the typed form's costs against `bench-getset`'s hand-written entry.
//!
//! - label `getset`: `bench-getset`'s body (read `n`, store `n + 1`) as a `#[label]` handler
//!   that takes the context: what the generated dispatch by label adds;
//! - label `inc`: the same as a typed handler, `N { n }` in and out through serde: what typed
//!   values add;
//! - label `inc_async`: `inc` as an `async fn` whose future is ready at its first poll: what
//!   running a handler on the instance's runtime adds;
//! - label `inc_yield`: `inc_async` that yields once first: what a future that waits (and is
//!   woken) adds.

// Outside the `#[plugin]` module: a module in a file of its own cannot be inside one.
#[path = "../../getset/src/body.rs"]
mod body;

#[gp_sdk::plugin(name = "bench-typed")]
mod typed {
    use gp_sdk::{Context, Result};
    use serde::{Deserialize, Serialize};

    use super::body;

    #[label("getset")]
    fn getset(ctx: &mut Context) -> Result {
        body::getset(ctx)
    }

    /// The input and the output of `inc`: the context's `n`.
    #[derive(Serialize, Deserialize)]
    pub struct N {
        n: i64,
    }

    #[label("inc")]
    fn inc(input: N) -> N {
        N { n: input.n + 1 }
    }

    #[label("inc_async")]
    async fn inc_async(input: N) -> N {
        N { n: input.n + 1 }
    }

    #[label("inc_yield")]
    async fn inc_yield(input: N) -> N {
        gp_sdk::tokio::task::yield_now().await;
        N { n: input.n + 1 }
    }
}
