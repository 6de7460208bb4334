//! Counters and their two renderings: `/status` (JSON) and `/metrics`
//! (Prometheus text).
//!
//! Each reactor writes only its own cache-line-aligned counters (relaxed
//! atomics, never contended); readers sum them. Metric names live here.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use crate::pubsub::hub::{ChannelInfo, Hub};

/// What a connection currently is, for the per-transport gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    /// Reading HTTP requests (publishers, status scrapers, handshakes).
    Http = 0,
    Sse = 1,
    Stream = 2,
    WebSocket = 3,
    LongPoll = 4,
}

/// Gauge names, indexed by `ConnKind as usize`.
pub const CONN_KIND_NAMES: [&str; 5] = ["http", "eventsource", "stream", "websocket", "longpoll"];

/// Why the server closed a connection (the `closed_by_server` breakdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// Bad request or protocol error from the peer.
    BadInput = 0,
    /// Channel deleted.
    ChannelDeleted = 1,
    /// Server shutting down.
    Shutdown = 2,
    /// Request head not complete within `handshake-timeout` (slowloris).
    HandshakeTimeout = 3,
    /// Keep-alive HTTP connection idle past `idle-timeout`.
    IdleTimeout = 4,
    /// WebSocket ping not answered within `pong-timeout`.
    PongTimeout = 5,
    /// Unsent output passed `max-queued-bytes`.
    SlowConsumer = 6,
    /// `max-connection-lifetime` reached.
    Lifetime = 7,
    /// Over `max-connections`: answered 503.
    OverCapacity = 8,
}

/// Names for `CloseCause`, indexed by `CloseCause as usize`.
pub const CLOSE_CAUSE_NAMES: [&str; 9] = [
    "bad_input",
    "channel_deleted",
    "shutdown",
    "handshake_timeout",
    "idle_timeout",
    "pong_timeout",
    "slow_consumer",
    "lifetime",
    "over_capacity",
];

/// How a peer that went away was noticed (the `dead_peers_reaped` breakdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerGone {
    /// Orderly close (read returned EOF).
    Eof = 0,
    /// Connection reset (RST) seen on read.
    Reset = 1,
    /// Kernel gave up: TCP keepalive or TCP_USER_TIMEOUT (ETIMEDOUT).
    Timeout = 2,
    /// A write failed (EPIPE, ECONNRESET): writes double as probes.
    WriteError = 3,
}

/// Names for `PeerGone`, indexed by `PeerGone as usize`.
pub const PEER_GONE_NAMES: [&str; 4] = ["eof", "reset", "timeout", "write_error"];

/// One reactor's counters, aligned so two reactors never share a line.
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct ReactorStats {
    pub connections: [AtomicI64; 5],
    pub accepted: AtomicU64,
    pub delivered_messages: AtomicU64,
    pub bytes_out: AtomicU64,
    pub requests: AtomicU64,
    pub peers_gone: [AtomicU64; 4],
    pub closed_by_server: [AtomicU64; 9],
    pub pings_sent: AtomicU64,
    /// accept() failed for lack of file descriptors (EMFILE/ENFILE).
    pub accept_fd_errors: AtomicU64,
}

impl ReactorStats {
    /// Moves one connection from gauge `from` to gauge `to`.
    pub fn reclassify(&self, from: ConnKind, to: ConnKind) {
        self.connections[from as usize].fetch_sub(1, Ordering::Relaxed);
        self.connections[to as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// All reactors' counters plus the process start time.
#[derive(Debug)]
pub struct Stats {
    pub reactors: Box<[ReactorStats]>,
    pub started: Instant,
}

impl Stats {
    /// Zeroed counters for `n` reactors.
    pub fn new(n: usize) -> Stats {
        Stats {
            reactors: (0..n).map(|_| ReactorStats::default()).collect(),
            started: Instant::now(),
        }
    }

    fn sum(&self, f: impl Fn(&ReactorStats) -> u64) -> u64 {
        self.reactors.iter().map(f).sum()
    }

    fn connections(&self, kind: usize) -> u64 {
        self.reactors
            .iter()
            .map(|r| r.connections[kind].load(Ordering::Relaxed))
            .sum::<i64>()
            .max(0) as u64
    }
}

/// Resident set size of this process in bytes (from /proc; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// The `/status` document.
pub fn status_json(stats: &Stats, hub: &Hub) -> Value {
    let totals = hub.totals();
    let mut by_kind = serde_json::Map::new();
    let mut total_conns = 0;
    for (i, name) in CONN_KIND_NAMES.iter().enumerate() {
        let n = stats.connections(i);
        total_conns += n;
        by_kind.insert((*name).to_string(), json!(n));
    }
    by_kind.insert("total".into(), json!(total_conns));
    let mut closed = serde_json::Map::new();
    for (i, name) in CLOSE_CAUSE_NAMES.iter().enumerate() {
        closed.insert(
            (*name).to_string(),
            json!(stats.sum(|r| load(&r.closed_by_server[i]))),
        );
    }
    let mut gone = serde_json::Map::new();
    for (i, name) in PEER_GONE_NAMES.iter().enumerate() {
        gone.insert(
            (*name).to_string(),
            json!(stats.sum(|r| load(&r.peers_gone[i]))),
        );
    }
    let reactors: Vec<Value> = stats
        .reactors
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let conns: i64 = r
                .connections
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum();
            json!({
                "id": i,
                "connections": conns,
                "delivered_messages": load(&r.delivered_messages),
                "bytes_out": load(&r.bytes_out),
            })
        })
        .collect();
    json!({
        "uptime_seconds": stats.started.elapsed().as_secs(),
        "workers": stats.reactors.len(),
        "connections": by_kind,
        "accepted_connections": stats.sum(|r| load(&r.accepted)),
        "requests": stats.sum(|r| load(&r.requests)),
        "channels": totals.channels,
        "subscribers": totals.subscribers,
        "published_messages": totals.published_messages,
        "stored_messages": totals.stored_messages,
        "stored_bytes": totals.stored_bytes,
        "messages_expired": totals.messages_expired,
        "channels_collected": totals.channels_collected,
        "delivered_messages": stats.sum(|r| load(&r.delivered_messages)),
        "bytes_out": stats.sum(|r| load(&r.bytes_out)),
        "dead_peers_reaped": gone,
        "closed_by_server": closed,
        "slow_consumers": stats.sum(|r| load(&r.closed_by_server[CloseCause::SlowConsumer as usize])),
        "pong_timeouts": stats.sum(|r| load(&r.closed_by_server[CloseCause::PongTimeout as usize])),
        "pings_sent": stats.sum(|r| load(&r.pings_sent)),
        "accept_fd_errors": stats.sum(|r| load(&r.accept_fd_errors)),
        "rss_bytes": rss_bytes(),
        "reactors": reactors,
    })
}

/// The JSON for one channel (`/pub?id=` GET, publish replies, `/status?id=`).
pub fn channel_json(info: &ChannelInfo) -> Value {
    json!({
        "channel": info.channel,
        "id": info.last_id.map(|s| s.to_string()),
        "subscribers": info.subscribers,
        "published_messages": info.published_messages,
        "stored_messages": info.stored_messages,
    })
}

/// The same figures as `/status`, in Prometheus text exposition format.
pub fn metrics_text(stats: &Stats, hub: &Hub) -> String {
    let s = status_json(stats, hub);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, u64)>| {
        out.push_str(&format!(
            "# HELP crier_{name} {help}\n# TYPE crier_{name} {kind}\n"
        ));
        for (labels, v) in samples {
            out.push_str(&format!("crier_{name}{labels} {v}\n"));
        }
    };
    let num = |k: &str| s[k].as_u64().unwrap_or(0);
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since start.",
        vec![(String::new(), num("uptime_seconds"))],
    );
    metric(
        "connections",
        "gauge",
        "Open connections by transport.",
        CONN_KIND_NAMES
            .iter()
            .map(|k| {
                (
                    format!("{{transport=\"{k}\"}}"),
                    s["connections"][k].as_u64().unwrap_or(0),
                )
            })
            .collect(),
    );
    for (name, kind, help) in [
        ("accepted_connections", "counter", "Connections accepted."),
        ("requests", "counter", "HTTP requests parsed."),
        ("channels", "gauge", "Channels in the hub."),
        ("subscribers", "gauge", "Subscriptions across all channels."),
        ("published_messages", "counter", "Messages published."),
        (
            "stored_messages",
            "gauge",
            "Messages held in channel history.",
        ),
        (
            "stored_bytes",
            "gauge",
            "Approximate memory of stored messages.",
        ),
        (
            "messages_expired",
            "counter",
            "Stored messages evicted by age or memory budget.",
        ),
        (
            "channels_collected",
            "counter",
            "Idle channels garbage-collected.",
        ),
        (
            "delivered_messages",
            "counter",
            "Messages queued to subscribers.",
        ),
        ("bytes_out", "counter", "Bytes written to sockets."),
        (
            "slow_consumers",
            "counter",
            "Subscribers dropped for unsent output over the cap.",
        ),
        (
            "pong_timeouts",
            "counter",
            "WebSockets closed for not answering a ping.",
        ),
        ("pings_sent", "counter", "Keepalive pings sent."),
        (
            "accept_fd_errors",
            "counter",
            "accept() failures for lack of file descriptors.",
        ),
        ("rss_bytes", "gauge", "Resident memory of the process."),
    ] {
        metric(name, kind, help, vec![(String::new(), num(name))]);
    }
    metric(
        "closed_by_server",
        "counter",
        "Connections the server closed, by cause.",
        CLOSE_CAUSE_NAMES
            .iter()
            .map(|k| {
                (
                    format!("{{cause=\"{k}\"}}"),
                    s["closed_by_server"][k].as_u64().unwrap_or(0),
                )
            })
            .collect(),
    );
    metric(
        "dead_peers_reaped",
        "counter",
        "Connections whose peer went away, by how it was noticed.",
        PEER_GONE_NAMES
            .iter()
            .map(|k| {
                (
                    format!("{{cause=\"{k}\"}}"),
                    s["dead_peers_reaped"][k].as_u64().unwrap_or(0),
                )
            })
            .collect(),
    );
    out
}
