//! Greets whoever the context names, and says which version answered.
//!
//! Its `#[on_load]` and `#[on_unload]` hooks log through the host, so a host's log shows
//! each version start and stop. `greeter-next` is the same code released as 2.0.0: the
//! host-app tour upgrades one to the other while calls run.

mod plugin;
