//! Starts runner processes from one thread that lives as long as the process.
//!
//! A runner's parent-death signal (`PR_SET_PDEATHSIG`) fires when the *thread* that started it
//! exits, not the process: a runner started from a pool thread (tokio's blocking pool ends
//! idle threads after 10 s) would be killed with it.

use std::process::{Child, Command};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

use crate::util::lock;

type Request = (Command, Sender<std::io::Result<Child>>);

/// Spawns `command` on the spawner thread. The command holds the runner's end of its socket;
/// it is dropped there, once spawned, so the host does not keep that end open (it would never
/// see the runner's end).
pub(super) fn spawn(command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<Option<Sender<Request>>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, queue) = channel::<Request>();
        let started = std::thread::Builder::new()
            .name("gp-runner-spawner".into())
            .spawn(move || {
                for (mut command, answer) in queue {
                    let child = command.spawn();
                    // The runner's end of its socket closes here, in this process.
                    drop(command);
                    let _ = answer.send(child);
                }
            });
        Mutex::new(started.ok().map(|_| requests))
    });
    let requests = lock(spawner)
        .clone()
        .ok_or_else(|| std::io::Error::other("the runner spawner thread could not start"))?;
    let (answer, child) = channel();
    requests
        .send((command, answer))
        .map_err(|_| std::io::Error::other("the runner spawner thread ended"))?;
    child
        .recv()
        .map_err(|_| std::io::Error::other("the runner spawner thread ended"))?
}
