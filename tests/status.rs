//! `/status`, `/status?id=`, `/metrics`: counts before, during and after
//! clients come and go.

mod common;

use common::*;

#[test]
fn status_document_shape_on_a_fresh_server() {
    let server = start_with(3, |_| {});
    let addr = server.addr();
    let st = status(addr);
    for key in [
        "uptime_seconds",
        "workers",
        "connections",
        "channels",
        "subscribers",
        "published_messages",
        "delivered_messages",
        "bytes_out",
        "rss_bytes",
        "reactors",
    ] {
        assert!(st.get(key).is_some(), "missing {key} in {st}");
    }
    assert_eq!(st["workers"], 3);
    assert_eq!(st["reactors"].as_array().unwrap().len(), 3);
    assert_eq!(st["channels"], 0);
    assert_eq!(st["subscribers"], 0);
    assert_eq!(st["published_messages"], 0);
    assert_eq!(st["delivered_messages"], 0);
    assert!(st["rss_bytes"].as_u64().unwrap() > 0);
    let conns = &st["connections"];
    for k in [
        "http",
        "eventsource",
        "stream",
        "websocket",
        "longpoll",
        "total",
    ] {
        assert!(conns[k].is_u64(), "connections.{k} in {st}");
    }
    // The status request itself is the only connection (a previous one
    // may still be closing).
    assert!(conns["http"].as_u64().unwrap() >= 1);
    assert_eq!(conns["eventsource"], 0);
    assert_eq!(conns["total"], conns["http"]);

    // ureq sees the same document.
    let r = call(agent().get(&url(addr, "/status")));
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(json_of(r)["workers"], 3);
}

#[test]
fn subscriber_and_connection_counts_follow_clients() {
    let server = start();
    let addr = server.addr();
    poll_status(addr, "idle server", |s| {
        s["connections"]["total"] == 1 && s["subscribers"] == 0
    });

    let sse1 = SseClient::connect(addr, "/ev/s1");
    let sse2 = SseClient::connect(addr, "/ev/s1/s2");
    let stream1 = StreamClient::connect(addr, "/sub/s2");
    let idle = Conn::connect(addr); // plain HTTP connection, no request yet

    let st = poll_status(addr, "3 subscribers and an idle connection", |s| {
        s["connections"]["eventsource"] == 2
            && s["connections"]["stream"] == 1
            && s["connections"]["http"] == 2
            && s["connections"]["total"] == 5
    });
    assert_eq!(st["subscribers"], 4, "{st}"); // s1 ×2, s2 ×2
    assert_eq!(st["channels"], 2);

    let s1 = json_of(call(agent().get(&url(addr, "/status?id=s1"))));
    assert_eq!(s1["channel"], "s1");
    assert_eq!(s1["subscribers"], 2);
    assert_eq!(s1["published_messages"], 0);
    assert_eq!(s1["stored_messages"], 0);
    assert!(s1["id"].is_null(), "{s1}");
    // GET /pub?id= gives the same figures.
    assert_eq!(json_of(call(agent().get(&url(addr, "/pub?id=s1")))), s1);

    let reply = publish(addr, "s1/s2", b"m");
    let id = id_of(&reply);
    let s2 = json_of(call(agent().get(&url(addr, "/status?id=s2"))));
    assert_eq!(s2["subscribers"], 2);
    assert_eq!(s2["published_messages"], 1);
    assert_eq!(s2["stored_messages"], 1);
    assert_eq!(s2["id"], id.to_string());
    let st = poll_status(addr, "3 deliveries", |s| s["delivered_messages"] == 3);
    assert_eq!(st["published_messages"], 1);
    assert!(st["bytes_out"].as_u64().unwrap() > 0);

    // Disconnects are noticed asynchronously.
    drop(sse2);
    poll_status(addr, "sse2 gone", |s| {
        s["connections"]["eventsource"] == 1 && s["subscribers"] == 2
    });
    assert_eq!(
        json_of(call(agent().get(&url(addr, "/status?id=s1"))))["subscribers"],
        1
    );
    drop(stream1);
    drop(idle);
    poll_status(addr, "stream and idle gone", |s| {
        s["connections"]["stream"] == 0 && s["connections"]["http"] == 1 && s["subscribers"] == 1
    });
    drop(sse1);
    let st = poll_status(addr, "all gone", |s| {
        s["connections"]["total"] == 1 && s["subscribers"] == 0
    });
    // Channels with history stay; the figures stay with them.
    assert_eq!(st["channels"], 2);
    // One message published to two channels is stored (and counted) once.
    assert_eq!(st["stored_messages"], 1);
    assert_eq!(
        json_of(call(agent().get(&url(addr, "/status?id=s1"))))["subscribers"],
        0
    );
}

#[test]
fn channels_without_history_disappear_with_their_last_subscriber() {
    let server = start_with(2, |c| {
        c.store_messages = 0;
        c.channel_idle_ttl = 0;
    });
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/ephemeral");
    assert_eq!(status(addr)["channels"], 1);
    publish(addr, "ephemeral", b"x");
    assert_eq!(status(addr)["stored_messages"], 0);
    drop(sse);
    poll_status(addr, "channel gone", |s| s["channels"] == 0);
    assert_eq!(
        call(agent().get(&url(addr, "/status?id=ephemeral"))).status(),
        404
    );
}

#[test]
fn metrics_exposition() {
    let server = start();
    let addr = server.addr();
    let _sse = SseClient::connect(addr, "/ev/m");
    let _sse2 = SseClient::connect(addr, "/ev/m");
    let _stream = StreamClient::connect(addr, "/sub/m");
    publish(addr, "m", b"x");
    let text = poll_until("metrics with 2 eventsource connections", || {
        let r = call(agent().get(&url(addr, "/metrics")));
        assert_eq!(r.status(), 200);
        assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
        let t = r.into_string().unwrap();
        if t.contains("crier_connections{transport=\"eventsource\"} 2\n")
            && t.contains("crier_delivered_messages 3\n")
        {
            Ok(t)
        } else {
            Err(t)
        }
    });
    assert!(text.contains("# TYPE crier_connections gauge\n"));
    assert!(text.contains("crier_connections{transport=\"stream\"} 1\n"));
    assert!(text.contains("crier_published_messages 1\n"));
    assert!(text.contains("crier_subscribers 3\n"));
    assert!(text.contains("crier_channels 1\n"));
    // Every sample line is `name[{labels}] integer`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(name.starts_with("crier_"), "{line}");
        assert!(value.parse::<u64>().is_ok(), "{line}");
    }
}
