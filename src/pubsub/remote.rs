//! The hub's seam to a backplane (the Redis engine in `cluster/`): what it
//! asks of one, and the values that travel back to the reactors. Defined
//! here so the hub and the reactors depend on an interface, not on Redis.

use std::sync::Arc;

use crate::pubsub::message::{Message, Publication};

/// What the hub tells a backplane: which channels this node has local
/// subscribers for, so it listens only to those (traffic into a node then
/// scales with its own subscribers, not the fleet's).
pub trait RemoteWatch: Send + Sync {
    /// The first local subscriber of `channel` arrived.
    fn watch(&self, channel: &str);
    /// The last local subscriber of `channel` left.
    fn unwatch(&self, channel: &str);
}

/// A message the backplane received for a channel.
#[derive(Debug)]
pub struct RemoteMessage {
    pub channel: String,
    pub shard: u16,
    pub seq: u64,
    pub published_at_ms: u64,
    pub publication: Publication,
}

/// One channel of an accepted cluster publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedChannel {
    pub channel: String,
    pub id: u64,
    pub shard: u16,
    /// Nodes listening to the channel when it was published.
    pub nodes: u64,
    pub published_messages: u64,
    pub stored_messages: u64,
}

/// How a cluster publish ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishOutcome {
    /// Accepted by Redis: the channels with their ids.
    Accepted(Vec<PublishedChannel>),
    /// Redis cannot take it now (answered 503 with this reason).
    Unavailable(&'static str),
}

/// The history a resuming subscriber gets from one shard.
#[derive(Debug)]
pub struct ReplayPart {
    pub shard: u16,
    /// In sequence order.
    pub messages: Vec<Arc<Message>>,
    /// The history no longer reaches back to the resume point.
    pub missed: bool,
    /// The shard's sequence when the history was read.
    pub current: u64,
}
