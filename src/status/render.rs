//! The two renderings of a [`Snapshot`]: the `/status` JSON document and
//! the Prometheus text exposition of `/metrics`. Both walk the metric table
//! of `names.rs`.

use serde_json::{json, Map, Value};
use std::fmt::Write as _;

use super::counters::{
    CloseCause, ConnKind, Denied, Latency, Limit, PeerGone, TlsFailure, TooLarge,
};
use super::histogram::{HistogramSnapshot, BOUNDS_US};
use super::names::{self, Metric};
use super::snapshot::Snapshot;
use crate::cluster::ShardFigures;

/// The unlabelled figures, with their values.
fn scalars(s: &Snapshot) -> [(Metric, u64); 19] {
    let closed = |c: CloseCause| s.closed_by_server[c as usize];
    [
        (names::UPTIME, s.uptime_seconds),
        (names::ACCEPTED, s.accepted_connections),
        (names::REQUESTS, s.requests),
        (names::CHANNELS, s.hub.channels),
        (names::SUBSCRIBERS, s.hub.subscribers),
        (names::PUBLISHED, s.hub.published_messages),
        (names::STORED_MESSAGES, s.hub.stored_messages),
        (names::STORED_BYTES, s.hub.stored_bytes),
        (names::EXPIRED, s.hub.messages_expired),
        (names::COLLECTED, s.hub.channels_collected),
        (names::DELIVERED, s.delivered_messages),
        (names::BYTES_OUT, s.bytes_out),
        (names::SLOW_CONSUMERS, closed(CloseCause::SlowConsumer)),
        (names::PONG_TIMEOUTS, closed(CloseCause::PongTimeout)),
        (names::PINGS, s.pings_sent),
        (names::ACCEPT_FD_ERRORS, s.accept_fd_errors),
        (names::RSS, s.rss_bytes),
        (names::TLS_HANDSHAKES_STARTED, s.tls_handshakes_started),
        (names::TLS_HANDSHAKES_COMPLETED, s.tls_handshakes_completed),
    ]
}

/// A labelled figure: its metric, the label name, and (label, value) pairs.
struct Labelled {
    metric: Metric,
    label: &'static str,
    values: Vec<(&'static str, u64)>,
}

fn labelled(s: &Snapshot) -> [Labelled; 8] {
    [
        Labelled {
            metric: names::CONNECTIONS,
            label: "transport",
            values: ConnKind::ALL
                .iter()
                .map(|k| (k.label(), s.connections[*k as usize]))
                .collect(),
        },
        Labelled {
            metric: names::CLOSED,
            label: "cause",
            values: CloseCause::ALL
                .iter()
                .map(|c| (c.label(), s.closed_by_server[*c as usize]))
                .collect(),
        },
        Labelled {
            metric: names::PEERS_GONE,
            label: "cause",
            values: PeerGone::ALL
                .iter()
                .map(|p| (p.label(), s.dead_peers_reaped[*p as usize]))
                .collect(),
        },
        Labelled {
            metric: names::REFUSED,
            label: "limit",
            values: Limit::ALL
                .iter()
                .map(|r| (r.label(), s.refused[*r as usize]))
                .collect(),
        },
        Labelled {
            metric: names::DENIED,
            label: "reason",
            values: Denied::ALL
                .iter()
                .map(|d| (d.label(), s.denied[*d as usize]))
                .collect(),
        },
        Labelled {
            metric: names::TOO_LARGE,
            label: "limit",
            values: TooLarge::ALL
                .iter()
                .map(|t| (t.label(), s.too_large[*t as usize]))
                .collect(),
        },
        Labelled {
            metric: names::TLS_HANDSHAKES_FAILED,
            label: "reason",
            values: TlsFailure::ALL
                .iter()
                .map(|f| (f.label(), s.tls_handshakes_failed[*f as usize]))
                .collect(),
        },
        Labelled {
            metric: names::TLS_CONNECTIONS,
            label: "transport",
            values: ConnKind::ALL
                .iter()
                .map(|k| (k.label(), s.tls_connections[*k as usize]))
                .collect(),
        },
    ]
}

/// The `/status` document.
pub fn status_json(s: &Snapshot) -> Value {
    let mut doc = Map::new();
    for (m, v) in scalars(s) {
        doc.insert(m.key.into(), json!(v));
    }
    for l in labelled(s) {
        let mut group: Map<String, Value> = l
            .values
            .iter()
            .map(|(k, v)| ((*k).into(), json!(v)))
            .collect();
        if l.metric.key == names::CONNECTIONS.key {
            group.insert("total".into(), json!(s.total_connections()));
        }
        if l.metric.key == names::TLS_CONNECTIONS.key {
            let total: u64 = s.tls_connections.iter().sum();
            group.insert("total".into(), json!(total));
        }
        doc.insert(l.metric.key.into(), Value::Object(group));
    }
    doc.insert("workers".into(), json!(s.workers));
    let reactors: Vec<Value> = s
        .reactors
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "id": i,
                "connections": r.connections,
                "delivered_messages": r.delivered_messages,
                "bytes_out": r.bytes_out,
            })
        })
        .collect();
    doc.insert("reactors".into(), Value::Array(reactors));
    doc.insert("latency".into(), latency_json(s));
    if let Some(shards) = &s.backplane {
        let up = shards.iter().filter(|f| f.up).count();
        let state = match up {
            n if n == shards.len() => "up",
            0 => "down",
            _ => "degraded",
        };
        let list: Vec<Value> = shards
            .iter()
            .map(|f| {
                json!({
                    "url": f.url,
                    "up": f.up,
                    "rtt_us": f.rtt_us,
                    "channels": f.channels,
                    "publishes_forwarded": f.publishes_forwarded,
                    "publishes_refused": f.publishes_refused,
                    "messages_received": f.messages_received,
                    "messages_recovered": f.messages_recovered,
                    "reconnects": f.reconnects,
                })
            })
            .collect();
        doc.insert(
            "backplane".into(),
            json!({ "state": state, "shards": list }),
        );
    }
    Value::Object(doc)
}

/// The same figures in Prometheus text exposition format (version 0.0.4).
pub fn metrics_text(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    let header = |out: &mut String, m: &Metric| {
        let _ = write!(
            out,
            "# HELP {} {}\n# TYPE {} {}\n",
            m.name,
            m.help,
            m.name,
            m.kind.as_str()
        );
    };
    for (m, v) in scalars(s) {
        header(&mut out, &m);
        let _ = writeln!(out, "{} {v}", m.name);
    }
    for l in labelled(s) {
        header(&mut out, &l.metric);
        for (label, v) in &l.values {
            let _ = writeln!(out, "{}{{{}=\"{label}\"}} {v}", l.metric.name, l.label);
        }
    }
    for (m, h) in names::LATENCY.iter().zip(&s.latency) {
        header(&mut out, m);
        histogram_lines(&mut out, m.name, h);
    }
    if let Some(shards) = &s.backplane {
        backplane_metrics(&mut out, shards, header);
    }
    out
}

/// `_bucket{le=…}` (cumulative), `_sum` and `_count` of one histogram.
fn histogram_lines(out: &mut String, name: &str, h: &HistogramSnapshot) {
    let mut cumulative = 0;
    for (i, n) in h.buckets.iter().enumerate() {
        cumulative += n;
        match BOUNDS_US.get(i) {
            Some(us) => {
                let le = *us as f64 / 1e6;
                let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
            }
            None => {
                let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
            }
        }
    }
    let _ = writeln!(out, "{name}_sum {}", h.sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {}", h.count());
}

/// Per histogram: count, mean and the bucket bounds of p50, p99 and p99.9
/// in milliseconds (null before the first observation).
fn latency_json(s: &Snapshot) -> Value {
    let ms = |us: Option<u64>| match us {
        Some(u64::MAX) => json!("over 10000"),
        Some(us) => json!(us as f64 / 1e3),
        None => Value::Null,
    };
    let mut group = Map::new();
    for (what, h) in Latency::ALL.iter().zip(&s.latency) {
        let count = h.count();
        let mean = (count > 0).then(|| h.sum_us as f64 / count as f64 / 1e3);
        group.insert(
            what.label().into(),
            json!({
                "count": count,
                "mean_ms": mean,
                "p50_ms": ms(h.quantile_bound_us(0.5)),
                "p99_ms": ms(h.quantile_bound_us(0.99)),
                "p999_ms": ms(h.quantile_bound_us(0.999)),
            }),
        );
    }
    Value::Object(group)
}

/// The backplane's figures, one sample per shard.
fn backplane_metrics(
    out: &mut String,
    shards: &[ShardFigures],
    header: impl Fn(&mut String, &Metric),
) {
    type Value = fn(&ShardFigures) -> String;
    let table: [(Metric, Value); 8] = [
        (names::BACKPLANE_UP, |f| u64::from(f.up).to_string()),
        (names::BACKPLANE_RTT, |f| {
            format!("{:.6}", f.rtt_us as f64 / 1e6)
        }),
        (names::BACKPLANE_CHANNELS, |f| f.channels.to_string()),
        (names::BACKPLANE_FORWARDED, |f| {
            f.publishes_forwarded.to_string()
        }),
        (names::BACKPLANE_REFUSED, |f| {
            f.publishes_refused.to_string()
        }),
        (names::BACKPLANE_RECEIVED, |f| {
            f.messages_received.to_string()
        }),
        (names::BACKPLANE_RECOVERED, |f| {
            f.messages_recovered.to_string()
        }),
        (names::BACKPLANE_RECONNECTS, |f| f.reconnects.to_string()),
    ];
    for (metric, value) in table {
        header(out, &metric);
        for (i, f) in shards.iter().enumerate() {
            let _ = writeln!(out, "{}{{shard=\"{i}\"}} {}", metric.name, value(f));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::names::Kind;

    fn sample() -> Snapshot {
        let mut s = Snapshot {
            workers: 2,
            delivered_messages: 7,
            ..Default::default()
        };
        s.connections[ConnKind::Sse as usize] = 3;
        s.connections[ConnKind::Http as usize] = 1;
        s.closed_by_server[CloseCause::SlowConsumer as usize] = 2;
        s.refused[Limit::Channels as usize] = 4;
        s.hub.channels = 5;
        s.tls_handshakes_started = 3;
        s.tls_handshakes_failed[TlsFailure::Plaintext as usize] = 1;
        s.tls_connections[ConnKind::WebSocket as usize] = 2;
        s
    }

    #[test]
    fn json_keeps_the_documented_keys() {
        let v = status_json(&sample());
        assert_eq!(v["connections"]["eventsource"], 3);
        assert_eq!(v["connections"]["total"], 4);
        assert_eq!(v["delivered_messages"], 7);
        assert_eq!(v["slow_consumers"], 2);
        assert_eq!(v["closed_by_server"]["slow_consumer"], 2);
        assert_eq!(v["refused"]["max_channels"], 4);
        assert_eq!(v["channels"], 5);
        assert_eq!(v["workers"], 2);
        assert_eq!(v["dead_peers_reaped"]["eof"], 0);
        assert_eq!(v["tls_handshakes_failed"]["plaintext"], 1);
        assert_eq!(v["tls_connections"]["websocket"], 2);
        assert_eq!(v["tls_connections"]["total"], 2);
        assert_eq!(v["tls_handshakes_started"], 3);
    }

    #[test]
    fn prometheus_names_follow_the_conventions() {
        let text = metrics_text(&sample());
        assert!(text.contains("crier_connections{transport=\"eventsource\"} 3\n"));
        assert!(text.contains("crier_messages_delivered_total 7\n"));
        assert!(text.contains("crier_refused_total{limit=\"max_channels\"} 4\n"));
        assert!(text.contains("crier_tls_handshakes_failed_total{reason=\"plaintext\"} 1\n"));
        assert!(text.contains("crier_tls_connections{transport=\"websocket\"} 2\n"));
        for (m, _) in scalars(&sample()) {
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
            assert!(m.name.starts_with("crier_"));
        }
        for l in labelled(&sample()) {
            let m = l.metric;
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
        }
        // Every sample line belongs to a declared metric.
        let declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| declared.contains(f));
            assert!(declared.contains(&name) || family.is_some(), "{line}");
        }
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let mut s = sample();
        s.latency[Latency::Fanout as usize].buckets[0] = 2;
        s.latency[Latency::Fanout as usize].buckets[4] = 3;
        s.latency[Latency::Fanout as usize].sum_us = 2_500;
        let text = metrics_text(&s);
        assert!(text.contains("# TYPE crier_fanout_duration_seconds histogram\n"));
        assert!(text.contains("crier_fanout_duration_seconds_bucket{le=\"0.00005\"} 2\n"));
        assert!(text.contains("crier_fanout_duration_seconds_bucket{le=\"0.0005\"} 2\n"));
        assert!(text.contains("crier_fanout_duration_seconds_bucket{le=\"0.001\"} 5\n"));
        assert!(text.contains("crier_fanout_duration_seconds_bucket{le=\"+Inf\"} 5\n"));
        assert!(text.contains("crier_fanout_duration_seconds_sum 0.0025\n"));
        assert!(text.contains("crier_fanout_duration_seconds_count 5\n"));
        let v = status_json(&s);
        assert_eq!(v["latency"]["fanout"]["count"], 5);
        assert_eq!(v["latency"]["fanout"]["p50_ms"], 1.0);
        assert_eq!(v["latency"]["fanout"]["mean_ms"], 0.5);
        assert!(v["latency"]["publish_request"]["p50_ms"].is_null());
        for (m, what) in names::LATENCY.iter().zip(Latency::ALL) {
            assert_eq!(m.key, what.label());
        }
    }
}
