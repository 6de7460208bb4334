//! Every metric: its `/status` JSON key, its Prometheus name, type and help,
//! in one table. Both renderings walk the same table, so a figure cannot be
//! spelt one way in `/status` and another in `/metrics`.
//!
//! Prometheus names follow the conventions `promtool check metrics`
//! enforces: a `crier_` prefix, base units in the name, `_total` on every
//! counter and on nothing else.

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// The `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One metric's names and description.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Key in the `/status` document.
    pub key: &'static str,
    /// Prometheus name.
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn counter(key: &'static str, name: &'static str, help: &'static str) -> Metric {
    Metric {
        key,
        name,
        kind: Kind::Counter,
        help,
    }
}

const fn gauge(key: &'static str, name: &'static str, help: &'static str) -> Metric {
    Metric {
        key,
        name,
        kind: Kind::Gauge,
        help,
    }
}

const fn histogram(key: &'static str, name: &'static str, help: &'static str) -> Metric {
    Metric {
        key,
        name,
        kind: Kind::Histogram,
        help,
    }
}

/// The latency histograms, in `Latency` order (keys under `latency` in
/// `/status`).
pub const LATENCY: [Metric; 3] = [
    histogram(
        "publish_request",
        "crier_publish_request_duration_seconds",
        "Publish requests from head read to reply queued (Redis round trip included on a cluster node).",
    ),
    histogram(
        "publish_to_first_write",
        "crier_publish_to_first_write_seconds",
        "Messages from accepted (or received from Redis) to the first socket write carrying them, per reactor.",
    ),
    histogram(
        "fanout",
        "crier_fanout_duration_seconds",
        "Per message and reactor: first copy queued to the last subscriber that could take it written.",
    ),
];

pub const UPTIME: Metric = gauge(
    "uptime_seconds",
    "crier_uptime_seconds",
    "Seconds since start.",
);
pub const CONNECTIONS: Metric = gauge(
    "connections",
    "crier_connections",
    "Open connections by transport.",
);
pub const ACCEPTED: Metric = counter(
    "accepted_connections",
    "crier_connections_accepted_total",
    "Connections accepted.",
);
pub const REQUESTS: Metric = counter(
    "requests",
    "crier_requests_total",
    "HTTP request heads parsed.",
);
pub const CHANNELS: Metric = gauge("channels", "crier_channels", "Channels in the hub.");
pub const SUBSCRIBERS: Metric = gauge(
    "subscribers",
    "crier_subscribers",
    "Subscriptions across all channels.",
);
pub const PUBLISHED: Metric = counter(
    "published_messages",
    "crier_messages_published_total",
    "Messages published.",
);
pub const STORED_MESSAGES: Metric = gauge(
    "stored_messages",
    "crier_stored_messages",
    "Messages held in channel history.",
);
pub const STORED_BYTES: Metric = gauge(
    "stored_bytes",
    "crier_stored_bytes",
    "Approximate memory of stored messages.",
);
pub const EXPIRED: Metric = counter(
    "messages_expired",
    "crier_messages_expired_total",
    "Stored messages evicted by age or memory budget.",
);
pub const COLLECTED: Metric = counter(
    "channels_collected",
    "crier_channels_collected_total",
    "Idle channels garbage-collected.",
);
pub const DELIVERED: Metric = counter(
    "delivered_messages",
    "crier_messages_delivered_total",
    "Messages queued to subscribers.",
);
pub const BYTES_OUT: Metric = counter(
    "bytes_out",
    "crier_sent_bytes_total",
    "Bytes written to sockets.",
);
pub const SLOW_CONSUMERS: Metric = counter(
    "slow_consumers",
    "crier_slow_consumers_total",
    "Subscribers dropped for unsent output over the cap.",
);
pub const PONG_TIMEOUTS: Metric = counter(
    "pong_timeouts",
    "crier_pong_timeouts_total",
    "WebSockets closed for not answering a ping.",
);
pub const PINGS: Metric = counter(
    "pings_sent",
    "crier_pings_sent_total",
    "Keepalive pings sent.",
);
pub const ACCEPT_FD_ERRORS: Metric = counter(
    "accept_fd_errors",
    "crier_accept_fd_errors_total",
    "accept() failures for lack of file descriptors.",
);
pub const RSS: Metric = gauge(
    "rss_bytes",
    "crier_rss_bytes",
    "Resident memory of the process.",
);
pub const CLOSED: Metric = counter(
    "closed_by_server",
    "crier_closed_by_server_total",
    "Connections the server closed, by cause.",
);
pub const PEERS_GONE: Metric = counter(
    "dead_peers_reaped",
    "crier_dead_peers_reaped_total",
    "Connections whose peer went away, by how it was noticed.",
);
pub const REFUSED: Metric = counter(
    "refused",
    "crier_refused_total",
    "Requests refused by a limit (429 or 503), by limit.",
);
pub const DENIED: Metric = counter(
    "denied",
    "crier_denied_total",
    "Requests refused by access control (401 or 403), by reason.",
);
pub const TOO_LARGE: Metric = counter(
    "too_large",
    "crier_too_large_total",
    "Requests and frames refused for passing a size limit, by limit.",
);
pub const BACKPLANE_UP: Metric = gauge(
    "up",
    "crier_backplane_up",
    "Whether the Redis shard is connected (1) or not (0).",
);
pub const BACKPLANE_RTT: Metric = gauge(
    "rtt_us",
    "crier_backplane_rtt_seconds",
    "Round-trip time of the last PING to the Redis shard.",
);
pub const BACKPLANE_CHANNELS: Metric = gauge(
    "channels",
    "crier_backplane_channels",
    "Channels this node listens to on the Redis shard.",
);
pub const BACKPLANE_FORWARDED: Metric = counter(
    "publishes_forwarded",
    "crier_backplane_publishes_forwarded_total",
    "Publishes this node sent to the Redis shard and it accepted.",
);
pub const BACKPLANE_REFUSED: Metric = counter(
    "publishes_refused",
    "crier_backplane_publishes_refused_total",
    "Publishes answered 503 because the Redis shard was unreachable.",
);
pub const BACKPLANE_RECEIVED: Metric = counter(
    "messages_received",
    "crier_backplane_messages_received_total",
    "Messages received from the Redis shard over pub/sub.",
);
pub const BACKPLANE_RECOVERED: Metric = counter(
    "messages_recovered",
    "crier_backplane_messages_recovered_total",
    "Messages read back from history after a reconnect (published while away).",
);
pub const BACKPLANE_RECONNECTS: Metric = counter(
    "reconnects",
    "crier_backplane_reconnects_total",
    "Times the Redis shard was reconnected after losing it.",
);
pub const TLS_HANDSHAKES_STARTED: Metric = counter(
    "tls_handshakes_started",
    "crier_tls_handshakes_started_total",
    "TLS handshakes begun (TLS connections accepted).",
);
pub const TLS_HANDSHAKES_COMPLETED: Metric = counter(
    "tls_handshakes_completed",
    "crier_tls_handshakes_completed_total",
    "TLS handshakes completed.",
);
pub const TLS_HANDSHAKES_FAILED: Metric = counter(
    "tls_handshakes_failed",
    "crier_tls_handshakes_failed_total",
    "TLS handshakes that did not complete, by reason.",
);
pub const TLS_CONNECTIONS: Metric = gauge(
    "tls_connections",
    "crier_tls_connections",
    "Open TLS connections by transport (part of crier_connections).",
);
