//! The publish side of HTTP/1.1: chunked bodies, pipelining,
//! `Expect: 100-continue`, keep-alive reuse.

mod common;

use common::*;
use std::time::Duration;

fn post(channel: &str, body: &str) -> String {
    format!(
        "POST /pub?id={channel} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn chunked_publish_with_extensions_and_trailers() {
    let server = start();
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/ch");
    let mut stream = StreamClient::connect(addr, "/sub/ch");

    let before = requests_so_far(addr);
    let mut c = Conn::connect(addr);
    // Written in pieces, split inside the framing, to exercise the
    // incremental decoder. The body starts only once the head has been
    // parsed; the rest is paced (best effort, nothing to poll for) so the
    // pieces tend to arrive in separate reads.
    c.write(b"PUT /pub?id=ch HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nEvent-Type: ck\r\n\r\n");
    wait_requests_parsed(addr, before, 1);
    let pieces: &[&[u8]] = &[
        b"5;name=value\r\nhel",
        b"lo\r\n",
        b"1",
        b"0 ; q=\"quoted\"\r\n, chunked wo",
        b"rld!\r\nA\r\n\nline\r\nend\r\n0\r\nX-Trailer: yes\r\nX-Other: 1\r\n",
        b"\r\n",
    ];
    for p in pieces {
        c.write(p);
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["channel"], "ch");
    assert_eq!(j["subscribers"], 2);
    let id = id_of(&j);

    let payload = "hello, chunked world!\nline\r\nend";
    let ev = sse.event();
    assert_eq!(ev.kind, "ck");
    assert_eq!(ev.last_id, id.to_string());
    assert_eq!(ev.data, "hello, chunked world!\nline\nend");
    assert_eq!(stream.chunk(), format!("{payload}\n").as_bytes());

    // The connection is still usable: a second chunked publish in one write.
    c.write(b"POST /pub?id=ch HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert!(id_of(&r.json()) > id);
    assert_eq!(sse.event().data, "abc");
    assert_eq!(stream.chunk(), b"abc\n");
}

#[test]
fn pipelined_publishes_are_answered_in_order() {
    let server = start();
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/pipe");
    let mut c = Conn::connect(addr);
    let mut batch = String::new();
    for i in 0..10 {
        if i % 3 == 1 {
            // Mix in chunked bodies.
            let body = format!("p{i}");
            batch.push_str(&format!(
                "POST /pub?id=pipe HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            ));
        } else {
            batch.push_str(&post("pipe", &format!("p{i}")));
        }
    }
    c.write(batch.as_bytes());
    let mut ids = Vec::new();
    for i in 0..10 {
        let r = c.read_response();
        assert_eq!(r.status, 200, "reply {i}: {}", r.text());
        let j = r.json();
        assert_eq!(j["published_messages"], i + 1, "reply {i}: {j}");
        ids.push(id_of(&j));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for (i, id) in ids.iter().enumerate() {
        let ev = sse.event();
        assert_eq!((ev.last_id, ev.data), (id.to_string(), format!("p{i}")));
    }

    // Pipelined mixed requests, the last one closing the connection.
    c.write(
        format!(
            "GET /pub?id=pipe HTTP/1.1\r\nHost: t\r\n\r\n{}GET /status?id=pipe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            post("pipe", "last")
        )
        .as_bytes(),
    );
    let info = c.read_response();
    assert_eq!(info.status, 200);
    assert_eq!(info.json()["published_messages"], 10);
    let r = c.read_response();
    assert_eq!(r.status, 200);
    let last = id_of(&r.json());
    let st = c.read_response();
    assert_eq!(st.status, 200);
    assert_eq!(st.header("connection"), Some("close"));
    assert_eq!(st.json()["id"], last.to_string());
    c.expect_eof();
}

#[test]
fn expect_100_continue() {
    let server = start();
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/ex");
    let mut c = Conn::connect(addr);

    c.write(
        b"POST /pub?id=ex HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n",
    );
    assert_eq!(c.exact(25), b"HTTP/1.1 100 Continue\r\n\r\n");
    c.write(b"payload");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    let id = id_of(&r.json());
    let ev = sse.event();
    assert_eq!((ev.last_id, ev.data), (id.to_string(), "payload".into()));

    // Chunked with Expect, on the same connection.
    c.write(b"POST /pub?id=ex HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
    let head = c.read_head();
    assert_eq!(head.status, 100);
    c.write(b"2\r\nok\r\n0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(sse.event().data, "ok");

    // No body: no 100 Continue, straight to the final reply.
    c.write(
        b"POST /pub?id=ex HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(sse.event().data, "");

    // An over-limit body is refused before the client sends it.
    c.write(b"POST /pub?id=ex HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 413);
    c.expect_eof();
}

#[test]
fn keep_alive_connection_is_reused() {
    let server = start_with(1, |_| {});
    let addr = server.addr();
    let mut c = Conn::connect(addr);
    for i in 0..5 {
        c.write(post("ka", &format!("m{i}")).as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), Some("keep-alive"));
        c.write(b"GET /pub?id=ka HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["published_messages"], i + 1);
        c.write(b"GET /status HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    // Only one connection was ever accepted.
    let st = status(addr);
    assert_eq!(st["accepted_connections"], 2, "{st}");

    // HTTP/1.0 without keep-alive is closed after the reply...
    let mut c10 = Conn::connect(addr);
    c10.write(b"POST /pub?id=ka HTTP/1.0\r\nContent-Length: 1\r\n\r\nx");
    let r = c10.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    c10.expect_eof();
    // ...and kept with Connection: keep-alive.
    let mut c10 = Conn::connect(addr);
    c10.write(b"GET /pub?id=ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c10.read_response().status, 200);
    c10.write(b"GET /pub?id=ka HTTP/1.0\r\n\r\n");
    assert_eq!(c10.read_response().status, 200);
    c10.expect_eof();

    // Connection: close on HTTP/1.1.
    c.write(b"GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn publish_via_ureq_put_and_post() {
    let server = start();
    let addr = server.addr();
    let mut stream = StreamClient::connect(addr, "/sub/u");
    let r = send(agent().put(&url(addr, "/pub?id=u")), b"put-body");
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = send(agent().post(&url(addr, "/pub?id=u")), b"post-body");
    assert_eq!(r.status(), 200);
    assert_eq!(json_of(r)["published_messages"], 2);
    assert_eq!(stream.chunk(), b"put-body\n");
    assert_eq!(stream.chunk(), b"post-body\n");
}

#[test]
fn http10_stream_subscriber_is_close_delimited() {
    let server = start();
    let addr = server.addr();
    let mut c = Conn::connect(addr);
    c.write(b"GET /sub/old HTTP/1.0\r\n\r\n");
    let head = c.read_head();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), None);
    assert_eq!(head.header("connection"), Some("close"));
    publish(addr, "old", b"one");
    publish(addr, "old", b"two");
    assert_eq!(c.exact(8), b"one\ntwo\n");
}
