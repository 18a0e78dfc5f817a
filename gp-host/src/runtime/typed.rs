//! A typed call: [`Executor::call`] writes a serde input as the call's values, runs the plugin
//! with a label, and reads a serde output back, with the mapping a `#[label]` handler reads and
//! writes (gp_core::typed), so both sides agree by construction.

use serde::de::DeserializeOwned;
use serde::Serialize;

use gp_core::typed::{self, Values, INPUT_KEY, RESULT_KEY};
use gp_core::Value;

use crate::error::Error;
use crate::runtime::context::Context;
use crate::runtime::executor::Executor;

impl Values for Context {
    fn value(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
    fn keys(&self) -> Vec<String> {
        self.values().map(|(key, _)| key.to_owned()).collect()
    }
}

impl Executor {
    /// Calls the plugin's `label` handler with `input` and returns its output.
    ///
    /// `input` is written as the call's values (a struct's fields each under its own key, any
    /// other value under `input`), and `Out` read back from the values after the call (a
    /// struct's fields from their keys, any other type from `result`): what a `#[label]`
    /// handler in a `#[plugin] mod` reads and writes.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), gp_host::Error> {
    /// #[derive(serde::Serialize)]
    /// struct Hello { name: String }
    /// #[derive(serde::Serialize)]
    /// struct GreetIn { sample: Hello }
    /// #[derive(serde::Deserialize)]
    /// struct GreetOut { greeting: String }
    ///
    /// let manager = gp_host::Manager::new("plugins");
    /// manager.load_plugins();
    /// let sample = manager.executor("sample-typed")?;
    /// let input = GreetIn { sample: Hello { name: "ann".into() } };
    /// let out: GreetOut = sample.call("greet", &input)?;
    /// assert_eq!(out.greeting, "sample plugin says: ann");
    /// # Ok(()) }
    /// ```
    ///
    /// Fails as [`execute`](Self::execute) does, and with [`Error::Values`] when `input` does
    /// not serialise or the values after the call do not fit `Out`.
    pub fn call<In, Out>(&self, label: &str, input: &In) -> Result<Out, Error>
    where
        In: Serialize + ?Sized,
        Out: DeserializeOwned,
    {
        let mut ctx = self.typed_context(label, input)?;
        self.execute(&mut ctx)?;
        self.typed_output(label, &ctx)
    }

    /// A context with `label` and `input` written as its values.
    pub(crate) fn typed_context<In: Serialize + ?Sized>(
        &self,
        label: &str,
        input: &In,
    ) -> Result<Context, Error> {
        let values = typed::to_values(input, INPUT_KEY)
            .map_err(|e| self.values_error(label, format!("the input does not serialise: {e}")))?;
        let mut ctx = Context::new().with_label(label);
        for (key, value) in values {
            ctx.set(key, value);
        }
        Ok(ctx)
    }

    /// `Out`, read from the values `ctx` holds after the call.
    pub(crate) fn typed_output<Out: DeserializeOwned>(
        &self,
        label: &str,
        ctx: &Context,
    ) -> Result<Out, Error> {
        typed::from_values(ctx, RESULT_KEY).map_err(|e| {
            self.values_error(
                label,
                format!(
                    "the values after the call do not fit {}: {e}",
                    std::any::type_name::<Out>()
                ),
            )
        })
    }

    fn values_error(&self, label: &str, message: String) -> Error {
        Error::Values {
            plugin: self.name().to_owned(),
            label: label.to_owned(),
            message,
        }
    }
}
