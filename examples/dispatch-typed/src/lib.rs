//! The seed's label-dispatching plugin (`examples/dispatch`) in the typed form.
//!
//! - Labels `counter.get` and `counter.add`, called directly (`gp call --label`, or an
//!   application's `Executor::call`), work on the call's `count` (and `by`), typed.
//! - Routes `GET /api/typed-counter/:name` and `POST /api/typed-counter/:name` (with
//!   `{"by": 2}`, or no body) keep named counters, in the instance's state rather than in a
//!   static: each loaded instance has its own, dropped with it.
//! - An optional `config.json` beside `plugin.json` sets the step a POST without a body adds:
//!   `{"step": 5}`.

#[gp_sdk::plugin(name = "dispatch-typed")]
mod dispatch_typed {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use gp_sdk::http::{Body, Json, StatusCode};
    use gp_sdk::Error;
    use serde::{Deserialize, Serialize};

    /// The optional configuration.
    #[derive(Deserialize, gp_sdk::schema::ConfigSchema)]
    pub struct Config {
        /// What a POST without a body adds (not 0).
        step: i64,
    }

    /// The named counters of the HTTP routes, and the step from the configuration.
    pub struct Counters {
        step: i64,
        counts: Mutex<HashMap<String, i64>>,
    }

    #[on_load]
    fn open(config: Option<Config>) -> gp_sdk::Result<Counters> {
        let step = config.map_or(1, |c| c.step);
        if step == 0 {
            gp_sdk::bail!("a step of 0 would count nothing: set `step` to another integer");
        }
        Ok(Counters {
            step,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A direct call's values: `count` (0 when unset) and `by` (1 when unset).
    #[derive(Deserialize)]
    pub struct Count {
        #[serde(default)]
        count: i64,
        by: Option<i64>,
    }

    /// What a direct call leaves in the values.
    #[derive(Serialize)]
    pub struct Counted {
        count: i64,
        result: i64,
    }

    /// Echoes `count` as `result`.
    #[label("counter.get")]
    fn get(input: Count) -> Counted {
        Counted {
            count: input.count,
            result: input.count,
        }
    }

    /// Adds `by` to `count`.
    #[label("counter.add")]
    fn add(input: Count) -> Result<Counted, String> {
        let by = input.by.unwrap_or(1);
        let Some(sum) = input.count.checked_add(by) else {
            return Err(format!("count {} + {by} overflows", input.count));
        };
        Ok(Counted {
            count: sum,
            result: sum,
        })
    }

    /// A named counter, as the routes answer it.
    #[derive(Serialize)]
    pub struct Named {
        name: String,
        count: i64,
    }

    #[route(GET, "/api/typed-counter/:name", label = "counter.read")]
    fn read(name: String, counters: &Counters) -> Json<Named> {
        let count = lock(counters).get(&name).copied().unwrap_or(0);
        Json(Named { name, count })
    }

    /// `{"by": n}`; no body adds the configured step.
    #[derive(Deserialize)]
    pub struct By {
        by: i64,
    }

    #[route(POST, "/api/typed-counter/:name", label = "counter.bump")]
    fn bump(name: String, body: Body, counters: &Counters) -> Result<Json<Named>, Error> {
        let by = if body.0.is_empty() {
            counters.step
        } else {
            let by: By = serde_json::from_slice(&body.0).map_err(|e| {
                Error::with_status(400, format!("send {{\"by\": <integer>}}, or no body: {e}"))
            })?;
            by.by
        };
        let mut counts = lock(counters);
        let count = counts.entry(name.clone()).or_insert(0);
        let Some(sum) = count.checked_add(by) else {
            return Err(Error::with_status(
                StatusCode::UNPROCESSABLE_ENTITY.as_u16(),
                format!("count {count} + {by} overflows"),
            ));
        };
        *count = sum;
        Ok(Json(Named { name, count: sum }))
    }

    fn lock(counters: &Counters) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        counters.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}
