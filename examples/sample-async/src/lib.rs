//! Async handlers: `async fn` routes and labels, run on the runtime gp-sdk gives each instance
//! of the plugin (its `async` feature).
//!
//! - `GET /api/async/wait/{ms}`: answers after `ms` milliseconds (at most 10,000). The call's
//!   deadline drops the future where it waits: a server with a 2 s timeout answers 504 at 2 s.
//! - Label `gather`, input a list of milliseconds: waits for all of them at once, as tasks on
//!   the plugin's runtime, and returns how long that took (the longest, not the sum).
//!
//! Its Cargo.toml enables gp-sdk's `async` feature; `gp_sdk::tokio` is the runtime's tokio.

#[gp_sdk::plugin(driver = "axum")]
mod sample_async {
    use std::time::{Duration, Instant};

    use gp_sdk::http::Json;
    use gp_sdk::tokio;
    use gp_sdk::{Error, Result};
    use serde::Serialize;

    /// The longest wait a request may ask for.
    const MAX_WAIT_MS: u64 = 10_000;

    /// `GET /api/async/wait/{ms}`'s answer.
    #[derive(Serialize)]
    pub struct Waited {
        waited_ms: u64,
    }

    #[route(GET, "/api/async/wait/{ms}", label = "wait")]
    async fn wait(ms: u64) -> Result<Json<Waited>> {
        if ms > MAX_WAIT_MS {
            return Err(Error::with_status(
                400,
                format!("wait at most {MAX_WAIT_MS} ms, not {ms}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(Json(Waited { waited_ms: ms }))
    }

    /// How long `gather` took, in whole milliseconds.
    #[label]
    async fn gather(waits: Vec<u64>) -> Result<u64> {
        if let Some(ms) = waits.iter().find(|&&ms| ms > MAX_WAIT_MS) {
            return Err(Error::msg(format!(
                "wait at most {MAX_WAIT_MS} ms, not {ms}"
            )));
        }
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for ms in waits {
            tasks.spawn(tokio::time::sleep(Duration::from_millis(ms)));
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| Error::msg(format!("a wait failed: {e}")))?;
        }
        Ok(started.elapsed().as_millis() as u64)
    }
}
