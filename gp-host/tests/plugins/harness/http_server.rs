//! A real HTTP server on 127.0.0.1 answering fixed files: what a download or a fake registry
//! needs.

use std::collections::HashMap;

/// What the test HTTP server answers for a path.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body and its Content-Length.
    Body(Vec<u8>),
    /// 200 with this body, no Content-Length: the connection's end ends it.
    Unsized(Vec<u8>),
    /// 200 with this body and its Content-Length, 64 KiB every 50 ms: a download that takes
    /// long enough to be interrupted.
    Trickle(Vec<u8>),
}

/// A real HTTP server on 127.0.0.1 serving `files` (404 for anything else), for as long as
/// the test runs. Returns its base URL.
pub fn http_server(files: HashMap<String, Reply>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let files = files.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let _ = match files.get(&path) {
                    Some(Reply::Body(body)) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| stream.write_all(body)),
                    Some(Reply::Trickle(body)) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| {
                            // Ends when the body does, or at the first write the client
                            // is no longer there for.
                            for chunk in body.chunks(64 * 1024) {
                                stream.write_all(chunk)?;
                                std::thread::sleep(std::time::Duration::from_millis(50));
                            }
                            Ok(())
                        }),
                    Some(Reply::Unsized(body)) => stream
                        .write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
                        .and_then(|()| stream.write_all(body)),
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
                    ),
                };
            });
        }
    });
    url
}
