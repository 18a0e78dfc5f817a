//! Calls sent together: written to one call connection in one `write`, run by the runner one
//! after another, and answered in order (the runner flushes its answers when it has no further
//! call read), so that a batch costs one wake-up on each side instead of one per call. The
//! HTTP server batches the requests that wait for an isolated plugin (see
//! `http::server::batch`); each call keeps its own deadline, cancellation and outcome.

use std::io::{BufReader, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::Remote;
use crate::error::Error;
use crate::runtime::context::Context;
use crate::runtime::isolation::process::{Conn, RunnerProcess};
use crate::runtime::isolation::protocol::{self, FromRunner, Lost, SocketWriter};
use crate::runtime::isolation::watchdog;

/// How much of a batch's answers one `read` takes.
const READ_BUFFER: usize = 8 << 10;
/// The frames one round writes before it reads their answers (its first call's, however
/// large): well within a socket's buffers, so that a runner answering early calls is never
/// blocked on a host still writing later ones.
const ROUND_BYTES: usize = 64 << 10;

impl Remote {
    /// Runs every context's call, in order, on one call connection of one runner; the
    /// outcomes are each call's own, as [`call`](Self::call) gives them. When no runner or
    /// connection can be had, each call goes through [`call`](Self::call) (its own error, its
    /// own restart).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn call_many(
        &self,
        ctxs: &mut [&mut Context],
        retiring: &Arc<AtomicBool>,
    ) -> Vec<Result<(), Box<Error>>> {
        let Some(first) = ctxs.first() else {
            return Vec::new();
        };
        let runner = match self.runner(first) {
            Ok(runner) => runner,
            Err(_) => return one_by_one(self, ctxs, retiring),
        };
        let Ok(conn) = runner.take_conn(self.config.concurrency, first) else {
            return one_by_one(self, ctxs, retiring);
        };
        let mut outcomes: Vec<Option<Result<(), Box<Error>>>> =
            std::iter::repeat_with(|| None).take(ctxs.len()).collect();
        let mut next = 0;
        let mut healthy = true;
        while next < ctxs.len() {
            next = self.round(
                ctxs,
                next,
                &runner,
                &conn,
                retiring,
                &mut outcomes,
                &mut healthy,
            );
        }
        if healthy {
            runner.put_conn(conn);
        }
        outcomes
            .into_iter()
            .map(|o| o.expect("every call has an outcome"))
            .collect()
    }
}

impl Remote {
    /// Sends the calls from `from` on, up to [`ROUND_BYTES`] of frames (at least one call),
    /// and reads their answers; returns where the next round starts. Past a lost runner,
    /// every call gets the lost runner's error without being sent.
    #[allow(clippy::too_many_arguments)] // one round's inputs and outputs, named where made
    fn round(
        &self,
        ctxs: &mut [&mut Context],
        from: usize,
        runner: &Arc<RunnerProcess>,
        conn: &Conn,
        retiring: &Arc<AtomicBool>,
        outcomes: &mut [Option<Result<(), Box<Error>>>],
        healthy: &mut bool,
    ) -> usize {
        let mut frames = Vec::new();
        let mut sent = Vec::new();
        let mut next = from;
        while next < ctxs.len() && (next == from || frames.len() < ROUND_BYTES) {
            let i = next;
            next += 1;
            if !*healthy {
                outcomes[i] = Some(Err(self.crashed(runner)));
                continue;
            }
            let ctx = &*ctxs[i];
            let (seq, call) = self.call_frame(ctx);
            if let Err(error) = protocol::send(&mut frames, &call) {
                outcomes[i] = Some(Err(self.unsendable(&error)));
                continue;
            }
            let watched = self.watched(ctx, retiring, runner, conn.id, seq);
            let guard = watchdog::watch(&watched);
            sent.push((i, watched, guard));
        }
        if sent.is_empty() {
            return next;
        }
        *healthy = SocketWriter(&conn.socket).write_all(&frames).is_ok();
        let mut input = BufReader::with_capacity(
            READ_BUFFER,
            protocol::SpinRead {
                socket: &conn.socket,
                spin: self.config.spin,
            },
        );
        for (i, watched, guard) in sent {
            let answer = if *healthy {
                protocol::receive::<FromRunner>(&mut input).map_err(|_| Lost::Gone)
            } else {
                Err(Lost::Gone)
            };
            watched.finish();
            drop(guard);
            let (outcome, usable) = self.conclude(runner, ctxs[i], answer, &watched, retiring);
            *healthy &= usable;
            outcomes[i] = Some(outcome);
        }
        next
    }
}

/// Each call on its own, for when a batch cannot start.
fn one_by_one(
    remote: &Remote,
    ctxs: &mut [&mut Context],
    retiring: &Arc<AtomicBool>,
) -> Vec<Result<(), Box<Error>>> {
    ctxs.iter_mut()
        .map(|ctx| remote.call(ctx, retiring))
        .collect()
}
