//! Shared helpers for the end-to-end tests: starting servers, raw HTTP
//! connections, an EventSource client with a spec-following parser, a
//! chunked-stream reader, and polling with a deadline.
//!
//! Every socket has a read timeout, so a server bug fails a test instead of
//! hanging it.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long any single socket read may block.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `poll_until` waits for an asynchronous effect.
pub const POLL_DEADLINE: Duration = Duration::from_secs(5);

/// Starts a server on 127.0.0.1:0 with `workers` reactors and `tweak`
/// applied to the config.
pub fn start_with(workers: usize, tweak: impl FnOnce(&mut crier::Config)) -> crier::Handle {
    let mut cfg = crier::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers,
        log_level: "off".into(),
        ..Default::default()
    };
    tweak(&mut cfg);
    crier::Server::start(cfg).expect("server starts")
}

/// Starts a server with default settings and 4 reactors.
pub fn start() -> crier::Handle {
    start_with(4, |_| {})
}

/// `http://ADDR` for ureq.
pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// A ureq agent with timeouts (no connection pooling, so connection
/// counts in /status are predictable).
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(READ_TIMEOUT)
        .max_idle_connections(0)
        .build()
}

/// Calls a ureq request and returns the response whatever its status.
pub fn call(req: ureq::Request) -> ureq::Response {
    match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    }
}

/// Sends a ureq request with a body and returns the response whatever its
/// status.
pub fn send(req: ureq::Request, body: &[u8]) -> ureq::Response {
    match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    }
}

/// Reads a ureq response body as JSON.
pub fn json_of(r: ureq::Response) -> serde_json::Value {
    let text = r.into_string().expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// Publishes `body` to `channels` (`a` or `a/b`) with ureq; asserts 200 and
/// returns the reply JSON.
pub fn publish(addr: SocketAddr, channels: &str, body: &[u8]) -> serde_json::Value {
    publish_event(addr, channels, None, body)
}

/// Like [`publish`] with an optional `Event-Type` header.
pub fn publish_event(
    addr: SocketAddr,
    channels: &str,
    event: Option<&str>,
    body: &[u8],
) -> serde_json::Value {
    let mut req = agent().post(&url(addr, &format!("/pub?id={channels}")));
    if let Some(e) = event {
        req = req.set("Event-Type", e);
    }
    let r = send(req, body);
    assert_eq!(r.status(), 200, "publish to {channels}");
    json_of(r)
}

/// Message id from a publish reply (a decimal string).
pub fn id_of(reply: &serde_json::Value) -> u64 {
    reply["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {reply}"))
        .parse()
        .expect("numeric id")
}

/// `GET /status` on a fresh `Connection: close` connection (so it never
/// leaves an idle connection behind that would skew the counts).
pub fn status(addr: SocketAddr) -> serde_json::Value {
    let mut c = Conn::connect(addr);
    c.write(b"GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    r.json()
}

/// Polls `f` until it returns `Some`, or panics after [`POLL_DEADLINE`]
/// with the last value `describe` produced.
pub fn poll_until<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + POLL_DEADLINE;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => {
                if Instant::now() > deadline {
                    panic!("timed out waiting for {what}; last: {last}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Polls `/status` until `pred` holds for it; returns that document.
pub fn poll_status(
    addr: SocketAddr,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    poll_until(what, || {
        let s = status(addr);
        if pred(&s) {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
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

/// A raw TCP connection with an input buffer, for hand-written requests,
/// pipelining and streaming responses.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed by `byte`.
    pos: usize,
    eof: bool,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Like `write`, but reports errors (the server may have closed).
    pub fn try_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

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

    /// Drops bytes already handed out by `byte`, so `buf` starts at the
    /// first unread byte.
    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
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

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// One dispatched EventSource event, as a browser's `MessageEvent` shows it,
/// plus the raw bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event type (`message` unless an `event:` field said otherwise).
    pub kind: String,
    pub data: String,
    /// The last event ID at dispatch time.
    pub last_id: String,
    /// Bytes consumed since the previous dispatch, including comments.
    pub raw: Vec<u8>,
}

/// An EventSource client on a raw socket with a parser following the
/// WHATWG HTML "Server-sent events" interpretation rules.
pub struct SseClient {
    pub conn: Conn,
    pub head: Response,
    /// Comment lines seen (without the leading colon).
    pub comments: Vec<String>,
    data: String,
    kind: String,
    last_id: String,
    /// The previous line ended in CR: a following LF belongs to it.
    after_cr: bool,
}

impl SseClient {
    /// Sends `GET path`, checks the 200 head and reads the opening comment
    /// (`:\n\n`), after which the subscription is registered.
    pub fn connect(addr: SocketAddr, path: &str) -> SseClient {
        Self::connect_with(addr, path, "")
    }

    /// Like [`connect`] with extra raw header lines (each ending in CRLF).
    pub fn connect_with(addr: SocketAddr, path: &str, extra: &str) -> SseClient {
        let mut conn = Conn::connect(addr);
        conn.write(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n{extra}\r\n")
                .as_bytes(),
        );
        let head = conn.read_head();
        assert_eq!(head.status, 200, "subscribe {path}: {head:?}");
        assert_eq!(
            head.header("content-type"),
            Some("text/event-stream; charset=utf-8")
        );
        // The stream opens with the reconnection delay (`retry: N`).
        let mut opening = Vec::new();
        while !opening.ends_with(b"\n\n") {
            opening.extend_from_slice(&conn.exact(1));
        }
        assert!(opening.starts_with(b"retry: "), "opening {opening:?}");
        SseClient {
            conn,
            head,
            comments: Vec::new(),
            data: String::new(),
            kind: String::new(),
            last_id: String::new(),
            after_cr: false,
        }
    }

    /// Reads one line (ended by CR, LF or CRLF) into `raw`; None at EOF.
    fn line(&mut self, raw: &mut Vec<u8>) -> Option<String> {
        let mut line = Vec::new();
        loop {
            let b = self.conn.byte()?;
            raw.push(b);
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => break,
                b'\r' => {
                    self.after_cr = true;
                    break;
                }
                b => line.push(b),
            }
        }
        Some(String::from_utf8_lossy(&line).into_owned())
    }

    /// The next dispatched event, or None if the stream ends first.
    pub fn next_event(&mut self) -> Option<Event> {
        let mut raw = Vec::new();
        loop {
            let line = self.line(&mut raw)?;
            if line.is_empty() {
                if self.data.is_empty() {
                    self.kind.clear();
                    continue;
                }
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // the trailing LF
                let kind = std::mem::take(&mut self.kind);
                return Some(Event {
                    kind: if kind.is_empty() {
                        "message".into()
                    } else {
                        kind
                    },
                    data,
                    last_id: self.last_id.clone(),
                    raw,
                });
            }
            if let Some(c) = line.strip_prefix(':') {
                self.comments.push(c.to_string());
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
                None => (line.clone(), String::new()),
            };
            match field.as_str() {
                "event" => self.kind = value,
                "data" => {
                    self.data.push_str(&value);
                    self.data.push('\n');
                }
                "id" if !value.contains('\0') => self.last_id = value,
                _ => {}
            }
        }
    }

    /// The next event; panics if the stream ends.
    pub fn event(&mut self) -> Event {
        self.next_event().expect("SSE stream ended unexpectedly")
    }

    /// Asserts that the stream ends with no further event.
    pub fn expect_end(&mut self) {
        if let Some(e) = self.next_event() {
            panic!("expected end of stream, got event {e:?}");
        }
    }
}

/// A raw `/sub` stream subscriber decoding HTTP/1.1 chunks.
pub struct StreamClient {
    pub conn: Conn,
    pub head: Response,
}

impl StreamClient {
    /// Sends `GET path` and checks the chunked 200 head; the subscription
    /// is registered once the head is read.
    pub fn connect(addr: SocketAddr, path: &str) -> StreamClient {
        let mut conn = Conn::connect(addr);
        conn.write(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let head = conn.read_head();
        assert_eq!(head.status, 200, "subscribe {path}: {head:?}");
        assert_eq!(head.header("transfer-encoding"), Some("chunked"));
        StreamClient { conn, head }
    }

    /// The next chunk's data; None for the last (zero) chunk, after its
    /// trailers. Panics on EOF or bad framing.
    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let size_line = self.conn.line().expect("EOF instead of a chunk");
        let hex = size_line.split(';').next().unwrap().trim();
        let size = usize::from_str_radix(hex, 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
        if size == 0 {
            loop {
                let l = self.conn.line().expect("EOF in trailers");
                if l.is_empty() {
                    return None;
                }
            }
        }
        let data = self.conn.exact(size);
        assert_eq!(self.conn.exact(2), b"\r\n", "CRLF after chunk data");
        Some(data)
    }

    /// The next message chunk; panics on the last chunk.
    pub fn chunk(&mut self) -> Vec<u8> {
        self.next_chunk()
            .expect("stream ended with the last chunk unexpectedly")
    }
}

// ---------------------------------------------------------------------------
// Helpers for the history, resume and long-poll tests.

/// A WebSocket subscriber (tungstenite) that reads the JSON envelopes of
/// `/ws/...?format=json`.
pub struct WsJsonClient {
    pub ws: tungstenite::WebSocket<TcpStream>,
}

impl WsJsonClient {
    /// Opens `ws://ADDR{path}`; the subscription is registered once the
    /// handshake response has been read.
    pub fn connect(addr: SocketAddr, path: &str) -> WsJsonClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let (ws, resp) = tungstenite::client(format!("ws://{addr}{path}"), stream)
            .unwrap_or_else(|e| panic!("WebSocket handshake for {path} failed: {e}"));
        assert_eq!(resp.status().as_u16(), 101, "upgrade {path}");
        WsJsonClient { ws }
    }

    /// The next text message, parsed as JSON (pings are answered by
    /// tungstenite and skipped).
    pub fn next_json(&mut self) -> serde_json::Value {
        loop {
            match self.ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    return serde_json::from_str(&t)
                        .unwrap_or_else(|e| panic!("not JSON ({e}): {t:?}"))
                }
                Ok(tungstenite::Message::Ping(_)) | Ok(tungstenite::Message::Pong(_)) => {}
                Ok(other) => panic!("unexpected WebSocket message {other:?}"),
                Err(e) => panic!("WebSocket read failed: {e}"),
            }
        }
    }
}

/// A publisher on one keep-alive connection (raw HTTP/1.1).
pub struct KeepAlivePublisher {
    pub conn: Conn,
}

impl KeepAlivePublisher {
    pub fn connect(addr: SocketAddr) -> KeepAlivePublisher {
        KeepAlivePublisher {
            conn: Conn::connect(addr),
        }
    }

    /// Publishes `body` to `channels`; asserts 200 and a kept-alive
    /// connection; returns the message id.
    pub fn publish(&mut self, channels: &str, body: &[u8]) -> u64 {
        let mut req = format!(
            "POST /pub?id={channels} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.conn.write(&req);
        let r = self.conn.read_response();
        assert_eq!(r.status, 200, "publish: {}", r.text());
        assert_eq!(r.header("connection"), Some("keep-alive"));
        id_of(&r.json())
    }
}

/// Sends one long-poll `GET path` on `conn` with extra raw header lines
/// (each ending in CRLF) and reads the whole answer.
pub fn longpoll_on(conn: &mut Conn, path: &str, extra: &str) -> Response {
    conn.write(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
    conn.read_response()
}

/// The figures of channel `ch` (`GET /pub?id=CH`), or None on 404.
pub fn channel_info(addr: SocketAddr, ch: &str) -> Option<serde_json::Value> {
    let r = call(agent().get(&url(addr, &format!("/pub?id={ch}"))));
    match r.status() {
        200 => Some(json_of(r)),
        404 => None,
        s => panic!("GET /pub?id={ch}: status {s}"),
    }
}

/// Waits until channel `ch` has at least `n` subscribers.
pub fn wait_subscribers(addr: SocketAddr, ch: &str, n: u64) {
    poll_until(
        &format!("{n} subscriber(s) on {ch}"),
        || match channel_info(addr, ch) {
            Some(v) if v["subscribers"].as_u64() >= Some(n) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
}

// ---------------------------------------------------------------------------
// Helpers for the liveness, backpressure, drain and fd-exhaustion tests.
// ---------------------------------------------------------------------------

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};

impl Conn {
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

    /// Bytes already read from the socket but not handed out yet (for
    /// switching to a hand-rolled reader).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.compact();
        std::mem::take(&mut self.buf)
    }

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

/// Like [`poll_status`] with an explicit deadline.
pub fn poll_status_within(
    addr: SocketAddr,
    within: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let s = status(addr);
        if pred(&s) {
            return s;
        }
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}; last: {s}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A number in a status document by JSON pointer (`/connections/http`);
/// panics if missing.
pub fn num(s: &serde_json::Value, pointer: &str) -> u64 {
    s.pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {s}"))
}

/// The `crier` binary running as a child process (for signals, resource
/// limits and a clean RSS figure). Killed on drop whatever happens.
pub struct ChildServer {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl ChildServer {
    /// Starts `crier --listen 127.0.0.1:0 ARGS` and waits for its
    /// "listening on" log line to learn the port.
    pub fn spawn(args: &[&str]) -> ChildServer {
        Self::spawn_with_nofile(args, None)
    }

    /// Like [`spawn`](Self::spawn), with RLIMIT_NOFILE (soft and hard, so
    /// the server cannot raise it) set to `nofile` in the child.
    pub fn spawn_with_nofile(args: &[&str], nofile: Option<u64>) -> ChildServer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crier"));
        cmd.args(["--listen", "127.0.0.1:0", "--log-level", "info"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: runs in the forked child before exec and calls only
            // setrlimit, which is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn crier");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        if let Some(addr) = rest.split_whitespace().next() {
                            let _ = tx.send(addr.to_string());
                        }
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let mut server = ChildServer {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(a) => server.addr = a.parse().expect("address in log line"),
            Err(_) => panic!("crier did not start; log:\n{}", server.log()),
        }
        server
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
