//! What a channel is to everyone outside the hub: its id rule, its identity
//! (name plus incarnation), what a subscriber asks of it, and its public
//! figures. Plain types with no behaviour beyond validation, so the router,
//! the reactors and the hub can share them without depending on each other.

use std::sync::Arc;

/// Longest channel id, in bytes.
pub const MAX_CHANNEL_ID: usize = 128;

/// Channel ids: 1–128 bytes of `[A-Za-z0-9_.:@-]`. Narrow on purpose: ids
/// appear in paths, queries, JSON, SSE lines and Redis keys, and nothing in
/// this set needs escaping in any of them.
pub fn valid_channel_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CHANNEL_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-'))
}

/// A channel's identity: its name plus an incarnation number, so that a
/// channel deleted and re-created under the same name is a different
/// channel to reactors and to late unsubscribes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelRef {
    /// Unique for the life of the process; never reused.
    pub id: u64,
    /// The channel id as clients spell it.
    pub name: Arc<str>,
}

/// One channel of a subscribe request (`news`, or `news.b5` for the last 5
/// stored messages first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRequest {
    pub name: String,
    /// Replay the last `backtrack` stored messages; 0 = none.
    pub backtrack: usize,
}

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Only messages published from now on.
    Live,
    /// Every stored message with an id greater than this one.
    AfterSeq(u64),
    /// Every stored message published at or after this time (ms since epoch).
    SinceMs(u64),
    /// `--first-message` for a subscriber that named no resume point:
    /// every stored message but the oldest `n` (0 = all of them).
    Stored(u64),
    /// `--first-message -N`: the newest `n` stored messages.
    Newest(u64),
}

impl Resume {
    /// The id the client asked to resume after, if it gave one.
    pub fn after(self) -> Option<u64> {
        match self {
            Resume::AfterSeq(s) => Some(s),
            _ => None,
        }
    }
}

/// A channel's public figures (the JSON of `/pub?id=` and `/status?id=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    pub channel: String,
    pub subscribers: u64,
    pub published_messages: u64,
    pub stored_messages: u64,
    /// Id of the newest message published to the channel, if any.
    pub last_id: Option<u64>,
    /// When that message was published (ms since the epoch), if it is
    /// still stored (Nchan's ids carry it).
    pub last_at_ms: Option<u64>,
}

impl ChannelInfo {
    /// The JSON clients get for one channel (publish replies, `GET /pub`,
    /// `/status?id=`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "channel": self.channel,
            "id": self.last_id.map(|s| s.to_string()),
            "subscribers": self.subscribers,
            "published_messages": self.published_messages,
            "stored_messages": self.stored_messages,
        })
    }
}

/// Channels whose name starts with `$` (`$status`) are published by each
/// node about itself: the backplane never carries them.
pub fn is_node_local(name: &str) -> bool {
    name.starts_with('$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_id_rule() {
        assert!(valid_channel_id("a-b_c.d:e@f9"));
        assert!(!valid_channel_id(""));
        assert!(!valid_channel_id("a b"));
        assert!(!valid_channel_id("../etc"));
        assert!(!valid_channel_id("a/b"));
        assert!(!valid_channel_id(&"x".repeat(MAX_CHANNEL_ID + 1)));
        assert!(valid_channel_id(&"x".repeat(MAX_CHANNEL_ID)));
    }

    #[test]
    fn channel_json_has_the_id_as_a_string() {
        let info = ChannelInfo {
            channel: "news".into(),
            subscribers: 2,
            published_messages: 3,
            stored_messages: 1,
            last_id: Some(17),
            last_at_ms: None,
        };
        let v = info.to_json();
        assert_eq!(v["id"], "17");
        assert_eq!(v["subscribers"], 2);
    }
}
