//! The bench's HTTP/1.1 client: a keep-alive connection sending one fixed request at a time
//! and reading responses framed by `Content-Length` (httparse), bounded in size and time.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::MAX_RESPONSE;

/// A keep-alive HTTP/1.1 connection sending one request at a time. It understands responses
/// framed by `Content-Length`, which is what both servers send for these bodies.
pub(crate) struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    filled: usize,
}

impl Connection {
    pub(crate) async fn open(addr: SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buf: vec![0; 4096],
            filled: 0,
        })
    }

    /// Sends `request` and reads the whole response; returns its status, and its body into
    /// `body` if given.
    pub(crate) async fn get(
        &mut self,
        request: &[u8],
        body: Option<&mut Vec<u8>>,
    ) -> io::Result<u16> {
        self.write_all(request).await?;
        let (status, head, length) = loop {
            if let Some(parsed) = self.parse_head()? {
                break parsed;
            }
            self.read_more().await?;
        };
        let end = head + length;
        if end > MAX_RESPONSE {
            return Err(invalid(format!("a response of {end} bytes")));
        }
        while self.filled < end {
            self.read_more().await?;
        }
        if let Some(body) = body {
            body.clear();
            body.extend_from_slice(&self.buf[head..end]);
        }
        // Nothing is pipelined, so normally nothing is left; keep whatever is.
        self.buf.copy_within(end..self.filled, 0);
        self.filled -= end;
        Ok(status)
    }

    /// The status, head length and body length of the response in the buffer, once its head
    /// is complete.
    fn parse_head(&self) -> io::Result<Option<(u16, usize, usize)>> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(&self.buf[..self.filled]) {
            Ok(httparse::Status::Complete(head)) => head,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(error) => return Err(invalid(format!("malformed response: {error}"))),
        };
        let status = response.code.unwrap_or_default();
        let mut length = None;
        for header in response.headers.iter() {
            if header.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(invalid("a response without Content-Length".into()));
            }
            if header.name.eq_ignore_ascii_case("content-length") {
                let value = std::str::from_utf8(header.value).ok();
                length = value.and_then(|v| v.trim().parse::<usize>().ok());
            }
        }
        let length = length.ok_or_else(|| invalid("no Content-Length".into()))?;
        Ok(Some((status, head, length)))
    }

    async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.stream.writable().await?;
            match self.stream.try_write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn read_more(&mut self) -> io::Result<()> {
        if self.filled == self.buf.len() {
            if self.buf.len() >= MAX_RESPONSE {
                return Err(invalid("a response head over 1 MiB".into()));
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            self.stream.readable().await?;
            match self.stream.try_read(&mut self.buf[self.filled..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    self.filled += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
