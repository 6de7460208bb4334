//! Graceful shutdown of the real binary on SIGTERM: every transport gets
//! its goodbye (SSE a jittered `retry:`, WebSocket close 1001, streams the
//! last chunk, a waiting long-poll a 503 with Retry-After), a publish in
//! progress completes, nothing new is accepted, and the process exits 0
//! within the drain timeout.

mod common;

use common::*;
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The `retry:` value of an SSE goodbye that is nothing but that field.
fn retry_of(goodbye: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(goodbye);
    text.strip_prefix("retry: ")
        .and_then(|r| r.strip_suffix("\n\n"))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("expected a lone retry field, got {text:?}"))
}

#[test]
fn sigterm_says_goodbye_on_every_transport_and_exits_zero() {
    let mut server = ChildServer::spawn(&[
        "--workers",
        "2",
        "--drain-timeout",
        "3",
        "--reconnect-spread",
        "5",
        "--retry-ms",
        "3000",
    ]);
    let addr = server.addr;
    let mut sse = SseClient::connect(addr, "/ev/dr");
    let mut sse2 = SseClient::connect(addr, "/ev/dr");
    let mut stream = StreamClient::connect(addr, "/sub/dr");
    let mut ws = ws_connect(addr, "/ws/dr");
    let mut idle = Conn::connect(addr);
    idle.publish("dr", b"before");
    assert_eq!(sse.event().data, "before");
    assert_eq!(sse2.event().data, "before");
    assert_eq!(stream.chunk(), b"before\n");
    assert_eq!(
        ws.read().unwrap(),
        tungstenite::Message::Text("before".into())
    );
    // A publish whose body is half sent when the signal comes: its head
    // has been parsed (the server counts the request) before the signal.
    let before = requests_so_far(addr);
    let mut partial = Conn::connect(addr);
    partial.write(b"POST /pub?id=other HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf-");
    wait_requests_parsed(addr, before, 1);

    let t = Instant::now();
    server.signal(libc::SIGTERM);

    // SSE: a jittered retry in [retry-ms, retry-ms + spread], then EOF.
    let r1 = retry_of(&sse.conn.read_until_closed(Duration::from_secs(3)));
    let r2 = retry_of(&sse2.conn.read_until_closed(Duration::from_secs(3)));
    println!(
        "SSE goodbyes: retry {r1} and {r2} ms (after {:?})",
        t.elapsed()
    );
    for r in [r1, r2] {
        assert!((3000..=8000).contains(&r), "retry {r}");
    }
    // Stream: the last chunk, then EOF.
    assert_eq!(stream.next_chunk(), None, "last chunk");
    stream.conn.expect_eof();
    // WebSocket: close 1001 (going away).
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(frame))) => {
            assert_eq!(
                frame.code,
                tungstenite::protocol::frame::coding::CloseCode::Away
            );
        }
        other => panic!("expected close 1001, got {other:?}"),
    }
    // An idle keep-alive connection is simply closed.
    let got = idle.read_until_closed(Duration::from_secs(3));
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));

    // Nothing new is accepted: refused, or closed without an answer.
    match TcpStream::connect(addr) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(s) => {
            let mut c = Conn::from_stream(s);
            let _ = c.try_write(b"GET /status HTTP/1.1\r\nHost: t\r\n\r\n");
            let got = c.read_until_closed(Duration::from_secs(3));
            assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
        }
    }

    // The publish in progress completes, and its connection then closes.
    partial.write(b"done!");
    let r = partial.read_response();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    partial.expect_eof();

    expect_clean_exit(&mut server, t);
}

#[test]
fn sigterm_with_a_subscriber_that_reads_nothing_still_exits_by_the_drain_timeout() {
    let mut server = ChildServer::spawn(&[
        "--workers",
        "1",
        "--drain-timeout",
        "3",
        "--max-queued-bytes",
        "16777216",
    ]);
    let addr = server.addr;
    // Never reads: a few megabytes queued in front of its goodbye.
    let mut stalled = Conn::from_stream(connect_small_rcvbuf(addr, 1024));
    stalled.write(b"GET /ev/st HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut ctl = Conn::connect(addr);
    poll_until("subscribed", || {
        let s = ctl.status();
        if num(&s, "/subscribers") == 1 {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
    let body = vec![b's'; 256 << 10];
    for _ in 0..16 {
        ctl.publish("st", &body);
    }
    let s = ctl.status();
    assert_eq!(num(&s, "/slow_consumers"), 0, "{s}");
    drop(ctl);

    let t = Instant::now();
    server.signal(libc::SIGTERM);
    expect_clean_exit(&mut server, t);
    drop(stalled);
}

/// A long-poll waiting when the signal comes is answered with a real HTTP
/// response before its connection closes: 503 with `Retry-After` and the
/// usual JSON error body (not an SSE `retry:` field, which a long-poll
/// client cannot parse).
#[test]
fn sigterm_answers_a_waiting_longpoll_with_503_and_retry_after() {
    let mut server = ChildServer::spawn(&[
        "--workers",
        "2",
        "--drain-timeout",
        "3",
        "--longpoll-timeout",
        "30",
    ]);
    let addr = server.addr;
    // No message on the channel: the poll waits (for up to 30 s).
    let mut lp = Conn::connect(addr);
    lp.write(b"GET /lp/lpdr HTTP/1.1\r\nHost: t\r\n\r\n");
    poll_status(addr, "the long-poll waiting", |s| {
        num(s, "/connections/longpoll") == 1
    });

    let t = Instant::now();
    server.signal(libc::SIGTERM);
    // Everything it gets until the server closes the connection.
    let got = lp.read_until_closed(Duration::from_secs(3) + SLACK);
    println!(
        "long-poll got {:?} ({:?} after SIGTERM)",
        String::from_utf8_lossy(&got),
        t.elapsed()
    );
    let r = Response::parse(&got)
        .unwrap_or_else(|e| panic!("a waiting long-poll must get an HTTP response: {e}"));
    assert_eq!(r.status, 503, "{r:?}");
    let retry_after = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {r:?}"));
    let secs: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {retry_after:?} is not whole seconds"));
    assert!(secs >= 1, "Retry-After {secs}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    assert_eq!(r.header("connection"), Some("close"), "{r:?}");
    let v = r.json();
    assert_eq!(v["status"], 503, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    expect_clean_exit(&mut server, t);
}

/// Waits for the server to exit after the signal sent at `signalled`;
/// asserts exit status 0 by the drain timeout (3 s in these tests, plus
/// [`SLACK`]).
fn expect_clean_exit(server: &mut ChildServer, signalled: Instant) {
    let by = Duration::from_secs(3) + SLACK;
    let status = server.wait_exit(by.saturating_sub(signalled.elapsed()));
    let took = signalled.elapsed();
    println!("exited {status:?} {took:?} after SIGTERM");
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running {took:?} after SIGTERM; log:\n{}",
            server.log()
        )
    });
    assert!(status.success(), "{status:?}; log:\n{}", server.log());
}
