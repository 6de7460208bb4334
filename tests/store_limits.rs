//! The history store's limits and the hub's: per-channel count cap, message
//! TTL, global byte budget, idle-channel collection, DELETE, and the
//! channel/subscriber/subscription limits (429/400 with a JSON body).

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Headers that make a raw GET a valid WebSocket opening handshake.
const WS_UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// One raw `GET path` (with extra header lines) on a fresh connection.
fn get_raw(addr: SocketAddr, path: &str, extra: &str) -> Response {
    let mut c = Conn::connect(addr);
    c.write(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
    c.read_response()
}

/// Asserts a JSON error response with `status`.
fn assert_json_error(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {r:?} {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
    let v = r.json();
    assert_eq!(v["status"], status, "{what}: {v}");
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {v}"
    );
}

/// Publishes and returns (status, body JSON).
fn try_publish(addr: SocketAddr, channels: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let r = send(
        agent().post(&url(addr, &format!("/pub?id={channels}"))),
        body,
    );
    (r.status(), json_of(r))
}

/// (id, data) of the next SSE event, which must be a message.
fn next_msg(sse: &mut SseClient) -> (u64, String) {
    let ev = sse.event();
    assert_eq!(ev.kind, "message", "{ev:?}");
    (ev.last_id.parse().expect("numeric id"), ev.data)
}

fn publish_n(addr: SocketAddr, ch: &str, prefix: &str, n: usize) -> Vec<(u64, String)> {
    (0..n)
        .map(|i| {
            let body = format!("{prefix}{i}");
            (id_of(&publish(addr, ch, body.as_bytes())), body)
        })
        .collect()
}

#[test]
fn store_messages_caps_each_channel() {
    let server = start_with(2, |c| c.store_messages = 3);
    let addr = server.addr();
    let a = publish_n(addr, "a", "a", 5);
    let b = publish_n(addr, "b", "b", 2);
    assert_eq!(channel_info(addr, "a").unwrap()["stored_messages"], 3);
    assert_eq!(channel_info(addr, "b").unwrap()["stored_messages"], 2);
    assert_eq!(channel_info(addr, "a").unwrap()["published_messages"], 5);
    let s = status(addr);
    assert_eq!(s["stored_messages"], 5);
    assert!(s["stored_bytes"].as_u64().unwrap() > 0);

    let mut sse = SseClient::connect(addr, "/ev/a.b10/b.b10");
    let mut expected: Vec<(u64, String)> = a[2..].iter().chain(&b).cloned().collect();
    expected.sort();
    for m in &expected {
        assert_eq!(&next_msg(&mut sse), m);
    }
}

#[test]
fn store_messages_zero_keeps_nothing_and_resume_reports_missed() {
    let server = start_with(1, |c| c.store_messages = 0);
    let addr = server.addr();
    let ids = publish_n(addr, "news", "m", 3);
    let s = status(addr);
    assert_eq!(s["stored_messages"], 0);
    assert_eq!(s["stored_bytes"], 0);
    let first = ids[0].0;
    let mut sse = SseClient::connect_with(addr, "/ev/news", &format!("Last-Event-ID: {first}\r\n"));
    let ev = sse.event();
    assert_eq!(
        (ev.kind.as_str(), ev.data.as_str()),
        ("missed", first.to_string().as_str())
    );
    let marker = publish_n(addr, "news", "marker", 1);
    assert_eq!(next_msg(&mut sse), marker[0]);
}

#[test]
fn message_ttl_expires_history_and_resume_reports_missed() {
    let server = start_with(2, |c| {
        c.message_ttl = 1;
        c.longpoll_timeout = 1;
    });
    let addr = server.addr();
    // Expiry must come from reactor 0's once-a-second upkeep with no
    // traffic to wake it: the publishes and the polling below all go over
    // one connection that another reactor serves.
    let mut ctl = conn_avoiding_reactor(addr, 0);
    let mut msgs = Vec::new();
    let mut last_sent = Instant::now();
    for i in 0..3 {
        let body = format!("m{i}");
        last_sent = Instant::now();
        msgs.push((id_of(&ctl.publish("news", body.as_bytes())), body));
    }
    let s = ctl.status();
    assert_eq!(s["stored_messages"], 3);

    // TTL 1 s, then the next upkeep (at most a second later).
    let s = poll_until_within(
        Duration::from_secs(2) + SLACK,
        "the TTL to expire history",
        || {
            let s = ctl.status();
            if s["stored_messages"] == 0 {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    );
    let age = last_sent.elapsed();
    println!("history expired {age:?} after the last publish");
    assert!(
        age >= Duration::from_millis(900),
        "expired {age:?} after the last publish, with message-ttl 1 s: {s}"
    );
    assert_eq!(s["stored_bytes"], 0, "{s}");
    // (messages_expired: see status_reports_expiry_and_collection_counters)
    assert_eq!(channel_info(addr, "news").unwrap()["stored_messages"], 0);

    let first = msgs[0].0;
    // SSE: the missed event, no replay, then live.
    let mut sse = SseClient::connect_with(addr, "/ev/news", &format!("Last-Event-ID: {first}\r\n"));
    let ev = sse.event();
    assert_eq!(
        (ev.kind.as_str(), ev.data.as_str()),
        ("missed", first.to_string().as_str())
    );
    // WebSocket JSON: the missed envelope.
    let mut ws =
        WsJsonClient::connect(addr, &format!("/ws/news?format=json&last_event_id={first}"));
    let v = ws.next_json();
    assert_eq!(v["event"], "missed", "{v}");
    assert_eq!(v["last_event_id"], first.to_string());
    // Long-poll: answered at once, missed, no messages.
    let r = get_raw(addr, "/lp/news", &format!("Last-Event-ID: {first}\r\n"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-missed-messages"), Some("true"));
    let body = r.json();
    assert_eq!(body["missed"], true);
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(0));

    let marker = publish_n(addr, "news", "marker", 1);
    assert_eq!(next_msg(&mut sse), marker[0]);
    let v = ws.next_json();
    assert_eq!(v["data"], "marker0", "{v}");

    // Resuming from the newest expired id lost nothing: no missed signal.
    let last = msgs[2].0;
    let mut sse = SseClient::connect_with(addr, "/ev/news", &format!("Last-Event-ID: {last}\r\n"));
    assert_eq!(next_msg(&mut sse), marker[0]);
}

#[test]
fn store_max_bytes_evicts_the_oldest_first() {
    // The cost of one 1000-byte message, measured on a scratch server.
    let cost = {
        let probe = start_with(1, |_| {});
        publish(probe.addr(), "x", &[b'x'; 1000]);
        status(probe.addr())["stored_bytes"].as_u64().unwrap()
    };
    assert!(cost >= 1000);
    let budget = 3 * cost + 50;
    let server = start_with(2, |c| c.store_max_bytes = budget as usize);
    let addr = server.addr();
    let mut msgs = Vec::new();
    for i in 0..10 {
        let body = format!("{i:0>1000}");
        msgs.push((id_of(&publish(addr, "news", body.as_bytes())), body));
        let s = status(addr);
        let bytes = s["stored_bytes"].as_u64().unwrap();
        assert!(bytes <= budget, "after {i}: {bytes} > {budget}");
        assert_eq!(s["stored_messages"], (i + 1).min(3), "after {i}: {s}");
    }
    // A small message on another channel pushes out the globally oldest.
    let other = (
        id_of(&publish(addr, "other", b"small")),
        "small".to_string(),
    );
    assert_eq!(channel_info(addr, "news").unwrap()["stored_messages"], 2);
    assert!(status(addr)["stored_bytes"].as_u64().unwrap() <= budget);

    // The newest are still replayable; resuming from before them is a gap.
    let mut sse = SseClient::connect_with(
        addr,
        "/ev/news/other",
        &format!("Last-Event-ID: {}\r\n", msgs[8].0),
    );
    assert_eq!(next_msg(&mut sse), msgs[9]);
    assert_eq!(next_msg(&mut sse), other);
    let mut sse = SseClient::connect_with(
        addr,
        "/ev/news",
        &format!("Last-Event-ID: {}\r\n", msgs[0].0),
    );
    assert_eq!(sse.event().kind, "missed");
    assert_eq!(next_msg(&mut sse), msgs[8]);
    assert_eq!(next_msg(&mut sse), msgs[9]);
}

#[test]
fn idle_channels_are_collected_after_channel_idle_ttl() {
    let server = start_with(2, |c| c.channel_idle_ttl = 1);
    let addr = server.addr();
    publish(addr, "kept", b"stored");
    let sse = SseClient::connect(addr, "/ev/gc");
    assert_eq!(status(addr)["channels"], 2);
    drop(sse);
    poll_until("the subscriber gone", || match channel_info(addr, "gc") {
        Some(v) if v["subscribers"] == 0 => Ok(()),
        other => Err(format!("{other:?}")),
    });
    // Idle now, but younger than the TTL: still there.
    assert!(channel_info(addr, "gc").is_some());
    poll_until("gc collected", || match channel_info(addr, "gc") {
        None => Ok(()),
        Some(v) => Err(v.to_string()),
    });
    let s = status(addr);
    assert_eq!(s["channels"], 1, "{s}");
    // A channel with stored messages is not idle.
    assert_eq!(channel_info(addr, "kept").unwrap()["stored_messages"], 1);
    let r = call(agent().get(&url(addr, "/status?id=gc")));
    assert_eq!(r.status(), 404);
}

#[test]
fn channel_idle_ttl_zero_collects_on_the_last_unsubscribe() {
    let server = start_with(2, |c| c.channel_idle_ttl = 0);
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/gone");
    assert!(channel_info(addr, "gone").is_some());
    drop(sse);
    poll_until("gone collected", || match channel_info(addr, "gone") {
        None => Ok(()),
        Some(v) => Err(v.to_string()),
    });
    assert_eq!(status(addr)["channels"], 0);
}

#[test]
fn a_channel_whose_messages_expired_is_collected_too() {
    let server = start_with(2, |c| {
        c.message_ttl = 1;
        c.channel_idle_ttl = 1;
    });
    let addr = server.addr();
    publish(addr, "news", b"x");
    poll_until("news collected", || match channel_info(addr, "news") {
        None => Ok(()),
        Some(v) => Err(v.to_string()),
    });
    let s = status(addr);
    assert_eq!(s["channels"], 0, "{s}");
    assert_eq!(s["stored_messages"], 0, "{s}");
}

/// `/status` must report how many messages expired (TTL or byte budget)
/// and how many idle channels were collected (the hub counts both).
#[test]
fn status_reports_expiry_and_collection_counters() {
    let server = start_with(2, |c| {
        c.message_ttl = 1;
        c.channel_idle_ttl = 0;
    });
    let addr = server.addr();
    publish_n(addr, "news", "m", 3);
    let s = status(addr);
    assert_eq!(s["messages_expired"], 0, "messages_expired missing: {s}");
    assert_eq!(
        s["channels_collected"], 0,
        "channels_collected missing: {s}"
    );
    poll_until("news expired and collected", || {
        match channel_info(addr, "news") {
            None => Ok(()),
            Some(v) => Err(v.to_string()),
        }
    });
    let s = status(addr);
    assert_eq!(s["stored_messages"], 0, "{s}");
    assert_eq!(s["messages_expired"], 3, "{s}");
    assert_eq!(s["channels_collected"], 1, "{s}");
}

/// Messages expired and the emptied channel was collected; a client that
/// resumes from before them lost them and must be told so, exactly as
/// when the channel is still there
/// (`message_ttl_expires_history_and_resume_reports_missed`).
#[test]
fn resume_after_the_channel_was_collected_reports_missed() {
    let server = start_with(2, |c| {
        c.message_ttl = 1;
        c.channel_idle_ttl = 0;
    });
    let addr = server.addr();
    let msgs = publish_n(addr, "news", "m", 3);
    poll_until("news expired and collected", || {
        match channel_info(addr, "news") {
            None => Ok(()),
            Some(v) => Err(v.to_string()),
        }
    });
    let first = msgs[0].0;
    let mut sse = SseClient::connect_with(addr, "/ev/news", &format!("Last-Event-ID: {first}\r\n"));
    let marker = publish_n(addr, "news", "marker", 1);
    let ev = sse.event();
    assert_eq!(
        ev.kind, "missed",
        "resume after {first} (messages {} and {} were lost): got {ev:?}, marker was {marker:?}",
        msgs[1].0, msgs[2].0
    );
}

#[test]
fn delete_clears_the_history_at_once() {
    let server = start_with(2, |c| c.longpoll_timeout = 1);
    let addr = server.addr();
    publish_n(addr, "news", "m", 3);
    publish(addr, "other", b"o");
    assert_eq!(status(addr)["stored_messages"], 4);
    let r = call(agent().delete(&url(addr, "/pub?id=news")));
    assert_eq!(r.status(), 200);
    let v = json_of(r);
    assert_eq!(v["stored_messages"], 0, "{v}");
    assert_eq!(v["published_messages"], 3, "{v}");
    let s = status(addr);
    assert_eq!(s["stored_messages"], 1, "{s}");
    assert!(channel_info(addr, "news").is_none());

    // Backtrack finds nothing; the first event is a new message.
    let mut sse = SseClient::connect(addr, "/ev/news.b5");
    let marker = publish_n(addr, "news", "marker", 1);
    assert_eq!(next_msg(&mut sse), marker[0]);
    drop(sse);
    // A long-poll backtrack gets just that new message.
    let r = get_raw(addr, "/lp/news.b5", "");
    assert_eq!(r.status, 200);
    let list = r.json()["messages"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["data"], "marker0");
}

#[test]
fn max_channels_refuses_new_channels_with_429() {
    let server = start_with(2, |c| c.max_channels = 2);
    let addr = server.addr();
    publish(addr, "a", b"1");
    let _sub = SseClient::connect(addr, "/ev/b");
    assert_eq!(status(addr)["channels"], 2);

    let (st, v) = try_publish(addr, "c", b"x");
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["status"], 429);
    let (st, v) = try_publish(addr, "a/c", b"x");
    assert_eq!(st, 429, "publish naming one new channel: {v}");
    assert_json_error(&get_raw(addr, "/ev/c", ""), 429, "SSE /ev/c");
    assert_json_error(&get_raw(addr, "/ev/a/c", ""), 429, "SSE /ev/a/c");
    assert_json_error(&get_raw(addr, "/sub/c", ""), 429, "stream /sub/c");
    assert_json_error(&get_raw(addr, "/lp/c", ""), 429, "long-poll /lp/c");
    assert_json_error(&get_raw(addr, "/ws/c", WS_UPGRADE), 429, "WebSocket /ws/c");
    assert_eq!(status(addr)["channels"], 2);
    assert!(channel_info(addr, "c").is_none());

    // Existing channels keep working.
    let (st, _) = try_publish(addr, "a/b", b"both");
    assert_eq!(st, 200);
    let _s2 = SseClient::connect(addr, "/ev/a/b");

    // Room again after a DELETE.
    assert_eq!(call(agent().delete(&url(addr, "/pub?id=a"))).status(), 200);
    let (st, v) = try_publish(addr, "c", b"x");
    assert_eq!(st, 200, "{v}");
}

#[test]
fn max_subscribers_per_channel_refuses_the_next_with_429() {
    let server = start_with(2, |c| {
        c.max_subscribers_per_channel = 1;
        c.longpoll_timeout = 1;
    });
    let addr = server.addr();
    let first = SseClient::connect(addr, "/ev/news");
    assert_json_error(&get_raw(addr, "/ev/news", ""), 429, "second SSE");
    assert_json_error(&get_raw(addr, "/ev/other/news", ""), 429, "SSE other/news");
    assert_json_error(&get_raw(addr, "/lp/news", ""), 429, "long-poll");
    assert_json_error(&get_raw(addr, "/sub/news", ""), 429, "stream");
    assert_json_error(&get_raw(addr, "/ws/news", WS_UPGRADE), 429, "WebSocket");
    assert_eq!(channel_info(addr, "news").unwrap()["subscribers"], 1);
    // The refused "other" was not left with a subscriber.
    assert_eq!(
        channel_info(addr, "other").map_or(0, |v| v["subscribers"].as_u64().unwrap()),
        0
    );
    // Publishing is not limited.
    publish(addr, "news", b"x");
    // Another channel is fine, and the slot frees up on disconnect.
    let _other = SseClient::connect(addr, "/ev/other");
    drop(first);
    poll_until("a new subscriber admitted", || {
        let r = get_raw(
            addr,
            "/lp/news",
            "Connection: close\r\nLast-Event-ID: 0\r\n",
        );
        if r.status == 200 {
            Ok(())
        } else {
            Err(format!("{} {}", r.status, r.text()))
        }
    });
}

#[test]
fn max_channels_per_subscription_is_a_400() {
    let server = start_with(1, |c| c.max_channels_per_subscription = 2);
    let addr = server.addr();
    let _ok = SseClient::connect(addr, "/ev/a/b");
    for path in ["/ev/a/b/c", "/lp/a/b/c", "/sub/a/b/c", "/ev/a.b1/b/c"] {
        assert_json_error(&get_raw(addr, path, ""), 400, path);
    }
    assert_json_error(&get_raw(addr, "/ws/a/b/c", WS_UPGRADE), 400, "/ws/a/b/c");
    let (st, v) = try_publish(addr, "a/b/c", b"x");
    assert_eq!(st, 400, "{v}");
    let (st, _) = try_publish(addr, "a/b", b"x");
    assert_eq!(st, 200);
    assert!(channel_info(addr, "c").is_none());
}
