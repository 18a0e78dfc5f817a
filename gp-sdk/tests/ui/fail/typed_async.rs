// Async handlers share the context with the check for their call's cancellation: `&Context`
// only. The state is built before any call, synchronously.
#[gp_sdk::plugin]
mod api {
    use gp_sdk::Context;

    #[label]
    async fn touch(ctx: &mut Context) -> i64 {
        ctx.set("touched", true);
        1
    }

    #[on_load]
    async fn open() -> Result<(), String> {
        Ok(())
    }
}

fn main() {}
