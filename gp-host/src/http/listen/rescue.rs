//! A call run in its request's own task, and the 504 its connection's watcher writes if the
//! call is still running at the request's deadline.
//!
//! Run in a task of its own, a call cost a request about 2,100 of its 24,600 user-space
//! instructions (the task, its join handle, the timer that answers 504 at the deadline) and
//! an extra wake-up. Run in the request's task (the connection's, which polls hyper), it
//! costs what the plugin costs; but a call that never returns then holds the one task that
//! could answer the request. So an app that runs a call there first arms the connection
//! ([`Rescue::arm`]) with the request's deadline and a way to make its 504; the
//! connection's watcher (`connection::watch`, a task of its own) wakes at that deadline, and
//! if the call has not returned, writes the 504 itself on the stream's writing half, which it
//! shares, half-closes the stream and tells the connection to close. Once that happened,
//! whatever hyper writes is refused, so the client reads one answer.
//!
//! The watcher's bytes never mix with hyper's: a request arms only on a plain HTTP/1
//! connection (HTTP/2 frames its responses, TLS encrypts them), and only when hyper has
//! nothing unsent (`dirty`: hyper wrote since its last completed flush, which it makes only
//! with an empty buffer; the one exception, a `100 Continue` buffered as the body was read,
//! is harmless: a stuck call's 504 goes out without it). While the call runs, hyper runs no
//! code of this connection. The request disarms under the lock the watcher writes under, so
//! the two never both answer: a call that returns just before the watcher looks (one that
//! heeds its deadline, say) is answered by its request as usual.
//!
//! Measured (`benches/serve-instructions.sh`): 24,613 instructions a request before, 22,411
//! with this (the arming, its closure and the split stream take ~1,100 of what it saves).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::connection::{Armed, Connection};
use crate::util::lock;

/// The connection a request came on, to the [`App`](super::App) answering it: through it a
/// call run in the request's own task leaves the request's 504 to the connection.
pub struct Rescue(pub(super) Option<Arc<Connection>>);

impl Rescue {
    /// No connection to rescue a request on (an app served otherwise).
    pub fn none() -> Rescue {
        Rescue(None)
    }

    /// Whether the connection can answer at `at` for a call run in the request's task (see
    /// the module documentation): a plain HTTP/1 connection with nothing of hyper's unsent,
    /// whose watcher wakes next at `at` or before.
    pub(crate) fn ready(&self, at: Instant) -> bool {
        self.0.as_ref().is_some_and(|conn| {
            conn.plain.load(Ordering::Relaxed)
                && conn.http1.load(Ordering::Relaxed)
                && !conn.dirty.load(Ordering::Relaxed)
                && conn.ms(at) >= conn.watch_at.load(Ordering::Acquire)
        })
    }

    /// Arms the connection, [`ready`](Self::ready) just now: if the call about to run in the
    /// request's task is still running at `at`, the connection's watcher writes the HTTP/1
    /// response that `answer` makes and closes the connection. `None` if the watcher, looking
    /// meanwhile, set its next wake past `at`: run the call elsewhere.
    pub(crate) fn arm(
        &self,
        at: Instant,
        answer: impl FnOnce() -> Vec<u8> + Send + 'static,
    ) -> Option<Disarm<'_>> {
        let conn = self.0.as_ref()?;
        *lock(&conn.armed) = Some(Armed {
            at,
            answer: Box::new(answer),
        });
        // Either this sees the watcher's newest wake, or the watcher sees this deadline.
        std::sync::atomic::fence(Ordering::SeqCst);
        let disarm = Disarm(conn);
        if conn.ms(at) < conn.watch_at.load(Ordering::SeqCst) {
            return None;
        }
        Some(disarm)
    }
}

/// Disarms the connection when dropped (the call returned).
#[must_use = "dropping it disarms the connection"]
pub(crate) struct Disarm<'a>(&'a Connection);

impl Disarm<'_> {
    /// Disarms it: whether the watcher answered the request meanwhile (then whatever the
    /// request answers is never sent).
    pub(crate) fn disarm(self) -> bool {
        let answered = lock(&self.0.armed).take().is_none();
        // Disarmed: the drop would only take the lock again, for nothing.
        std::mem::forget(self);
        answered
    }
}

impl Drop for Disarm<'_> {
    fn drop(&mut self) {
        lock(&self.0.armed).take();
    }
}

/// A plain TCP stream whose writing half the connection's watcher shares.
pub(super) struct Tcp {
    read: OwnedReadHalf,
    write: Arc<OwnedWriteHalf>,
}

impl Tcp {
    /// `stream`, its writing half given to `conn`'s watcher.
    pub(super) fn new(stream: TcpStream, conn: &Connection) -> Tcp {
        let (read, write) = stream.into_split();
        let write = Arc::new(write);
        *lock(&conn.writer) = Some(Arc::clone(&write));
        conn.plain.store(true, Ordering::Relaxed);
        Tcp { read, write }
    }

    fn stream(&self) -> &TcpStream {
        (*self.write).as_ref()
    }

    /// `write` on the stream once it is writable, waiting (registered with `cx`) while it
    /// would block: what `poll_write` and `poll_write_vectored` both do, through the shared
    /// half.
    fn poll_writing(
        &self,
        cx: &mut std::task::Context<'_>,
        write: impl Fn(&TcpStream) -> std::io::Result<usize>,
    ) -> std::task::Poll<std::io::Result<usize>> {
        loop {
            std::task::ready!(self.stream().poll_write_ready(cx))?;
            match write(self.stream()) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                done => return std::task::Poll::Ready(done),
            }
        }
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.poll_writing(cx, |stream| stream.try_write(buf))
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.poll_writing(cx, |stream| stream.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(
            rustix::net::shutdown(self.stream(), rustix::net::Shutdown::Write)
                .map_err(std::io::Error::from),
        )
    }
}
