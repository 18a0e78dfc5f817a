//! The runner's calls: one thread per call connection, each call run inline on it and
//! answered there, and the cancel tokens `Cancel` reaches them through.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Duration;

use super::harden::limit_cpu_from_now;
use super::Loaded;
use crate::error::Error;
use crate::runtime::context::{CancelToken, Context};
use crate::runtime::isolation::protocol::{self, Call, FromRunner, Outcome, ToRunner};
use crate::util::lock;

/// What `Cancel` needs to know about a call connection.
#[derive(Default)]
pub(super) struct ConnState {
    /// The sequence number of the call running or last run on it.
    pub(super) seq: u64,
    /// The running call's cancel token.
    pub(super) token: Option<CancelToken>,
    /// A `Cancel` for a call that has not started yet.
    pub(super) pending: Option<u64>,
}

/// Serves one call connection: each call runs on this thread, inline, and is answered here.
pub(super) fn serve_conn(
    conn: u32,
    socket: UnixStream,
    spin: Duration,
    loaded: &Loaded,
    running: &Mutex<HashMap<u32, ConnState>>,
) {
    let mut input = BufReader::new(protocol::SpinRead {
        socket: &socket,
        spin,
    });
    let mut output = BufWriter::new(&socket);
    loop {
        let answer = match protocol::receive::<ToRunner>(&mut input) {
            Ok(ToRunner::Call(call)) => run_call(conn, loaded, running, call),
            Ok(ToRunner::Ping) => FromRunner::Pong,
            // The host closed the connection, or sent what does not belong here.
            Ok(_) | Err(_) => return,
        };
        let mut sent = protocol::send(&mut output, &answer);
        if sent
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::InvalidData)
        {
            // Refused before anything was written: too large to send back.
            let too_large = FromRunner::Done {
                values: Vec::new(),
                outcome: Outcome::Other(format!(
                    "the values the plugin left in the context are too large to send back to the host (over {} MiB)",
                    protocol::MAX_FRAME >> 20
                )),
            };
            sent = protocol::send(&mut output, &too_large);
        }
        if sent.and_then(|()| output.flush()).is_err() {
            return;
        }
    }
}

fn run_call(
    conn: u32,
    loaded: &Loaded,
    running: &Mutex<HashMap<u32, ConnState>>,
    call: Call,
) -> FromRunner {
    let mut ctx = Context::new();
    for (key, value) in call.values {
        ctx.set(key, value);
    }
    ctx.set_label(call.label);
    if let Some(ms) = call.remaining_ms {
        ctx = ctx.with_timeout(Duration::from_millis(ms));
    }
    {
        let mut running = lock(running);
        let state = running.entry(conn).or_default();
        let token = ctx.cancel_token();
        if state.pending.take() == Some(call.seq) {
            token.cancel();
        }
        state.seq = call.seq;
        state.token = Some(token);
    }
    if call.cpu_seconds.is_some() {
        limit_cpu_from_now(call.cpu_seconds);
    }
    let outcome = match loaded.call(&mut ctx) {
        Ok(()) => Outcome::Ok,
        Err(error) => match *error {
            Error::Failed { message, .. } => Outcome::Failed(message),
            Error::Panicked { message, .. } => Outcome::Panicked(message),
            Error::Cancelled { .. } | Error::Unloaded { .. } => Outcome::Cancelled,
            Error::DeadlineExceeded { .. } => Outcome::DeadlineExceeded,
            other => Outcome::Other(other.to_string()),
        },
    };
    {
        let mut running = lock(running);
        if let Some(state) = running.get_mut(&conn) {
            state.token = None;
        }
        // No call left running: no CPU limit on the idle runner's own threads.
        if call.cpu_seconds.is_some() && running.values().all(|s| s.token.is_none()) {
            limit_cpu_from_now(None);
        }
    }
    let values = ctx
        .values()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    FromRunner::Done { values, outcome }
}
