//! The runner's calls: one thread per call connection, each call run inline on it and
//! answered there, and the cancel tokens `Cancel` reaches them through.

use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    /// `Cancel`s for calls that have not started yet (sent in a batch behind the running one).
    pub(super) pending: Vec<u64>,
}

/// Serves one call connection: each call runs on this thread, inline, and is answered here.
/// Answers are flushed when no further call has been read: a batch of calls (see the host's
/// `Remote::call_many`) is answered in one `write`.
pub(super) fn serve_conn(
    conn: u32,
    socket: UnixStream,
    spin: Duration,
    loaded: &Loaded,
    running: &Mutex<HashMap<u32, ConnState>>,
) {
    let mut input = BufReader::with_capacity(
        64 << 10,
        protocol::SpinRead {
            socket: &socket,
            spin,
        },
    );
    let mut output = BufWriter::new(&socket);
    // The frames read and not yet run, with when each arrived: a call's time left counts from
    // then, not from when it starts behind the others of its batch.
    let mut queued = VecDeque::new();
    loop {
        // Every frame that has arrived: at least one (waiting for it), then what the buffer
        // holds.
        loop {
            match protocol::receive::<ToRunner>(&mut input) {
                Ok(frame @ (ToRunner::Call(_) | ToRunner::Ping)) => {
                    queued.push_back((frame, Instant::now()))
                }
                // The host closed the connection, or sent what does not belong here.
                Ok(_) | Err(_) => return,
            }
            if input.buffer().is_empty() {
                break;
            }
        }
        while let Some((frame, arrived)) = queued.pop_front() {
            let answer = match frame {
                ToRunner::Call(call) => run_call(conn, loaded, running, call, arrived),
                _ => FromRunner::Pong,
            };
            if send_answer(&mut output, &answer, queued.is_empty()).is_err() {
                return;
            }
        }
    }
}

/// Writes `answer` (in its place, if it is too large to send, an error saying so), and
/// flushes what is written if it is the `last` of those read.
fn send_answer(
    output: &mut BufWriter<&UnixStream>,
    answer: &FromRunner,
    last: bool,
) -> std::io::Result<()> {
    let mut sent = protocol::send(output, answer);
    if sent
        .as_ref()
        .is_err_and(|e| e.kind() == std::io::ErrorKind::InvalidData)
    {
        // Refused before anything was written: too large to send back.
        let too_large = FromRunner::Done {
            values: Vec::new(),
            removed: Vec::new(),
            outcome: Outcome::Other(format!(
                "the values the plugin left in the context are too large to send back to the host (over {} MiB)",
                protocol::MAX_FRAME >> 20
            )),
        };
        sent = protocol::send(output, &too_large);
    }
    sent?;
    if last {
        output.flush()?;
    }
    Ok(())
}

fn run_call(
    conn: u32,
    loaded: &Loaded,
    running: &Mutex<HashMap<u32, ConnState>>,
    call: Call,
    arrived: Instant,
) -> FromRunner {
    let mut ctx = Context::new();
    for (key, value) in call.values {
        ctx.set(key, value);
    }
    // Only what the plugin changes goes back: the host has the rest.
    ctx.journal_changes();
    ctx.set_label(call.label);
    if let Some(ms) = call.remaining_ms {
        ctx.set_deadline(Some(arrived + Duration::from_millis(ms)));
    }
    {
        let mut running = lock(running);
        let state = running.entry(conn).or_default();
        let token = ctx.cancel_token();
        // Cancels for calls before this one are stale: those calls are over.
        state.pending.retain(|seq| *seq >= call.seq);
        if let Some(at) = state.pending.iter().position(|seq| *seq == call.seq) {
            state.pending.swap_remove(at);
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
    let (values, removed) = ctx.take_changes();
    FromRunner::Done {
        values,
        removed,
        outcome,
    }
}
