//! The channel table behind the hub's lock: channels, their history and
//! counts, and the bookkeeping that expires messages and collects idle
//! channels. Only the hub touches it, always under its one lock.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::{HubSettings, LimitError};
use crate::pubsub::channel::{ChannelInfo, ChannelRef};
use crate::pubsub::store::{History, StoreAccount};

/// One channel as the hub keeps it.
pub(super) struct Channel {
    pub id: u64,
    pub name: Arc<str>,
    pub subscribers: u64,
    /// Subscribers per reactor, so a publish only wakes reactors that care.
    pub per_reactor: Box<[u32]>,
    pub published: u64,
    pub last_seq: Option<u64>,
    pub history: History,
    /// Since when (ms) the channel has had no subscribers and no history.
    pub idle_since: Option<u64>,
    /// The channel has an entry in the idle queue: at most one, however
    /// often it flips between busy and idle.
    pub idle_queued: bool,
}

impl Channel {
    pub fn is_idle(&self) -> bool {
        self.subscribers == 0 && self.history.is_empty()
    }

    pub fn info(&self) -> ChannelInfo {
        ChannelInfo {
            channel: self.name.to_string(),
            subscribers: self.subscribers,
            published_messages: self.published,
            stored_messages: self.history.len() as u64,
            last_id: self.last_seq,
            last_at_ms: self
                .history
                .iter()
                .next_back()
                .filter(|m| Some(m.seq) == self.last_seq)
                .map(|m| m.published_at_ms),
        }
    }

    pub fn channel_ref(&self) -> ChannelRef {
        ChannelRef {
            id: self.id,
            name: self.name.clone(),
        }
    }
}

/// Everything the hub's lock protects.
pub(super) struct HubState {
    /// Last assigned message id.
    pub seq: u64,
    next_channel_id: u64,
    pub channels: HashMap<Arc<str>, Channel>,
    pub store: StoreAccount,
    /// Channels that went idle, roughly in time order, for garbage
    /// collection: (name, incarnation, idle since). One entry per channel
    /// at most (`Channel::idle_queued`), so the queue is bounded by the
    /// channel count even when channels flip between busy and idle.
    idle: VecDeque<(Arc<str>, u64, u64)>,
    pub published_messages: u64,
    /// The newest message id dropped with a collected or deleted channel.
    /// A channel created later starts its gap marker there: a client
    /// resuming from before it may have missed messages of the channel's
    /// earlier incarnation (conservative: it cannot tell which channel).
    pub forgotten_with_channels: u64,
    /// Sum of all channels' subscribers (kept, not summed: /status must
    /// not walk a million channels under the lock).
    pub subscribers: u64,
    pub channels_collected: u64,
    pub messages_expired: u64,
    /// Backplane: per shard, the highest seq handed to the reactors. A
    /// subscriber registered now gets only messages above it.
    pub watermarks: Vec<u64>,
}

impl HubState {
    /// An empty table whose first message id will be `first_seq + 1`.
    pub fn new(first_seq: u64) -> HubState {
        HubState {
            seq: first_seq,
            next_channel_id: 1,
            channels: HashMap::new(),
            store: StoreAccount::default(),
            idle: VecDeque::new(),
            published_messages: 0,
            forgotten_with_channels: 0,
            subscribers: 0,
            channels_collected: 0,
            messages_expired: 0,
            watermarks: Vec::new(),
        }
    }

    /// Marks a channel idle (for GC) if it just became so.
    pub fn note_if_idle(&mut self, name: &str, now: u64) {
        if let Some(ch) = self.channels.get_mut(name) {
            if ch.is_idle() && ch.idle_since.is_none() {
                ch.idle_since = Some(now);
                if !ch.idle_queued {
                    ch.idle_queued = true;
                    self.idle.push_back((ch.name.clone(), ch.id, now));
                }
            } else if !ch.is_idle() {
                ch.idle_since = None;
            }
        }
    }

    /// Checks that every channel in `names` exists or may be created.
    pub fn check_capacity(&self, names: &[&str], max: usize) -> Result<(), LimitError> {
        if max == 0 {
            return Ok(());
        }
        let new = names
            .iter()
            .filter(|n| !self.channels.contains_key(**n))
            .count();
        if new > 0 && self.channels.len() + new > max {
            return Err(LimitError::TooManyChannels);
        }
        Ok(())
    }

    /// The channel named `name`, created if missing. `reactors` sizes its
    /// per-reactor counts; `first_seq` is the first id of this run (a gap
    /// marker for resumes from before it).
    pub fn channel_entry(&mut self, name: &str, reactors: usize, first_seq: u64) -> &mut Channel {
        if !self.channels.contains_key(name) {
            let id = self.next_channel_id;
            self.next_channel_id += 1;
            let name: Arc<str> = Arc::from(name);
            let forgotten = first_seq.max(self.forgotten_with_channels);
            self.channels.insert(
                name.clone(),
                Channel {
                    id,
                    name,
                    subscribers: 0,
                    per_reactor: vec![0; reactors].into(),
                    published: 0,
                    last_seq: None,
                    history: History::new(forgotten),
                    idle_since: None,
                    idle_queued: false,
                },
            );
        }
        self.channels.get_mut(name).expect("inserted above")
    }

    /// Evicts the globally oldest messages while over the TTL or the byte
    /// budget.
    pub fn enforce_store_limits(&mut self, now: u64, settings: &HubSettings) {
        while let Some(m) = self.store.next_eviction(now, &settings.store) {
            self.messages_expired += 1;
            for ch in m.channels.iter() {
                if let Some(c) = self.channels.get_mut(&*ch.name) {
                    if c.id == ch.id {
                        self.store.evict_from(&mut c.history, &m);
                    }
                }
                self.note_if_idle(&ch.name, now);
            }
        }
    }

    /// Removes channels that have been idle for `ttl_ms`. An entry whose
    /// channel went busy and idle again since it was queued moves to the
    /// back with its new time (so a collection can come up to one `ttl_ms`
    /// late, never early); one whose channel is busy or gone is dropped.
    pub fn collect_idle(&mut self, now: u64, ttl_ms: u64) {
        while let Some((name, id, since)) = self.idle.front().cloned() {
            if since.saturating_add(ttl_ms) > now {
                break;
            }
            self.idle.pop_front();
            let Some(ch) = self.channels.get_mut(&*name).filter(|c| c.id == id) else {
                continue;
            };
            match ch.idle_since {
                Some(t) if ch.is_idle() && t.saturating_add(ttl_ms) <= now => {
                    if let Some(ch) = self.channels.remove(&*name) {
                        self.forgotten_with_channels = self
                            .forgotten_with_channels
                            .max(ch.history.forgotten_through);
                    }
                    self.channels_collected += 1;
                }
                Some(t) if ch.is_idle() => self.idle.push_back((name, id, t)),
                _ => ch.idle_queued = false,
            }
        }
        if self.idle.capacity() > 64 && self.idle.len() < self.idle.capacity() / 4 {
            self.idle.shrink_to(self.idle.len() * 2);
        }
    }

    /// Removes a channel now (DELETE), dropping its history.
    pub fn remove_channel(&mut self, name: &str) -> Option<Channel> {
        let mut ch = self.channels.remove(name)?;
        self.store.drop_history(&mut ch.history);
        self.forgotten_with_channels = self
            .forgotten_with_channels
            .max(ch.history.forgotten_through);
        self.subscribers -= ch.subscribers;
        Some(ch)
    }

    /// Entries in the idle queue (for tests of its bound).
    #[cfg(test)]
    pub fn idle_queue_len(&self) -> usize {
        self.idle.len()
    }
}
