//! Error statuses: each one's code, JSON body and connection handling, and
//! that a bad client never disturbs the others.

mod common;

use common::*;
use std::net::SocketAddr;

/// Checks an error response: status, reason phrase, JSON body
/// `{"error": "...", "status": N}`, Content-Type and CORS.
fn check_error(r: &Response, status: u16) -> String {
    assert_eq!(r.status, status, "{r:?} {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let j = r.json();
    assert_eq!(j["status"], status, "{j}");
    let msg = j["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {j}"));
    assert!(!msg.is_empty());
    assert_eq!(j.as_object().unwrap().len(), 2, "{j}");
    msg.to_string()
}

/// Sends `raw` on a fresh connection, expects an error `status` and then
/// the server closing the connection. Returns the response.
fn raw_error_then_close(addr: SocketAddr, raw: &[u8], status: u16) -> Response {
    let mut c = Conn::connect(addr);
    c.write(raw);
    let r = c.read_response();
    check_error(&r, status);
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    c.expect_eof();
    r
}

/// Request errors (routing) without a body: the reply's Connection header
/// must match what the server does next.
fn route_error(addr: SocketAddr, raw: &[u8], status: u16) -> Response {
    let mut c = Conn::connect(addr);
    c.write(raw);
    let r = c.read_response();
    check_error(&r, status);
    match r.header("connection") {
        Some("close") => c.expect_eof(),
        Some("keep-alive") => {
            // Still usable.
            c.write(b"GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            assert_eq!(c.read_response().status, 200);
            c.expect_eof();
        }
        other => panic!("Connection: {other:?}"),
    }
    r
}

/// A subscriber connected before the bad requests must still get a message
/// published after them.
fn bystander_still_served(addr: SocketAddr, mut sse: SseClient) {
    let id = id_of(&publish(addr, "bystander", b"still alive"));
    let ev = sse.event();
    assert_eq!(
        (ev.last_id, ev.data),
        (id.to_string(), "still alive".into())
    );
}

#[test]
fn malformed_requests_are_400_and_close() {
    let server = start();
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/bystander");
    for raw in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /status HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET /status HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST /pub?id=x HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /pub?id=x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST /pub?id=x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /pub?id=x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        // Bad chunked framing: bare LF, non-hex size, missing CRLF after data.
        b"POST /pub?id=x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
        b"POST /pub?id=x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        b"POST /pub?id=x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
    ] {
        raw_error_then_close(addr, raw, 400);
    }
    // Nothing was published by any of them.
    assert_eq!(status(addr)["published_messages"], 0);
    bystander_still_served(addr, sse);
}

#[test]
fn bad_channel_ids_are_400() {
    let server = start();
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/bystander");
    let long = "x".repeat(129);
    let ok128 = "y".repeat(128);
    for path in [
        "/ev/bad!id".to_string(),
        "/sub/sp%20ace".to_string(),
        format!("/ev/{long}"),
        "/ev/a//b".to_string(),
        "/ev/".to_string(),
        "/status?id=no%20pe".to_string(),
        "/pub?id=bad*".to_string(),
        "/pub".to_string(),
    ] {
        let r = call(agent().get(&url(addr, &path)));
        assert_eq!(r.status(), 400, "GET {path}");
        let j = json_of(r);
        assert_eq!(j["status"], 400, "GET {path}: {j}");
        assert!(j["error"].is_string());
    }
    for q in ["bad*", "a/", "/a", "a//b", "", &long] {
        let r = send(agent().post(&url(addr, &format!("/pub?id={q}"))), b"x");
        assert_eq!(r.status(), 400, "POST /pub?id={q}");
        assert_eq!(json_of(r)["status"], 400);
    }
    // Over raw TCP, too, to see the connection handling.
    let r = route_error(addr, b"GET /ev/b%21d HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    assert!(check_error(&r, 400).contains("invalid channel id"));
    // With a body the connection is closed (the body is not read).
    raw_error_then_close(
        addr,
        b"POST /pub?id=b@d! HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
        400,
    );
    // Limits are inclusive: 128 characters and every allowed symbol work.
    publish(addr, &ok128, b"x");
    publish(addr, "A-z_0.9:x@y", b"x");
    assert_eq!(status(addr)["published_messages"], 2);
    bystander_still_served(addr, sse);
}

#[test]
fn unknown_path_is_404() {
    let server = start();
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/bystander");
    for path in [
        "/",
        "/nope",
        "/pubx?id=a",
        "/ev",
        "/status/x",
        "/favicon.ico",
    ] {
        let r = call(agent().get(&url(addr, path)));
        assert_eq!(r.status(), 404, "GET {path}");
        assert_eq!(json_of(r)["status"], 404);
    }
    route_error(addr, b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 404);
    route_error(addr, b"OPTIONS /nope HTTP/1.1\r\nHost: t\r\n\r\n", 404);
    // Unknown channel on GET /pub and /status?id= is 404 too.
    route_error(addr, b"GET /pub?id=none HTTP/1.1\r\nHost: t\r\n\r\n", 404);
    route_error(
        addr,
        b"GET /status?id=none HTTP/1.1\r\nHost: t\r\n\r\n",
        404,
    );
    bystander_still_served(addr, sse);
}

#[test]
fn wrong_method_is_405_with_allow() {
    let server = start();
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/bystander");
    for (raw, allow) in [
        (
            &b"PATCH /pub?id=a HTTP/1.1\r\nHost: t\r\n\r\n"[..],
            "GET, POST, PUT, DELETE, OPTIONS",
        ),
        (b"POST /status HTTP/1.1\r\nHost: t\r\n\r\n", "GET, OPTIONS"),
        (
            b"DELETE /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
            "GET, OPTIONS",
        ),
        (b"POST /ev/a HTTP/1.1\r\nHost: t\r\n\r\n", "GET, OPTIONS"),
        (b"PUT /sub/a HTTP/1.1\r\nHost: t\r\n\r\n", "GET, OPTIONS"),
    ] {
        let r = route_error(addr, raw, 405);
        assert_eq!(r.header("allow"), Some(allow), "{r:?}");
    }
    // With a body: answered, then closed.
    let r = raw_error_then_close(
        addr,
        b"POST /status HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
        405,
    );
    assert_eq!(r.header("allow"), Some("GET, OPTIONS"));
    // ureq agrees.
    let r = send(agent().post(&url(addr, "/ev/a")), b"x");
    assert_eq!(r.status(), 405);
    assert_eq!(r.header("allow"), Some("GET, OPTIONS"));
    bystander_still_served(addr, sse);
}

#[test]
fn body_over_max_message_size_is_413() {
    let server = start_with(4, |c| c.max_message_size = 1000);
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/bystander");
    // Declared length over the limit: refused from the head alone.
    raw_error_then_close(
        addr,
        b"POST /pub?id=big HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n",
        413,
    );
    raw_error_then_close(
        addr,
        b"POST /pub?id=big HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        413,
    );
    // Chunked body growing past the limit.
    let mut raw =
        b"POST /pub?id=big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        raw.extend_from_slice(b"190\r\n");
        raw.extend_from_slice(&[b'z'; 400]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw_error_then_close(addr, &raw, 413);
    // Exactly at the limit is fine.
    let r = send(agent().post(&url(addr, "/pub?id=big")), &[b'k'; 1000]);
    assert_eq!(r.status(), 200);
    let mut c = Conn::connect(addr);
    let mut raw =
        b"POST /pub?id=big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..2 {
        raw.extend_from_slice(b"1f4\r\n");
        raw.extend_from_slice(&[b'z'; 500]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    c.write(&raw);
    assert_eq!(c.read_response().status, 200);
    assert_eq!(status(addr)["published_messages"], 2);
    bystander_still_served(addr, sse);
}

#[test]
fn body_over_limit_sent_in_full_still_gets_413() {
    // A client that sends the whole oversized body at once (no
    // Expect: 100-continue) must still be able to read the 413.
    let server = start_with(2, |c| c.max_message_size = 1000);
    let addr = server.addr();
    let mut c = Conn::connect(addr);
    let mut raw =
        b"POST /pub?id=big HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n".to_vec();
    raw.extend_from_slice(&vec![b'z'; 200_000]);
    // The server may stop reading; ignore write errors.
    let _ = c.try_write(&raw);
    let r = c.read_response();
    check_error(&r, 413);
}

#[test]
fn head_over_max_header_bytes_is_431() {
    let server = start_with(4, |c| c.max_header_bytes = 1024);
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/bystander");
    let big = "v".repeat(2000);
    // One huge header, complete head.
    raw_error_then_close(
        addr,
        format!("GET /status HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n").as_bytes(),
        431,
    );
    // Head never finished but already over the limit.
    raw_error_then_close(
        addr,
        format!("GET /status HTTP/1.1\r\nX-Big: {big}").as_bytes(),
        431,
    );
    // Too many header fields.
    let mut many = String::from("GET /status HTTP/1.1\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    raw_error_then_close(addr, many.as_bytes(), 431);
    // Just under the limit is fine.
    let pad = "p".repeat(900);
    let mut c = Conn::connect(addr);
    c.write(format!("GET /status HTTP/1.1\r\nHost: t\r\nX-Pad: {pad}\r\n\r\n").as_bytes());
    assert_eq!(c.read_response().status, 200);
    bystander_still_served(addr, sse);
}

#[test]
fn unsupported_transfer_encoding_is_501() {
    let server = start();
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/bystander");
    for te in ["gzip", "gzip, chunked", "chunked, chunked", "identity"] {
        let r = raw_error_then_close(
            addr,
            format!(
                "POST /pub?id=x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n"
            )
            .as_bytes(),
            501,
        );
        let _ = r;
    }
    assert_eq!(status(addr)["published_messages"], 0);
    bystander_still_served(addr, sse);
}

#[test]
fn websocket_path_without_upgrade_is_400() {
    let server = start();
    let addr = server.addr();
    let r = call(agent().get(&url(addr, "/ws/a")));
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r)["status"], 400);
}

#[test]
fn many_bad_clients_at_once_do_not_disturb_subscribers() {
    let server = start();
    let addr = server.addr();
    let mut subs: Vec<SseClient> = (0..8)
        .map(|_| SseClient::connect(addr, "/ev/bystander"))
        .collect();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let raw: &[u8] = match i % 4 {
                    0 => b"\x00\x01\x02 nonsense\r\n\r\n",
                    1 => b"POST /pub?id=x HTTP/1.1\r\nTransfer-Encoding: br\r\n\r\n",
                    2 => b"GET /ev/!!! HTTP/1.1\r\nConnection: close\r\n\r\n",
                    _ => b"POST /pub?id=x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffff\r\n",
                };
                let mut c = Conn::connect(addr);
                c.write(raw);
                let r = c.read_response();
                assert!(r.status >= 400, "{r:?}");
                c.expect_eof();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let id = id_of(&publish(addr, "bystander", b"after the storm"));
    for s in &mut subs {
        let ev = s.event();
        assert_eq!(
            (ev.last_id, ev.data),
            (id.to_string(), "after the storm".into())
        );
    }
    poll_status(addr, "bad clients gone", |s| {
        s["connections"]["http"] == 1 && s["connections"]["eventsource"] == 8
    });
}

#[test]
fn large_body_over_limit_gets_413_while_client_still_sends() {
    // Like a real client: keeps sending the body in one thread and reads
    // the reply in another. The 413 must arrive before the connection dies.
    let server = start_with(2, |c| c.max_message_size = 1000);
    let addr = server.addr();
    let mut c = Conn::connect(addr);
    let mut writer = c.stream.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        use std::io::Write;
        let _ = writer
            .write_all(b"POST /pub?id=big HTTP/1.1\r\nHost: t\r\nContent-Length: 4000000\r\n\r\n");
        let chunk = vec![b'z'; 64 * 1024];
        for _ in 0..61 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let r = c.read_response();
    check_error(&r, 413);
    t.join().unwrap();
}
