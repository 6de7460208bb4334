//! TLS at the edge: SSE, raw streams, WebSocket and publishing over TLS,
//! the handshake timeout, the refusal of plaintext on a TLS port, and the
//! slow-consumer cut through TLS. Certificates are generated per test
//! (tests/common/tls.rs); the reload on SIGHUP is in tests/tls_reload.rs.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A server whose `listen` stays plaintext (so the status helpers work)
/// and whose `tls-listen` serves TLS with a fresh certificate. Returns the
/// server, its TLS address and the PKI (the directory must outlive it).
fn tls_server(
    tweak: impl FnOnce(&mut crier::Config),
) -> (crier::Handle, SocketAddr, TestPki, TempDir) {
    let pki = TestPki::new("main");
    let dir = TempDir::new("tls");
    let (cert, key) = pki.write_to(&dir.0);
    let server = start_with(2, |c| {
        c.tls_cert = cert.display().to_string();
        c.tls_key = key.display().to_string();
        c.tls_listen = "127.0.0.1:0".into();
        tweak(c);
    });
    let tls_addr = server.tls_addr().expect("a TLS address");
    (server, tls_addr, pki, dir)
}

/// Reads SSE `data:` lines until `n` were seen; returns them.
fn sse_data<R: Read>(s: &mut R, buf: &mut Vec<u8>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let end = read_until(s, buf, b"\n\n", READ_TIMEOUT);
        let event = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        if let Some(d) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
            out.push(d.to_string());
        }
    }
    out
}

#[test]
fn sse_stream_and_publish_over_tls() {
    let (server, tls_addr, pki, _dir) = tls_server(|_| {});
    let addr = server.addr();
    let cfg = pki.client_config();
    let (mut sse, mut sse_buf) = tls_sse(tls_addr, &cfg, "/ev/news");
    let mut stream = tls_connect(tls_addr, &cfg);
    stream
        .write_all(b"GET /sub/news HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut stream_buf = Vec::new();
    let end = read_until(&mut stream, &mut stream_buf, b"\r\n\r\n", READ_TIMEOUT);
    assert!(stream_buf.starts_with(b"HTTP/1.1 200"));
    stream_buf.drain(..end);
    wait_subscribers(addr, "news", 2);

    // Publish over TLS (ureq with rustls) and over plaintext: both arrive.
    let https = pki.agent();
    let r = send(
        https.post(&format!(
            "https://localhost:{}/pub?id=news",
            tls_addr.port()
        )),
        b"over tls",
    );
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r)["subscribers"], 2);
    publish(addr, "news", b"over plaintext");
    assert_eq!(
        sse_data(&mut sse, &mut sse_buf, 2),
        ["over tls", "over plaintext"]
    );
    let end = read_until(
        &mut stream,
        &mut stream_buf,
        b"over plaintext\n",
        READ_TIMEOUT,
    );
    assert!(String::from_utf8_lossy(&stream_buf[..end]).contains("over tls\n"));

    // A burst, and a message larger than a TLS record (several records,
    // partial writes): all arrive whole and in order.
    let mut publisher = KeepAlivePublisher::connect(addr);
    for i in 0..100 {
        publisher.publish("news", format!("burst {i}").as_bytes());
    }
    let big = "x".repeat(100_000);
    publisher.publish("news", big.as_bytes());
    let got = sse_data(&mut sse, &mut sse_buf, 101);
    for (i, d) in got.iter().take(100).enumerate() {
        assert_eq!(d, &format!("burst {i}"));
    }
    assert_eq!(got[100].len(), big.len());

    let s = status(addr);
    assert_eq!(num(&s, "/tls_connections/eventsource"), 1, "{s}");
    assert_eq!(num(&s, "/tls_connections/stream"), 1, "{s}");
    assert!(num(&s, "/tls_handshakes_completed") >= 3, "{s}");
    assert_eq!(num(&s, "/tls_handshakes_failed/protocol"), 0, "{s}");
}

#[test]
fn tls_1_2_clients_are_served_too() {
    let (server, tls_addr, pki, _dir) = tls_server(|_| {});
    let cfg = pki.client_config_tls12();
    let (mut sse, mut buf) = tls_sse(tls_addr, &cfg, "/ev/old");
    assert_eq!(
        sse.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    wait_subscribers(server.addr(), "old", 1);
    let mut publisher = KeepAlivePublisher::connect(server.addr());
    for i in 0..20 {
        publisher.publish("old", format!("v1.2 {i}").as_bytes());
    }
    let got = sse_data(&mut sse, &mut buf, 20);
    assert_eq!(got[19], "v1.2 19");
}

#[test]
fn listen_itself_serves_tls_when_no_second_address_is_given() {
    let pki = TestPki::new("only");
    let dir = TempDir::new("tls-only");
    let (cert, key) = pki.write_to(&dir.0);
    let server = start_with(1, |c| {
        c.tls_cert = cert.display().to_string();
        c.tls_key = key.display().to_string();
    });
    assert_eq!(server.tls_addr(), None);
    let port = server.addr().port();
    let https = pki.agent();
    let r = call(https.get(&format!("https://localhost:{port}/status")));
    assert_eq!(r.status(), 200);
    let s = json_of(r);
    assert_eq!(num(&s, "/tls_connections/http"), 1, "{s}");
    assert_eq!(num(&s, "/connections/total"), 1, "{s}");
}

#[test]
fn websocket_over_tls() {
    let (server, tls_addr, pki, _dir) = tls_server(|_| {});
    let tls = tls_connect(tls_addr, &pki.client_config());
    let (mut ws, resp) = tungstenite::client("ws://localhost/ws/chat", tls).expect("handshake");
    assert_eq!(resp.status(), 101);
    wait_subscribers(server.addr(), "chat", 1);
    publish(server.addr(), "chat", b"hello wss");
    let msg = ws.read().expect("a message");
    assert_eq!(msg.into_text().unwrap().as_str(), "hello wss");
    // Pings are answered through TLS too.
    ws.send(tungstenite::Message::Ping(b"p".to_vec())).unwrap();
    match ws.read().expect("pong") {
        tungstenite::Message::Pong(p) => assert_eq!(&p[..], b"p"),
        other => panic!("unexpected {other:?}"),
    }
    let s = status(server.addr());
    assert_eq!(num(&s, "/tls_connections/websocket"), 1, "{s}");
    ws.close(None).unwrap();
}

#[test]
fn a_client_stalling_mid_handshake_is_closed_at_the_handshake_timeout() {
    let (server, tls_addr, pki, _dir) = tls_server(|c| c.handshake_timeout = 1);
    let mut raw = TcpStream::connect(tls_addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The start of a ClientHello record, then silence.
    raw.write_all(&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01])
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = raw.read(&mut buf).unwrap_or(0);
    let waited = started.elapsed();
    assert_eq!(n, 0, "closed without an answer");
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_millis(2500),
        "closed after {waited:?}"
    );
    let s = status(server.addr());
    assert_eq!(num(&s, "/tls_handshakes_failed/timeout"), 1, "{s}");
    assert_eq!(num(&s, "/closed_by_server/handshake_timeout"), 1, "{s}");
    assert_eq!(num(&s, "/tls_connections/total"), 0, "{s}");
    // The server still serves TLS.
    let (_sse, _) = tls_sse(tls_addr, &pki.client_config(), "/ev/after");
}

#[test]
fn a_plaintext_request_to_the_tls_port_is_refused_and_serving_goes_on() {
    let (server, tls_addr, pki, _dir) = tls_server(|_| {});
    let mut raw = TcpStream::connect(tls_addr).unwrap();
    raw.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    raw.write_all(b"GET /ev/news HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).unwrap();
    let r = Response::parse(&answer).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text().trim_end(),
        r#"{"error":"this port speaks TLS: use https:// or wss://","status":400}"#
    );
    let s = status(server.addr());
    assert_eq!(num(&s, "/tls_handshakes_failed/plaintext"), 1, "{s}");
    assert_eq!(num(&s, "/tls_connections/total"), 0, "{s}");
    // Garbage that is neither is a protocol failure, not a crash.
    let mut junk = TcpStream::connect(tls_addr).unwrap();
    junk.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    junk.write_all(&[0x17; 64]).unwrap();
    let mut rest = Vec::new();
    let _ = junk.read_to_end(&mut rest);
    poll_status(server.addr(), "a protocol failure", |s| {
        num(s, "/tls_handshakes_failed/protocol") == 1
    });
    // TLS still works, and so does the plaintext port.
    let https = pki.agent();
    let r = call(https.get(&format!("https://localhost:{}/status", tls_addr.port())));
    assert_eq!(r.status(), 200);
    publish(server.addr(), "news", b"still here");
}

#[test]
fn a_client_that_does_not_trust_the_certificate_is_counted_as_an_alert() {
    let (server, tls_addr, _pki, _dir) = tls_server(|_| {});
    let stranger = TestPki::new("stranger");
    let e = try_tls_connect(tls_addr, &stranger.client_config())
        .expect_err("an untrusted certificate fails");
    assert!(e.to_string().contains("certificate"), "{e}");
    poll_status(server.addr(), "an alert failure", |s| {
        num(s, "/tls_handshakes_failed/alert") == 1
    });
}

#[test]
fn a_tls_subscriber_that_stops_reading_is_cut_at_the_queue_cap() {
    let (server, tls_addr, pki, _dir) = tls_server(|c| c.max_queued_bytes = 64 * 1024);
    let addr = server.addr();
    let cfg = pki.client_config();
    // Never read again after the opening: the kernel buffers fill, then
    // our queue does.
    let (_stalled, _) = tls_sse(tls_addr, &cfg, "/ev/flood");
    let (mut reader, mut buf) = tls_sse(tls_addr, &cfg, "/ev/flood");
    wait_subscribers(addr, "flood", 2);
    let payload = "y".repeat(16 * 1024);
    let mut publisher = KeepAlivePublisher::connect(addr);
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    // The reader keeps up; the stalled one is dropped as a slow consumer
    // once the kernel's buffers and then its queue are full.
    while num(&status(addr), "/slow_consumers") == 0 {
        assert!(Instant::now() < deadline, "no slow consumer after {sent}");
        for _ in 0..50 {
            publisher.publish("flood", payload.as_bytes());
            sent += 1;
            assert_eq!(sse_data(&mut reader, &mut buf, 1)[0].len(), payload.len());
        }
    }
    let s = status(addr);
    assert_eq!(num(&s, "/tls_connections/eventsource"), 1, "{s}");
}
