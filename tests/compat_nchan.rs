//! `--compat nchan` end to end: the answers Nchan's clients parse, byte
//! for byte. The expected bytes were recorded from Nchan 1.3.6
//! (Debian's libnginx-mod-nchan) with the same requests; crier's own
//! `Cache-Control`/CORS headers and nginx's `Server`/`Date` are the only
//! header lines that differ, and ids are crier's (`TIME:ID`).

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;

fn nchan(tweak: impl FnOnce(&mut crier::Config)) -> crier::Handle {
    start_with(2, |c| {
        c.compat = crier::Compat::Nchan;
        tweak(c);
    })
}

/// Waits until crier's own `/status?id=` counts `n` subscribers of `ch`.
fn wait_subs(addr: SocketAddr, ch: &str, n: u64) {
    poll_until(&format!("{n} subscribers on {ch}"), || {
        let r = raw_request(
            addr,
            &format!("GET /status?id={ch} HTTP/1.1\r\nHost: t\r\n\r\n"),
        );
        match r.status {
            200 if r.json()["subscribers"].as_u64() >= Some(n) => Ok(()),
            _ => Err(r.text()),
        }
    })
}

/// `TIME:ID` with both halves numeric; returns ID.
fn msg_id(text: &str) -> u64 {
    let (t, id) = text
        .split_once(':')
        .unwrap_or_else(|| panic!("id {text:?}"));
    assert!(t.parse::<u64>().is_ok(), "time part of {text:?}");
    id.parse().unwrap_or_else(|_| panic!("id part of {text:?}"))
}

#[test]
fn publish_answers_202_without_subscribers_and_201_with_channel_info() {
    let s = nchan(|_| {});
    let a = s.addr();
    let r = raw_post(a, "/pub?id=news", "", "hello");
    assert_eq!((r.status, r.reason.as_str()), (202, "Accepted"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let body = r.text();
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(
        lines[..3],
        [
            "queued messages: 1",
            "last requested: -1 sec. ago",
            "active subscribers: 0"
        ]
    );
    let id = lines[3].strip_prefix("last message id: ").expect("id line");
    msg_id(id);
    assert_eq!(lines.len(), 4, "no CRLF after the last line: {body:?}");

    let r = raw_post(a, "/pub/news", "Accept: text/json\r\n", "again");
    assert_eq!(r.header("content-type"), Some("text/json"));
    let v = r.json();
    assert_eq!(
        (
            v["messages"].as_u64(),
            v["requested"].as_i64(),
            v["subscribers"].as_u64()
        ),
        (Some(2), Some(-1), Some(0))
    );
    let text = r.text();
    assert!(
        text.starts_with(
            "{\"messages\": 2, \"requested\": -1, \"subscribers\": 0, \"last_message_id\": \""
        ),
        "{text}"
    );
    assert!(text.ends_with("\" }"), "{text}");

    let r = raw_post(a, "/pub/news", "Accept: application/xml\r\n", "x");
    assert_eq!(r.header("content-type"), Some("text/xml"));
    assert!(r.text().starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<channel>\r\n  <messages>3</messages>\r\n  <requested>-1</requested>\r\n"));
    let r = raw_post(a, "/pub/news", "Accept: text/yaml\r\n", "y");
    let yaml = r.text();
    assert!(
        yaml.starts_with("---\r\nmessages: 4\r\nrequested: -1\r\n") && yaml.ends_with("\"\r\n\r\n")
    );
    let last = yaml.split('"').nth(1).expect("quoted last_message_id");

    // A subscriber present: 201 Created.
    let mut sse = SseClient::connect(a, &format!("/sub/news?last_event_id={last}"));
    wait_subs(a, "news", 1);
    let r = raw_post(a, "/pub/news", "", "heard");
    assert_eq!((r.status, r.reason.as_str()), (201, "Created"));
    assert!(r
        .text()
        .contains("last requested: 0 sec. ago\r\nactive subscribers: 1\r\n"));
    let e = sse.event();
    assert_eq!(e.data, "heard");
}

#[test]
fn get_and_delete_on_the_publisher_location() {
    let s = nchan(|_| {});
    let a = s.addr();
    let r = raw_request(a, "GET /pub/nothing HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        (r.status, r.header("content-length"), r.body.len()),
        (404, Some("0"), 0)
    );
    let r = raw_post(a, "/pub/c", "", "m");
    let last = r
        .text()
        .rsplit("last message id: ")
        .next()
        .unwrap()
        .to_string();
    let r = raw_request(a, "GET /pub/c HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("queued messages: 1\r\n"));
    assert!(r.text().ends_with(&format!("last message id: {last}")));

    // Subscribers are told: long-poll 410, EventSource ":410: 410 Gone".
    let mut sse = SseClient::connect(a, &format!("/sub/c?last_event_id={last}"));
    let mut poller = Conn::connect(a);
    poller.write(
        format!(
            "GET /sub/c HTTP/1.1\r\nHost: t\r\nIf-None-Match: {}\r\n\r\n",
            msg_id(&last)
        )
        .as_bytes(),
    );
    wait_subs(a, "c", 2);
    let r = raw_request(a, "DELETE /pub/c HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(
        r.text().starts_with(
            "queued messages: 1\r\nlast requested: 0 sec. ago\r\nactive subscribers: 2\r\n"
        ),
        "{}",
        r.text()
    );
    let gone = poller.read_response();
    assert_eq!(
        (gone.status, gone.header("vary")),
        (410, Some("If-None-Match, If-Modified-Since"))
    );
    let rest = sse.conn.read_until_closed(Duration::from_secs(3));
    assert_eq!(rest, b":410: 410 Gone\n\n");
    let r = raw_request(a, "DELETE /pub/c HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 404);
}

#[test]
fn long_poll_walks_the_queue_one_message_at_a_time() {
    let s = nchan(|_| {});
    let a = s.addr();
    for m in ["m1", "m2", "m3"] {
        raw_post(a, "/pub/q", "Content-Type: text/plain\r\n", m);
    }
    let mut c = Conn::connect(a);
    // No position: nchan_subscriber_first_message's default, the oldest.
    let r = longpoll_on(&mut c, "/sub/q", "");
    assert_eq!((r.status, r.text().as_str()), (200, "m1"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("vary"), Some("If-None-Match, If-Modified-Since"));
    let mut got = vec![r.text()];
    let mut r = r;
    for _ in 0..2 {
        let lm = r.header("last-modified").unwrap().to_string();
        let etag = r.header("etag").unwrap().to_string();
        assert!(
            etag.parse::<u64>().is_ok(),
            "Etag is a bare number like Nchan's: {etag}"
        );
        r = longpoll_on(
            &mut c,
            "/sub/q",
            &format!("If-Modified-Since: {lm}\r\nIf-None-Match: {etag}\r\n"),
        );
        got.push(r.text());
    }
    assert_eq!(got, ["m1", "m2", "m3"]);
    // Caught up: the next poll waits, and a publish answers it.
    let lm = r.header("last-modified").unwrap().to_string();
    let etag = r.header("etag").unwrap().to_string();
    c.write(format!("GET /sub/q HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: {lm}\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes());
    wait_subs(a, "q", 1);
    raw_post(a, "/pub/q", "", "m4");
    let r = c.read_response();
    assert_eq!((r.status, r.text().as_str()), (200, "m4"));
    // The id NchanSubscriber.js builds from the headers resumes an
    // EventSource exactly after it.
    let secs = r.header("last-modified").unwrap();
    let id = format!("{}:{}", 0, r.header("etag").unwrap());
    assert!(!secs.is_empty());
    raw_post(a, "/pub/q", "", "m5");
    let mut sse = SseClient::connect(a, &format!("/sub/q?last_event_id={id}"));
    assert_eq!(sse.event().data, "m5");
}

#[test]
fn long_poll_times_out_with_408() {
    let s = nchan(|c| c.longpoll_timeout = 1);
    let mut c = Conn::connect(s.addr());
    let r = longpoll_on(&mut c, "/sub/quiet", "");
    assert_eq!((r.status, r.header("content-length")), (408, Some("0")));
    assert_eq!(r.header("vary"), Some("If-None-Match, If-Modified-Since"));
}

#[test]
fn eventsource_ids_events_and_resume() {
    let s = nchan(|_| {});
    let a = s.addr();
    raw_post(a, "/pub/e", "", "one");
    raw_post(a, "/pub/e", "X-EventSource-Event: score\r\n", "two");
    let mut sse = SseClient::connect(a, "/sub/e");
    let first = sse.event();
    assert_eq!(first.data, "one");
    let raw_first = String::from_utf8(first.raw.clone()).unwrap();
    assert!(
        raw_first.starts_with("id: ") && raw_first.ends_with("\ndata: one\n\n"),
        "{raw_first:?}"
    );
    let second = sse.event();
    assert_eq!(
        (second.kind.as_str(), second.data.as_str()),
        ("score", "two")
    );
    // Resuming with Last-Event-ID skips what was seen.
    raw_post(a, "/pub/e", "", "three");
    let mut again = SseClient::connect_with(
        a,
        "/sub/e",
        &format!("Last-Event-ID: {}\r\n", first.last_id),
    );
    assert_eq!(again.event().data, "two");
    assert_eq!(again.event().data, "three");
    msg_id(&first.last_id);
}

#[test]
fn first_message_newest_waits_for_the_next_message() {
    let s = nchan(|c| c.first_message = crier::FirstMessage::Live);
    let a = s.addr();
    raw_post(a, "/pub/n", "", "old");
    let mut sse = SseClient::connect(a, "/sub/n");
    wait_subs(a, "n", 1);
    raw_post(a, "/pub/n", "", "new");
    assert_eq!(sse.event().data, "new");
}

#[test]
fn websocket_ws_meta_nchan_frames_carry_ids() {
    let s = nchan(|_| {});
    let a = s.addr();
    raw_post(a, "/pub/w", "Content-Type: text/plain\r\n", "hello");
    let mut c = Conn::connect(a);
    c.write(
        b"GET /sub/w HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Protocol: ws+meta.nchan\r\n\r\n",
    );
    let head = c.read_head();
    assert_eq!(head.status, 101);
    assert_eq!(head.header("sec-websocket-protocol"), Some("ws+meta.nchan"));
    let hdr = c.exact(2);
    assert_eq!(hdr[0], 0x81, "text frame");
    let payload = String::from_utf8(c.exact(hdr[1] as usize)).unwrap();
    let (meta, data) = payload.split_once("\n\n").unwrap();
    assert_eq!(data, "hello");
    let mut lines = meta.lines();
    msg_id(lines.next().unwrap().strip_prefix("id: ").unwrap());
    assert_eq!(lines.next(), Some("content-type: text/plain"));
}

#[test]
fn pubsub_location_and_query_ids() {
    let s = nchan(|c| {
        c.nchan_publish_location = "/ps".into();
        c.nchan_subscribe_location = "/ps".into();
    });
    let a = s.addr();
    let r = raw_post(a, "/ps?id=echo", "", "x");
    assert_eq!(r.status, 202);
    let mut c = Conn::connect(a);
    let r = longpoll_on(&mut c, "/ps?id=echo", "");
    assert_eq!(r.text(), "x");
    let r = raw_request(a, "DELETE /ps/echo HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 405, "Nchan: no DELETE through a pubsub location");
    // crier's own API stays where Nchan's locations are not.
    let r = raw_request(a, "GET /status HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
}
