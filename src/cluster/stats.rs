//! Figures of each shard's connection, written by its task and read by
//! `/status` (relaxed atomics: each is one number on its own).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One shard's live figures.
#[derive(Debug, Default)]
pub struct ShardStats {
    pub up: AtomicBool,
    /// Round-trip time of the last PING, µs.
    pub rtt_us: AtomicU64,
    /// Channels this node listens to on the shard.
    pub channels: AtomicU64,
    /// Publishes sent to Redis, and refused for Redis being unavailable.
    pub publishes_forwarded: AtomicU64,
    pub publishes_refused: AtomicU64,
    /// Messages received over pub/sub, and recovered from history after a
    /// reconnect.
    pub messages_received: AtomicU64,
    pub messages_recovered: AtomicU64,
    pub reconnects: AtomicU64,
}

/// A copy of one shard's figures, for rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardFigures {
    /// The shard's address without credentials.
    pub url: String,
    pub up: bool,
    pub rtt_us: u64,
    pub channels: u64,
    pub publishes_forwarded: u64,
    pub publishes_refused: u64,
    pub messages_received: u64,
    pub messages_recovered: u64,
    pub reconnects: u64,
}

impl ShardStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The figures now.
    pub fn figures(&self, url: &str) -> ShardFigures {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ShardFigures {
            url: url.to_string(),
            up: self.up.load(Ordering::Relaxed),
            rtt_us: get(&self.rtt_us),
            channels: get(&self.channels),
            publishes_forwarded: get(&self.publishes_forwarded),
            publishes_refused: get(&self.publishes_refused),
            messages_received: get(&self.messages_received),
            messages_recovered: get(&self.messages_recovered),
            reconnects: get(&self.reconnects),
        }
    }
}
