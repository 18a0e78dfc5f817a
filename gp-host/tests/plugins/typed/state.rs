//! State from `#[on_load]`: built once per instance, handed to every call of that instance,
//! dropped after its last call; an `#[on_load]` that fails refuses the load.

use gp_host::{Context, Manager};
use serde::Deserialize;

use super::typed;
use crate::harness::base_dir;

#[derive(Deserialize, Debug, PartialEq)]
struct Counts {
    id: usize,
    opened: usize,
    closed: usize,
}

#[test]
fn each_instance_builds_its_state_once_and_drops_it_after_its_last_call() {
    let base = base_dir();
    gp_host::build::install_library(typed(), base.path()).unwrap();
    let manager = Manager::new(base.path());
    assert!(manager.load_plugins().failed.is_empty());
    let executor = manager.executor("typed").unwrap();
    // The build stays mapped for the whole test run, and other tests load it too: what counts
    // is what changes from here.
    let first: Counts = executor.call("counts", &()).unwrap();
    assert!(first.id >= 1 && first.opened >= first.id, "{first:?}");
    for _ in 0..3 {
        let again: Counts = executor.call("counts", &()).unwrap();
        assert_eq!(
            again.id, first.id,
            "every call of an instance sees its state"
        );
    }
    // Another manager, another instance of the same build: a state of its own.
    let other = Manager::new(base.path());
    assert!(other.load_plugins().failed.is_empty());
    let second: Counts = other
        .executor("typed")
        .unwrap()
        .call("counts", &())
        .unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(
        executor.call::<_, Counts>("counts", &()).unwrap().id,
        first.id,
        "the first instance keeps its own"
    );
    // Unloading the second drops its state, and only its.
    other.unload("typed").unwrap();
    let after: Counts = executor.call("counts", &()).unwrap();
    assert_eq!(after.id, first.id);
    assert!(
        after.closed > second.closed,
        "the unloaded instance's state was dropped: {after:?} after {second:?}"
    );
    // A route handler reads the same state.
    let mut ctx = Context::new().with_label("counts");
    executor.execute(&mut ctx).unwrap();
    assert_eq!(
        ctx.get("id").and_then(|v| v.as_i64()),
        Some(first.id as i64)
    );
}
