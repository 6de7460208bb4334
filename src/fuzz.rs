//! Fuzz drivers: one function per target in `fuzz/` (see fuzz/README.md).
//! Each takes the fuzzer's bytes, drives one parser the way the reactor
//! does, and panics when an invariant the reactor relies on breaks; the
//! fuzzer reports a panic as a crash.
//!
//! Why the drivers live in the crate rather than in `fuzz/`: the parsers
//! are internal, and with the drivers here `tests/fuzz_regressions.rs`
//! replays every saved crasher and the committed corpus through exactly
//! the code the fuzzer ran, under plain `cargo test` on stable, without a
//! fuzzer installed. Always compiled (it costs the server nothing: nothing
//! calls it) and without dependencies of its own.
//!
//! Every driver reads a few control bytes off the front of its input (sizes,
//! modes, how to split a stream) and treats the rest as the data. Streams
//! are fed twice, whole and in input-chosen pieces, because a socket may
//! deliver any split and the reactor's result must not depend on it.

// Not part of the API: hidden from the docs, like `bench` and `token_api`.
#![doc(hidden)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::token::{mint, Claims, Grant, Pattern, TokenError, TokenKeys, MAX_TOKEN_BYTES};
use crate::auth::token::{MAX_PATTERNS, MIN_KEY_BYTES};
use crate::http::chunked::BodyReader;
use crate::http::headers::trimmed_value;
use crate::http::request::{parse_head, BodyKind, HttpError, Limits, Method, RequestHead};
use crate::http::route::{self as router, Route, RouteError, RouteLimits, SubTransport};
use crate::proto::ws::frame::{encode_frame_header, is_valid_close_code};
use crate::proto::ws::handshake::{accept_key, choose_subprotocol, response_head, validate};
use crate::proto::ws::{deflate, MessageReader, Opcode, WsEvent};
use crate::pubsub::channel::{valid_channel_id, Resume};

// ---------------------------------------------------------------------------
// Shared helpers

/// The router with at most `max` channels per request and the longest
/// channel ids the contract allows.
fn route_request(head: &RequestHead<'_>, max: usize) -> Result<Route, RouteError> {
    router::route(
        head,
        &RouteLimits {
            max_channels: max,
            max_channel_id: 128,
        },
    )
}

/// Control values read off the front of an input; past its end every read
/// yields zero, so any input, even empty, is a valid one.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes.
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Piece sizes for feeding a stream in pieces, as a socket would deliver
/// it: a seed byte picks the largest piece (1 byte at a time up to 4 KiB)
/// and a small PRNG the sizes, so the fuzzer explores splits without
/// spending input bytes on each one.
struct Splits {
    state: u32,
    max: usize,
}

impl Splits {
    /// Splits for a stream of `len` bytes. Pieces are at least `len / 1024`
    /// bytes at most, so a long stream is cut into about a thousand pieces,
    /// not a byte at a time: one execution stays in microseconds, and where
    /// the splits fall matters more than how many there are.
    fn new(seed: u8, len: usize) -> Self {
        const MAX: [usize; 8] = [1, 2, 3, 7, 16, 64, 512, 4096];
        Splits {
            state: 0x9E37_79B9 ^ u32::from(seed).wrapping_mul(0x0101_0101),
            max: MAX[usize::from(seed & 7)].max(len / 1024),
        }
    }

    /// The next piece size, 1..=max.
    fn next(&mut self) -> usize {
        // xorshift32: cheap, deterministic, never zero from a non-zero state.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + self.state as usize % self.max
    }
}

/// Calls `each` with the pieces of `stream`: the whole of it at once when
/// `splits` is `None`.
fn for_each_piece(stream: &[u8], mut splits: Option<Splits>, mut each: impl FnMut(&[u8]) -> bool) {
    let mut at = 0;
    while at < stream.len() {
        let n = match splits.as_mut() {
            Some(s) => s.next().min(stream.len() - at),
            None => stream.len() - at,
        };
        if !each(&stream[at..at + n]) {
            return;
        }
        at += n;
    }
}

/// Every channel the router hands on must pass the channel id rule: the
/// hub, the JSON, the SSE lines and the logs all take that for granted.
fn check_channel(id: &str) {
    assert!(
        valid_channel_id(id),
        "route produced invalid channel {id:?}"
    );
}

// ---------------------------------------------------------------------------
// HTTP requests: heads, bodies, pipelining

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
    max_channels: usize,
    /// Read the body of every request, not only of publishes, for coverage
    /// of the body reader (the reactor closes instead).
    every_body: bool,
}

impl HttpSetup {
    fn new(a: u8, b: u8) -> Self {
        const HEADER_BYTES: [usize; 4] = [32, 256, 1024, 8192];
        const HEADERS: [usize; 4] = [0, 4, 64, 128];
        const BODY: [usize; 4] = [0, 16, 1000, 1 << 20];
        HttpSetup {
            limits: Limits {
                max_request_line: HEADER_BYTES[usize::from(b >> 6)],
                max_header_bytes: HEADER_BYTES[usize::from(a & 3)],
                max_headers: HEADERS[usize::from((a >> 2) & 3)],
                max_body_bytes: BODY[usize::from((a >> 4) & 3)],
            },
            max_channels: 1 + usize::from(b & 15),
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
        let routed = route_request(head, self.setup.max_channels);
        check_route(head, &routed, self.setup.max_channels);
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
/// Input: two setup bytes (limits, channel cap, read every body), a split
/// seed, then the bytes of the connection.
pub fn http_request(data: &[u8]) {
    let mut input = Input::new(data);
    let setup = HttpSetup::new(input.byte(), input.byte());
    let seed = input.byte();
    let stream = input.rest();
    let whole = run_http(setup, stream, None);
    let split = run_http(setup, stream, Some(Splits::new(seed, stream.len())));
    assert_eq!(whole, split, "split feed differs from whole feed");
}

// ---------------------------------------------------------------------------
// Router

/// Invariants of a routing result: every channel valid, distinct and within
/// the count limit, methods as documented, errors with a status.
fn check_route(head: &RequestHead<'_>, routed: &Result<Route, RouteError>, max: usize) {
    let again = route_request(head, max);
    assert_eq!(&again, routed, "route is not deterministic");
    match routed {
        Ok(Route::Publish(channels)) => {
            assert!(matches!(head.method, Method::Post | Method::Put));
            assert!(
                !channels.is_empty() && channels.len() <= max,
                "{channels:?}"
            );
            for (i, c) in channels.iter().enumerate() {
                check_channel(c);
                assert!(!channels[..i].contains(c), "duplicate channel {c:?}");
            }
        }
        Ok(Route::ChannelInfo(c)) | Ok(Route::DeleteChannel(c)) | Ok(Route::Status(Some(c))) => {
            check_channel(c)
        }
        Ok(Route::Status(None)) | Ok(Route::Metrics) | Ok(Route::Preflight) => {}
        Ok(Route::StatusStream) | Ok(Route::Page(_)) => assert_eq!(head.method, Method::Get),
        Ok(Route::Subscribe(sub)) => {
            assert_eq!(head.method, Method::Get);
            let n = sub.channels.len();
            assert!(n >= 1 && n <= max, "{n} channels, max {max}");
            for (i, c) in sub.channels.iter().enumerate() {
                check_channel(&c.name);
                assert!(c.backtrack <= 999_999, "backtrack {}", c.backtrack);
                assert!(sub.channels[..i].iter().all(|o| o.name != c.name));
            }
            if let Resume::SinceMs(ms) = sub.resume {
                assert!(ms % 1000 == 0 || ms == u64::MAX, "since {ms} ms");
            }
            check_path_round_trip(head, sub.transport, &sub.channels, max);
        }
        Err(e) => {
            assert!(matches!(e.status, 400 | 404 | 405), "status {}", e.status);
            assert_eq!(e.status == 405, e.allow.is_some());
            assert!(!e.message.is_empty());
        }
    }
    // HEAD is GET without the body, except on subscribe paths.
    if head.method == Method::Head {
        let mut as_get = head.clone();
        as_get.method = Method::Get;
        match route_request(&as_get, max) {
            Ok(Route::Subscribe(_)) | Ok(Route::StatusStream) => {
                assert_eq!(routed.as_ref().map_err(|e| e.status), Err(405))
            }
            get => assert_eq!(&get, routed, "HEAD routes unlike GET"),
        }
    }
}

/// A subscription's channels, written back as a path (`name.bN` each),
/// route to the same channels: the path syntax has one reading.
fn check_path_round_trip(
    head: &RequestHead<'_>,
    transport: SubTransport,
    channels: &[crate::pubsub::channel::ChannelRequest],
    max: usize,
) {
    let prefix = match transport {
        SubTransport::EventSource => "/ev/",
        SubTransport::Stream => "/sub/",
        SubTransport::WebSocket => "/ws/",
        SubTransport::LongPoll => "/lp/",
    };
    let segments: Vec<String> = channels
        .iter()
        .map(|c| format!("{}.b{}", c.name, c.backtrack))
        .collect();
    let path = format!("{prefix}{}", segments.join("/"));
    let rebuilt = RequestHead {
        path: &path,
        query: "",
        headers: Default::default(),
        ..head.clone()
    };
    match route_request(&rebuilt, max) {
        Ok(Route::Subscribe(sub)) => {
            assert_eq!(sub.transport, transport);
            assert_eq!(sub.channels, channels, "path {path:?} reads differently");
        }
        other => panic!("rebuilt path {path:?} routes to {other:?}"),
    }
}

/// Methods a fuzzed request line may use.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get",
];

/// Router and channel-path parser on heads parsed from the input.
///
/// Input: a setup byte (channel cap, mode), then either a raw request head
/// (mode bit set) or `target \n last-event-id \n if-none-match` from which
/// a request is written (a method byte first).
pub fn route(data: &[u8]) {
    let mut input = Input::new(data);
    let setup = input.byte();
    let max = 1 + usize::from(setup & 31);
    let limits = Limits {
        max_request_line: 8192,
        max_header_bytes: 8192,
        max_headers: 64,
        max_body_bytes: 1 << 20,
    };
    let request = if setup & 0x80 != 0 {
        input.rest().to_vec()
    } else {
        let method = METHODS[usize::from(input.byte() & 7)];
        let presence = input.byte();
        let mut fields = input.rest().split(|&b| b == b'\n');
        let target = fields.next().unwrap_or_default();
        let mut req = format!("{method} ").into_bytes();
        req.extend_from_slice(target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n");
        for (bit, name) in [(1, "Last-Event-ID"), (2, "If-None-Match")] {
            let value = fields.next().unwrap_or_default();
            if presence & bit != 0 {
                req.extend_from_slice(format!("{name}: ").as_bytes());
                req.extend_from_slice(value);
                req.extend_from_slice(b"\r\n");
            }
        }
        if presence & 4 != 0 {
            req.extend_from_slice(b"Content-Length: 0\r\n");
        }
        req.extend_from_slice(b"\r\n");
        req
    };
    if let Ok(Some((head, _))) = parse_head(&request, &limits) {
        let routed = route_request(&head, max);
        check_route(&head, &routed, max);
    }
}

// ---------------------------------------------------------------------------
// WebSocket frames

/// What a reader produced from a stream: events until the first error or
/// close, and the bytes it was still waiting on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WsOutcome {
    events: Vec<WsEvent>,
    error: Option<(u16, &'static str)>,
    leftover: Vec<u8>,
}

/// Invariants of one event: the reader only hands on what the protocol and
/// the size limit allow.
fn check_ws_event(event: &WsEvent, max: usize) {
    match event {
        WsEvent::Text(t) => {
            assert!(std::str::from_utf8(t).is_ok(), "text event is not UTF-8");
            assert!(t.len() <= max, "text of {} bytes, max {max}", t.len());
        }
        WsEvent::Binary(b) => assert!(b.len() <= max, "binary of {} bytes, max {max}", b.len()),
        WsEvent::Ping(p) | WsEvent::Pong(p) => assert!(p.len() <= 125),
        WsEvent::Close(code, reason) => {
            assert!(code.is_none_or(is_valid_close_code), "close code {code:?}");
            assert!(code.is_some() || reason.is_empty());
            assert!(reason.len() <= 123);
        }
    }
}

/// Feeds `stream` to a reader like `reactor/websocket.rs` `feed_ws`: every
/// complete frame is read, an incomplete one is kept and re-offered with
/// the next bytes; reading stops at the first error or close.
fn run_ws(max: usize, deflate: bool, stream: &[u8], splits: Option<Splits>) -> WsOutcome {
    let mut reader = MessageReader::new(max, deflate);
    let mut out = WsOutcome {
        events: Vec::new(),
        error: None,
        leftover: Vec::new(),
    };
    let mut kept: Vec<u8> = Vec::new();
    for_each_piece(stream, splits, |piece| {
        kept.extend_from_slice(piece);
        let mut pos = 0;
        while pos < kept.len() {
            match reader.read(&kept[pos..]) {
                Ok((0, event)) => {
                    assert!(event.is_none(), "event without consuming a frame");
                    break;
                }
                Ok((n, event)) => {
                    assert!(n <= kept.len() - pos, "consumed more than the input");
                    pos += n;
                    if let Some(event) = event {
                        check_ws_event(&event, max);
                        let close = matches!(event, WsEvent::Close(..));
                        out.events.push(event);
                        if close {
                            return false;
                        }
                    }
                }
                Err(e) => {
                    assert!(
                        matches!(e.code, 1002 | 1007 | 1009),
                        "close code {}",
                        e.code
                    );
                    out.error = Some((e.code, e.reason));
                    return false;
                }
            }
        }
        kept.drain(..pos);
        true
    });
    if out.error.is_none() && !matches!(out.events.last(), Some(WsEvent::Close(..))) {
        out.leftover = kept;
    }
    out
}

/// Close codes a built close frame may carry (all valid).
const CLOSE_CODES: [u16; 6] = [1000, 1001, 1003, 1011, 3000, 4999];

/// Frames the driver wrote from the input, and what reading them must give.
struct BuiltFrames {
    wire: Vec<u8>,
    events: Vec<WsEvent>,
    /// The close code the reader must fail with after `events`, if any.
    error: Option<u16>,
}

/// Appends one masked client frame.
fn push_frame(out: &mut Vec<u8>, fin: bool, rsv1: bool, op: Opcode, mask: [u8; 4], payload: &[u8]) {
    let start = out.len();
    encode_frame_header(fin, rsv1, op, payload.len(), out);
    out[start + 1] |= 0x80;
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
}

/// Writes valid client messages from the input (the fuzzer rarely finds
/// valid deflate data or masks on its own) and the events they must read
/// as. Each message takes a flags byte (kind, fragments, compression,
/// interleaved ping, mask), a length (two bytes, with a repeat factor) and
/// its payload bytes.
fn build_frames(mut input: Input<'_>, max: usize, deflate: bool) -> BuiltFrames {
    let mut b = BuiltFrames {
        wire: Vec::new(),
        events: Vec::new(),
        error: None,
    };
    while !input.data.is_empty() && b.error.is_none() {
        let flags = input.byte();
        let len = input.u16();
        let mask = if flags & 0x80 != 0 {
            [input.byte(), input.byte(), input.byte(), input.byte()]
        } else {
            [0; 4]
        };
        let raw = input.take(usize::from(len & 0x3FFF));
        // Long, compressible messages without long inputs; capped just past
        // 64 KiB (which needs the 64-bit length) so one run stays fast.
        let repeat =
            [1usize, 4, 64, 1024][usize::from(len >> 14)].min((72 << 10) / raw.len().max(1));
        match flags & 7 {
            kind @ (2 | 3) => {
                let p = &raw[..raw.len().min(125)];
                let op = if kind == 2 {
                    Opcode::Ping
                } else {
                    Opcode::Pong
                };
                push_frame(&mut b.wire, true, false, op, mask, p);
                b.events.push(if kind == 2 {
                    WsEvent::Ping(p.to_vec())
                } else {
                    WsEvent::Pong(p.to_vec())
                });
            }
            4 => {
                let code = CLOSE_CODES[usize::from(raw.first().copied().unwrap_or(0)) % 6];
                let text = String::from_utf8_lossy(raw.get(1..).unwrap_or_default());
                let mut end = text.len().min(123);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(&text.as_bytes()[..end]);
                push_frame(&mut b.wire, true, false, Opcode::Close, mask, &p);
                b.events
                    .push(WsEvent::Close(Some(code), text[..end].to_string()));
                return b;
            }
            5 => {
                push_frame(&mut b.wire, true, false, Opcode::Close, mask, &[]);
                b.events.push(WsEvent::Close(None, String::new()));
                return b;
            }
            kind => {
                let text = kind == 0 || kind == 6;
                let mut data = raw.repeat(repeat);
                if text {
                    data = String::from_utf8_lossy(&data).into_owned().into_bytes();
                }
                let oversize = data.len() > max;
                let compressed = if deflate && flags & 0x20 != 0 {
                    deflate::compress(&data, 9 + (flags >> 3 & 7).min(6))
                } else {
                    None
                };
                let wire_payload = compressed.as_deref().unwrap_or(&data);
                let fragments = 1 + usize::from(flags >> 3 & 3);
                let step = wire_payload.len().div_ceil(fragments).max(1);
                let pieces: Vec<&[u8]> = if wire_payload.is_empty() {
                    vec![&[]; 1]
                } else {
                    wire_payload.chunks(step).collect()
                };
                for (i, piece) in pieces.iter().enumerate() {
                    let fin = i + 1 == pieces.len();
                    let (op, rsv1) = if i == 0 {
                        let op = if text { Opcode::Text } else { Opcode::Binary };
                        (op, compressed.is_some())
                    } else {
                        (Opcode::Continuation, false)
                    };
                    push_frame(&mut b.wire, fin, rsv1, op, mask, piece);
                    // A ping between fragments is answered, then the message goes on.
                    if !fin && i == 0 && flags & 0x40 != 0 && !oversize {
                        push_frame(&mut b.wire, true, false, Opcode::Ping, mask, b"i");
                        b.events.push(WsEvent::Ping(b"i".to_vec()));
                    }
                }
                if oversize {
                    b.error = Some(1009);
                } else if text {
                    b.events.push(WsEvent::Text(data));
                } else {
                    b.events.push(WsEvent::Binary(data));
                }
            }
        }
    }
    b
}

/// WebSocket frame decoder with reassembly and inflate, whole and split.
///
/// Input: a setup byte (deflate negotiated, message size limit, raw or
/// built frames), a split seed, then either raw client bytes or messages
/// for [`build_frames`], whose decoded result must match what was built.
pub fn ws_frames(data: &[u8]) {
    const MAX: [usize; 8] = [1, 16, 125, 1000, 4096, 1 << 16, 1 << 20, usize::MAX];
    let mut input = Input::new(data);
    let setup = input.byte();
    let deflate = setup & 1 != 0;
    let max = MAX[usize::from(setup >> 1 & 7)];
    let seed = input.byte();
    let (wire, expected) = if setup & 0x10 != 0 {
        let built = build_frames(input, max, deflate);
        (built.wire.clone(), Some(built))
    } else {
        (input.rest().to_vec(), None)
    };
    let whole = run_ws(max, deflate, &wire, None);
    let split = run_ws(max, deflate, &wire, Some(Splits::new(seed, wire.len())));
    assert_eq!(whole, split, "split feed differs from whole feed");
    if let Some(built) = expected {
        assert_eq!(
            whole.events, built.events,
            "built messages read differently"
        );
        assert_eq!(whole.error.map(|e| e.0), built.error, "{:?}", whole.error);
        assert!(whole.leftover.is_empty());
    }
}

// ---------------------------------------------------------------------------
// WebSocket handshake

/// The subprotocols the reactor answers to (`reactor/websocket.rs`).
const SUBPROTOCOLS: &[&str] = &["crier.json"];

/// The upgrade header values, as `Headers` holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Upgrade<'a> {
    upgrade: Option<&'a str>,
    connection: Option<&'a str>,
    key: Option<&'a str>,
    version: Option<&'a str>,
    protocol: Option<&'a str>,
    extensions: Option<&'a str>,
}

/// What the reactor's `accept_websocket` decides for these values, with
/// every invariant of the pieces checked; returns the 101 head, or the
/// refusal's status.
fn accept(u: &Upgrade<'_>, method_is_get: bool) -> Result<Vec<u8>, u16> {
    let verdict = validate(u.upgrade, u.connection, u.key, u.version, method_is_get);
    let key = u.key.unwrap_or_default();
    let accepted = accept_key(key);
    assert_eq!(accepted.len(), 28);
    assert_eq!(STANDARD.decode(&accepted).map(|d| d.len()), Ok(20));
    assert_eq!(
        accepted,
        accept_key(key.trim()),
        "accept key depends on spaces"
    );
    let sub = choose_subprotocol(u.protocol, SUBPROTOCOLS);
    if let Some(p) = sub {
        assert!(SUBPROTOCOLS.contains(&p));
        let offered = u.protocol.unwrap_or_default();
        assert!(offered.split(',').any(|o| o.trim() == p), "{p} not offered");
    }
    let negotiated = u.extensions.and_then(deflate::negotiate);
    if let Some((params, response)) = &negotiated {
        assert!((8..=15).contains(&params.server_max_window_bits));
        assert!(response.starts_with(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ));
        // What we answer is itself an offer we would accept, unchanged.
        let again = deflate::negotiate(response);
        assert_eq!(again.as_ref(), Some(&(*params, response.clone())));
    }
    if let Err(e) = verdict {
        assert!(matches!(e.status, 400 | 426), "status {}", e.status);
        assert!(!e.reason.is_empty());
        return Err(e.status);
    }
    assert!(method_is_get);
    // The handshake's token rule (any Unicode space trimmed) is wider than
    // `http::headers::has_token`'s (spaces and tabs); either way the token
    // must be there.
    let has = |v: Option<&str>, token: &str| {
        v.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    assert!(has(u.upgrade, "websocket"));
    assert!(has(u.connection, "upgrade"));
    assert_eq!(u.version.map(str::trim), Some("13"));
    assert_eq!(STANDARD.decode(key.trim()).map(|k| k.len()), Ok(16));
    let extension = negotiated.map(|(_, r)| r);
    let head = response_head(&accepted, sub, extension.as_deref());
    // The 101 must be one well-formed response head, nothing after it.
    let mut slots = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut slots);
    assert_eq!(
        resp.parse(&head),
        Ok(httparse::Status::Complete(head.len()))
    );
    assert_eq!(resp.code, Some(101));
    Ok(head)
}

/// The header fields of `u`, written as request header lines.
fn upgrade_lines(u: &Upgrade<'_>) -> String {
    let mut s = String::new();
    for (name, value) in [
        ("Upgrade", u.upgrade),
        ("Connection", u.connection),
        ("Sec-WebSocket-Key", u.key),
        ("Sec-WebSocket-Version", u.version),
        ("Sec-WebSocket-Protocol", u.protocol),
        ("Sec-WebSocket-Extensions", u.extensions),
    ] {
        if let Some(v) = value {
            s.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    s
}

/// Handshake pieces over header values from the input, directly and through
/// `parse_head` of an upgrade request (which must agree), and a raw upgrade
/// request followed by frames as `io.rs` `on_input` hands them on.
///
/// Input: a mode byte, then `\n`-separated values (a presence bit each) or
/// a raw request.
pub fn handshake(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let limits = Limits {
        max_request_line: 8192,
        max_header_bytes: 8192,
        max_headers: 64,
        max_body_bytes: 1 << 20,
    };
    if mode & 0x80 != 0 {
        // A raw request: what the reactor does with an upgrade.
        let buf = input.rest();
        let Ok(Some((head, used))) = parse_head(buf, &limits) else {
            return;
        };
        let Ok(Route::Subscribe(sub)) = route_request(&head, 16) else {
            return;
        };
        if sub.transport != SubTransport::WebSocket {
            return;
        }
        let h = &head.headers;
        let u = Upgrade {
            upgrade: h.upgrade.as_deref(),
            connection: h.connection.as_deref(),
            key: h.sec_websocket_key.as_deref(),
            version: h.sec_websocket_version.as_deref(),
            protocol: h.sec_websocket_protocol.as_deref(),
            extensions: h.sec_websocket_extensions.as_deref(),
        };
        if accept(&u, head.method == Method::Get).is_ok() {
            // The client's first frames may follow the handshake in the same read.
            let deflate = u.extensions.and_then(deflate::negotiate).is_some();
            let frames = &buf[used..];
            let whole = run_ws(1 << 16, deflate, frames, None);
            let split = run_ws(
                1 << 16,
                deflate,
                frames,
                Some(Splits::new(mode, frames.len())),
            );
            assert_eq!(whole, split);
        }
        return;
    }
    let presence = input.byte();
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    let mut fields = text.split('\n');
    let mut next = |bit: u8| {
        let v = fields.next().unwrap_or_default();
        (presence & bit != 0).then_some(v)
    };
    let direct = Upgrade {
        upgrade: next(1),
        connection: next(2),
        key: next(4),
        version: next(8),
        protocol: next(16),
        extensions: next(32),
    };
    let method_is_get = mode & 1 == 0;
    let verdict = accept(&direct, method_is_get);
    // The same values written into a request: what parse_head extracts
    // must lead to the same decision (values are trimmed, as headers are).
    let method = if method_is_get { "GET" } else { "POST" };
    let request = format!(
        "{method} /ws/chan HTTP/1.1\r\nHost: x\r\n{}\r\n",
        upgrade_lines(&direct)
    );
    if let Ok(Some((head, _))) = parse_head(request.as_bytes(), &limits) {
        let h = &head.headers;
        let parsed = Upgrade {
            upgrade: h.upgrade.as_deref(),
            connection: h.connection.as_deref(),
            key: h.sec_websocket_key.as_deref(),
            version: h.sec_websocket_version.as_deref(),
            protocol: h.sec_websocket_protocol.as_deref(),
            extensions: h.sec_websocket_extensions.as_deref(),
        };
        let trim = |v: Option<&'_ str>| v.map(|v| trimmed_value(v.as_bytes()).into_owned());
        for (a, b) in [
            (parsed.upgrade, direct.upgrade),
            (parsed.connection, direct.connection),
            (parsed.key, direct.key),
            (parsed.version, direct.version),
            (parsed.protocol, direct.protocol),
            (parsed.extensions, direct.extensions),
        ] {
            assert_eq!(
                a.map(str::to_string),
                trim(b),
                "header value changed in parsing"
            );
        }
        assert_eq!(accept(&parsed, head.method == Method::Get), verdict);
    }
}

// ---------------------------------------------------------------------------
// Tokens

/// The keys the token target verifies with (two, as during a rotation).
const KEY_A: &str = "fuzz-key-a-0123456789-0123456789-0123456789";
const KEY_B: &str = "fuzz-key-b-0123456789-0123456789-0123456789";
/// A key that is not configured.
const KEY_WRONG: &str = "fuzz-key-x-0123456789-0123456789-0123456789";
/// Around when the fuzzed clocks tick.
const NOW: u64 = 1_700_000_000;

fn token_keys() -> &'static TokenKeys {
    static KEYS: std::sync::OnceLock<TokenKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        assert!(KEY_A.len() >= MIN_KEY_BYTES && KEY_B.len() >= MIN_KEY_BYTES);
        TokenKeys::new([KEY_A, KEY_B]).expect("valid keys")
    })
}

/// HMAC-SHA256 of `input` under `key`, base64url: a signature computed
/// here, independently of the verifier, to sign arbitrary parts.
fn sign(key: &str, input: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Invariants of an accepted token: it is genuinely signed by a configured
/// key, not expired, and grants only valid, bounded patterns.
fn check_grant(token: &str, grant: &Grant, now: u64) {
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    assert!(
        sig == sign(KEY_A, input) || sig == sign(KEY_B, input),
        "accepted a token no key signed"
    );
    assert!(token.len() <= MAX_TOKEN_BYTES);
    assert!(grant.expires_at > now, "accepted an expired token");
    for list in [&grant.subscribe, &grant.publish] {
        assert!(list.len() <= MAX_PATTERNS);
        for p in list {
            match p {
                Pattern::Exact(id) => assert!(valid_channel_id(id), "{p:?}"),
                Pattern::Prefix(pre) => assert!(pre.is_empty() || valid_channel_id(pre), "{p:?}"),
            }
            assert_eq!(Pattern::parse(&p.to_string()).as_ref(), Ok(p));
        }
    }
}

/// Verifies, checks an acceptance, and checks that a token with changed
/// signature bytes is never accepted.
fn verify_and_tamper(token: &str, now: u64, flip: &[u8]) -> Result<Grant, TokenError> {
    let result = token_keys().verify(token, now);
    if let Ok(grant) = &result {
        check_grant(token, grant, now);
    }
    let Some((input, sig)) = token.rsplit_once('.') else {
        return result;
    };
    let Ok(mut bytes) = URL_SAFE_NO_PAD.decode(sig) else {
        return result;
    };
    let mut changed = false;
    for (b, f) in bytes.iter_mut().zip(flip) {
        *b ^= f;
        changed |= *f != 0;
    }
    if !changed {
        return result;
    }
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    let verdict = token_keys().verify(&forged, now);
    assert!(
        verdict.is_err(),
        "accepted a token with a changed signature"
    );
    // Once past the header checks, the signature is what fails it.
    let past_header = !matches!(
        result,
        Err(TokenError::TooLong
            | TokenError::Malformed(_)
            | TokenError::UnsupportedAlgorithm
            | TokenError::UnsupportedHeader(_))
    );
    if past_header && forged.len() == token.len() {
        assert_eq!(verdict, Err(TokenError::BadSignature), "{result:?}");
    }
    result
}

/// A pattern from fuzzed text, built directly so it may break the rule
/// (`mint` signs whatever it is given).
fn fuzzed_pattern(text: &str) -> Pattern {
    match text.strip_prefix('~') {
        Some(prefix) => Pattern::Prefix(prefix.to_string()),
        None => Pattern::Exact(text.to_string()),
    }
}

/// The token verifier on fuzzed tokens: raw text; fuzzed header and claims
/// JSON signed with a configured key; `mint`ed claims with fuzzed patterns
/// (checked against an independent expectation); and edited valid tokens,
/// which must never verify.
///
/// Input: a mode byte, a clock offset, signature flip bytes, then the data.
pub fn token(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let now = NOW
        .wrapping_add(u64::from(input.u16()))
        .wrapping_sub(1 << 15);
    let flip: Vec<u8> = input.take(4).to_vec();
    match mode & 3 {
        0 => {
            let token = String::from_utf8_lossy(input.rest());
            let _ = verify_and_tamper(&token, now, &flip);
        }
        1 => {
            // Fuzzed JSON under the right key: `header \n claims`.
            let text = String::from_utf8_lossy(input.rest());
            let (header, claims) = text
                .split_once('\n')
                .unwrap_or((r#"{"alg":"HS256"}"#, &text));
            let signing = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(claims)
            );
            let key = if mode & 4 != 0 { KEY_B } else { KEY_A };
            let token = format!("{signing}.{}", sign(key, &signing));
            let result = verify_and_tamper(&token, now, &flip);
            if token.len() > MAX_TOKEN_BYTES {
                assert_eq!(result, Err(TokenError::TooLong));
            }
            assert_ne!(result, Err(TokenError::BadSignature), "right key refused");
        }
        2 => token_minted(mode, now, &flip, input),
        _ => token_edited(now, input),
    }
}

/// Mode 2 of [`token`]: claims built from the input and minted; the verdict
/// must be what the claims deserve.
fn token_minted(mode: u8, now: u64, flip: &[u8], mut input: Input<'_>) {
    let exp = NOW
        .wrapping_add(u64::from(input.u16()))
        .wrapping_sub(1 << 15);
    let nbf_raw = input.u16();
    let nbf = (mode & 8 != 0).then(|| NOW.wrapping_add(u64::from(nbf_raw)).wrapping_sub(1 << 15));
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    let mut lines = text.split('\n');
    let sub = lines.next().filter(|s| !s.is_empty()).map(str::to_string);
    let mut channels = Vec::new();
    let mut publish = Vec::new();
    for line in lines {
        match line.strip_prefix('+') {
            Some(p) => publish.push(fuzzed_pattern(p)),
            None => channels.push(fuzzed_pattern(line)),
        }
    }
    let claims = Claims {
        exp,
        nbf,
        iat: (mode & 16 != 0).then_some(NOW),
        sub,
        channels: channels.clone(),
        publish: publish.clone(),
    };
    let key = [KEY_A, KEY_B, KEY_WRONG][usize::from(mode >> 5) % 3];
    let token = mint(key, &claims);
    let result = verify_and_tamper(&token, now, flip);
    // The expectation, in the verifier's documented order.
    // A pattern reaches the verifier as its text, so what it grants is
    // that text parsed again (`Exact("a*")` is read as `Prefix("a")`).
    let reparse = |list: &[Pattern]| -> Option<Vec<Pattern>> {
        if list.len() > MAX_PATTERNS {
            return None;
        }
        list.iter()
            .map(|p| Pattern::parse(&p.to_string()).ok())
            .collect()
    };
    let (subscribe, publish) = (reparse(&channels), reparse(&publish));
    let expected_kind = if token.len() > MAX_TOKEN_BYTES {
        "too_long"
    } else if key == KEY_WRONG {
        "bad_signature"
    } else if subscribe.is_none() || publish.is_none() {
        "invalid_claims"
    } else if now >= exp {
        "expired"
    } else if nbf.is_some_and(|n| now < n) {
        "not_yet_valid"
    } else {
        "ok"
    };
    match &result {
        Ok(grant) => {
            assert_eq!(expected_kind, "ok");
            assert_eq!(grant.expires_at, exp);
            assert_eq!(Some(&grant.subscribe), subscribe.as_ref());
            assert_eq!(Some(&grant.publish), publish.as_ref());
        }
        Err(e) => assert_eq!(e.kind(), expected_kind, "{e:?}"),
    }
}

/// Mode 3 of [`token`]: a valid token edited at input-chosen places (a byte
/// replaced, inserted or removed); any change must be refused.
fn token_edited(now: u64, mut input: Input<'_>) {
    let claims = Claims {
        exp: NOW + (1 << 16),
        nbf: None,
        iat: Some(NOW),
        sub: Some("fuzz".into()),
        channels: vec![
            Pattern::Exact("news".into()),
            Pattern::Prefix("chat-".into()),
        ],
        publish: vec![Pattern::Prefix("chat-".into())],
    };
    let original = mint(KEY_A, &claims);
    let mut token = original.clone().into_bytes();
    while !input.data.is_empty() {
        let op = input.byte();
        let at = usize::from(input.u16()) % (token.len() + 1);
        let b = input.byte();
        match op % 3 {
            0 if at < token.len() => token[at] = b,
            1 => token.insert(at, b),
            _ if at < token.len() => {
                token.remove(at);
            }
            _ => {}
        }
    }
    let token = String::from_utf8_lossy(&token).into_owned();
    let result = token_keys().verify(&token, now);
    if token == original {
        if now < claims.exp {
            assert!(result.is_ok(), "{result:?}");
        }
    } else {
        assert!(result.is_err(), "accepted an edited token");
    }
}
