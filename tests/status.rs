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

/// Counters in /metrics: Prometheus naming, `_total` suffix.
const COUNTERS: [&str; 13] = [
    "crier_connections_accepted_total",
    "crier_requests_total",
    "crier_messages_published_total",
    "crier_messages_delivered_total",
    "crier_messages_expired_total",
    "crier_channels_collected_total",
    "crier_sent_bytes_total",
    "crier_slow_consumers_total",
    "crier_pong_timeouts_total",
    "crier_pings_sent_total",
    "crier_accept_fd_errors_total",
    "crier_closed_by_server_total",
    "crier_dead_peers_reaped_total",
];

/// Gauges in /metrics.
const GAUGES: [&str; 7] = [
    "crier_uptime_seconds",
    "crier_connections",
    "crier_channels",
    "crier_subscribers",
    "crier_stored_messages",
    "crier_stored_bytes",
    "crier_rss_bytes",
];

#[test]
fn metrics_exposition() {
    let server = start();
    let addr = server.addr();
    let _sse = SseClient::connect(addr, "/ev/m");
    let _sse2 = SseClient::connect(addr, "/ev/m");
    let _stream = StreamClient::connect(addr, "/sub/m");
    publish(addr, "m", b"x");
    // Wait in /status (whose keys do not change) until the figures the
    // exposition is checked against have settled.
    poll_status(addr, "2 eventsource connections and 3 deliveries", |s| {
        num(s, "/connections/eventsource") == 2 && num(s, "/delivered_messages") == 3
    });
    let r = call(agent().get(&url(addr, "/metrics")));
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
    let text = r.into_string().unwrap();

    // Every metric has the right type; every counter is named *_total.
    let types: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            l.split_once(' ')
                .unwrap_or_else(|| panic!("bad TYPE line {l:?}"))
        })
        .collect();
    let wrong: Vec<String> = COUNTERS
        .iter()
        .map(|n| (n, "counter"))
        .chain(GAUGES.iter().map(|n| (n, "gauge")))
        .filter(|&(n, kind)| !types.contains(&(n, kind)))
        .map(|(n, kind)| format!("{n} ({kind})"))
        .collect();
    assert!(
        wrong.is_empty(),
        "missing or mistyped metrics: {wrong:?}; the exposition declares {types:?}"
    );
    for (name, kind) in &types {
        if *kind == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter {name} is not named *_total"
            );
        }
    }

    // Samples, after the TYPE lines: by name and labels.
    for sample in [
        "crier_connections{transport=\"eventsource\"} 2",
        "crier_connections{transport=\"stream\"} 1",
        "crier_messages_published_total 1",
        "crier_messages_delivered_total 3",
        "crier_subscribers 3",
        "crier_channels 1",
    ] {
        assert!(
            text.lines().any(|l| l == sample),
            "no sample {sample:?} in:\n{text}"
        );
    }
    for (metric, label, values) in [
        (
            "crier_closed_by_server_total",
            "cause",
            &[
                "bad_input",
                "channel_deleted",
                "shutdown",
                "handshake_timeout",
                "idle_timeout",
                "pong_timeout",
                "slow_consumer",
                "lifetime",
                "over_capacity",
            ][..],
        ),
        (
            "crier_dead_peers_reaped_total",
            "cause",
            &["eof", "reset", "timeout", "write_error"][..],
        ),
        (
            "crier_connections",
            "transport",
            &["http", "eventsource", "stream", "websocket", "longpoll"][..],
        ),
    ] {
        for v in values {
            let series = format!("{metric}{{{label}=\"{v}\"}} ");
            assert!(
                text.lines().any(|l| l.starts_with(&series)),
                "no series {series:?} in:\n{text}"
            );
        }
    }
    // Every sample line is `name[{labels}] integer` of a declared metric,
    // or a `_bucket` / `_count` (integer) or `_sum` (seconds) of a declared
    // histogram.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(name.starts_with("crier_"), "{line}");
        let declared = |n: &str, k: &str| types.iter().any(|&(dn, dk)| dn == n && dk == k);
        let histogram_part = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).map(|base| (base, *suffix)))
            .filter(|(base, _)| declared(base, "histogram"));
        match histogram_part {
            Some((_, "_sum")) => assert!(value.parse::<f64>().is_ok(), "{line}"),
            Some(_) => assert!(value.parse::<u64>().is_ok(), "{line}"),
            None => {
                assert!(types.iter().any(|(n, _)| *n == name), "undeclared: {line}");
                assert!(value.parse::<u64>().is_ok(), "{line}");
            }
        }
    }
}

#[test]
fn latency_histograms_fill_as_messages_are_published_and_written() {
    let server = start_with(2, |_| {});
    let addr = server.addr();
    let before = status(addr);
    for key in ["publish_request", "publish_to_first_write", "fanout"] {
        assert_eq!(before["latency"][key]["count"], 0, "{before}");
        assert!(before["latency"][key]["p99_ms"].is_null(), "{before}");
    }
    let mut subs: Vec<SseClient> = (0..3)
        .map(|_| SseClient::connect(addr, "/ev/timed"))
        .collect();
    for i in 0..5 {
        let r = send(
            agent().post(&url(addr, "/pub?id=timed")),
            format!("m{i}").as_bytes(),
        );
        assert_eq!(r.status(), 200);
    }
    for s in &mut subs {
        for i in 0..5 {
            assert_eq!(s.event().data, format!("m{i}"));
        }
    }
    // Every message was written on the reactors holding subscribers: at
    // least once per message, at most once per message and reactor.
    let st = poll_status(addr, "fanouts measured", |s| {
        num(s, "/latency/fanout/count") >= 5
    });
    assert_eq!(num(&st, "/latency/publish_request/count"), 5, "{st}");
    let first = num(&st, "/latency/publish_to_first_write/count");
    assert!((5..=10).contains(&first), "{st}");
    let p99 = st["latency"]["publish_to_first_write"]["p99_ms"]
        .as_f64()
        .unwrap();
    assert!(p99 > 0.0 && p99 <= 10_000.0, "{st}");
    let m = call(agent().get(&url(addr, "/metrics")))
        .into_string()
        .unwrap();
    assert!(
        m.contains("# TYPE crier_fanout_duration_seconds histogram\n"),
        "{m}"
    );
    assert!(
        m.contains("crier_publish_request_duration_seconds_count 5\n"),
        "{m}"
    );
    assert!(
        m.contains("crier_publish_request_duration_seconds_bucket{le=\"+Inf\"} 5\n"),
        "{m}"
    );
    assert!(
        m.contains("crier_publish_to_first_write_seconds_bucket{le=\"0.001\"}"),
        "{m}"
    );
}
