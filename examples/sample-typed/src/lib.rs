//! The seed's sample plugin in the typed form: the same two routes and the same direct call as
//! `examples/sample`, each its own function, with no label switch and no key lookups.
//!
//! - `GET /api/plugin/sample/:id` (`?shout=true` for capitals): `id` is parsed as a `u64`
//!   before the handler runs (400 with the reason if it is not one), and sample 0 is a 404.
//! - `POST /api/plugin/samples` with `{"name": "..."}`: 201 and a greeting; a body that does
//!   not fit `Hello` is a 400.
//! - A call with label `greet`, or with no label (the seed's host), reads the `Hello` stored
//!   under `sample` and stores the greeting under `greeting`.

#[gp_sdk::plugin(driver = "beego")]
mod sample_typed {
    use gp_sdk::http::{Json, Query, StatusCode};
    use gp_sdk::{Context, Error, Result};
    use serde::{Deserialize, Serialize};

    /// What the host stores under `sample`, and what `POST /api/plugin/samples` sends.
    #[derive(Deserialize, Serialize)]
    pub struct Hello {
        name: String,
    }

    /// `GET /api/plugin/sample/:id`'s answer.
    #[derive(Serialize)]
    pub struct Sample {
        id: u64,
        greeting: String,
    }

    /// `GET /api/plugin/sample/:id`'s query.
    #[derive(Deserialize)]
    pub struct Options {
        shout: Option<bool>,
    }

    #[route(GET, "/api/plugin/sample/:id", label = "plugin.get")]
    fn get(id: u64, Query(options): Query<Options>) -> Result<Json<Sample>> {
        if id == 0 {
            return Err(Error::with_status(
                404,
                "there is no sample 0: ids start at 1",
            ));
        }
        let mut greeting = format!("sample plugin says: hello, sample {id}");
        if options.shout == Some(true) {
            greeting = greeting.to_uppercase();
        }
        Ok(Json(Sample { id, greeting }))
    }

    /// `POST /api/plugin/samples`'s answer.
    #[derive(Serialize)]
    pub struct Greeting {
        greeting: String,
    }

    #[route(POST, "/api/plugin/samples", label = "plugin.post")]
    fn post(Json(hello): Json<Hello>) -> (StatusCode, Json<Greeting>) {
        let greeting = format!("sample plugin says: {}", hello.name);
        (StatusCode::CREATED, Json(Greeting { greeting }))
    }

    /// A direct call's input: the context's `sample` value.
    #[derive(Deserialize)]
    pub struct GreetIn {
        sample: Hello,
    }

    /// A direct call's output: stored as the context's `greeting` value.
    #[derive(Serialize)]
    pub struct GreetOut {
        greeting: String,
    }

    #[label("greet")]
    fn greet(input: GreetIn, ctx: &Context) -> GreetOut {
        ctx.info(format!("sample-typed got {:?}", input.sample.name));
        GreetOut {
            greeting: format!("sample plugin says: {}", input.sample.name),
        }
    }

    /// The seed's host calls with no label: that is `greet`. Any other label is refused.
    #[fallback]
    fn direct(input: GreetIn, ctx: &Context) -> Result<GreetOut> {
        if let Some(label) = ctx.label() {
            gp_sdk::bail!(
                "label `{label}` is not one of sample-typed's: plugin.get, plugin.post, greet, or no label"
            );
        }
        Ok(greet(input, ctx))
    }
}
