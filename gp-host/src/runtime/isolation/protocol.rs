//! What host and runner say to each other: length-prefixed frames (a little-endian `u32`, then
//! that many bytes) holding one postcard-encoded message each.
//!
//! A runner has one **control** socket (its standard input: `Hello`, `Open`, `Connect`,
//! `Cancel`, `Unload`) and any number of **call** connections (`Call`, `Ping`), each served by a
//! thread of its own that runs the calls it receives inline: a call costs one round trip and
//! one wake-up on each side, and calls on different connections run in parallel. The host makes
//! a call connection with `socketpair` and sends the runner its end with `Connect`, as
//! `SCM_RIGHTS` ancillary data.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gp_core::Value;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, RunnerFailure};
use crate::runtime::spec::Spec;

/// The protocol's version. Host and runner refuse each other unless they agree: the runner is
/// normally the host's own executable, but an embedder can name another program.
pub(crate) const PROTOCOL: u32 = 2;

/// The largest frame either side accepts (a call's values, both ways, fit in it).
pub(crate) const MAX_FRAME: usize = 256 << 20;

/// The first frame a runner sends, before anything else.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Hello {
    pub protocol: u32,
    pub pid: u32,
}

/// What the host asks.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum ToRunner {
    /// (control) Load this library, check it as a host does, and run `on_load`.
    Open(Box<Open>),
    /// (control) Serve the call connection that comes with this frame as `SCM_RIGHTS`.
    Connect { conn: u32 },
    /// (control) Cancel call `seq` on connection `conn`, if it is running, or when it starts.
    Cancel { conn: u32, seq: u64 },
    /// (control) Run `on_unload`, answer, and exit.
    Unload,
    /// (call) Run one call.
    Call(Call),
    /// (call) Answer [`FromRunner::Pong`] (the bare channel's round trip, for benchmarks).
    Ping,
}

/// What the runner loads.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct Open {
    /// The host's private copy of the library.
    pub library: PathBuf,
    /// Where the library came from, for messages.
    pub origin: PathBuf,
    pub dir: PathBuf,
    /// The verified `plugin.json`, as JSON (the manifest's serde form is JSON's).
    pub manifest: String,
    pub sha256: String,
    pub abi_version: String,
    pub hook_timeout_ms: u64,
    /// Only check that the library loads (the pre-flight of an in-process load): answer
    /// `Opened` without running `on_load`, then exit.
    pub check_only: bool,
    /// How long a call thread polls its connection for the next call before it blocks, in
    /// microseconds ([`Isolation::spin`](super::Isolation::spin)).
    pub spin_us: u64,
}

impl Open {
    /// What a runner opening `copy` for `spec` needs: a pre-flight's check (no hook, no
    /// timeout), or a runner to serve calls, with its hook timeout and spin.
    pub(crate) fn new(spec: &Spec, copy: &Path, purpose: Purpose) -> Open {
        let (hook_timeout, check_only, spin) = match purpose {
            Purpose::Preflight => (Duration::ZERO, true, Duration::ZERO),
            Purpose::Serve { hook_timeout, spin } => (hook_timeout, false, spin),
        };
        Open {
            library: copy.to_owned(),
            origin: spec.origin.clone(),
            dir: spec.dir.clone(),
            manifest: spec.manifest.to_json_pretty(),
            sha256: spec.sha256.clone(),
            abi_version: spec.abi_version.clone(),
            hook_timeout_ms: hook_timeout.as_millis() as u64,
            check_only,
            spin_us: spin.as_micros() as u64,
        }
    }

    /// The spec the host sent (the runner's side of [`Open::new`]).
    pub(crate) fn spec(&self) -> Result<Spec, Error> {
        let manifest = serde_json::from_str(&self.manifest).map_err(|e| Error::Runner {
            plugin: String::new(),
            reason: RunnerFailure::HostManifest {
                source: std::sync::Arc::new(e),
            },
        })?;
        Ok(Spec {
            manifest,
            dir: self.dir.clone(),
            origin: self.origin.clone(),
            library: self.library.clone(),
            sha256: self.sha256.clone(),
            abi_version: self.abi_version.clone(),
            has_on_load: false,
            has_on_unload: false,
            config_sha256: None,
            details: Default::default(),
        })
    }
}

/// What a runner is started for.
pub(crate) enum Purpose {
    /// The pre-flight: load the library (the loader, abi_stable's checks), say so, exit.
    Preflight,
    /// Serve the plugin: load it, run `on_load` within `hook_timeout`, serve calls.
    Serve {
        hook_timeout: Duration,
        spin: Duration,
    },
}

/// One call.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) struct Call {
    /// Its sequence number (per runner, increasing), which a `Cancel` names.
    pub seq: u64,
    pub label: Option<String>,
    /// What was left of the caller's deadline when the call was sent.
    pub remaining_ms: Option<u64>,
    pub values: Vec<(String, Value)>,
    /// The most CPU time the call may use, in seconds (enforced with `RLIMIT_CPU`, moved
    /// forward before every call).
    pub cpu_seconds: Option<u64>,
}

/// A call as the host writes it: the encoding of [`ToRunner::Call`], from the context's values
/// borrowed rather than copied first.
pub(crate) struct CallFrame<'a> {
    pub seq: u64,
    pub label: Option<&'a str>,
    pub remaining_ms: Option<u64>,
    pub values: Vec<(&'a str, &'a Value)>,
    pub cpu_seconds: Option<u64>,
}

/// [`ToRunner::Call`]'s place among [`ToRunner`]'s variants (a test checks it).
const CALL_VARIANT: u32 = 4;

impl Serialize for CallFrame<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Fields<'b, 'a>(&'b CallFrame<'a>);
        impl Serialize for Fields<'_, '_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let call = self.0;
                let mut fields = serializer.serialize_struct("Call", 5)?;
                fields.serialize_field("seq", &call.seq)?;
                fields.serialize_field("label", &call.label)?;
                fields.serialize_field("remaining_ms", &call.remaining_ms)?;
                fields.serialize_field("values", &call.values)?;
                fields.serialize_field("cpu_seconds", &call.cpu_seconds)?;
                fields.end()
            }
        }
        serializer.serialize_newtype_variant("ToRunner", CALL_VARIANT, "Call", &Fields(self))
    }
}

/// What the runner answers.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum FromRunner {
    /// The library loaded and its `on_load` ran.
    Opened {
        has_on_load: bool,
        has_on_unload: bool,
    },
    /// It did not: the host's error message, as the runner's gp-host wrote it.
    Refused { message: String },
    /// A call returned: the values the plugin set (as they are after the call) and the keys
    /// it removed, and how it went. The host applies them to the context it sent.
    Done {
        values: Vec<(String, Value)>,
        removed: Vec<String>,
        outcome: Outcome,
    },
    /// `on_unload` ran (or there was none); the runner exits next.
    Unloaded { error: Option<String> },
    /// The answer to [`ToRunner::Ping`].
    Pong,
}

/// How a call went, as the host's [`Error`](crate::Error) variants have it.
#[derive(Serialize, Deserialize, Debug)]
pub(crate) enum Outcome {
    Ok,
    Failed(String),
    Panicked(String),
    Cancelled,
    DeadlineExceeded,
    /// Anything else, as its message.
    Other(String),
}

/// A socket written with `send(MSG_NOSIGNAL)`: a peer that died makes the write fail with
/// `EPIPE` instead of raising `SIGPIPE`, which would end a host that does not ignore it (one
/// written in C, say). Interrupted writes are retried.
pub(crate) struct SocketWriter<'a>(pub &'a std::os::unix::net::UnixStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match rustix::net::send(self.0, buf, rustix::net::SendFlags::NOSIGNAL) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return other.map_err(Into::into),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes one message as a frame to a socket (see [`SocketWriter`]).
pub(crate) fn send_to(
    socket: &std::os::unix::net::UnixStream,
    message: &impl Serialize,
) -> io::Result<()> {
    send(&mut SocketWriter(socket), message)
}

/// Writes one message as a frame. A message over [`MAX_FRAME`] is refused with
/// `InvalidData` before anything is written.
pub(crate) fn send(out: &mut impl Write, message: &impl Serialize) -> io::Result<()> {
    let body = postcard::to_allocvec(message)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a message of {} bytes is over the {} MiB limit",
                body.len(),
                MAX_FRAME >> 20
            ),
        ));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    out.write_all(&frame)
}

/// Writes one message as a frame with `fd` attached (`SCM_RIGHTS`).
pub(crate) fn send_with_fd(
    socket: &std::os::unix::net::UnixStream,
    message: &impl Serialize,
    fd: std::os::fd::BorrowedFd<'_>,
) -> io::Result<()> {
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    let body = postcard::to_allocvec(message)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    let sent = loop {
        match sendmsg(
            socket,
            &[io::IoSlice::new(&frame)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    // The descriptor went with the first byte; the rest of a short send follows plainly.
    SocketWriter(socket).write_all(&frame[sent..])
}

/// Reads one frame and decodes it, with the descriptor that came with it, if any (a frame sent
/// by [`send_with_fd`]).
pub(crate) fn receive_with_fd<T: DeserializeOwned>(
    socket: &std::os::unix::net::UnixStream,
) -> io::Result<(T, Option<std::os::fd::OwnedFd>)> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut length = [0u8; 4];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        match recvmsg(
            socket,
            &mut [io::IoSliceMut::new(&mut length)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(received) => break received,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if received.bytes == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let mut fd = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for received in fds {
                fd.get_or_insert(received);
            }
        }
    }
    (&mut &*socket).read_exact(&mut length[received.bytes..])?;
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {length} bytes is over the limit"),
        ));
    }
    let body = read_body(&mut &*socket, length)?;
    let message =
        postcard::from_bytes(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((message, fd))
}

/// Reads from `socket` into `buf`: for up to `spin`, polling without blocking (a sleeping
/// reader is woken by the scheduler, which costs tens of microseconds on a VM), then blocking.
pub(crate) fn read_spinning(
    socket: &std::os::unix::net::UnixStream,
    buf: &mut [u8],
    spin: std::time::Duration,
) -> io::Result<usize> {
    use rustix::net::{recv, RecvFlags};
    if !spin.is_zero() {
        let until = std::time::Instant::now() + spin;
        loop {
            match recv(socket, &mut *buf, RecvFlags::DONTWAIT) {
                Ok((n, _)) => return Ok(n),
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            if std::time::Instant::now() >= until {
                break;
            }
            std::hint::spin_loop();
        }
    }
    (&mut &*socket).read(buf)
}

/// A connection whose reads spin for up to a while before they block (see
/// [`read_spinning`]).
pub(crate) struct SpinRead<'a> {
    pub socket: &'a std::os::unix::net::UnixStream,
    pub spin: std::time::Duration,
}

impl Read for SpinRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_spinning(self.socket, buf, self.spin)
    }
}

/// Reads one frame and decodes it. `UnexpectedEof` when the other side has gone.
pub(crate) fn receive<T: DeserializeOwned>(input: &mut impl Read) -> io::Result<T> {
    let mut length = [0u8; 4];
    input.read_exact(&mut length)?;
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {length} bytes is over the limit"),
        ));
    }
    let body = read_body(input, length)?;
    postcard::from_bytes(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads a frame's body of `length` bytes, growing the buffer as bytes arrive (a peer that
/// announces a large frame and sends nothing costs nothing).
pub(crate) fn read_body(input: &mut impl Read, length: usize) -> io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(length.min(64 << 10));
    input.take(length as u64).read_to_end(&mut body)?;
    if body.len() < length {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(body)
}

/// Why a wait for the other side's frame ended without one.
pub(crate) enum Lost {
    /// The socket closed or broke: the other side died (or is dying).
    Gone,
    /// The caller stopped waiting (a deadline, a cancellation, a timeout).
    GaveUp,
}

/// Reads one frame from `socket`, whose read timeout is set: each time a read times out,
/// `keep_waiting` says whether to go on.
pub(crate) fn receive_polling<T: DeserializeOwned>(
    socket: &std::os::unix::net::UnixStream,
    keep_waiting: &mut dyn FnMut() -> bool,
) -> Result<T, Lost> {
    let mut polling = Polling {
        socket,
        keep_waiting,
        gave_up: false,
    };
    receive(&mut polling).map_err(|_| {
        if polling.gave_up {
            Lost::GaveUp
        } else {
            Lost::Gone
        }
    })
}

/// A socket read with its read timeout, asking [`receive_polling`]'s caller at each one.
struct Polling<'a> {
    socket: &'a std::os::unix::net::UnixStream,
    keep_waiting: &'a mut dyn FnMut() -> bool,
    gave_up: bool,
}

impl Read for Polling<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&mut &*self.socket).read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if !(self.keep_waiting)() {
                        self.gave_up = true;
                        return Err(e);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }
}

/// Reads the answer to a call or a ping from a call connection, in one `read` when it fits in
/// 4 KiB (spinning first if `spin` says so).
pub(crate) fn receive_answer(
    socket: &std::os::unix::net::UnixStream,
    spin: Duration,
) -> Result<FromRunner, Lost> {
    let mut input = io::BufReader::with_capacity(4096, SpinRead { socket, spin });
    receive(&mut input).map_err(|_| Lost::Gone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_frame_encodes_as_the_call_it_stands_for() {
        let n = Value::Int(41);
        let text = Value::from("é");
        let frame = CallFrame {
            seq: 7,
            label: Some("plugin.get"),
            remaining_ms: Some(300),
            values: vec![("n", &n), ("text", &text)],
            cpu_seconds: None,
        };
        let call = ToRunner::Call(Call {
            seq: 7,
            label: Some("plugin.get".into()),
            remaining_ms: Some(300),
            values: vec![("n".into(), n.clone()), ("text".into(), text.clone())],
            cpu_seconds: None,
        });
        assert_eq!(
            postcard::to_allocvec(&frame).unwrap(),
            postcard::to_allocvec(&call).unwrap()
        );
    }
}
