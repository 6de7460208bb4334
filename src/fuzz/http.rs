//! Target `http_request`: the HTTP side of a connection. Heads
//! (`parse_head` with input-chosen `Limits`, the request line limit
//! included), `Content-Length` and chunked bodies, pipelining and routing,
//! fed as `reactor/http.rs` and `reactor/io.rs` feed them. Checked: nothing
//! panics or over-consumes, each head is decided by its own bytes, bodies
//! stay within their limit, and the whole stream and the same stream in
//! pieces give the same events: a socket may split a request anywhere.

use crate::http::chunked::BodyReader;
use crate::http::request::{parse_head, BodyKind, HttpError, Limits, RequestHead};
use crate::http::route::{Route, RouteError, RouteLimits};

use super::route::check_route;
use super::{for_each_piece, route_request, Input, Splits};
use crate::pubsub::channel::MAX_CHANNEL_ID;

/// What the HTTP side of a connection saw, in order; compared between a
/// whole and a split feed.
#[derive(Debug, Clone, PartialEq)]
enum HttpEvent {
    /// A parsed head (its `Debug` text: it borrows the buffer) and its route.
    Head(String, Result<Route, RouteError>),
    /// A complete request body.
    Body(Vec<u8>),
    /// The request was refused; the reactor answers and closes.
    Failed(HttpError),
}

/// Settings of one HTTP run, from two control bytes.
#[derive(Debug, Clone, Copy)]
struct HttpSetup {
    limits: Limits,
    route: RouteLimits,
    /// Read the body of every request, not only of publishes, for coverage
    /// of the body reader (the reactor closes instead).
    every_body: bool,
}

impl HttpSetup {
    /// `a`: header bytes (bits 0-1), header count (2-3), body size (4-5);
    /// `b`: channel cap (bits 0-3), every body (4), request line (5-7).
    fn new(a: u8, b: u8) -> Self {
        const HEADER_BYTES: [usize; 4] = [32, 256, 1024, 8192];
        const HEADERS: [usize; 4] = [0, 4, 64, 128];
        const BODY: [usize; 4] = [0, 16, 1000, 1 << 20];
        // Request lines below, at and above each head limit (a line over
        // max_header_bytes is that limit's business, whichever is smaller),
        // the configured minimum (64) and the default (4096); 8192 first so
        // that a zero byte leaves the line limit out of the way.
        const REQUEST_LINE: [usize; 8] = [8192, 16, 32, 64, 100, 256, 1000, 4096];
        HttpSetup {
            limits: Limits {
                max_request_line: REQUEST_LINE[usize::from(b >> 5)],
                max_header_bytes: HEADER_BYTES[usize::from(a & 3)],
                max_headers: HEADERS[usize::from((a >> 2) & 3)],
                max_body_bytes: BODY[usize::from((a >> 4) & 3)],
            },
            route: RouteLimits {
                max_channels: 1 + usize::from(b & 15),
                max_channel_id: MAX_CHANNEL_ID,
            },
            every_body: b & 0x10 != 0,
        }
    }
}

/// One connection's HTTP state, mirroring `reactor/http.rs` `process_http`
/// and `handle_request`: which requests are read, which bodies, and when
/// the connection stops reading requests.
struct HttpConn {
    setup: HttpSetup,
    body: Option<(BodyReader, Vec<u8>)>,
    close_after_body: bool,
    /// No more requests are read (closing, or it became a subscriber).
    done: bool,
    events: Vec<HttpEvent>,
}

impl HttpConn {
    fn new(setup: HttpSetup) -> Self {
        HttpConn {
            setup,
            body: None,
            close_after_body: false,
            done: false,
            events: Vec::new(),
        }
    }

    /// Handles the requests in `data`; returns the bytes consumed.
    fn feed(&mut self, data: &[u8]) -> usize {
        let limits = self.setup.limits;
        let mut pos = 0;
        loop {
            if self.done {
                return data.len();
            }
            if let Some((reader, body)) = &mut self.body {
                let before = body.len();
                match reader.feed(&data[pos..], body) {
                    Ok((used, done)) => {
                        assert!(used <= data.len() - pos, "body reader consumed too much");
                        assert!(body.len() - before <= used, "decoded more than consumed");
                        assert!(body.len() <= limits.max_body_bytes, "body over the limit");
                        pos += used;
                        if !done {
                            assert_eq!(pos, data.len(), "unfinished body left input unread");
                            return pos;
                        }
                        let (_, body) = self.body.take().expect("body in progress");
                        self.events.push(HttpEvent::Body(body));
                        self.done = self.close_after_body;
                    }
                    Err(e) => {
                        self.events.push(HttpEvent::Failed(e));
                        self.done = true;
                    }
                }
                continue;
            }
            if pos == data.len() {
                return pos;
            }
            let buf = &data[pos..];
            match parse_head(buf, &limits) {
                Ok(None) => {
                    assert!(
                        buf.len() <= limits.max_header_bytes,
                        "kept a head over the limit"
                    );
                    return pos;
                }
                Ok(Some((head, used))) => {
                    assert!(
                        used > 0 && used <= buf.len(),
                        "head consumed {used} of {}",
                        buf.len()
                    );
                    check_head(&head, &buf[..used], &limits);
                    pos += used;
                    self.on_head(&head);
                }
                Err(e) => {
                    self.events.push(HttpEvent::Failed(e));
                    self.done = true;
                }
            }
        }
    }

    /// What `handle_request` does with a head, as far as reading goes.
    fn on_head(&mut self, head: &RequestHead<'_>) {
        let routed = route_request(head, &self.setup.route);
        check_route(head, &routed, &self.setup.route);
        let has_body = head.body != BodyKind::None;
        let publish = matches!(routed, Ok(Route::Publish(_)));
        // Only a publish reads its body; any other request with a body is
        // answered and the connection closed, so the stream cannot desync.
        let keeps_reading = match &routed {
            Ok(Route::Subscribe(_)) => false,
            Ok(Route::Publish(_)) => true,
            _ => head.keep_alive && !has_body,
        };
        self.events
            .push(HttpEvent::Head(format!("{head:?}"), routed));
        if publish || (self.setup.every_body && has_body) {
            let reader = BodyReader::new(head.body, self.setup.limits.max_body_bytes);
            self.body = Some((reader, Vec::new()));
            self.close_after_body = !(publish && head.keep_alive);
        } else {
            self.done = !keeps_reading;
        }
    }
}

/// Invariants of one parsed head: framing within the limits, and a result
/// decided by its own bytes alone (the bytes after it are the next request).
fn check_head(head: &RequestHead<'_>, bytes: &[u8], limits: &Limits) {
    assert!(head.minor_version <= 1);
    assert!(
        bytes.len() <= limits.max_header_bytes,
        "head over max_header_bytes"
    );
    if let BodyKind::Length(n) = head.body {
        assert!(
            n > 0 && n <= limits.max_body_bytes,
            "Length({n}) out of range"
        );
    }
    assert!(!head.expect_continue || head.minor_version == 1);
    match parse_head(bytes, limits) {
        Ok(Some((again, n))) => {
            assert_eq!(n, bytes.len(), "head length depends on what follows");
            assert_eq!(&again, head, "head depends on what follows");
        }
        other => panic!("head alone parses differently: {other:?}"),
    }
    // One byte short of its end, a head is incomplete, never an error.
    let short = parse_head(&bytes[..bytes.len() - 1], limits);
    assert!(
        matches!(short, Ok(None)),
        "head minus its last byte: {short:?}"
    );
}

/// Feeds `stream` through a connection, whole or in pieces, keeping
/// unconsumed bytes between reads as `reactor/io.rs` `on_input` does.
fn run_http(setup: HttpSetup, stream: &[u8], splits: Option<Splits>) -> (Vec<HttpEvent>, Vec<u8>) {
    let mut conn = HttpConn::new(setup);
    let mut kept: Vec<u8> = Vec::new();
    for_each_piece(stream, splits, |piece| {
        kept.extend_from_slice(piece);
        let used = conn.feed(&kept);
        assert!(used <= kept.len(), "consumed more than the input");
        kept.drain(..used);
        !conn.done
    });
    (conn.events, kept)
}

/// HTTP request reader: heads, `Content-Length` and chunked bodies,
/// pipelining, routing; whole and split feeds must agree.
///
/// Input: two setup bytes (request limits, request line limit, channel
/// cap, read every body: see `HttpSetup::new`), a split seed, then the
/// bytes of the connection.
pub fn http_request(data: &[u8]) {
    let mut input = Input::new(data);
    let setup = HttpSetup::new(input.byte(), input.byte());
    let seed = input.byte();
    let stream = input.rest();
    let whole = run_http(setup, stream, None);
    let split = run_http(setup, stream, Some(Splits::new(seed, stream.len())));
    assert_eq!(whole, split, "split feed differs from whole feed");
}
