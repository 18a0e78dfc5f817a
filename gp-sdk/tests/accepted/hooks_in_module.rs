use gp_sdk::{plugin_entry, Context};

mod lifecycle {
    use gp_sdk::{on_load, Context};

    #[on_load]
    fn open<'a>(ctx: &mut Context<'a>) -> Result<(), String> {
        ctx.info("open");
        Ok(())
    }

    pub mod teardown {
        #[gp_sdk::on_unload]
        fn close() -> gp_sdk::Result {
            Ok(())
        }
    }
}

#[plugin_entry]
fn execute(ctx: &mut Context) -> gp_sdk::Result {
    ctx.set("k", 1);
    Ok(())
}
