//! An EventSource (SSE) subscriber on a raw socket, with an event parser
//! that follows the WHATWG HTML "Server-sent events" interpretation rules
//! (CR, LF and CRLF line ends, comments, `event:`/`data:`/`id:` fields).

use super::conn::{Conn, Response};
use std::net::SocketAddr;

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
