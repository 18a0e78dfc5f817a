//! A slow loop that honours cancellation: it works in small steps until `steps` are done
//! (forever when unset), checking the context between steps.

use std::time::Duration;

use gp_sdk::{plugin_entry, Context, Result};

#[plugin_entry]
fn execute(ctx: &mut Context) -> Result {
    let steps = ctx.get_i64("steps").unwrap_or(i64::MAX);
    let step = Duration::from_millis(ctx.get_i64("step_ms").unwrap_or(10).max(0) as u64);
    let mut done = 0;
    while done < steps {
        ctx.check_cancelled()?;
        std::thread::sleep(step);
        done += 1;
        ctx.set("done", done);
    }
    ctx.info(format!("finished {done} steps"));
    Ok(())
}
