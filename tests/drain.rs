//! Graceful shutdown of the real binary on SIGTERM: every transport gets
//! its goodbye (SSE a jittered `retry:`, WebSocket close 1001, streams the
//! last chunk), a publish in progress completes, nothing new is accepted,
//! and the process exits 0 within the drain timeout.

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
