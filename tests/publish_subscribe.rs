//! Publish → subscribe, end to end: framing, multi-channel subscriptions,
//! fanout over several reactors, channel deletion.

mod common;

use common::*;

/// The exact SSE bytes crier sends for one message.
fn sse_bytes(id: u64, event: Option<&str>, lines: &[&str]) -> Vec<u8> {
    let mut s = format!("id: {id}\n");
    if let Some(e) = event {
        s.push_str(&format!("event: {e}\n"));
    }
    for l in lines {
        s.push_str(&format!("data: {l}\n"));
    }
    s.push('\n');
    s.into_bytes()
}

#[test]
fn sse_and_stream_subscribers_receive_a_publish() {
    let server = start();
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/news");
    let mut stream = StreamClient::connect(addr, "/sub/news");
    assert_eq!(
        stream.head.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    let reply = publish(addr, "news", b"hello");
    assert_eq!(reply["channel"], "news");
    assert_eq!(reply["subscribers"], 2);
    assert_eq!(reply["published_messages"], 1);
    assert_eq!(reply["stored_messages"], 1);
    let id = id_of(&reply);

    let ev = sse.event();
    assert_eq!(ev.raw, sse_bytes(id, None, &["hello"]));
    assert_eq!(ev.kind, "message");
    assert_eq!(ev.data, "hello");
    assert_eq!(ev.last_id, id.to_string());
    assert_eq!(stream.chunk(), b"hello\n");
}

/// (Event-Type, payload, expected `data:` lines, expected parsed data)
type Case<'a> = (Option<&'a str>, &'a [u8], &'a [&'a str], &'a str);

#[test]
fn sse_framing_event_type_line_breaks_and_empty_payload() {
    let server = start();
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/fr");
    let mut stream = StreamClient::connect(addr, "/sub/fr");

    let cases: &[Case] = &[
        (Some("update"), b"one", &["one"], "one"),
        (None, b"a\nb", &["a", "b"], "a\nb"),
        (None, b"c\rd", &["c", "d"], "c\nd"),
        (None, b"e\r\nf", &["e", "f"], "e\nf"),
        (
            Some("mixed"),
            b"1\n2\r\n3\r4\n\r5",
            &["1", "2", "3", "4", "", "5"],
            "1\n2\n3\n4\n\n5",
        ),
        (None, b"", &[""], ""),
        (None, b"tail\n", &["tail", ""], "tail\n"),
        (None, b" lead", &[" lead"], " lead"),
        (None, "utf-8 é€😀".as_bytes(), &["utf-8 é€😀"], "utf-8 é€😀"),
    ];
    for (event, payload, lines, data) in cases {
        let reply = publish_event(addr, "fr", *event, payload);
        let id = id_of(&reply);
        let ev = sse.event();
        assert_eq!(
            String::from_utf8_lossy(&ev.raw),
            String::from_utf8_lossy(&sse_bytes(id, *event, lines)),
            "payload {payload:?}"
        );
        assert_eq!(ev.kind, event.unwrap_or("message"));
        assert_eq!(ev.data, *data, "payload {payload:?}");
        assert_eq!(ev.last_id, id.to_string());

        // The raw stream carries the payload byte for byte plus "\n".
        let mut want = payload.to_vec();
        want.push(b'\n');
        assert_eq!(stream.chunk(), want, "payload {payload:?}");
    }
}

#[test]
fn stream_separator_is_configurable() {
    let server = start_with(2, |c| c.stream_separator = "\r\n--\r\n".into());
    let addr = server.addr();
    let mut stream = StreamClient::connect(addr, "/sub/sep");
    publish(addr, "sep", b"x");
    publish(addr, "sep", b"");
    assert_eq!(stream.chunk(), b"x\r\n--\r\n");
    assert_eq!(stream.chunk(), b"\r\n--\r\n");
}

#[test]
fn multi_channel_subscription_gets_each_message_once() {
    let server = start();
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/a/b");
    let mut stream = StreamClient::connect(addr, "/sub/a/b");
    let mut only_a = SseClient::connect(addr, "/ev/a");

    let r1 = publish(addr, "a", b"to-a");
    let r2 = publish(addr, "b", b"to-b");
    let r3 = publish(addr, "a/b", b"to-both");
    assert_eq!(r3["channels"].as_array().unwrap().len(), 2);
    assert_eq!(r3["channels"][0]["channel"], "a");
    assert_eq!(r3["channels"][1]["channel"], "b");
    assert_eq!(r3["channels"][0]["id"], r3["id"]);
    assert_eq!(r3["channels"][1]["id"], r3["id"]);
    let r4 = publish(addr, "c", b"to-c (nobody)");
    let _ = r4;
    let r5 = publish(addr, "b", b"last");

    let ids = [id_of(&r1), id_of(&r2), id_of(&r3), id_of(&r5)];
    let datas = ["to-a", "to-b", "to-both", "last"];
    for (id, data) in ids.iter().zip(datas) {
        let ev = sse.event();
        assert_eq!(
            (ev.last_id.as_str(), ev.data.as_str()),
            (&*id.to_string(), data)
        );
        assert_eq!(stream.chunk(), format!("{data}\n").as_bytes());
    }
    // Only channel a's messages, the a/b one once.
    for (id, data) in [(ids[0], "to-a"), (ids[2], "to-both")] {
        let ev = only_a.event();
        assert_eq!((ev.last_id, ev.data), (id.to_string(), data.to_string()));
    }
    // Nothing queued after that: the next thing each sees is a fresh marker.
    let r6 = publish(addr, "a/b", b"marker");
    assert_eq!(sse.event().data, "marker");
    assert_eq!(stream.chunk(), b"marker\n");
    assert_eq!(only_a.event().data, "marker");
    assert!(id_of(&r6) > ids[3]);
}

/// Messages that reach a reactor together are fanned out in batches of
/// consecutive messages to the same channels; a burst that switches
/// channels at every step must still reach every subscriber once each, in
/// publish order.
#[test]
fn pipelined_burst_across_channels_keeps_order_for_every_subscriber() {
    let server = start_with(2, |_| {});
    let addr = server.addr();
    let mut both: Vec<SseClient> = (0..4)
        .map(|_| SseClient::connect(addr, "/ev/a/b"))
        .collect();
    let mut only_a: Vec<SseClient> = (0..4).map(|_| SseClient::connect(addr, "/ev/a")).collect();
    let mut only_b: Vec<StreamClient> = (0..4)
        .map(|_| StreamClient::connect(addr, "/sub/b"))
        .collect();
    let targets = ["a", "a", "b", "a/b", "a/b", "b", "b", "a", "a/b", "a"];
    let bursts = 20;
    let mut requests = Vec::new();
    let mut sent = Vec::new();
    for round in 0..bursts {
        for (i, ch) in targets.iter().enumerate() {
            let body = format!("{round}-{i}-{ch}");
            requests.extend_from_slice(
                format!(
                    "POST /pub?id={ch} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            sent.push((*ch, body));
        }
    }
    let mut publisher = Conn::connect(addr);
    publisher.write(&requests);
    for _ in &sent {
        assert_eq!(publisher.read_response().status, 200);
    }
    let wanted = |f: fn(&str) -> bool| -> Vec<String> {
        sent.iter()
            .filter(|(ch, _)| f(ch))
            .map(|(_, b)| b.clone())
            .collect()
    };
    let to_a = wanted(|ch| ch.contains('a'));
    let to_b = wanted(|ch| ch.contains('b'));
    let to_any = wanted(|_| true);
    for (n, c) in both.iter_mut().enumerate() {
        let got: Vec<String> = to_any.iter().map(|_| c.event().data).collect();
        assert_eq!(got, to_any, "/ev/a/b subscriber {n}");
    }
    for (n, c) in only_a.iter_mut().enumerate() {
        let got: Vec<String> = to_a.iter().map(|_| c.event().data).collect();
        assert_eq!(got, to_a, "/ev/a subscriber {n}");
    }
    for (n, c) in only_b.iter_mut().enumerate() {
        let got: Vec<String> = to_b
            .iter()
            .map(|_| String::from_utf8(c.chunk()).unwrap())
            .collect();
        let want: Vec<String> = to_b.iter().map(|b| format!("{b}\n")).collect();
        assert_eq!(got, want, "/sub/b subscriber {n}");
    }
    // Nothing more: the next event is a fresh marker.
    publish(addr, "a/b", b"end");
    for c in &mut both {
        assert_eq!(c.event().data, "end");
    }
    for c in &mut only_a {
        assert_eq!(c.event().data, "end");
    }
    for c in &mut only_b {
        assert_eq!(c.chunk(), b"end\n");
    }
}

#[test]
fn many_subscribers_over_reactors_get_every_message_once_in_order() {
    const SUBS: usize = 40;
    const MESSAGES: usize = 50;
    let server = start_with(4, |_| {});
    let addr = server.addr();
    let mut sses: Vec<SseClient> = (0..SUBS)
        .map(|_| SseClient::connect(addr, "/ev/fan"))
        .collect();
    let mut streams: Vec<StreamClient> = (0..SUBS)
        .map(|_| StreamClient::connect(addr, "/sub/fan"))
        .collect();

    // The kernel spreads connections over the reactors' listeners.
    let st = status(addr);
    assert_eq!(st["workers"], 4);
    let busy = st["reactors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["connections"].as_i64().unwrap() > 0)
        .count();
    assert!(busy >= 2, "subscribers all on one reactor: {st}");
    assert_eq!(st["connections"]["eventsource"], SUBS);
    assert_eq!(st["connections"]["stream"], SUBS);

    // Two keep-alive publishers, alternating.
    let mut pubs = [Conn::connect(addr), Conn::connect(addr)];
    let mut ids = Vec::new();
    for i in 0..MESSAGES {
        let body = format!("msg-{i}");
        let p = &mut pubs[i % 2];
        p.write(
            format!(
                "POST /pub?id=fan HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        let r = p.read_response();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("connection"), Some("keep-alive"));
        let j = r.json();
        assert_eq!(j["subscribers"], 2 * SUBS);
        ids.push(id_of(&j));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");

    for (n, sse) in sses.iter_mut().enumerate() {
        let mut prev = 0u64;
        for (i, id) in ids.iter().enumerate() {
            let ev = sse.event();
            let got: u64 = ev.last_id.parse().unwrap();
            assert!(got > prev, "sse {n}: id {got} after {prev}");
            prev = got;
            assert_eq!((got, ev.data), (*id, format!("msg-{i}")), "sse {n}");
        }
    }
    for (n, s) in streams.iter_mut().enumerate() {
        for i in 0..MESSAGES {
            assert_eq!(s.chunk(), format!("msg-{i}\n").as_bytes(), "stream {n}");
        }
    }
    // Exactly once: the next thing each subscriber sees is a new marker.
    let marker = publish(addr, "fan", b"end");
    let marker_id = id_of(&marker).to_string();
    for sse in &mut sses {
        let ev = sse.event();
        assert_eq!(
            (ev.last_id.as_str(), ev.data.as_str()),
            (&*marker_id, "end")
        );
    }
    for s in &mut streams {
        assert_eq!(s.chunk(), b"end\n");
    }
    let st = status(addr);
    assert_eq!(st["published_messages"], MESSAGES + 1);
    assert_eq!(st["delivered_messages"], (MESSAGES + 1) * 2 * SUBS, "{st}");
}

#[test]
fn remaining_subscribers_keep_receiving_after_others_leave() {
    let server = start_with(2, |_| {});
    let addr = server.addr();
    let mut subs: Vec<Option<SseClient>> = (0..12)
        .map(|_| Some(SseClient::connect(addr, "/ev/churn/other")))
        .collect();
    // Drop every other subscriber, out of order, so the local index has to
    // move entries around.
    for i in [0usize, 6, 2, 10, 4, 8] {
        subs[i] = None;
    }
    poll_status(addr, "6 subscribers left", |s| {
        s["connections"]["eventsource"] == 6 && s["subscribers"] == 12
    });
    publish(addr, "churn", b"one");
    publish(addr, "other", b"two");
    publish(addr, "churn/other", b"three");
    for s in subs.iter_mut().flatten() {
        assert_eq!(s.event().data, "one");
        assert_eq!(s.event().data, "two");
        assert_eq!(s.event().data, "three");
    }
    drop(subs);
    poll_status(addr, "no subscribers", |s| {
        s["connections"]["eventsource"] == 0 && s["subscribers"] == 0
    });
}

#[test]
fn delete_disconnects_subscribers_and_forgets_the_channel() {
    let server = start();
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/gone");
    let mut multi = SseClient::connect(addr, "/ev/gone/stays");
    let mut stream = StreamClient::connect(addr, "/sub/gone");
    let mut bystander = SseClient::connect(addr, "/ev/stays");

    let id = id_of(&publish(addr, "gone", b"before"));
    assert_eq!(sse.event().data, "before");
    assert_eq!(multi.event().data, "before");
    assert_eq!(stream.chunk(), b"before\n");

    let info = json_of(call(agent().get(&url(addr, "/pub?id=gone"))));
    assert_eq!(info["channel"], "gone");
    assert_eq!(info["subscribers"], 3);
    assert_eq!(info["id"], id.to_string());

    let r = call(agent().delete(&url(addr, "/pub?id=gone")));
    assert_eq!(r.status(), 200);
    let j = json_of(r);
    assert_eq!(j["channel"], "gone");
    assert_eq!(j["subscribers"], 3);
    assert_eq!(j["published_messages"], 1);

    for s in [&mut sse, &mut multi] {
        let ev = s.event();
        assert_eq!(ev.kind, "channel_deleted");
        assert_eq!(ev.data, "gone");
        assert_eq!(ev.raw, b"event: channel_deleted\ndata: gone\n\n");
        s.expect_end();
    }
    assert_eq!(stream.next_chunk(), None, "terminating chunk");
    stream.conn.expect_eof();

    let r = call(agent().get(&url(addr, "/pub?id=gone")));
    assert_eq!(r.status(), 404);
    let j = json_of(r);
    assert_eq!(j["status"], 404);
    assert!(j["error"].is_string());
    assert_eq!(
        call(agent().delete(&url(addr, "/pub?id=gone"))).status(),
        404
    );
    assert_eq!(
        call(agent().get(&url(addr, "/status?id=gone"))).status(),
        404
    );

    // The other channel is untouched.
    publish(addr, "stays", b"still here");
    assert_eq!(bystander.event().data, "still here");
    poll_status(addr, "deleted subscribers gone", |s| {
        s["subscribers"] == 1 && s["connections"]["stream"] == 0
    });
}

#[test]
fn delete_of_a_channel_with_history_but_no_subscribers() {
    let server = start_with(1, |_| {});
    let addr = server.addr();
    publish(addr, "hist", b"x");
    assert_eq!(status(addr)["stored_messages"], 1);
    assert_eq!(
        call(agent().delete(&url(addr, "/pub?id=hist"))).status(),
        200
    );
    let st = status(addr);
    assert_eq!(st["channels"], 0);
    assert_eq!(st["stored_messages"], 0);
    // A new subscriber after re-creation sees only new messages.
    let mut sse = SseClient::connect(addr, "/ev/hist");
    publish(addr, "hist", b"y");
    assert_eq!(sse.event().data, "y");
}
