//! WebSocket end to end, checked with clients that share no code with the
//! server: tungstenite for well-behaved clients, and hand-written bytes on
//! a raw `TcpStream` for what a library will not send (protocol errors,
//! permessage-deflate, a client that never answers pings).
//!
//! Every read has a timeout (see `common::READ_TIMEOUT`), so a server bug
//! fails a test instead of hanging it.

mod common;

use common::*;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// RFC 6455 §1.3's sample key and the accept value it must produce.
const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The masking key of every raw client frame.
const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// The next data message (text or binary); pings are answered by
/// tungstenite itself and skipped.
fn next_data(ws: &mut Ws) -> Message {
    loop {
        match ws.read().expect("websocket read") {
            m @ (Message::Text(_) | Message::Binary(_)) => return m,
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a data message, got {other:?}"),
        }
    }
}

/// Publishes with an explicit `Content-Type`.
fn publish_typed(addr: SocketAddr, channel: &str, content_type: &str, body: &[u8]) {
    let req = agent()
        .post(&url(addr, &format!("/pub?id={channel}")))
        .set("Content-Type", content_type);
    assert_eq!(send(req, body).status(), 200);
}

/// A raw WebSocket client: our own frames, byte for byte.
struct RawWs {
    conn: Conn,
    head: Response,
}

/// One frame as the server sent it.
#[derive(Debug)]
struct RawFrame {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: Vec<u8>,
}

impl RawFrame {
    /// Code of a close frame (None when its payload is empty).
    fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, 0x8, "expected a close frame, got {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
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

impl RawWs {
    /// Upgrades `path` with the sample key and `extra` header lines.
    fn connect(addr: SocketAddr, path: &str, extra: &str) -> RawWs {
        let mut conn = Conn::connect(addr);
        conn.write(
            format!(
                "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
            )
            .as_bytes(),
        );
        let head = conn.read_head();
        assert_eq!(head.status, 101, "upgrade {path}: {head:?}");
        assert_eq!(head.header("sec-websocket-accept"), Some(SAMPLE_ACCEPT));
        RawWs { conn, head }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.conn.write(bytes);
    }

    /// The next frame; panics on EOF or timeout.
    fn frame(&mut self) -> RawFrame {
        let h = self.conn.exact(2);
        assert_eq!(h[1] & 0x80, 0, "server frames are never masked");
        assert_eq!(h[0] & 0x30, 0, "RSV2/RSV3 are never set");
        let len = match h[1] & 0x7F {
            126 => u16::from_be_bytes(self.conn.exact(2).try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(self.conn.exact(8).try_into().unwrap()) as usize,
            n => n as usize,
        };
        RawFrame {
            fin: h[0] & 0x80 != 0,
            rsv1: h[0] & 0x40 != 0,
            opcode: h[0] & 0x0F,
            payload: self.conn.exact(len),
        }
    }

    /// Asserts the server fails the connection with close `code`, then
    /// closes the TCP connection.
    fn expect_close(&mut self, code: u16, what: &str) {
        let f = self.frame();
        assert_eq!(f.close_code(), Some(code), "{what}: {f:?}");
        assert!(
            std::str::from_utf8(&f.payload[2..]).is_ok(),
            "{what}: reason is UTF-8"
        );
        assert!(self.conn.at_eof(), "{what}: connection closed after close");
    }
}

/// Inflates a permessage-deflate payload (RFC 7692 §7.2.2: append
/// 00 00 FF FF, then raw inflate) with flate2, independent of the server.
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0x00, 0x00, 0xFF, 0xFF]);
    let mut d = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, flate2::FlushDecompress::Sync)
        .expect("valid deflate data");
    assert_eq!(d.total_in() as usize, input.len(), "all input consumed");
    out
}

/// Raw deflate of `data` with the trailing 00 00 FF FF removed, as a
/// permessage-deflate client sends it.
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

#[test]
fn handshake_accept_key() {
    let server = start_with(1, |_| {});
    let addr = server.addr();
    // The RFC's own example: exact headers, checked by hand.
    let raw = RawWs::connect(addr, "/ws/hs", "");
    assert!(raw
        .head
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket")));
    assert!(raw
        .head
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("upgrade")));
    assert_eq!(raw.head.header("sec-websocket-extensions"), None);
    // A random key: tungstenite checks Sec-WebSocket-Accept itself.
    let _ws = ws_connect(addr, "/ws/hs");
    assert_eq!(publish(addr, "hs", b"x")["subscribers"], 2);
}

#[test]
fn handshake_rejections() {
    let server = start_with(1, |_| {});
    let addr = server.addr();
    let refused = |req: &str| {
        let mut c = Conn::connect(addr);
        c.write(req.as_bytes());
        let r = c.read_response();
        assert_eq!(r.header("content-type"), Some("application/json"), "{req}");
        assert_eq!(r.json()["status"], r.status, "{req}");
        assert!(r.json()["error"].is_string(), "{req}");
        assert_eq!(r.header("sec-websocket-accept"), None);
        c.expect_eof();
        r
    };
    let base = "GET /ws/rej HTTP/1.1\r\nHost: t\r\n";
    // No Sec-WebSocket-Key.
    let r = refused(&format!(
        "{base}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ));
    assert_eq!(r.status, 400);
    // A key that is not 16 base64-encoded bytes.
    let r = refused(&format!(
        "{base}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    ));
    assert_eq!(r.status, 400);
    // Unsupported version: 426 naming the one we speak.
    let r = refused(&format!(
        "{base}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {SAMPLE_KEY}\r\n\
         Sec-WebSocket-Version: 8\r\n\r\n"
    ));
    assert_eq!(r.status, 426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    // No Upgrade header.
    let r = refused(&format!(
        "{base}Connection: Upgrade\r\nSec-WebSocket-Key: {SAMPLE_KEY}\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    ));
    assert_eq!(r.status, 400);
    // Nobody was subscribed by any of these.
    assert_eq!(status(addr)["subscribers"], 0);
}

#[test]
fn text_and_binary_delivery() {
    let server = start_with(2, |_| {});
    let addr = server.addr();
    let mut ws = ws_connect(addr, "/ws/tb");
    publish(addr, "tb", "héllo".as_bytes());
    assert_eq!(next_data(&mut ws), Message::Text("héllo".into()));
    let bin = vec![0u8, 1, 2, 0xFF, 0xFE];
    publish_typed(addr, "tb", "application/octet-stream", &bin);
    assert_eq!(next_data(&mut ws), Message::Binary(bin));
    publish_typed(addr, "tb", "application/json", br#"{"a":1}"#);
    assert_eq!(next_data(&mut ws), Message::Text(r#"{"a":1}"#.into()));
    // Without --ws-publish a client's messages are ignored, not echoed.
    ws.send(Message::Text("ignored".into())).unwrap();
    publish(addr, "tb", b"after");
    assert_eq!(next_data(&mut ws), Message::Text("after".into()));
    assert_eq!(status(addr)["published_messages"], 4);
}

#[test]
fn json_subprotocol_selects_envelopes() {
    use tungstenite::client::IntoClientRequest;
    let server = start_with(1, |_| {});
    let addr = server.addr();
    // tungstenite offers two protocols (it splits the list on bare commas)
    // and checks that we pick one of them.
    let mut req = format!("ws://{addr}/ws/sp").into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "chat,crier.json".parse().unwrap());
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let (mut ws, resp) = tungstenite::client(req, stream).expect("handshake");
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("crier.json")
    );
    // Unknown protocols only: no Sec-WebSocket-Protocol, plain frames.
    let mut raw = RawWs::connect(addr, "/ws/sp", "Sec-WebSocket-Protocol: chat\r\n");
    assert_eq!(raw.head.header("sec-websocket-protocol"), None);
    let id = id_of(&publish(addr, "sp", b"hi"));
    let Message::Text(text) = next_data(&mut ws) else {
        panic!("expected text");
    };
    let env: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(env["id"], id.to_string());
    assert_eq!(env["channel"], "sp");
    assert_eq!(env["data"], "hi");
    let f = raw.frame();
    assert_eq!((f.opcode, f.payload.as_slice()), (0x1, &b"hi"[..]));
}

#[test]
fn one_publish_fans_out_to_websocket_and_sse() {
    let server = start_with(4, |_| {});
    let addr = server.addr();
    let mut wss: Vec<Ws> = (0..8).map(|_| ws_connect(addr, "/ws/fan")).collect();
    let mut sses: Vec<SseClient> = (0..4)
        .map(|_| SseClient::connect(addr, "/ev/fan"))
        .collect();
    let reply = publish(addr, "fan", b"to everyone");
    assert_eq!(reply["subscribers"], 12);
    for ws in &mut wss {
        assert_eq!(next_data(ws), Message::Text("to everyone".into()));
    }
    for sse in &mut sses {
        let ev = sse.event();
        assert_eq!(ev.data, "to everyone");
        assert_eq!(ev.last_id, id_of(&reply).to_string());
    }
}

#[test]
fn ping_is_answered_with_same_payload() {
    let server = start_with(1, |_| {});
    let addr = server.addr();
    let mut ws = ws_connect(addr, "/ws/pp");
    ws.send(Message::Ping(b"are you there?".to_vec())).unwrap();
    assert_eq!(
        ws.read().unwrap(),
        Message::Pong(b"are you there?".to_vec())
    );
    // Empty and maximum-size (125 bytes) payloads, raw.
    let mut raw = RawWs::connect(addr, "/ws/pp", "");
    raw.send(&masked(0x89, b""));
    let f = raw.frame();
    assert_eq!(
        (f.fin, f.rsv1, f.opcode, f.payload.len()),
        (true, false, 0xA, 0)
    );
    let big = [b'p'; 125];
    raw.send(&masked(0x89, &big));
    let f = raw.frame();
    assert_eq!((f.opcode, &f.payload[..]), (0xA, &big[..]));
    // An unsolicited pong is ignored; the connection stays usable.
    raw.send(&masked(0x8A, b"hb"));
    publish(addr, "pp", b"still here");
    let f = raw.frame();
    assert_eq!((f.opcode, &f.payload[..]), (0x1, &b"still here"[..]));
}

#[test]
fn close_handshake_echoes_the_client_code() {
    let server = start_with(1, |_| {});
    let addr = server.addr();
    let mut ws = ws_connect(addr, "/ws/close");
    ws.close(Some(CloseFrame {
        code: CloseCode::Library(4001),
        reason: "bye now".into(),
    }))
    .unwrap();
    match ws.read() {
        Ok(Message::Close(Some(f))) => assert_eq!(f.code, CloseCode::Library(4001)),
        Ok(other) => panic!("expected the close echo, got {other:?}"),
        Err(e) => panic!("no close echo: {e}"),
    }
    // The server then ends the TCP connection.
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("expected the connection to end, got {other:?}"),
    }
    // Raw: 1000 and an empty close are echoed, then EOF.
    let mut raw = RawWs::connect(addr, "/ws/close", "");
    raw.send(&masked(0x88, &[0x03, 0xE8, b'o', b'k']));
    raw.expect_close(1000, "close 1000");
    let mut raw = RawWs::connect(addr, "/ws/close", "");
    raw.send(&masked(0x88, b""));
    assert_eq!(raw.frame().close_code(), None);
    raw.conn.expect_eof();
    poll_status(addr, "subscribers gone", |s| s["subscribers"] == 0);
}

#[test]
fn protocol_errors_close_with_the_right_code() {
    let server = start_with(2, |c| c.max_message_size = 1000);
    let addr = server.addr();
    let mut cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked frame", vec![0x81, 0x02, b'h', b'i'], 1002),
        ("RSV2 set", masked(0xA1, b"x"), 1002),
        ("RSV3 set", masked(0x91, b"x"), 1002),
        ("RSV1 without deflate", masked(0xC1, b"x"), 1002),
        ("reserved data opcode 3", masked(0x83, b""), 1002),
        ("reserved control opcode 0xB", masked(0x8B, b"x"), 1002),
        ("control frame of 126 bytes", masked(0x89, &[0; 126]), 1002),
        ("fragmented ping", masked(0x09, b"x"), 1002),
        ("continuation without a message", masked(0x80, b"x"), 1002),
        (
            "close code 1005",
            masked(0x88, &1005u16.to_be_bytes()),
            1002,
        ),
        ("one-byte close", masked(0x88, &[3]), 1002),
        (
            "invalid UTF-8 text",
            masked(0x81, &[b'a', 0xC0, 0x80]),
            1007,
        ),
        (
            "surrogate in UTF-8 text",
            masked(0x81, &[0xED, 0xA0, 0x80]),
            1007,
        ),
        // Only the header: the server must not wait for the payload.
        (
            "message over max_message_size",
            masked(0x82, &[0; 1001])[..8].to_vec(),
            1009,
        ),
    ];
    // A text message split so a UTF-8 sequence is cut and then broken.
    let mut split = masked(0x01, &[b'a', 0xE2]);
    split.extend(masked(0x80, &[0x28, 0xA1]));
    cases.push(("invalid UTF-8 across fragments", split, 1007));
    // Fragments adding up past the limit.
    let mut frags = masked(0x02, &[0; 600]);
    frags.extend(masked(0x80, &[0; 600]));
    cases.push(("fragments over max_message_size", frags, 1009));
    // A new message inside a fragmented one.
    let mut nested = masked(0x01, b"a");
    nested.extend(masked(0x81, b"b"));
    cases.push(("text inside a fragmented message", nested, 1002));
    for (what, bytes, code) in cases {
        let mut raw = RawWs::connect(addr, "/ws/errors", "");
        raw.send(&bytes);
        raw.expect_close(code, what);
    }
    // A well-behaved client on the same channel was not affected.
    let mut ws = ws_connect(addr, "/ws/errors");
    publish(addr, "errors", b"fine");
    assert_eq!(next_data(&mut ws), Message::Text("fine".into()));
}

#[test]
fn deflate_negotiated() {
    let server = start_with(2, |c| {
        c.deflate_min_size = 64;
        c.ws_publish = true;
    });
    let addr = server.addr();
    let mut raw = RawWs::connect(
        addr,
        "/ws/defl",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
    );
    let ext = raw
        .head
        .header("sec-websocket-extensions")
        .expect("extension accepted");
    assert!(ext.starts_with("permessage-deflate"), "{ext}");
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(500);
    publish(addr, "defl", text.as_bytes());
    let f = raw.frame();
    assert!(f.fin && f.rsv1, "compressed: {:?}", (f.fin, f.rsv1));
    assert_eq!(f.opcode, 0x1);
    assert!(f.payload.len() < text.len() / 10, "{}", f.payload.len());
    assert_eq!(inflate(&f.payload), text.as_bytes());
    // Below deflate_min_size: sent as is (RSV1 clear).
    publish(addr, "defl", b"tiny");
    let f = raw.frame();
    assert!(!f.rsv1);
    assert_eq!(f.payload, b"tiny");
    // Binary, compressed, with a smaller window that the client asked for.
    let mut raw = RawWs::connect(
        addr,
        "/ws/defl",
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n",
    );
    let ext = raw.head.header("sec-websocket-extensions").unwrap();
    assert!(ext.contains("server_max_window_bits=10"), "{ext}");
    let bin: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8).collect();
    publish_typed(addr, "defl", "application/octet-stream", &bin);
    let f = raw.frame();
    assert!(f.rsv1 && f.opcode == 0x2);
    assert_eq!(inflate(&f.payload), bin);
    // A compressed client message, fragmented (RSV1 on the first frame
    // only), is inflated and published: it comes back compressed.
    let msg = "hello compressed world, ".repeat(20);
    let c = deflate(msg.as_bytes());
    let (a, b) = c.split_at(c.len() / 2);
    let mut bytes = masked(0x41, a);
    bytes.extend(masked(0x80, b));
    raw.send(&bytes);
    let f = raw.frame();
    assert!(f.rsv1 && f.opcode == 0x1, "{f:?}");
    assert_eq!(inflate(&f.payload), msg.as_bytes());
    raw.send(&masked(0x88, &[0x03, 0xE8]));
    raw.expect_close(1000, "close after a compressed message");
}

#[test]
fn deflate_not_negotiated() {
    let text = "compressible ".repeat(1000);
    // The client does not offer it.
    let server = start_with(1, |_| {});
    let addr = server.addr();
    let mut plain = RawWs::connect(addr, "/ws/nodefl", "");
    assert_eq!(plain.head.header("sec-websocket-extensions"), None);
    // An unknown extension, and an offer with an invalid parameter.
    let mut odd = RawWs::connect(
        addr,
        "/ws/nodefl",
        "Sec-WebSocket-Extensions: x-unknown, permessage-deflate; server_max_window_bits=7\r\n",
    );
    assert_eq!(odd.head.header("sec-websocket-extensions"), None);
    publish(addr, "nodefl", text.as_bytes());
    for raw in [&mut plain, &mut odd] {
        let f = raw.frame();
        assert!(!f.rsv1);
        assert_eq!(f.payload, text.as_bytes());
    }
    // The server has it switched off.
    let server = start_with(1, |c| c.ws_deflate = false);
    let addr = server.addr();
    let mut raw = RawWs::connect(
        addr,
        "/ws/nodefl",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert_eq!(raw.head.header("sec-websocket-extensions"), None);
    publish(addr, "nodefl", text.as_bytes());
    let f = raw.frame();
    assert!(!f.rsv1);
    assert_eq!(f.payload, text.as_bytes());
    // ... so a compressed frame from the client is a protocol error.
    raw.send(&masked(0xC1, &deflate(b"sneaky")));
    raw.expect_close(1002, "RSV1 when deflate is off");
}

#[test]
fn deflate_bomb_is_closed_with_1009_and_others_keep_being_served() {
    let server = start_with(2, |c| {
        c.ws_publish = true;
        c.max_message_size = 1 << 20;
    });
    let addr = server.addr();
    let mut bystander = ws_connect(addr, "/ws/bomb");
    let mut bomber = RawWs::connect(
        addr,
        "/ws/bomb",
        "Sec-WebSocket-Extensions: permessage-deflate\r\n",
    );
    assert!(bomber.head.header("sec-websocket-extensions").is_some());
    // 64 MiB of zeros in about 64 KB: small on the wire, huge inflated.
    let bomb = deflate(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 100 << 10, "{}", bomb.len());
    let started = Instant::now();
    bomber.send(&masked(0xC2, &bomb));
    bomber.expect_close(1009, "deflate bomb");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Nothing was published; the bystander and new clients are served.
    publish(addr, "bomb", b"after the bomb");
    assert_eq!(
        next_data(&mut bystander),
        Message::Text("after the bomb".into())
    );
    assert_eq!(status(addr)["published_messages"], 1);
    let mut late = ws_connect(addr, "/ws/bomb");
    late.send(Message::Text("echo".into())).unwrap();
    assert_eq!(next_data(&mut late), Message::Text("echo".into()));
    assert_eq!(next_data(&mut bystander), Message::Text("echo".into()));
}

#[test]
fn fragmented_message_with_interleaved_ping_comes_back_whole() {
    let server = start_with(2, |c| c.ws_publish = true);
    let addr = server.addr();
    let mut ws = ws_connect(addr, "/ws/frag");
    let frag =
        |data: &[u8], op: OpCode, fin: bool| Message::Frame(Frame::message(data.to_vec(), op, fin));
    ws.write(frag(b"Hello, ", OpCode::Data(Data::Text), false))
        .unwrap();
    ws.write(Message::Ping(b"mid".to_vec())).unwrap();
    ws.write(frag(
        "fragmentéd ".as_bytes(),
        OpCode::Data(Data::Continue),
        false,
    ))
    .unwrap();
    ws.write(frag(b"world", OpCode::Data(Data::Continue), true))
        .unwrap();
    ws.flush().unwrap();
    // The ping is answered before the message can be complete.
    assert_eq!(ws.read().unwrap(), Message::Pong(b"mid".to_vec()));
    assert_eq!(
        ws.read().unwrap(),
        Message::Text("Hello, fragmentéd world".into())
    );
    // Binary, with a zero-length middle fragment.
    ws.write(frag(&[1, 2], OpCode::Data(Data::Binary), false))
        .unwrap();
    ws.write(frag(&[], OpCode::Data(Data::Continue), false))
        .unwrap();
    ws.write(frag(&[3], OpCode::Data(Data::Continue), true))
        .unwrap();
    ws.flush().unwrap();
    assert_eq!(next_data(&mut ws), Message::Binary(vec![1, 2, 3]));
    // Other subscribers of the channel get it too, as one message.
    let mut other = ws_connect(addr, "/ws/frag");
    ws.send(Message::Text("to both".into())).unwrap();
    assert_eq!(next_data(&mut other), Message::Text("to both".into()));
    assert_eq!(next_data(&mut ws), Message::Text("to both".into()));
}

#[test]
fn messages_before_a_close_or_a_bad_frame_still_come_back() {
    // Everything in one write, so the server reads it in one go: the
    // message is published before the close or the error is seen.
    let server = start_with(2, |c| c.ws_publish = true);
    let addr = server.addr();
    for (what, tail, code) in [
        ("close", masked(0x88, &[0x03, 0xE8]), 1000),
        ("reserved opcode", masked(0x83, b""), 1002),
        ("invalid UTF-8", masked(0x81, &[0xFF]), 1007),
    ] {
        let mut raw = RawWs::connect(addr, "/ws/last", "");
        // Larger than max_queued_bytes, followed by more: not a slow consumer.
        let mut bytes = masked(0x82, &[7u8; 300_000]);
        bytes.extend(masked(0x81, what.as_bytes()));
        bytes.extend(tail);
        raw.send(&bytes);
        let f = raw.frame();
        assert_eq!((f.opcode, f.payload.len()), (0x2, 300_000), "{what}");
        let f = raw.frame();
        assert_eq!((f.opcode, &f.payload[..]), (0x1, what.as_bytes()), "{what}");
        raw.expect_close(code, what);
    }
}

#[test]
fn unanswered_server_pings_close_the_connection() {
    let server = start_with(1, |c| {
        c.ping_interval = 1;
        c.pong_timeout = 1;
    });
    let addr = server.addr();
    let started = Instant::now();
    let mut ws = ws_connect(addr, "/ws/live");
    // The good client reads all along (tungstenite answers pings as it
    // reads), in its own thread so the mute client's reads cannot delay it.
    let good = std::thread::spawn(move || {
        ws.get_mut()
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut pings = 0;
        while started.elapsed() < Duration::from_millis(3500) {
            match ws.read() {
                Ok(Message::Ping(p)) => {
                    assert!(p.is_empty());
                    pings += 1;
                }
                Ok(m) => panic!("unexpected message {m:?}"),
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("the good client was disconnected: {e}"),
            }
        }
        (ws, pings)
    });
    // Reads everything but never answers.
    let mut mute = RawWs::connect(addr, "/ws/live", "");
    let mut pings = 0;
    while let Some(f) = mute.frame_or_eof() {
        assert_eq!((f.opcode, f.payload.len()), (0x9, 0), "only pings: {f:?}");
        pings += 1;
    }
    let closed_after = started.elapsed();
    assert!(pings >= 1);
    assert!(
        // Due by ping interval + pong timeout + a 250 ms tick.
        closed_after > Duration::from_millis(1500)
            && closed_after < Duration::from_millis(2250) + SLACK,
        "closed after {closed_after:?}"
    );
    let (mut ws, good_pings) = good.join().unwrap();
    assert!(
        good_pings >= 2,
        "pings seen by the good client: {good_pings}"
    );
    let s = status(addr);
    assert_eq!(s["pong_timeouts"], 1, "{s}");
    assert_eq!(s["connections"]["websocket"], 1, "{s}");
    publish(addr, "live", b"still connected");
    ws.get_mut().set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    assert_eq!(next_data(&mut ws), Message::Text("still connected".into()));
}

impl RawWs {
    /// The next frame, or None when the server ends the connection.
    fn frame_or_eof(&mut self) -> Option<RawFrame> {
        if self.conn.at_eof() {
            return None;
        }
        Some(self.frame())
    }
}
