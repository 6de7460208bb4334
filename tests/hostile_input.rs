//! Hostile input, table-driven: malformed and abusive HTTP requests and
//! WebSocket frames, each sent on its own fresh connection to one server,
//! each with the exact status or close code it must get (and, for HTTP, what
//! happens to the connection afterwards), and the refusal counters of
//! `/status` (`denied`, `too_large`) it must move.
//!
//! Two bystanders, an EventSource and a WebSocket subscriber on a public
//! channel, are connected before the table runs; after every case a
//! numbered message is published and both must receive it, in order, with
//! no gap. After the table, `/status` must be back to the bystanders alone,
//! and nothing a hostile case sent may have been published.
//!
//! Requests and frames are hand-written bytes on raw sockets; tokens are
//! signed here with hmac/sha2 (independently of the server's minter), so
//! forged ones can be built too. Every read has a timeout
//! (`common::READ_TIMEOUT`): a case that hangs fails, with its name.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tungstenite::Message;

/// The publish secret: publishing and DELETE need `Authorization: Bearer`.
const SECRET: &str = "hostile-input-publish-secret";
/// The subscribe key tokens for the private channels are signed with.
const KEY: &str = "hostile-input-subscribe-key-0123456789abcdef";
/// A well-formed key the server does not have.
const OTHER_KEY: &str = "a-key-this-server-never-heard-of-0123456789";
/// The one browser origin allowed (`allow-origins`).
const ORIGIN: &str = "https://allowed.example";
/// The public channel the bystanders listen on.
const BYSTANDER: &str = "bystander";

// Small limits, so the limit cases are cheap.
const MAX_MESSAGE: usize = 4096;
const MAX_FRAME: usize = 1024;
const MAX_REQUEST_LINE: usize = 512;
const MAX_HEADER_BYTES: usize = 2048;
const MAX_HEADERS: usize = 16;
const MAX_CHANNEL_ID: usize = 32;
const MAX_CHANNELS: usize = 4;
/// Seconds to send a complete request head (the slowloris case waits it out).
const HANDSHAKE_TIMEOUT: u64 = 1;

/// RFC 6455 §1.3's sample key and the accept value it must produce.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// The masking key of every hand-built client frame.
const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

fn start_server() -> crier::Handle {
    start_with(2, |c| {
        c.publish_secret = vec![crier::Secret::new(SECRET)];
        c.subscribe_key = vec![crier::Secret::new(KEY)];
        c.private_channels = "priv-*".into();
        c.allow_origins = ORIGIN.into();
        c.ws_publish = true;
        c.max_message_size = MAX_MESSAGE;
        c.max_frame_size = MAX_FRAME;
        c.max_request_line = MAX_REQUEST_LINE;
        c.max_header_bytes = MAX_HEADER_BYTES;
        c.max_headers = MAX_HEADERS;
        c.max_channel_id = MAX_CHANNEL_ID;
        c.max_channels_per_subscription = MAX_CHANNELS;
        c.handshake_timeout = HANDSHAKE_TIMEOUT;
    })
}

// ---------------------------------------------------------------------------
// The table's vocabulary.

/// The answer an HTTP case must get: its status, and what the server then
/// does with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// `Connection: close`, then EOF: what follows cannot be framed, or
    /// the request had a body that was not read.
    Close(u16),
    /// `Connection: keep-alive`, and a following request on the same
    /// connection is answered normally (the stream did not desync).
    Keep(u16),
}

impl Reply {
    fn status(self) -> u16 {
        match self {
            Reply::Close(s) | Reply::Keep(s) => s,
        }
    }
}

enum Kind {
    /// Raw bytes on a fresh connection; exactly one response, as `reply`
    /// says (an error has a JSON body whose `error` contains `because`).
    Http {
        raw: Vec<u8>,
        reply: Reply,
        because: &'static str,
    },
    /// A control case: raw handshake bytes that must be accepted (101), so
    /// that the refusals next to it are known to be about what they change.
    Upgrade { raw: Vec<u8> },
    /// A valid WebSocket handshake by raw bytes on `/ws/hostile-ws` (with
    /// `extra` header lines), then `frames`; the server must answer with a
    /// close frame carrying `code` (its reason containing `because`) and
    /// then end the TCP connection. `glued`: the frames go out in the same
    /// write as the handshake, before the 101 is read.
    Frames {
        extra: &'static str,
        glued: bool,
        frames: Vec<u8>,
        code: u16,
        because: &'static str,
    },
}

struct Case {
    name: &'static str,
    kind: Kind,
    /// The `/status` refusal counters (`denied/…`, `too_large/…`) this case
    /// must move by one each; every other one must stay put.
    counts: Vec<&'static str>,
}

impl Case {
    fn counts(mut self, counters: &[&'static str]) -> Case {
        self.counts.extend_from_slice(counters);
        self
    }

    /// Sends a frames case's frames in the same write as its handshake.
    fn glued(mut self) -> Case {
        if let Kind::Frames { glued, .. } = &mut self.kind {
            *glued = true;
        }
        self
    }

    /// What the case expects, for the printed table.
    fn expected(&self) -> String {
        let mut s = match &self.kind {
            Kind::Http { reply, because, .. } => format!("{reply:?} {because:?}"),
            Kind::Upgrade { .. } => "101".to_string(),
            Kind::Frames { code, because, .. } => format!("close {code} {because:?}"),
        };
        if !self.counts.is_empty() {
            s.push_str(&format!(" [{}]", self.counts.join(", ")));
        }
        s
    }
}

fn http(name: &'static str, raw: impl AsRef<[u8]>, reply: Reply, because: &'static str) -> Case {
    Case {
        name,
        kind: Kind::Http {
            raw: raw.as_ref().to_vec(),
            reply,
            because,
        },
        counts: Vec::new(),
    }
}

fn upgrade_ok(name: &'static str, raw: impl AsRef<[u8]>) -> Case {
    Case {
        name,
        kind: Kind::Upgrade {
            raw: raw.as_ref().to_vec(),
        },
        counts: Vec::new(),
    }
}

fn ws(name: &'static str, frames: Vec<u8>, code: u16, because: &'static str) -> Case {
    Case {
        name,
        kind: Kind::Frames {
            extra: "",
            glued: false,
            frames,
            code,
            because,
        },
        counts: Vec::new(),
    }
}

/// Like [`ws`], with permessage-deflate negotiated.
fn ws_deflate(name: &'static str, frames: Vec<u8>, code: u16, because: &'static str) -> Case {
    Case {
        name,
        kind: Kind::Frames {
            extra: "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            glued: false,
            frames,
            code,
            because,
        },
        counts: Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Building requests, frames and tokens.

/// `GET path` with extra raw header lines (each ending in CRLF).
fn get(path: &str, extra: &str) -> String {
    req("GET", path, extra)
}

/// `POST /pub?id=…` with the publish secret, extra header lines, and body.
fn post(query_id: &str, extra: &str, body: &str) -> String {
    format!(
        "POST /pub?id={query_id} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {SECRET}\r\n\
         Content-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// A chunked publish (with the secret) whose body is `chunks` verbatim.
fn chunked(chunks: &str) -> String {
    format!(
        "POST /pub?id=hostile HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {SECRET}\r\n\
         Transfer-Encoding: chunked\r\n\r\n{chunks}"
    )
}

/// A complete, valid WebSocket upgrade of `path` plus `extra` header lines.
fn upgrade(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A masked client frame with first byte `b0` (FIN, RSV, opcode).
fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// A masked close frame with `code` and `reason`.
fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    masked(0x88, &payload)
}

/// A masked frame header announcing a 64-bit `len`, without the payload.
fn header_64(b0: u8, len: u64) -> Vec<u8> {
    let mut out = vec![b0, 0x80 | 127];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&MASK);
    out
}

fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// Raw deflate of `data` without the trailing 00 00 FF FF, as a
/// permessage-deflate client sends a message (RFC 7692 §7.2.1).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let mut out = Vec::with_capacity(data.len() / 100 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        c.compress_vec(&data[consumed..], &mut out, flate2::FlushCompress::Sync)
            .unwrap();
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity());
    }
    assert!(out.ends_with(&[0x00, 0x00, 0xFF, 0xFF]));
    out.truncate(out.len() - 4);
    out
}

fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// An HS256 JWT over `header` and `claims` (JSON text) signed with `key`,
/// computed here (docs/TOKENS.md), not by the server's minter.
fn sign(key: &str, header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(claims.as_bytes())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64url(&mac.finalize().into_bytes()))
}

const JWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A genuine token for `channels`, valid for ten minutes.
fn token(channels: &[&str]) -> String {
    let claims = json!({"exp": now() + 600, "channels": channels});
    sign(KEY, JWT_HEADER, &claims.to_string())
}

// ---------------------------------------------------------------------------
// The table.

/// Every case: its name, what is sent, what must come back and why the
/// server refused, and the counters it moves. Laid out by hand as a table
/// (rustfmt would give each case seven lines).
#[rustfmt::skip]
fn table() -> Vec<Case> {
    use Reply::{Close, Keep};
    let good = token(&["priv-a"]);
    let expired = sign(KEY, JWT_HEADER, &json!({"exp": now() - 10, "channels": ["priv-a"]}).to_string());
    let not_yet = sign(
        KEY,
        JWT_HEADER,
        &json!({"exp": now() + 600, "nbf": now() + 300, "channels": ["priv-a"]}).to_string(),
    );
    let other_channel = token(&["priv-b"]);
    let claims_a = json!({"exp": now() + 600, "channels": ["priv-a"]}).to_string();
    let wrong_key = sign(OTHER_KEY, JWT_HEADER, &claims_a);
    // A genuine token for priv-b whose claims are rewritten to grant every
    // channel, keeping the original signature: privilege escalation.
    let forged = {
        let parts: Vec<&str> = other_channel.split('.').collect();
        let claims = json!({"exp": now() + 600, "channels": ["*"]}).to_string();
        format!("{}.{}.{}", parts[0], b64url(claims.as_bytes()), parts[2])
    };
    let alg_none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(claims_a.as_bytes())
    );
    let padded = format!("{good}=");
    let origin = |o: &str| upgrade("/ws/hostile-ws", &format!("Origin: {o}\r\n"));
    let handshake = upgrade("/ws/hostile-ws", "");
    let long_id = "c".repeat(MAX_CHANNEL_ID + 1);
    let too_many = (0..=MAX_CHANNELS).map(|i| format!("c{i}")).collect::<Vec<_>>().join("/");
    let many_headers: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: 1\r\n")).collect();
    let big_header = format!("X-Big: {}\r\n", "v".repeat(MAX_HEADER_BYTES));
    let oversize_chunks = format!("{}0\r\n\r\n", format!("3e8\r\n{}\r\n", "z".repeat(1000)).repeat(5));
    let endless_trailers = format!("3\r\nabc\r\n0\r\n{}", "X-Trailer: 0123456789abcdef\r\n".repeat(400));
    let h2c = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
               HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n";
    let tls_hello = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x01\x02\x03\r\n\r\n";
    // CL.TE: a front end going by Content-Length would take the DELETE for
    // part of this body. Closed after the 400, the DELETE is never run (it
    // would disconnect the bystanders).
    let cl_te = format!(
        "POST /pub?id=hostile HTTP/1.1\r\nHost: t\r\nContent-Length: 60\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
         DELETE /pub?id={BYSTANDER} HTTP/1.1\r\nAuthorization: Bearer {SECRET}\r\n\r\n"
    );
    let expect_100 = format!(
        "POST /pub?id=hostile HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {SECRET}\r\n\
         Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        MAX_MESSAGE * 4
    );
    // A body on a request that takes none must not be read as the next
    // request: the DELETE inside would disconnect the bystanders.
    let delete = format!("DELETE /pub?id={BYSTANDER} HTTP/1.1\r\nHost: t\r\n{}\r\n", bearer(SECRET));
    let length = format!("Content-Length: {}\r\n", delete.len());
    let longpoll_body = req("GET", &format!("/lp/{BYSTANDER}.b1"), &length) + &delete;
    // Its body is an unmasked frame: were it read as one, the close is 1002.
    let upgrade_body = upgrade("/ws/hostile-ws", "Content-Length: 4\r\n").into_bytes();
    let upgrade_body = concat(&[upgrade_body, vec![0x81, 2, b'h', b'i']]);
    // Each fragment is under max-frame-size; together they pass
    // max-message-size at the fifth.
    let fragments_over_limit = concat(&[
        masked(0x02, &[1; 1000]), masked(0x00, &[2; 1000]), masked(0x00, &[3; 1000]),
        masked(0x00, &[4; 1000]), masked(0x00, &[5; 1000]),
    ]);
    // 512 KiB of zeros deflate to about 500 bytes (under max-frame-size)
    // and inflate far past max-message-size.
    let bomb = masked(0xC2, &deflate(&vec![0u8; 512 << 10]));

    vec![
        // --- Methods.
        http("PATCH /pub", req("PATCH", "/pub?id=x", ""), Keep(405), "method not allowed"),
        http("TRACE /status", req("TRACE", "/status", ""), Keep(405), "method not allowed"),
        http("lowercase get", req("get", "/status", ""), Keep(405), "method not allowed"),
        http("unknown method with a body",
            req("BREW", "/status", "Content-Length: 3\r\n") + "abc", Close(405), "method not allowed"),
        http("CONNECT authority-form", req("CONNECT", "127.0.0.1:22", ""), Keep(404), "not found"),
        http("NUL inside the method", req("G\0T", "/status", ""), Close(400), "invalid method or token"),
        http("method longer than max-request-line",
            req(&"M".repeat(MAX_REQUEST_LINE + 10), "/", ""), Close(414), "request line too long")
            .counts(&["too_large/request_line"]),
        // --- CR/LF injection.
        http("bare CR inside a header value",
            get("/status", "X-A: a\rX-Injected: 1\r\n"), Close(400), "invalid header value"),
        http("bare CR inside the request line",
            "GET /status\rX-Injected: 1 HTTP/1.1\r\n\r\n", Close(400), "invalid method or token"),
        http("obs-fold header continuation",
            get("/status", "X-A: a\r\n X-Injected: 1\r\n"), Close(400), "invalid header name"),
        http("encoded CRLF in ?id= stays out of the head",
            get("/pub?id=a%0D%0AX-Injected:%201", ""), Keep(400), "invalid channel id"),
        http("encoded CRLF in a subscribe path",
            get("/ev/a%0d%0aX-Injected:%201", ""), Keep(400), "invalid channel id"),
        http("bare CR in Event-Type (SSE event injection)",
            post(BYSTANDER, "Event-Type: x\rdata: injected\r\n", "body"),
            Close(400), "invalid header value"),
        // --- NUL bytes.
        http("NUL inside a header value",
            get("/status", "X-A: a\0b\r\n"), Close(400), "invalid header value"),
        http("NUL inside the path", get("/st\0atus", ""), Close(400), "invalid method or token"),
        http("leading NUL bytes",
            "\0\0\0\0GET /status HTTP/1.1\r\n\r\n", Close(400), "invalid method or token"),
        http("encoded NUL in ?id=", get("/pub?id=a%00b", ""), Keep(400), "invalid channel id"),
        http("NUL in a chunk extension",
            chunked("3;ext=\0\r\nabc\r\n0\r\n\r\n"), Close(400), "invalid chunk extension"),
        http("NUL in a chunked trailer",
            chunked("3\r\nabc\r\n0\r\nX-T: \0\r\n\r\n"), Close(400), "invalid chunked trailer"),
        // --- Content-Length: negative, huge, contradictory.
        http("negative Content-Length", post_len("-1", ""), Close(400), "invalid content-length"),
        http("hex Content-Length", post_len("0x10", ""), Close(400), "invalid content-length"),
        http("Content-Length overflowing u64",
            post_len("18446744073709551616", ""), Close(413), "request body too large")
            .counts(&["too_large/body"]),
        http("Content-Length one over max-message-size",
            post_len(&(MAX_MESSAGE + 1).to_string(), ""), Close(413), "request body too large")
            .counts(&["too_large/body"]),
        // Answered at once: no `100 Continue` invites the body first.
        http("oversize Content-Length with Expect: 100-continue",
            expect_100, Close(413), "request body too large")
            .counts(&["too_large/body"]),
        http("two different Content-Length fields",
            post("hostile", "Content-Length: 5\r\n", "abcd"), Close(400), "conflicting content-length"),
        http("Content-Length list that disagrees",
            post_len("4, 5", "abcd"), Close(400), "conflicting content-length"),
        // --- Chunk sizes and framing.
        http("negative chunk size", chunked("-1\r\nabc\r\n0\r\n\r\n"), Close(400), "invalid chunk size"),
        http("non-hex chunk size", chunked("zz\r\nabc\r\n0\r\n\r\n"), Close(400), "invalid chunk size"),
        http("0x-prefixed chunk size",
            chunked("0x3\r\nabc\r\n0\r\n\r\n"), Close(400), "invalid chunk size"),
        http("chunk size overflowing usize",
            chunked("ffffffffffffffffffffffffffffffff\r\n"), Close(413), "request body too large")
            .counts(&["too_large/body"]),
        http("one chunk over max-message-size",
            chunked(&format!("{:x}\r\n", MAX_MESSAGE + 1)), Close(413), "request body too large")
            .counts(&["too_large/body"]),
        http("chunks adding up past max-message-size",
            chunked(&oversize_chunks), Close(413), "request body too large")
            .counts(&["too_large/body"]),
        http("bare LF after a chunk size",
            chunked("3\nabc\r\n0\r\n\r\n"), Close(400), "invalid chunk size"),
        http("chunk data longer than its size",
            chunked("3\r\nabcdef\r\n0\r\n\r\n"), Close(400), "missing CRLF after chunk data"),
        http("empty chunk size line", chunked("\r\n\r\n"), Close(400), "invalid chunk size"),
        http("endless chunk extension",
            chunked(&format!("3;{}\r\nabc\r\n0\r\n\r\n", "e".repeat(1100))),
            Close(400), "chunk size line too long"),
        http("endless chunked trailers",
            chunked(&endless_trailers), Close(431), "request header fields too large")
            .counts(&["too_large/header_bytes"]),
        // --- Smuggling: two framings, obfuscated framings.
        http("Content-Length then Transfer-Encoding",
            post_raw("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
            Close(400), "both content-length and transfer-encoding"),
        http("Transfer-Encoding then Content-Length",
            post_raw("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", "0\r\n\r\n"),
            Close(400), "both content-length and transfer-encoding"),
        http("chunked with Content-Length: 0",
            post_raw("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", "0\r\n\r\n"),
            Close(400), "both content-length and transfer-encoding"),
        http("CL.TE with a smuggled DELETE behind",
            cl_te, Close(400), "both content-length and transfer-encoding"),
        http("Transfer-Encoding: xchunked",
            post_raw("Transfer-Encoding: xchunked\r\n", ""), Close(501), "unsupported transfer-encoding"),
        http("Transfer-Encoding: chunked, identity",
            post_raw("Transfer-Encoding: chunked, identity\r\n", ""),
            Close(501), "unsupported transfer-encoding"),
        http("two Transfer-Encoding fields",
            post_raw("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
            Close(501), "unsupported transfer-encoding"),
        http("space before the colon of Transfer-Encoding",
            post_raw("Transfer-Encoding : chunked\r\n", "0\r\n\r\n"), Close(400), "invalid header name"),
        http("vertical tab before chunked",
            post_raw("Transfer-Encoding: \x0bchunked\r\n", "0\r\n\r\n"),
            Close(400), "invalid header value"),
        http("Transfer-Encoding in HTTP/1.0",
            post_raw("Transfer-Encoding: chunked\r\n", "0\r\n\r\n").replace("HTTP/1.1", "HTTP/1.0"),
            Close(400), "transfer-encoding in http/1.0"),
        // --- Other protocols on the port. HTTP/0.9 has no version and no
        // headers; the parser sees a request line that does not end in a
        // version and answers an HTTP/1.1 400 (a 0.9 client cannot read it,
        // but nothing is served and the connection closes).
        http("HTTP/0.9 request", "GET /status\r\n", Close(400), "invalid method or token"),
        // A client speaking HTTP/2 with prior knowledge: its preface is an
        // HTTP/1 request line with version 2.0, refused as such.
        http("HTTP/2 connection preface",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Close(400), "unsupported http version"),
        http("HTTP/1.2", "GET /status HTTP/1.2\r\n\r\n", Close(400), "unsupported http version"),
        // A server that does not speak h2c answers over HTTP/1.1 as if the
        // Upgrade were not there (RFC 9113 §3.1 dropped h2c anyway).
        http("h2c upgrade is ignored", get("/status", h2c), Keep(200), ""),
        http("TLS ClientHello on the plain port", tls_hello, Close(400), "invalid method or token"),
        // --- A body where none is read. `.b1` answers the long-poll at once
        // (with the newest stored message); then the connection must close.
        http("long-poll with a request body", longpoll_body, Close(200), ""),
        // --- Head limits and slowloris.
        http("more header fields than max-headers",
            get("/status", &many_headers), Close(431), "too many header fields")
            .counts(&["too_large/header_count"]),
        http("head over max-header-bytes",
            get("/status", &big_header), Close(431), "request header fields too large")
            .counts(&["too_large/header_bytes"]),
        http("a flood of empty lines",
            "\r\n".repeat(MAX_HEADER_BYTES), Close(431), "request header fields too large")
            .counts(&["too_large/header_bytes"]),
        http("slowloris: head never finished",
            "GET /status HTTP/1.1\r\nHost: t\r\nX-Slow: ", Close(408), "request not received in time"),
        // --- Channel ids.
        http("bad character in a channel id", get("/ev/bad!id", ""), Keep(400), "invalid channel id"),
        http("no channel", get("/ev/", ""), Keep(400), "missing channel"),
        http("empty channel between slashes", get("/sub/a//b", ""), Keep(400), "invalid channel id"),
        http("channel id over max-channel-id",
            get(&format!("/ev/{long_id}"), ""), Keep(400), "channel id too long")
            .counts(&["too_large/channel_id"]),
        http("more channels than max-channels-per-subscription",
            get(&format!("/ev/{too_many}"), ""), Keep(400), "too many channels")
            .counts(&["too_large/channels"]),
        http("publish to the internal $status channel",
            post("$status", "", "x"), Close(400), "invalid channel id"),
        http("percent-encoded UTF-8 channel", get("/ev/%F0%9F%92%A9", ""), Keep(400), "invalid channel id"),
        http("raw UTF-8 bytes in a channel", get("/ev/caf\u{e9}", ""), Keep(400), "invalid channel id"),
        // --- Traversal-looking channels and paths. Nothing maps a channel or
        // a path to a file: these are bad ids or unknown paths.
        http("dot-dot path", get("/../../etc/passwd", ""), Keep(404), "not found"),
        http("encoded traversal in a subscribe path",
            get("/ev/..%2F..%2Fetc%2Fpasswd", ""), Keep(400), "invalid channel id"),
        http("decoded traversal in ?id=",
            get("/pub?id=..%2F..%2Fetc%2Fpasswd", ""), Keep(400), "invalid channel id"),
        http("traversal in /status?id=",
            get("/status?id=../../etc/passwd", ""), Keep(400), "invalid channel id"),
        http("backslash traversal",
            get("/ev/..\\..\\windows\\win.ini", ""), Keep(400), "invalid channel id"),
        http("traversal behind a page", get("/crier.js/../status", ""), Keep(404), "not found"),
        // `..` is in the id alphabet: an ordinary (unknown) channel.
        http("`..` is just a channel name", get("/pub?id=..", ""), Keep(404), "no such channel"),
        // --- Publishing and deleting without the right.
        http("publish without the secret",
            req("POST", "/pub?id=hostile", "Content-Length: 2\r\n") + "hi",
            Close(401), "credentials required")
            .counts(&["denied/missing_credential"]),
        http("publish with a wrong secret",
            req("POST", "/pub?id=hostile", "Authorization: Bearer guess\r\nContent-Length: 2\r\n") + "hi",
            Close(403), "invalid credentials")
            .counts(&["denied/bad_credential"]),
        http("DELETE the bystanders' channel without the secret",
            req("DELETE", &format!("/pub?id={BYSTANDER}"), ""), Keep(401), "credentials required")
            .counts(&["denied/missing_credential"]),
        http("DELETE the bystanders' channel with a forged token",
            req("DELETE", &format!("/pub?id={BYSTANDER}"), &bearer(&forged)),
            Keep(403), "signature does not match")
            .counts(&["denied/bad_token"]),
        http("publish with a subscribe-only token",
            req("POST", &format!("/pub?id={BYSTANDER}"), &(bearer(&good) + "Content-Length: 2\r\n")) + "hi",
            Close(403), "does not allow this channel")
            .counts(&["denied/channel_not_granted"]),
        // --- Tokens on HTTP subscriptions.
        http("private channel without a token",
            get("/ev/priv-a", ""), Keep(403), "a signed token is required")
            .counts(&["denied/token_required"]),
        http("expired token", get(&format!("/ev/priv-a?token={expired}"), ""), Keep(403), "token expired")
            .counts(&["denied/bad_token"]),
        http("token for another channel (long-poll)",
            get(&format!("/lp/priv-a?token={other_channel}"), ""), Keep(403), "does not allow this channel")
            .counts(&["denied/channel_not_granted"]),
        http("padded token", get(&format!("/sub/priv-a?token={padded}"), ""), Keep(403), "base64 padding")
            .counts(&["denied/bad_token"]),
        // --- WebSocket handshakes refused before any 101. A refusal by the
        // access policy keeps the connection like any refused GET; a bad
        // handshake or origin closes it.
        upgrade_ok("control: the allowed origin, spelt differently", origin("https://Allowed.Example/")),
        http("wrong origin",
            origin("https://evil.example"), Close(403), "origin not allowed").counts(&["denied/origin"]),
        http("origin null", origin("null"), Close(403), "origin not allowed").counts(&["denied/origin"]),
        http("look-alike origin",
            origin("https://allowed.example.evil.example"),
            Close(403), "origin not allowed").counts(&["denied/origin"]),
        http("allowed host on another port",
            origin("https://allowed.example:8443"),
            Close(403), "origin not allowed").counts(&["denied/origin"]),
        http("no Sec-WebSocket-Key",
            handshake.replace(&format!("Sec-WebSocket-Key: {WS_KEY}\r\n"), ""),
            Close(400), "invalid Sec-WebSocket-Key"),
        http("Sec-WebSocket-Key not 16 bytes",
            handshake.replace(WS_KEY, "c2hvcnQ="), Close(400), "invalid Sec-WebSocket-Key"),
        http("Sec-WebSocket-Version 8",
            handshake.replace("Version: 13", "Version: 8"),
            Close(426), "unsupported Sec-WebSocket-Version"),
        http("no Sec-WebSocket-Version",
            handshake.replace("Sec-WebSocket-Version: 13\r\n", ""),
            Close(426), "unsupported Sec-WebSocket-Version"),
        http("Upgrade: h2c on a WebSocket path",
            handshake.replace("Upgrade: websocket", "Upgrade: h2c"),
            Close(400), "missing Upgrade: websocket"),
        http("POST upgrade", handshake.replacen("GET", "POST", 1), Keep(405), "method not allowed"),
        // RFC 9110 §7.8: an Upgrade in an HTTP/1.0 request is ignored, and
        // RFC 6455 §4.1 needs HTTP/1.1.
        http("WebSocket upgrade over HTTP/1.0",
            handshake.replacen("HTTP/1.1", "HTTP/1.0", 1), Close(400), "HTTP/1.1"),
        // A body would be read as the first frames.
        http("WebSocket upgrade with a body", upgrade_body, Close(400), "body"),
        upgrade_ok("control: a genuine token", upgrade(&format!("/ws/priv-a?token={good}"), "")),
        http("WebSocket to a private channel without a token",
            upgrade("/ws/priv-a", ""), Keep(403), "a signed token is required")
            .counts(&["denied/token_required"]),
        http("WebSocket with an expired token",
            upgrade(&format!("/ws/priv-a?token={expired}"), ""), Keep(403), "token expired")
            .counts(&["denied/bad_token"]),
        http("WebSocket with a token not valid yet",
            upgrade(&format!("/ws/priv-a?token={not_yet}"), ""), Keep(403), "token not valid yet")
            .counts(&["denied/bad_token"]),
        http("WebSocket with a token for another channel",
            upgrade(&format!("/ws/priv-a?token={other_channel}"), ""),
            Keep(403), "does not allow this channel")
            .counts(&["denied/channel_not_granted"]),
        http("WebSocket token covering one of two channels",
            upgrade(&format!("/ws/priv-a/priv-b?token={good}"), ""),
            Keep(403), "does not allow this channel")
            .counts(&["denied/channel_not_granted"]),
        http("WebSocket with forged claims",
            upgrade(&format!("/ws/priv-a?token={forged}"), ""), Keep(403), "signature does not match")
            .counts(&["denied/bad_token"]),
        http("WebSocket with a token signed by another key",
            upgrade(&format!("/ws/priv-a?token={wrong_key}"), ""), Keep(403), "signature does not match")
            .counts(&["denied/bad_token"]),
        http("WebSocket with an alg=none token",
            upgrade(&format!("/ws/priv-a?token={alg_none}"), ""), Keep(403), "alg must be HS256")
            .counts(&["denied/bad_token"]),
        // A token that does not verify is refused even where none is needed.
        http("forged bearer token on a public channel",
            upgrade("/ws/hostile-ws", &bearer(&forged)), Keep(403), "signature does not match")
            .counts(&["denied/bad_token"]),
        // --- WebSocket frames, each after a valid handshake on its own
        // connection (close codes: RFC 6455 §7.4.1).
        ws("unmasked text frame", vec![0x81, 0x02, b'h', b'i'], 1002, "unmasked client frame"),
        ws("unmasked close frame", vec![0x88, 0x02, 0x03, 0xE8], 1002, "unmasked client frame"),
        ws("unmasked frame glued to the handshake",
            vec![0x81, 0x02, b'h', b'i'], 1002, "unmasked client frame").glued(),
        ws("RSV1 without permessage-deflate", masked(0xC1, b"x"), 1002, "unexpected RSV1"),
        ws("RSV2 set", masked(0xA1, b"x"), 1002, "reserved bit set"),
        ws("RSV3 set", masked(0x91, b"x"), 1002, "reserved bit set"),
        ws("reserved data opcode 3", masked(0x83, b""), 1002, "reserved opcode"),
        ws("reserved control opcode 0xF", masked(0x8F, b""), 1002, "reserved opcode"),
        ws("ping of 126 bytes", masked(0x89, &[b'p'; 126]), 1002, "control frame too long"),
        ws("pong of 200 bytes", masked(0x8A, &[b'p'; 200]), 1002, "control frame too long"),
        ws("ping with a 64-bit length",
            concat(&[header_64(0x89, 5), b"hello".to_vec()]), 1002, "control frame too long"),
        ws("close of 126 bytes", close_frame(1000, &[b'r'; 124]), 1002, "control frame too long"),
        ws("fragmented ping", masked(0x09, b"x"), 1002, "fragmented control frame"),
        ws("continuation without a message", masked(0x80, b"x"), 1002, "continuation without a message"),
        ws("new message inside a fragmented one",
            concat(&[masked(0x01, b"a"), masked(0x81, b"b")]), 1002, "new message inside a fragmented one"),
        ws("close code 1005", close_frame(1005, b""), 1002, "invalid close code"),
        ws("close code 1006", close_frame(1006, b""), 1002, "invalid close code"),
        ws("close code 999", close_frame(999, b""), 1002, "invalid close code"),
        ws("close code 5000", close_frame(5000, b""), 1002, "invalid close code"),
        ws("close code 0", close_frame(0, b""), 1002, "invalid close code"),
        ws("close code 1004 glued to the handshake",
            close_frame(1004, b"reserved"), 1002, "invalid close code").glued(),
        ws("one-byte close payload", masked(0x88, &[0x03]), 1002, "close payload of 1 byte"),
        ws("close reason not UTF-8", close_frame(1000, &[0xC3, 0x28]), 1007, "close reason is not UTF-8"),
        ws("invalid UTF-8 text", masked(0x81, &[b'a', 0xFF]), 1007, "invalid UTF-8"),
        ws("overlong UTF-8 encoding", masked(0x81, &[0xC0, 0xAF]), 1007, "invalid UTF-8"),
        ws("UTF-16 surrogate in UTF-8", masked(0x81, &[0xED, 0xA0, 0x80]), 1007, "invalid UTF-8"),
        ws("code point over U+10FFFF", masked(0x81, &[0xF4, 0x90, 0x80, 0x80]), 1007, "invalid UTF-8"),
        ws("text ending inside a UTF-8 sequence", masked(0x81, &[b'a', 0xE2, 0x82]), 1007, "invalid UTF-8"),
        ws("invalid UTF-8 across fragments",
            concat(&[masked(0x01, &[b'a', 0xE2]), masked(0x80, &[0x28, 0xA1])]), 1007, "invalid UTF-8"),
        // Only the header: the server must not wait for the payload.
        ws("frame over max-frame-size",
            masked(0x82, &[0; MAX_FRAME + 1])[..8].to_vec(), 1009, "frame too big")
            .counts(&["too_large/frame"]),
        ws("2^62-byte frame announced",
            header_64(0x82, 1 << 62), 1009, "frame too big").counts(&["too_large/frame"]),
        ws("64-bit length with the top bit set",
            header_64(0x82, 1 << 63), 1002, "64-bit length with MSB set"),
        ws("fragments over max-message-size",
            fragments_over_limit, 1009, "message too big").counts(&["too_large/message"]),
        ws("text message without the right to publish",
            masked(0x81, b"let me in"), 1008, "publishing not allowed")
            .counts(&["denied/channel_not_granted"]),
        ws_deflate("corrupt deflate data",
            masked(0xC1, &[0xFF, 0xFF, 0xFF, 0xFF, 0x00]), 1007, "invalid compressed data"),
        ws_deflate("deflate bomb", bomb, 1009, "inflated message too big").counts(&["too_large/inflated"]),
        ws_deflate("RSV1 on a ping", masked(0xC9, b""), 1002, "unexpected RSV1"),
        ws_deflate("RSV1 on a continuation",
            concat(&[masked(0x41, &deflate(b"ab")), masked(0xC0, b"")]), 1002, "unexpected RSV1"),
    ]
}

/// `METHOD target` with a Host header and `extra` header lines.
fn req(method: &str, target: &str, extra: &str) -> String {
    format!("{method} {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n")
}

/// An `Authorization: Bearer` header line.
fn bearer(credential: &str) -> String {
    format!("Authorization: Bearer {credential}\r\n")
}

/// A publish (with the secret) with a literal `Content-Length` value.
fn post_len(len: &str, body: &str) -> String {
    req(
        "POST",
        "/pub?id=hostile",
        &format!("{}Content-Length: {len}\r\n", bearer(SECRET)),
    ) + body
}

/// A publish (with the secret) with its framing headers given verbatim.
fn post_raw(framing: &str, body: &str) -> String {
    req(
        "POST",
        "/pub?id=hostile",
        &format!("{}{framing}", bearer(SECRET)),
    ) + body
}

// ---------------------------------------------------------------------------
// Running one case.

fn run(addr: SocketAddr, kind: &Kind) {
    match kind {
        Kind::Http {
            raw,
            reply,
            because,
        } => run_http(addr, raw, *reply, because),
        Kind::Upgrade { raw } => {
            let mut c = Conn::connect(addr);
            c.write(raw);
            let head = c.read_head();
            assert_eq!(head.status, 101, "{head:?}");
            assert_eq!(head.header("sec-websocket-accept"), Some(WS_ACCEPT));
            c.write(&close_frame(1000, b""));
            expect_close(&mut c, 1000, "");
        }
        Kind::Frames {
            extra,
            glued,
            frames,
            code,
            because,
        } => {
            let mut c = Conn::connect(addr);
            let mut handshake = upgrade("/ws/hostile-ws", extra).into_bytes();
            if *glued {
                handshake.extend_from_slice(frames);
            }
            c.write(&handshake);
            let head = c.read_head();
            assert_eq!(head.status, 101, "{head:?}");
            assert_eq!(head.header("sec-websocket-accept"), Some(WS_ACCEPT));
            if !extra.is_empty() {
                assert!(
                    head.header("sec-websocket-extensions").is_some(),
                    "permessage-deflate not negotiated: {head:?}"
                );
            }
            if !glued {
                // The server may fail the connection before it has read all.
                let _ = c.try_write(frames);
            }
            expect_close(&mut c, *code, because);
        }
    }
}

fn run_http(addr: SocketAddr, raw: &[u8], reply: Reply, because: &str) {
    let status = reply.status();
    let mut c = Conn::connect(addr);
    // The server may answer and close before it has read everything.
    let _ = c.try_write(raw);
    let r = c.read_response();
    assert_eq!(r.status, status, "{r:?} {}", r.text());
    assert!(
        !r.headers
            .iter()
            .any(|(n, _)| n.to_ascii_lowercase().starts_with("x-injected")),
        "a header was injected: {r:?}"
    );
    assert_eq!(r.header("sec-websocket-accept"), None, "{r:?}");
    if status >= 400 {
        assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
        let j = r.json();
        assert_eq!(j["status"], status, "{j}");
        let msg = j["error"].as_str().unwrap_or_default();
        assert!(!msg.is_empty(), "no error text in {j}");
        assert!(msg.contains(because), "error {msg:?}, want {because:?}");
    }
    match status {
        401 => assert!(r.header("www-authenticate").is_some(), "{r:?}"),
        405 => assert!(r.header("allow").is_some(), "{r:?}"),
        426 => assert_eq!(r.header("sec-websocket-version"), Some("13"), "{r:?}"),
        _ => {}
    }
    match reply {
        Reply::Close(_) => {
            assert_eq!(r.header("connection"), Some("close"), "{r:?}");
            c.expect_eof();
        }
        Reply::Keep(_) => {
            assert_eq!(r.header("connection"), Some("keep-alive"), "{r:?}");
            c.write(b"GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            let next = c.read_response();
            assert_eq!(
                next.status, 200,
                "the next request on the connection: {next:?}"
            );
            c.expect_eof();
        }
    }
}

/// Reads the server's next frame: a close with `code` and a UTF-8 reason
/// containing `because`, then the end of the TCP connection.
fn expect_close(c: &mut Conn, code: u16, because: &str) {
    let h = c.exact(2);
    assert_eq!(h[1] & 0x80, 0, "server frames are never masked");
    let len = match h[1] & 0x7F {
        126 => u16::from_be_bytes(c.exact(2).try_into().unwrap()) as usize,
        127 => u64::from_be_bytes(c.exact(8).try_into().unwrap()) as usize,
        n => n as usize,
    };
    let payload = c.exact(len);
    assert_eq!(
        h[0],
        0x88,
        "expected a close frame, got opcode {:#x} with {:?}",
        h[0] & 0x0F,
        String::from_utf8_lossy(&payload)
    );
    assert!(payload.len() >= 2, "close without a code: {payload:?}");
    let got = u16::from_be_bytes([payload[0], payload[1]]);
    assert_eq!(
        got,
        code,
        "close code (reason {:?})",
        String::from_utf8_lossy(&payload[2..])
    );
    let reason = std::str::from_utf8(&payload[2..]).expect("close reason is UTF-8");
    assert!(
        reason.contains(because),
        "close reason {reason:?}, want {because:?}"
    );
    assert!(c.at_eof(), "connection not closed after the close frame");
}

// ---------------------------------------------------------------------------
// Bystanders and counters.

/// Publishes bystander message `n` with the secret (fresh connection);
/// returns its id and the subscriber count the server reported.
fn publish_numbered(addr: SocketAddr, n: usize) -> (String, u64) {
    let body = format!("bystander-{n}");
    let mut c = Conn::connect(addr);
    c.write(
        format!(
            "POST /pub?id={BYSTANDER} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {SECRET}\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 200, "publish {n}: {r:?} {}", r.text());
    let j = r.json();
    let id = j["id"].as_str().expect("id").to_string();
    (id, j["subscribers"].as_u64().expect("subscribers"))
}

/// The next data message of the WebSocket bystander.
fn ws_next(ws: &mut Ws) -> String {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return t,
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            Ok(other) => panic!("unexpected message {other:?}"),
            Err(e) => panic!("WebSocket bystander read failed: {e}"),
        }
    }
}

/// The refusal counters: `denied/KIND` and `too_large/LIMIT`.
fn refusal_counters(s: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for group in ["denied", "too_large"] {
        let obj = s[group]
            .as_object()
            .unwrap_or_else(|| panic!("no {group} in {s}"));
        for (k, v) in obj {
            out.insert(format!("{group}/{k}"), v.as_u64().unwrap_or(0));
        }
    }
    out
}

/// Which counters moved between `before` and `after`, once per unit.
fn moved(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, &v) in after {
        let was = before.get(k).copied().unwrap_or(0);
        for _ in was..v {
            out.push(k.clone());
        }
    }
    out
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(panic)".into())
}

#[test]
fn hostile_requests_and_frames_get_their_status_and_spare_the_bystanders() {
    let started = Instant::now();
    let server = start_server();
    let addr = server.addr();
    let table = table();
    let mut names: Vec<&str> = table.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), table.len(), "case names are unique");
    let hostile = table
        .iter()
        .filter(|c| !matches!(c.kind, Kind::Upgrade { .. }))
        .count();
    assert!(hostile >= 40, "only {hostile} hostile cases");

    let mut sse = SseClient::connect(addr, &format!("/ev/{BYSTANDER}"));
    let mut ws = ws_connect(addr, &format!("/ws/{BYSTANDER}"));
    let first = status(addr);
    let published_before = num(&first, "/published_messages");
    let counters_before = refusal_counters(&first);

    let mut failures = Vec::new();
    let mut counters = counters_before.clone();
    for (i, case) in table.iter().enumerate() {
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| run(addr, &case.kind)));
        let s = status(addr);
        let now_counters = refusal_counters(&s);
        let mut got = moved(&counters, &now_counters);
        counters = now_counters;
        let mut want: Vec<String> = case.counts.iter().map(|c| c.to_string()).collect();
        got.sort();
        want.sort();
        let verdict = match outcome {
            Err(e) => Err(panic_text(&*e)),
            Ok(()) if got != want => Err(format!("counters moved {got:?}, want {want:?}")),
            Ok(()) => Ok(()),
        };
        match &verdict {
            Ok(()) => println!(
                "ok    {:<58} {} ({:?})",
                case.name,
                case.expected(),
                t.elapsed()
            ),
            Err(why) => {
                println!("FAIL  {:<58} {}: {why}", case.name, case.expected());
                failures.push(format!("{}: {why}", case.name));
            }
        }
        // The bystanders get message i, in order, whatever the case did.
        let (id, subscribers) = publish_numbered(addr, i);
        assert_eq!(
            subscribers, 2,
            "after case {:?}: the bystanders' channel has {subscribers} subscribers",
            case.name
        );
        let ev = sse.next_event().unwrap_or_else(|| {
            panic!(
                "after case {:?}: the SSE bystander's stream ended",
                case.name
            )
        });
        assert_eq!(
            (ev.data.as_str(), ev.last_id.as_str()),
            (format!("bystander-{i}").as_str(), id.as_str()),
            "after case {:?}: SSE bystander",
            case.name
        );
        let got = ws_next(&mut ws);
        assert_eq!(
            got,
            format!("bystander-{i}"),
            "after case {:?}: WebSocket bystander",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Only the bystanders are left (and the status request itself).
    let s = poll_status(addr, "connections back to the two bystanders", |s| {
        s["connections"]["total"] == 3
            && s["connections"]["eventsource"] == 1
            && s["connections"]["websocket"] == 1
            && s["subscribers"] == 2
    });
    // Nothing any case sent was published: only the numbered messages.
    assert_eq!(
        num(&s, "/published_messages") - published_before,
        table.len() as u64,
        "{s}"
    );
    // The refusal counters moved by what the table says, in total.
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for c in &table {
        for &k in &c.counts {
            *want.entry(k.to_string()).or_default() += 1;
        }
    }
    let end = refusal_counters(&s);
    for key in [
        "denied/origin",
        "denied/bad_token",
        "denied/token_required",
        "denied/channel_not_granted",
        "denied/missing_credential",
        "too_large/body",
        "too_large/frame",
        "too_large/header_bytes",
    ] {
        let delta = end[key] - counters_before[key];
        assert!(delta > 0, "{key} never moved");
        assert_eq!(delta, want[key], "{key}: {s}");
    }
    let mut all_moved = moved(&counters_before, &end);
    all_moved.sort();
    let mut all_want: Vec<String> = want
        .iter()
        .flat_map(|(k, &n)| std::iter::repeat_n(k.clone(), n as usize))
        .collect();
    all_want.sort();
    assert_eq!(all_moved, all_want);
    println!(
        "{} cases ({hostile} hostile) in {:?}",
        table.len(),
        started.elapsed()
    );
    drop(server);
}
