//! One consistent, typed reading of every figure, taken once per `/status`
//! or `/metrics` request and rendered by `render.rs`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::counters::{
    CloseCause, ConnKind, Denied, Latency, Limit, PeerGone, ReactorStats, Stats, TlsFailure,
    TooLarge,
};
use super::histogram::HistogramSnapshot;
use crate::cluster::ShardFigures;
use crate::pubsub::hub::HubTotals;

/// One reactor's share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReactorSnapshot {
    pub connections: u64,
    pub delivered_messages: u64,
    pub bytes_out: u64,
}

/// Every figure of `/status` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub uptime_seconds: u64,
    pub workers: usize,
    pub connections: [u64; ConnKind::COUNT],
    pub accepted_connections: u64,
    pub requests: u64,
    pub delivered_messages: u64,
    pub bytes_out: u64,
    pub pings_sent: u64,
    pub accept_fd_errors: u64,
    pub closed_by_server: [u64; CloseCause::COUNT],
    pub dead_peers_reaped: [u64; PeerGone::COUNT],
    pub refused: [u64; Limit::COUNT],
    pub denied: [u64; Denied::COUNT],
    pub too_large: [u64; TooLarge::COUNT],
    pub tls_handshakes_started: u64,
    pub tls_handshakes_completed: u64,
    pub tls_handshakes_failed: [u64; TlsFailure::COUNT],
    pub tls_connections: [u64; ConnKind::COUNT],
    pub latency: [HistogramSnapshot; Latency::COUNT],
    pub hub: HubTotals,
    pub rss_bytes: u64,
    pub reactors: Vec<ReactorSnapshot>,
    /// The Redis shards, when there is a backplane.
    pub backplane: Option<Vec<ShardFigures>>,
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Snapshot {
    /// Reads the counters of every reactor and the hub's totals.
    pub fn take(stats: &Stats, hub: HubTotals, backplane: Option<Vec<ShardFigures>>) -> Snapshot {
        let sum = |f: &dyn Fn(&ReactorStats) -> u64| stats.reactors.iter().map(f).sum::<u64>();
        let gauge = |f: &dyn Fn(&ReactorStats) -> i64| {
            stats.reactors.iter().map(f).sum::<i64>().max(0) as u64
        };
        let connections =
            std::array::from_fn(|kind| gauge(&|r| r.connections[kind].load(Ordering::Relaxed)));
        let tls_connections =
            std::array::from_fn(|kind| gauge(&|r| r.tls_connections[kind].load(Ordering::Relaxed)));
        Snapshot {
            uptime_seconds: stats.started.elapsed().as_secs(),
            workers: stats.reactors.len(),
            connections,
            accepted_connections: sum(&|r| load(&r.accepted)),
            requests: sum(&|r| load(&r.requests)),
            delivered_messages: sum(&|r| load(&r.delivered_messages)),
            bytes_out: sum(&|r| load(&r.bytes_out)),
            pings_sent: sum(&|r| load(&r.pings_sent)),
            accept_fd_errors: sum(&|r| load(&r.accept_fd_errors)),
            closed_by_server: std::array::from_fn(|i| sum(&|r| load(&r.closed_by_server[i]))),
            dead_peers_reaped: std::array::from_fn(|i| sum(&|r| load(&r.peers_gone[i]))),
            refused: std::array::from_fn(|i| sum(&|r| load(&r.refused[i]))),
            denied: std::array::from_fn(|i| sum(&|r| load(&r.denied[i]))),
            too_large: std::array::from_fn(|i| sum(&|r| load(&r.too_large[i]))),
            tls_handshakes_started: sum(&|r| load(&r.tls_handshakes_started)),
            tls_handshakes_completed: sum(&|r| load(&r.tls_handshakes_completed)),
            tls_handshakes_failed: std::array::from_fn(|i| {
                sum(&|r| load(&r.tls_handshakes_failed[i]))
            }),
            tls_connections,
            latency: std::array::from_fn(|i| {
                HistogramSnapshot::sum_of(stats.reactors.iter().map(|r| &r.latency[i]))
            }),
            hub,
            rss_bytes: rss_bytes(),
            reactors: stats
                .reactors
                .iter()
                .map(|r| ReactorSnapshot {
                    connections: r
                        .connections
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed))
                        .sum::<i64>()
                        .max(0) as u64,
                    delivered_messages: load(&r.delivered_messages),
                    bytes_out: load(&r.bytes_out),
                })
                .collect(),
            backplane,
        }
    }

    /// Open connections of every kind.
    pub fn total_connections(&self) -> u64 {
        self.connections.iter().sum()
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
    pages * page_size()
}

/// The kernel's page size (statm counts pages), read once.
fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf only reads a system constant; no memory is passed.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            n as u64
        } else {
            4096
        }
    })
}
