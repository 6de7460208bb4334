//! Long-polling end to end: a client loop walking the stream on one
//! keep-alive connection, timeouts (304 with the waited-from position),
//! waiting polls woken by a publish, headers, and bookkeeping.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// (id, data) of every message in a 200 answer; checks the headers agree
/// with the body.
fn messages(r: &Response) -> Vec<(u64, String)> {
    assert_eq!(r.status, 200, "expected 200: {r:?} {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    let lei = r.header("last-event-id").expect("Last-Event-ID");
    assert_eq!(v["last_event_id"], lei);
    assert_eq!(r.header("etag"), Some(format!("\"{lei}\"").as_str()));
    let list: Vec<(u64, String)> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().parse().unwrap(),
                m["data"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    if let Some((last, _)) = list.last() {
        assert_eq!(last.to_string(), lei);
    }
    list
}

fn lei(r: &Response) -> String {
    r.header("last-event-id")
        .unwrap_or_else(|| panic!("no Last-Event-ID: {r:?}"))
        .to_string()
}

fn publish_one(addr: SocketAddr, ch: &str, body: &str) -> (u64, String) {
    (id_of(&publish(addr, ch, body.as_bytes())), body.to_string())
}

fn with_id(id: &str) -> String {
    format!("Last-Event-ID: {id}\r\n")
}

#[test]
fn a_loop_of_longpolls_walks_the_stream() {
    let server = start_with(2, |c| c.longpoll_timeout = 1);
    let addr = server.addr();
    let mut c = Conn::connect(addr);

    // 1. A live poll waits; a publish wakes it.
    c.write(b"GET /lp/news HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_subscribers(addr, "news", 1);
    let m1 = publish_one(addr, "news", "one");
    let r = c.read_response();
    assert_eq!(messages(&r), vec![m1.clone()]);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    assert_eq!(r.header("x-missed-messages"), Some("false"));
    assert_eq!(r.json()["missed"], false);
    let mut pos = lei(&r);

    // 2. Published between polls: the next poll gets it at once.
    let m2 = publish_one(addr, "news", "two");
    let t = Instant::now();
    let r = longpoll_on(&mut c, "/lp/news", &with_id(&pos));
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(messages(&r), vec![m2.clone()]);
    pos = lei(&r);

    // 3. Nothing published: 304 after longpoll_timeout=1, at the same
    //    position, connection kept alive, no body.
    let t = Instant::now();
    let r = longpoll_on(&mut c, "/lp/news", &with_id(&pos));
    let waited = t.elapsed();
    assert_eq!(r.status, 304, "{r:?}");
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(1) + SLACK,
        "304 after {waited:?}"
    );
    assert_eq!(lei(&r), pos);
    assert_eq!(r.header("etag"), Some(format!("\"{pos}\"").as_str()));
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("connection"), Some("keep-alive"));
    assert!(r.body.is_empty());

    // 4. Published right after the 304: the next poll from the 304's
    //    position receives it.
    let m3 = publish_one(addr, "news", "three");
    let r = longpoll_on(&mut c, "/lp/news", &with_id(&lei(&r)));
    assert_eq!(messages(&r), vec![m3.clone()]);
    pos = lei(&r);

    // 5. A waiting poll collects what arrives; the rest is caught by the
    //    next poll: nothing lost, nothing twice.
    c.write(format!("GET /lp/news HTTP/1.1\r\nHost: t\r\n{}\r\n", with_id(&pos)).as_bytes());
    wait_subscribers(addr, "news", 1);
    let burst: Vec<(u64, String)> = (0..5)
        .map(|i| publish_one(addr, "news", &format!("burst{i}")))
        .collect();
    let mut got = messages(&c.read_response());
    while got.len() < burst.len() {
        let pos = got.last().unwrap().0.to_string();
        got.extend(messages(&longpoll_on(&mut c, "/lp/news", &with_id(&pos))));
    }
    assert_eq!(got, burst);

    drop(c);
    poll_status(addr, "subscribers back to 0", |s| s["subscribers"] == 0);
}

#[test]
fn a_live_longpoll_times_out_at_the_newest_id_and_the_next_one_continues() {
    let server = start_with(2, |c| c.longpoll_timeout = 1);
    let addr = server.addr();
    let (old, _) = publish_one(addr, "news", "before");
    let mut c = Conn::connect(addr);
    // No id: live. The stored message is not replayed; the 304 carries the
    // newest id, from which the next poll continues.
    let r = longpoll_on(&mut c, "/lp/news", "");
    assert_eq!(r.status, 304, "{r:?}");
    assert_eq!(lei(&r), old.to_string());
    let m = publish_one(addr, "news", "after");
    let r = longpoll_on(&mut c, "/lp/news", &with_id(&lei(&r)));
    assert_eq!(messages(&r), vec![m]);
}

#[test]
fn a_multi_channel_longpoll_loop() {
    let server = start_with(2, |c| c.longpoll_timeout = 1);
    let addr = server.addr();
    let mut c = Conn::connect(addr);
    c.write(b"GET /lp/a/b HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_subscribers(addr, "b", 1);
    let mut published = Vec::new();
    let mut got = Vec::new();
    let mut pos: Option<String> = None;
    for (i, target) in ["b", "a", "a/b", "c", "b", "a"].iter().enumerate() {
        let m = publish_one(addr, target, &format!("{target}-{i}"));
        if *target != "c" {
            published.push(m);
        }
        let r = match &pos {
            None => c.read_response(),
            Some(p) => longpoll_on(&mut c, "/lp/a/b", &with_id(p)),
        };
        if r.status == 304 {
            pos = Some(lei(&r));
            continue;
        }
        got.extend(messages(&r));
        pos = Some(lei(&r));
    }
    // Drain what is left.
    while got.len() < published.len() {
        let r = longpoll_on(&mut c, "/lp/a/b", &with_id(pos.as_deref().unwrap()));
        if r.status == 200 {
            got.extend(messages(&r));
        }
        pos = Some(lei(&r));
    }
    assert_eq!(got, published);
}

#[test]
fn longpoll_answers_release_the_subscription() {
    let server = start_with(2, |c| {
        c.longpoll_timeout = 1;
        c.max_subscribers_per_channel = 1;
    });
    let addr = server.addr();
    let mut c = Conn::connect(addr);
    let (id, _) = publish_one(addr, "news", "x");
    // Answered at once (backtrack), answered by a publish, and timed out:
    // each time the channel is left with no subscriber, so the next poll
    // (limit 1 per channel) is admitted.
    let r = longpoll_on(&mut c, "/lp/news.b1", "");
    assert_eq!(messages(&r).len(), 1);
    assert_eq!(channel_info(addr, "news").unwrap()["subscribers"], 0);
    let r = longpoll_on(&mut c, "/lp/news", &with_id(&id.to_string()));
    assert_eq!(r.status, 304);
    assert_eq!(channel_info(addr, "news").unwrap()["subscribers"], 0);
    c.write(
        format!(
            "GET /lp/news HTTP/1.1\r\nHost: t\r\n{}\r\n",
            with_id(&lei(&r))
        )
        .as_bytes(),
    );
    wait_subscribers(addr, "news", 1);
    publish_one(addr, "news", "y");
    assert_eq!(messages(&c.read_response()).len(), 1);
    assert_eq!(channel_info(addr, "news").unwrap()["subscribers"], 0);
    // The same connection still works for a plain request.
    c.write(b"GET /pub?id=news HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["subscribers"], 0);
}

#[test]
fn longpoll_with_connection_close_closes_after_the_answer() {
    let server = start_with(1, |c| c.longpoll_timeout = 1);
    let addr = server.addr();
    let (id, _) = publish_one(addr, "news", "x");
    let mut c = Conn::connect(addr);
    c.write(b"GET /lp/news.b1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(messages(&r), vec![(id, "x".to_string())]);
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof();

    let mut c = Conn::connect(addr);
    c.write(
        format!(
            "GET /lp/news HTTP/1.1\r\nHost: t\r\nConnection: close\r\nLast-Event-ID: {id}\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 304);
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn longpoll_headers_are_exposed_to_browsers() {
    let server = start_with(1, |c| c.longpoll_timeout = 1);
    let addr = server.addr();
    publish_one(addr, "news", "x");
    let mut c = Conn::connect(addr);
    let r = longpoll_on(&mut c, "/lp/news.b1", "");
    let expose = r.header("access-control-expose-headers").unwrap_or("");
    for h in ["Last-Event-ID", "ETag", "X-Missed-Messages"] {
        assert!(expose.contains(h), "{h} not exposed: {expose:?}");
    }
    assert_eq!(r.header("cache-control"), Some("no-cache"));
}

/// A client may pipeline a request behind a long-poll (HTTP/1.1 allows
/// it): it must be answered after the long-poll's answer.
#[test]
fn request_pipelined_behind_a_waiting_longpoll_is_served() {
    let server = start_with(1, |c| c.longpoll_timeout = 1);
    let addr = server.addr();
    let (id, _) = publish_one(addr, "news", "x");
    let mut c = Conn::connect(addr);
    c.write(
        format!(
            "GET /lp/news HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {id}\r\n\r\n\
             GET /pub?id=news HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 304, "{r:?}");
    // Expected: the pipelined GET /pub?id=news is answered next. The read
    // timeout (5 s) panics if it never comes.
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["channel"], "news");
}

/// Deleting a channel while a long-poll waits on it must answer that
/// request with an HTTP response (or just close), never with bytes of
/// another protocol.
#[test]
fn deleting_a_channel_under_a_waiting_longpoll_answers_in_http() {
    let server = start_with(1, |c| c.longpoll_timeout = 3);
    let addr = server.addr();
    let mut c = Conn::connect(addr);
    c.write(b"GET /lp/news HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_subscribers(addr, "news", 1);
    let r = call(agent().delete(&url(addr, "/pub?id=news")));
    assert_eq!(r.status(), 200);
    // Answered in HTTP: 404 with a JSON reason, and the connection stays
    // usable for the next request.
    let r = c.read_response();
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.json()["status"], 404);
    c.write(b"GET /pub?id=news HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response().status, 404);
}
