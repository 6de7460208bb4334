//! The live counters: each reactor writes only its own cache-line-aligned
//! block (relaxed atomics, never contended); readers sum them into a
//! [`super::Snapshot`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use super::histogram::Histogram;

/// Declares a counted category: the enum, its count and its `/status` names
/// in one place, so the three cannot drift apart.
macro_rules! category {
    ($(#[doc = $doc:literal])* $name:ident { $( $(#[doc = $vdoc:literal])* $variant:ident = $label:literal, )* }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $( $(#[doc = $vdoc])* $variant, )* }

        impl $name {
            /// Every value, in index order.
            pub const ALL: &'static [$name] = &[$( $name::$variant, )*];
            /// How many values there are.
            pub const COUNT: usize = Self::ALL.len();

            /// The name in `/status` and in metric labels.
            pub fn label(self) -> &'static str {
                match self { $( $name::$variant => $label, )* }
            }
        }
    };
}

category! {
    /// What a connection currently is, for the per-transport gauges.
    ConnKind {
        /// Reading HTTP requests (publishers, status scrapers, handshakes).
        Http = "http",
        Sse = "eventsource",
        Stream = "stream",
        WebSocket = "websocket",
        LongPoll = "longpoll",
    }
}

category! {
    /// Why the server closed a connection (the `closed_by_server` breakdown).
    CloseCause {
        /// Bad request or protocol error from the peer.
        BadInput = "bad_input",
        /// Channel deleted.
        ChannelDeleted = "channel_deleted",
        /// Server shutting down.
        Shutdown = "shutdown",
        /// Request head not complete within `handshake-timeout` (slowloris).
        HandshakeTimeout = "handshake_timeout",
        /// Keep-alive HTTP connection idle past `idle-timeout`.
        IdleTimeout = "idle_timeout",
        /// WebSocket ping not answered within `pong-timeout`.
        PongTimeout = "pong_timeout",
        /// Unsent output passed `max-queued-bytes`.
        SlowConsumer = "slow_consumer",
        /// `max-connection-lifetime` reached.
        Lifetime = "lifetime",
        /// Over `max-connections`: answered 503.
        OverCapacity = "over_capacity",
        /// A subscription refused by a limit (429), then closed.
        Refused = "refused",
        /// Refused by access control (401/403), then closed.
        Denied = "denied",
        /// The token it subscribed with expired.
        TokenExpired = "token_expired",
    }
}

category! {
    /// How a peer that went away was noticed (the `dead_peers_reaped` breakdown).
    PeerGone {
        /// Orderly close (read returned EOF).
        Eof = "eof",
        /// Connection reset (RST) seen on read.
        Reset = "reset",
        /// Kernel gave up: TCP keepalive or TCP_USER_TIMEOUT (ETIMEDOUT).
        Timeout = "timeout",
        /// A write failed (EPIPE, ECONNRESET): writes double as probes.
        WriteError = "write_error",
    }
}

category! {
    /// Which limit refused a request (the `refused` breakdown): kept apart
    /// from `bad_input`, because a refusal means the server is full, not
    /// that the client is wrong.
    Limit {
        /// `max-connections`: a fast 503.
        Connections = "max_connections",
        /// `max-channels`: 429 on publish or subscribe.
        Channels = "max_channels",
        /// `max-subscribers-per-channel`: 429 on subscribe.
        SubscribersPerChannel = "max_subscribers_per_channel",
        /// `max-connections-per-ip`: a fast 429.
        ConnectionsPerIp = "max_connections_per_ip",
    }
}

category! {
    /// Why access control refused a request (the `denied` breakdown; see
    /// `auth::policy::Denial`), plus browser origins not allowed.
    Denied {
        MissingCredential = "missing_credential",
        BadCredential = "bad_credential",
        SourceNotAllowed = "source_not_allowed",
        TokenRequired = "token_required",
        BadToken = "bad_token",
        ChannelNotGranted = "channel_not_granted",
        Origin = "origin",
    }
}

category! {
    /// Which size limit a peer passed (the `too_large` breakdown).
    TooLarge {
        /// `max-request-line` (414).
        RequestLine = "request_line",
        /// `max-header-bytes` (431).
        HeaderBytes = "header_bytes",
        /// `max-headers` (431).
        HeaderCount = "header_count",
        /// `max-message-size` on a publish body (413).
        Body = "body",
        /// `max-frame-size` on a WebSocket frame (1009).
        Frame = "frame",
        /// `max-message-size` on a WebSocket message (1009).
        Message = "message",
        /// `max-message-size` after inflating a compressed message (1009).
        Inflated = "inflated",
        /// `max-channels-per-subscription` (400).
        Channels = "channels",
        /// `max-channel-id` (400).
        ChannelId = "channel_id",
    }
}

category! {
    /// Why a TLS handshake did not complete (the `tls_handshakes_failed`
    /// breakdown).
    TlsFailure {
        /// Not complete within `handshake-timeout` of the accept.
        Timeout = "timeout",
        /// The client sent something that is not TLS, or broke the protocol.
        Protocol = "protocol",
        /// The client aborted with an alert: most often it does not trust
        /// the certificate (expired, wrong name, unknown issuer).
        Alert = "alert",
        /// A plaintext HTTP request on the TLS port (answered 400).
        Plaintext = "plaintext",
        /// The client went away mid-handshake (EOF or reset).
        Eof = "eof",
    }
}

category! {
    /// What a latency histogram measures (docs/METRICS.md).
    Latency {
        /// A publish request from its head read to its reply queued
        /// (through Redis on a cluster node).
        PublishRequest = "publish_request",
        /// A message from accepted by the hub (or received from Redis) to
        /// the first socket write that carries it, per reactor.
        PublishToFirstWrite = "publish_to_first_write",
        /// A message's fanout on one reactor: from its first queued copy to
        /// the last subscriber that could take it having it written.
        Fanout = "fanout",
    }
}

/// One reactor's counters, aligned so two reactors never share a line.
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct ReactorStats {
    pub connections: [AtomicI64; ConnKind::COUNT],
    pub accepted: AtomicU64,
    pub delivered_messages: AtomicU64,
    pub bytes_out: AtomicU64,
    pub requests: AtomicU64,
    pub peers_gone: [AtomicU64; PeerGone::COUNT],
    pub closed_by_server: [AtomicU64; CloseCause::COUNT],
    pub refused: [AtomicU64; Limit::COUNT],
    pub denied: [AtomicU64; Denied::COUNT],
    pub too_large: [AtomicU64; TooLarge::COUNT],
    pub pings_sent: AtomicU64,
    /// accept() failed for lack of file descriptors (EMFILE/ENFILE).
    pub accept_fd_errors: AtomicU64,
    /// TLS connections accepted (a handshake begins with each).
    pub tls_handshakes_started: AtomicU64,
    pub tls_handshakes_completed: AtomicU64,
    pub tls_handshakes_failed: [AtomicU64; TlsFailure::COUNT],
    /// Open TLS connections, by what they are now (a subset of
    /// `connections`).
    pub tls_connections: [AtomicI64; ConnKind::COUNT],
    pub latency: [Histogram; Latency::COUNT],
}

impl ReactorStats {
    /// Moves one connection from gauge `from` to gauge `to`.
    pub fn reclassify(&self, from: ConnKind, to: ConnKind) {
        if from != to {
            self.connections[from as usize].fetch_sub(1, Ordering::Relaxed);
            self.connections[to as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a connection closed by the server for `cause`.
    pub fn closed(&self, cause: CloseCause) {
        Self::add(&self.closed_by_server[cause as usize], 1);
    }

    /// Counts a request refused by `limit`.
    pub fn refused(&self, limit: Limit) {
        Self::add(&self.refused[limit as usize], 1);
    }

    /// Counts a request refused by access control.
    pub fn denied(&self, why: Denied) {
        Self::add(&self.denied[why as usize], 1);
    }

    /// Counts a TLS handshake that failed.
    pub fn tls_failed(&self, why: TlsFailure) {
        Self::add(&self.tls_handshakes_failed[why as usize], 1);
    }

    /// Records one latency observation.
    pub fn observe(&self, what: Latency, d: std::time::Duration) {
        self.latency[what as usize].observe(d);
    }

    /// Counts a size limit a peer passed.
    pub fn too_large(&self, limit: TooLarge) {
        Self::add(&self.too_large[limit as usize], 1);
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
}
