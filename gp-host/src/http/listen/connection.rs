//! One open connection: its requests in flight, when it is due to close, and how it is told
//! to close or to drain.
//!
//! A connection's task polls hyper's connection and nothing else ([`drive`]): a flag and the
//! task's waker carry what it is told. Its timeouts are kept by a second task ([`watch`]),
//! woken by its own timer, never by a request. (A `select!` of the connection, a timer and a
//! notification, with hyper-util's graceful-shutdown watcher around the connection, polled
//! all four at each of the task's wake-ups, twice a request: about 1,100 instructions of a
//! request's 25,600.) The watcher also answers, at its deadline, a request whose call is stuck
//! in the connection's own task (see `rescue`).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::tcp::OwnedWriteHalf;

use crate::util::lock;

/// What a connection's task has been told: nothing yet.
const OPEN: u8 = 0;

/// What a connection's task is told: to finish its requests in flight and close (shutdown),
/// or to close now (a timeout passed, or a newer connection needed its place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Told {
    /// Finish the requests in flight, take no more, close (hyper's graceful shutdown).
    Drain = 1,
    /// Close now: dropping the connection closes its stream.
    Close = 2,
}

/// One open connection: its requests in flight, since when it has had none, and since when
/// the head of its next request has been arriving.
pub(super) struct Connection {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `epoch` to accept, or to the end of the last response.
    idle_since: AtomicU64,
    /// Milliseconds from `epoch` (plus one) to the first byte read with no request in
    /// flight, until that request starts; 0 when no head is arriving.
    head_since: AtomicU64,
    /// What the connection's task was told ([`OPEN`] or a [`Told`]; only ever raised).
    told: AtomicU8,
    /// Wakes the connection's task to hear it.
    waker: AtomicWaker,
    /// What the watcher writes a stuck request's answer with: the stream's writing half, for
    /// a plain HTTP/1 connection (see `rescue`).
    pub(super) writer: Mutex<Option<Arc<OwnedWriteHalf>>>,
    /// The request whose call runs in the connection's own task, if one does: its deadline
    /// and its 504, which the watcher writes if the deadline comes first.
    pub(super) armed: Mutex<Option<Armed>>,
    /// Whether the stream is plain TCP, whose writing half `writer` holds.
    pub(super) plain: AtomicBool,
    /// Whether HTTP/1 is spoken (a client's first bytes say).
    pub(super) http1: AtomicBool,
    /// Hyper wrote since its last completed flush: bytes of an earlier response may still be
    /// in its buffer, and nothing else may be written before them.
    pub(super) dirty: AtomicBool,
    /// The watcher answered a request in the connection task's stead: whatever that task
    /// writes now is refused.
    pub(super) answered: AtomicBool,
    /// When the watcher wakes next, in milliseconds from `epoch`.
    pub(super) watch_at: AtomicU64,
}

/// A request's answer for its deadline, made by the app when the watcher needs it.
pub(super) struct Armed {
    pub(super) at: Instant,
    pub(super) answer: Box<dyn FnOnce() -> Vec<u8> + Send>,
}

impl Connection {
    /// A connection accepted now, `epoch` being its listener's clock.
    pub(super) fn new(epoch: Instant) -> Connection {
        Connection {
            epoch,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(epoch.elapsed().as_millis() as u64),
            head_since: AtomicU64::new(0),
            told: AtomicU8::new(OPEN),
            waker: AtomicWaker::new(),
            writer: Mutex::new(None),
            armed: Mutex::new(None),
            plain: AtomicBool::new(false),
            http1: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            answered: AtomicBool::new(false),
            watch_at: AtomicU64::new(u64::MAX),
        }
    }

    /// Milliseconds from the listener's clock to `at`.
    pub(super) fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Writes the armed request's answer if its deadline has passed (the request's task is
    /// still in its call: it disarms under the same lock), then half-closes the stream: the
    /// client has its 504. Whether it did.
    fn answer_for_stuck(&self) -> bool {
        let mut armed = lock(&self.armed);
        let Some(due) = armed.take_if(|a| Instant::now() >= a.at) else {
            return false;
        };
        self.answered.store(true, Ordering::Release);
        let bytes = (due.answer)();
        if let Some(writer) = lock(&self.writer).as_ref() {
            let stream: &tokio::net::TcpStream = writer.as_ref().as_ref();
            // The send buffer holds nothing of hyper's (the request armed only then), so a
            // few hundred bytes go at once; a client that reads nothing gets what fits.
            let mut sent = 0;
            while sent < bytes.len() {
                match stream.try_write(&bytes[sent..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sent += n,
                }
            }
            let _ = rustix::net::shutdown(stream, rustix::net::Shutdown::Write);
        }
        drop(armed);
        true
    }

    /// The armed request's deadline, if one is armed.
    fn armed_at(&self) -> Option<Instant> {
        lock(&self.armed).as_ref().map(|a| a.at)
    }

    /// Tells the connection's task `what` (closing outranks draining), and wakes it.
    pub(super) fn tell(&self, what: Told) {
        self.told.fetch_max(what as u8, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Since when (ms from the listener's clock) the connection has been idle, if it is.
    pub(super) fn idle_since(&self) -> Option<u64> {
        (self.in_flight.load(Ordering::Acquire) == 0)
            .then(|| self.idle_since.load(Ordering::Acquire))
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// How long until the connection is due to close: zero if it is, having had no request
    /// in flight for `idle` or a request head arriving for `header`. Checked again within
    /// `header` at most (a head may start unseen meanwhile: one that does not finish is
    /// closed between `header` and twice it).
    fn due(&self, idle: Duration, header: Duration) -> Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // A head may start as soon as the request ends: look again within `header`.
            return idle.min(header);
        }
        let now = self.now();
        let idle_for = now.saturating_sub(self.idle_since.load(Ordering::Acquire));
        let idle_left = idle.saturating_sub(Duration::from_millis(idle_for));
        let head_left = match self.head_since.load(Ordering::Acquire) {
            0 => header,
            since => header.saturating_sub(Duration::from_millis(now.saturating_sub(since - 1))),
        };
        idle_left.min(head_left)
    }

    /// Bytes were read: the head of the next request is arriving, if none is in flight.
    fn read_some(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Acquire) == 0
        {
            self.head_since.store(self.now() + 1, Ordering::Release);
        }
    }
}

/// A connection's stream, noting when an HTTP/1 request head starts to arrive (see
/// [`Connection::due`]), the clock read once per request. HTTP/2 (the client preface first)
/// is not watched: frames between its requests (pings, window updates) are not heads.
pub(super) struct Watched<S> {
    inner: S,
    conn: Arc<Connection>,
    /// Whether reads are watched: `None` until the first bytes say which protocol.
    heads: Option<bool>,
}

impl<S> Watched<S> {
    /// `inner`, the stream of `conn`.
    pub(super) fn new(inner: S, conn: Arc<Connection>) -> Watched<S> {
        Watched {
            inner,
            conn,
            heads: None,
        }
    }
}

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Watched<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let fresh = &buf.filled()[before..];
        if !fresh.is_empty() {
            let heads = *self.heads.get_or_insert_with(|| {
                let n = fresh.len().min(H2_PREFACE.len());
                fresh[..n] != H2_PREFACE[..n]
            });
            if heads {
                if !self.conn.http1.load(Ordering::Relaxed) {
                    self.conn.http1.store(true, Ordering::Relaxed);
                }
                self.conn.read_some();
            }
        }
        read
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Some(refused) = self.conn.writing() {
            return Poll::Ready(Err(refused));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if let Some(refused) = self.conn.writing() {
            return Poll::Ready(Err(refused));
        }
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let flushed = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            // Hyper flushes its stream only once its buffer is empty.
            if self.conn.dirty.load(Ordering::Relaxed) {
                self.conn.dirty.store(false, Ordering::Relaxed);
            }
        }
        flushed
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connection {
    /// Hyper is about to write: refused once the watcher answered in its stead; else noted
    /// (see `dirty`).
    fn writing(&self) -> Option<std::io::Error> {
        if self.answered.load(Ordering::Acquire) {
            return Some(std::io::ErrorKind::BrokenPipe.into());
        }
        if !self.dirty.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Relaxed);
        }
        None
    }
}

/// A request in flight on a connection, until dropped.
pub(super) struct Busy(Arc<Connection>);

impl Busy {
    pub(super) fn start(conn: &Arc<Connection>) -> Busy {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        // Its head is in.
        conn.head_since.store(0, Ordering::Release);
        Busy(Arc::clone(conn))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `connection`, the HTTP spoken on `conn`, until it ends or `conn` is told to close
/// (dropping it closes the stream); told to drain, hyper finishes the requests in flight and
/// closes it (HTTP/1 keep-alive off, HTTP/2 `GOAWAY`).
pub(super) async fn drive<C: GracefulConnection>(conn: &Connection, mut connection: Pin<&mut C>) {
    let mut draining = false;
    // The waker last registered: a task's waker is the same at every poll, and registering
    // it again cost ~0.3 % of a request's time.
    let mut registered: Option<std::task::Waker> = None;
    std::future::poll_fn(|cx| {
        // The flag is read again after the waker is registered: a `tell` after that read
        // wakes this task. A `tell` takes the waker it wakes: once told, it is registered at
        // every poll.
        let told = conn.told.load(Ordering::Acquire);
        if told != OPEN || !registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            conn.waker.register(cx.waker());
            registered = Some(cx.waker().clone());
        }
        match conn.told.load(Ordering::Acquire) {
            OPEN => {}
            told if told == Told::Drain as u8 => {
                if !std::mem::replace(&mut draining, true) {
                    connection.as_mut().graceful_shutdown();
                }
            }
            _ => return Poll::Ready(()),
        }
        connection.as_mut().poll(cx).map(|_| ())
    })
    .await;
}

/// Keeps `conn`'s timeouts (see [`Connection::due`]): tells it to close when one passes.
/// Answers in the connection task's stead for a request whose call, run in that task, is
/// still running at its deadline (see `rescue`): writes its 504 and closes the connection.
///
/// Runs as a task of its own, aborted when the connection ends. Woken only by its timer,
/// never by the connection's task: a task woken from a worker goes to that worker's
/// next-task slot, which no other worker takes from, and the worker that woke it may be
/// about to run a call that never returns.
pub(super) async fn watch(conn: Arc<Connection>, idle: Duration, header: Duration) -> Watch {
    loop {
        let due = Instant::now() + conn.due(idle, header);
        let wake = conn.armed_at().map_or(due, |armed| armed.min(due));
        // Rounded down: a request arms only for a deadline at or after this wake.
        conn.watch_at.store(conn.ms(wake), Ordering::SeqCst);
        // A request that armed before seeing this wake is seen here (it looks at `watch_at`
        // after arming, and lets go if its deadline is sooner: see `Rescue::arm`).
        std::sync::atomic::fence(Ordering::SeqCst);
        if conn.armed_at().is_some_and(|armed| armed < wake) {
            continue;
        }
        tokio::time::sleep_until(wake.into()).await;
        if conn.answer_for_stuck() {
            conn.tell(Told::Close);
            return Watch::Answered;
        }
        if conn.due(idle, header).is_zero() {
            // No request arms from here on (`Rescue::arm` looks at `watch_at` after arming),
            // and one that armed since `due` looked is watched: a request may have arrived
            // just as the connection went due.
            conn.watch_at.store(u64::MAX, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if conn.armed_at().is_none() {
                conn.tell(Told::Close);
                return Watch::TimedOut;
            }
        }
    }
}

/// How a connection's watcher ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Watch {
    /// A timeout passed: the connection is told to close.
    TimedOut,
    /// It answered a request whose call is stuck in the connection's task, and told the
    /// connection to close, which it does once the call returns.
    Answered,
}
