//! A raw TCP connection to the server ([`Conn`]) with an input buffer, for
//! hand-written requests, pipelining and streaming responses, and the
//! parsed HTTP [`Response`] it reads.
//!
//! Every socket has a read timeout, so a server bug fails a test instead of
//! hanging it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long any single socket read may block.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// Parses `bytes` as exactly one complete response with a
    /// Content-Length body (e.g. all a connection got before it closed);
    /// says what is wrong otherwise.
    pub fn parse(bytes: &[u8]) -> Result<Response, String> {
        let text = String::from_utf8_lossy(bytes);
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("no complete HTTP response head in {text:?}"))?;
        let head = std::str::from_utf8(&bytes[..end])
            .map_err(|_| format!("response head is not UTF-8: {text:?}"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        if !parts.next().unwrap_or("").starts_with("HTTP/1.") {
            return Err(format!("not an HTTP status line: {text:?}"));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        for line in lines {
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| format!("bad header line {line:?} in {text:?}"))?;
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let r = Response {
            status,
            reason,
            headers,
            body: bytes[end + 4..].to_vec(),
        };
        let len: usize = r
            .header("content-length")
            .ok_or_else(|| format!("no Content-Length in {text:?}"))?
            .parse()
            .map_err(|_| format!("bad Content-Length in {text:?}"))?;
        if r.body.len() != len {
            return Err(format!(
                "Content-Length {len} but {} bytes follow the head: {text:?}",
                r.body.len()
            ));
        }
        Ok(r)
    }

    /// First header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw TCP connection with an input buffer.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed by `byte`.
    pos: usize,
    eof: bool,
}

impl Conn {
    // Opening.

    pub fn connect(addr: SocketAddr) -> Conn {
        Conn::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Wraps an already connected stream (e.g. one made with socket2 to
    /// set options before connecting); sets the usual timeouts.
    pub fn from_stream(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            buf: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    // Writing.

    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Like `write`, but reports errors (the server may have closed).
    pub fn try_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    // Reading bytes, lines and responses.

    /// One byte, or None at EOF.
    pub fn byte(&mut self) -> Option<u8> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if !self.fill() {
                return None;
            }
        }
        self.pos += 1;
        Some(self.buf[self.pos - 1])
    }

    /// Exactly `n` bytes; panics on EOF.
    pub fn exact(&mut self, n: usize) -> Vec<u8> {
        self.compact();
        while self.buf.len() < n {
            assert!(
                self.fill(),
                "EOF after {} of {n} bytes: {:?}",
                self.buf.len(),
                String::from_utf8_lossy(&self.buf)
            );
        }
        self.buf.drain(..n).collect()
    }

    /// A line ending in CRLF, without it; None at EOF before any byte.
    pub fn line(&mut self) -> Option<String> {
        self.compact();
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                return Some(String::from_utf8(line).expect("utf-8 line"));
            }
            if !self.fill() {
                assert!(
                    self.buf.is_empty(),
                    "EOF inside a line: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
                return None;
            }
        }
    }

    /// Status line and headers.
    pub fn read_head(&mut self) -> Response {
        let status_line = self.line().expect("EOF instead of a response");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        assert!(
            version.starts_with("HTTP/1."),
            "status line {status_line:?}"
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let line = self.line().expect("EOF in response head");
            if line.is_empty() {
                break;
            }
            let (n, v) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {line:?}"));
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        }
    }

    /// A complete response with a Content-Length body (as crier sends for
    /// everything but streams).
    pub fn read_response(&mut self) -> Response {
        let mut r = self.read_head();
        let len: usize = r
            .header("content-length")
            .unwrap_or_else(|| panic!("no Content-Length in {:?}", r.headers))
            .parse()
            .expect("numeric Content-Length");
        r.body = self.exact(len);
        r
    }

    /// Bytes already read from the socket but not handed out yet (for
    /// switching to a hand-rolled reader).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.compact();
        std::mem::take(&mut self.buf)
    }

    // Requests on this keep-alive connection.

    /// `GET path` on this keep-alive connection; returns the response.
    pub fn get(&mut self, path: &str) -> Response {
        self.write(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.read_response()
    }

    /// `/status` over this keep-alive connection (for servers where a new
    /// connection may not be accepted: max-connections, no descriptors).
    pub fn status(&mut self) -> serde_json::Value {
        let r = self.get("/status");
        assert_eq!(r.status, 200, "{r:?}");
        r.json()
    }

    /// `POST /pub?id=channels` on this keep-alive connection; asserts 200.
    pub fn publish(&mut self, channels: &str, body: &[u8]) -> serde_json::Value {
        self.write(
            format!(
                "POST /pub?id={channels} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        self.write(body);
        let r = self.read_response();
        assert_eq!(r.status, 200, "publish to {channels}: {r:?}");
        r.json()
    }

    // The end of the connection.

    /// True if the peer closes the connection with nothing more to read
    /// (within the read timeout). A reset counts as closed too.
    pub fn at_eof(&mut self) -> bool {
        self.compact();
        if !self.buf.is_empty() {
            return false;
        }
        let mut tmp = [0u8; 256];
        match self.stream.read(&mut tmp) {
            Ok(0) => true,
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                false
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
            Err(e) => panic!("expected EOF, got {e}"),
        }
    }

    /// Asserts that the server closes the connection next.
    pub fn expect_eof(&mut self) {
        assert!(
            self.at_eof(),
            "expected EOF, got {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Everything until EOF.
    pub fn read_to_eof(&mut self) -> Vec<u8> {
        self.compact();
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }

    /// Reads until the peer closes (EOF or RST) and returns what came
    /// first; panics if it is still open after `within`.
    pub fn read_until_closed(&mut self, within: Duration) -> Vec<u8> {
        let mut got = self.take_buffered();
        let deadline = Instant::now() + within;
        let mut tmp = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "still open after {within:?}; got {:?}",
                String::from_utf8_lossy(&got)
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut tmp) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("waiting for close: {e}"),
            }
        }
    }

    /// Reads and discards until the peer closes (EOF or reset) and returns
    /// how many bytes came first; panics if nothing happens within
    /// `timeout`.
    pub fn drain_until_closed(&mut self, timeout: Duration) -> usize {
        let mut total = self.take_buffered().len();
        let deadline = Instant::now() + timeout;
        let mut tmp = vec![0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "connection still open after {timeout:?} ({total} bytes read)"
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut tmp) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return total,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("waiting for close after {total} bytes: {e}"),
            }
        }
    }

    // Buffer internals.

    /// Reads more bytes into the buffer; false at EOF. Panics on timeout.
    fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        let mut tmp = [0u8; 16 * 1024];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.eof = true;
                false
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                panic!(
                    "read timed out after {READ_TIMEOUT:?}; buffered: {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            }
            Err(e) => panic!(
                "read failed: {e}; buffered: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Drops bytes already handed out by `byte`, so `buf` starts at the
    /// first unread byte.
    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

/// Sends one long-poll `GET path` on `conn` with extra raw header lines
/// (each ending in CRLF) and reads the whole answer.
pub fn longpoll_on(conn: &mut Conn, path: &str, extra: &str) -> Response {
    conn.write(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
    conn.read_response()
}

/// Connects to `addr` with SO_RCVBUF set to `rcvbuf` before the
/// handshake, so the advertised window stays tiny: a client that never
/// reads then backs the server's output up after a few kilobytes.
pub fn connect_small_rcvbuf(addr: SocketAddr, rcvbuf: usize) -> TcpStream {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .unwrap();
    s.set_recv_buffer_size(rcvbuf).unwrap();
    s.connect(&addr.into()).expect("connect");
    let stream: TcpStream = s.into();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
}

/// One raw request on a new connection, and its whole response.
pub fn raw_request(addr: SocketAddr, req: &str) -> Response {
    let mut c = Conn::connect(addr);
    c.write(req.as_bytes());
    c.read_response()
}

/// `POST path` with `body` on a new connection; `extra` is more header
/// lines, each ending in CRLF.
pub fn raw_post(addr: SocketAddr, path: &str, extra: &str, body: &str) -> Response {
    raw_request(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        ),
    )
}
