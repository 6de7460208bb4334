//! Behaviour under pressure and less common paths: stalled subscribers,
//! publishers that do not read their replies, resume, large messages,
//! shutdown.

mod common;

use common::*;
use std::io::Write;

#[test]
fn stalled_subscriber_does_not_hold_back_others() {
    // Room for the whole burst, so the readers below (which read one
    // message at a time while the publisher runs ahead) are never counted
    // as slow consumers; tests/liveness.rs covers the cap itself.
    let server = start_with(2, |c| c.max_queued_bytes = 16 << 20);
    let addr = server.addr();
    // Subscribed, never reads.
    let stalled: Vec<StreamClient> = (0..2)
        .map(|_| StreamClient::connect(addr, "/sub/big"))
        .collect();
    let mut fast = StreamClient::connect(addr, "/sub/big");
    let mut sse = SseClient::connect(addr, "/ev/big");
    let payload = vec![b'q'; 256 * 1024];
    let publisher = std::thread::spawn(move || {
        for _ in 0..24 {
            publish(addr, "big", &payload);
        }
        publish(addr, "big", b"done");
    });
    for i in 0..24 {
        let c = fast.chunk();
        assert_eq!(c.len(), 256 * 1024 + 1, "message {i}");
        assert!(c[..256 * 1024].iter().all(|&b| b == b'q'));
        let ev = sse.event();
        assert_eq!(ev.data.len(), 256 * 1024, "message {i}");
    }
    assert_eq!(fast.chunk(), b"done\n");
    assert_eq!(sse.event().data, "done");
    publisher.join().unwrap();
    // The server still answers; the stalled readers may have been dropped
    // as slow consumers (how soon depends on the kernel's socket buffers).
    let streams = status(addr)["connections"]["stream"].as_u64().unwrap();
    assert!((1..=3).contains(&streams), "stream connections {streams}");
    drop(stalled);
}

#[test]
fn publisher_that_does_not_read_replies_is_paused_not_lost() {
    const N: usize = 3000;
    let server = start_with(2, |_| {});
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/flood");
    let mut c = Conn::connect(addr);
    let mut writer = c.stream.try_clone().unwrap();
    let w = std::thread::spawn(move || {
        let mut all = Vec::new();
        for i in 0..N {
            let body = format!("f{i}");
            all.extend_from_slice(
                format!(
                    "POST /pub?id=flood HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
        writer.write_all(&all).unwrap();
    });
    // Let replies pile up before reading any: wait until the server has
    // published the whole flood, or has stopped making progress (it stops
    // reading a publisher whose unread replies reach the cap).
    let mut previous = None;
    let piled_up = poll_until("the flood published or paused", || {
        let n = num(&status(addr), "/published_messages");
        let settled = n == N as u64 || (n > 0 && previous == Some(n));
        previous = Some(n);
        if settled {
            Ok(n)
        } else {
            Err(format!("published_messages {n}"))
        }
    });
    println!("{piled_up} of {N} published before the first reply was read");
    let mut last = 0;
    for i in 0..N {
        let r = c.read_response();
        assert_eq!(r.status, 200, "reply {i}");
        let id = id_of(&r.json());
        assert!(id > last);
        last = id;
    }
    w.join().unwrap();
    for i in 0..N {
        assert_eq!(sse.event().data, format!("f{i}"));
    }
}

#[test]
fn last_event_id_resumes_from_history() {
    let server = start();
    let addr = server.addr();
    let ids: Vec<u64> = (0..4)
        .map(|i| id_of(&publish(addr, "hist", format!("h{i}").as_bytes())))
        .collect();
    let mut sse =
        SseClient::connect_with(addr, "/ev/hist", &format!("Last-Event-ID: {}\r\n", ids[1]));
    for (i, id) in ids.iter().enumerate().skip(2) {
        let ev = sse.event();
        assert_eq!((ev.last_id, ev.data), (id.to_string(), format!("h{i}")));
    }
    // Then live messages, without duplicates.
    let live = id_of(&publish(addr, "hist", b"live"));
    let ev = sse.event();
    assert_eq!((ev.last_id, ev.data), (live.to_string(), "live".into()));

    // Query-string form, on a stream.
    let mut s = StreamClient::connect(addr, &format!("/sub/hist?last_event_id={}", ids[2]));
    assert_eq!(s.chunk(), b"h3\n");
    assert_eq!(s.chunk(), b"live\n");
}

#[test]
fn backtrack_replays_the_last_messages() {
    let server = start();
    let addr = server.addr();
    for i in 0..5 {
        publish(addr, "bt", format!("b{i}").as_bytes());
    }
    let mut sse = SseClient::connect(addr, "/ev/bt.b2");
    assert_eq!(sse.event().data, "b3");
    assert_eq!(sse.event().data, "b4");
    publish(addr, "bt", b"b5");
    assert_eq!(sse.event().data, "b5");
}

#[test]
fn message_of_max_size_reaches_every_transport() {
    let server = start_with(2, |c| c.max_message_size = 512 * 1024);
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/max");
    let mut stream = StreamClient::connect(addr, "/sub/max");
    let body: Vec<u8> = (0..512 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    publish(addr, "max", &body);
    let ev = sse.event();
    assert_eq!(ev.data.as_bytes(), &body[..]);
    let c = stream.chunk();
    assert_eq!(&c[..body.len()], &body[..]);
    assert_eq!(c.len(), body.len() + 1);
}

#[test]
fn subscribe_pipelined_after_publish_on_one_connection() {
    let server = start();
    let addr = server.addr();
    let mut c = Conn::connect(addr);
    c.write(b"POST /pub?id=pp HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirstGET /sub/pp HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    let head = c.read_head();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    let mut s = StreamClient { conn: c, head };
    publish(addr, "pp", b"second");
    assert_eq!(s.chunk(), b"second\n");
}

#[test]
fn shutdown_closes_subscribers() {
    let server = start();
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/bye");
    let mut stream = StreamClient::connect(addr, "/sub/bye");
    publish(addr, "bye", b"last words");
    assert_eq!(sse.event().data, "last words");
    assert_eq!(stream.chunk(), b"last words\n");
    server.shutdown();
    sse.expect_end();
    // The stream ends: either a clean last chunk or a plain close.
    let rest = stream.conn.read_to_eof();
    assert!(rest.is_empty() || rest == b"0\r\n\r\n", "{rest:?}");
    assert!(std::net::TcpStream::connect(addr).is_err());
}
