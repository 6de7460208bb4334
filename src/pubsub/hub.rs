//! The hub: the one shared table of channels (ids, counts, history).
//!
//! Why a single lock: message ids are one global sequence, assigned under
//! the lock together with pushing the message into each interested
//! reactor's inbox. That makes every reactor see messages in id order, so a
//! single id is enough to resume a multi-channel subscription without loss
//! or duplicates, and a subscriber registering while others publish can be
//! de-duplicated by comparing ids. The critical sections are a few hash
//! lookups and pushes; fanout to sockets happens outside, in the reactors.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::pubsub::bus::{ChannelRef, Delivery, ReactorLink};
use crate::pubsub::message::{Message, Publication};
use crate::pubsub::store::{History, StoreAccount, StoreLimits};

/// Hub settings taken from the config.
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub store: StoreLimits,
    /// Milliseconds an idle channel (no subscribers, nothing stored) lives.
    pub channel_idle_ttl_ms: u64,
    /// Most channels (0 = unlimited).
    pub max_channels: usize,
    /// Most subscribers per channel (0 = unlimited).
    pub max_subscribers_per_channel: usize,
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
}

/// One channel of a subscribe request.
#[derive(Debug, Clone)]
pub struct ChannelRequest {
    pub name: String,
    /// Replay the last `backtrack` stored messages (`CH.b5`); 0 = none.
    pub backtrack: usize,
}

/// What a reactor needs to register a new subscriber.
#[derive(Debug)]
pub struct Subscribed {
    /// The channels, as the hub knows them now.
    pub channels: Vec<ChannelRef>,
    /// Stored messages to send first, in id order, without duplicates.
    pub replay: Vec<Arc<Message>>,
    /// The resume point was older than the stored history.
    pub missed: bool,
    /// The newest id assigned so far: later inbox messages with an id at or
    /// below it are already covered by `replay` (or predate the subscriber).
    pub last_seq: u64,
}

/// A limit that refused a publish or subscribe (answered with 429).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// `max-channels` reached: no new channel can be created.
    TooManyChannels,
    /// `max-subscribers-per-channel` reached for this channel.
    TooManySubscribers(String),
}

impl LimitError {
    /// A message for the JSON error body.
    pub fn message(&self) -> String {
        match self {
            LimitError::TooManyChannels => "channel limit reached (max-channels)".into(),
            LimitError::TooManySubscribers(ch) => {
                format!("subscriber limit of channel {ch:?} reached (max-subscribers-per-channel)")
            }
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
}

/// The reply to a publish.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub id: u64,
    pub channels: Vec<ChannelInfo>,
}

/// Totals for `/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HubTotals {
    pub channels: u64,
    pub subscribers: u64,
    pub published_messages: u64,
    pub stored_messages: u64,
    pub stored_bytes: u64,
    pub channels_collected: u64,
    pub messages_expired: u64,
}

struct Channel {
    id: u64,
    name: Arc<str>,
    subscribers: u64,
    /// Subscribers per reactor, so a publish only wakes reactors that care.
    per_reactor: Box<[u32]>,
    published: u64,
    last_seq: Option<u64>,
    history: History,
    /// Since when (ms) the channel has had no subscribers and no history.
    idle_since: Option<u64>,
}

impl Channel {
    fn is_idle(&self) -> bool {
        self.subscribers == 0 && self.history.is_empty()
    }

    fn info(&self) -> ChannelInfo {
        ChannelInfo {
            channel: self.name.to_string(),
            subscribers: self.subscribers,
            published_messages: self.published,
            stored_messages: self.history.len() as u64,
            last_id: self.last_seq,
        }
    }

    fn channel_ref(&self) -> ChannelRef {
        ChannelRef {
            id: self.id,
            name: self.name.clone(),
        }
    }
}

struct HubState {
    /// Last assigned message id.
    seq: u64,
    next_channel_id: u64,
    channels: HashMap<Arc<str>, Channel>,
    store: StoreAccount,
    /// Channels that went idle, in time order, for garbage collection.
    idle: VecDeque<(Arc<str>, u64, u64)>,
    published_messages: u64,
    /// The newest message id dropped with a collected or deleted channel.
    /// A channel created later starts its gap marker there: a client
    /// resuming from before it may have missed messages of the channel's
    /// earlier incarnation (conservative: it cannot tell which channel).
    forgotten_with_channels: u64,
    /// Sum of all channels' subscribers (kept, not summed: /status must
    /// not walk a million channels under the lock).
    subscribers: u64,
    channels_collected: u64,
    messages_expired: u64,
}

/// The shared channel table plus the links to every reactor.
pub struct Hub {
    state: Mutex<HubState>,
    links: Vec<ReactorLink>,
    settings: HubSettings,
    /// First id of this run; ids from before it come from an earlier run.
    first_seq: u64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl HubState {
    /// Marks a channel idle (for GC) if it just became so.
    fn note_if_idle(&mut self, name: &str, now: u64) {
        if let Some(ch) = self.channels.get_mut(name) {
            if ch.is_idle() && ch.idle_since.is_none() {
                ch.idle_since = Some(now);
                self.idle.push_back((ch.name.clone(), ch.id, now));
            } else if !ch.is_idle() {
                ch.idle_since = None;
            }
        }
    }
}

impl Hub {
    /// Creates the hub. Ids start at the start time in microseconds, so ids
    /// keep increasing across restarts (as long as fewer than a million
    /// messages per second are published on average) and a client resuming
    /// with an id from an earlier run is told it missed messages.
    pub fn new(links: Vec<ReactorLink>, settings: HubSettings) -> Hub {
        let first_seq = now_ms() * 1000;
        Hub {
            state: Mutex::new(HubState {
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
            }),
            links,
            settings,
            first_seq,
        }
    }

    /// The link of reactor `r` (used by the reactor to clear its wake flag).
    pub fn link(&self, r: usize) -> &ReactorLink {
        &self.links[r]
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock is a bug in the hub; the state is
        // still consistent enough to keep serving other channels.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks that every channel in `names` exists or may be created.
    fn check_capacity(&self, st: &HubState, names: &[&str]) -> Result<(), LimitError> {
        let max = self.settings.max_channels;
        if max == 0 {
            return Ok(());
        }
        let new = names
            .iter()
            .filter(|n| !st.channels.contains_key(**n))
            .count();
        if new > 0 && st.channels.len() + new > max {
            return Err(LimitError::TooManyChannels);
        }
        Ok(())
    }

    fn channel_entry<'a>(&self, st: &'a mut HubState, name: &str) -> &'a mut Channel {
        if !st.channels.contains_key(name) {
            let id = st.next_channel_id;
            st.next_channel_id += 1;
            let name: Arc<str> = Arc::from(name);
            st.channels.insert(
                name.clone(),
                Channel {
                    id,
                    name,
                    subscribers: 0,
                    per_reactor: vec![0; self.links.len()].into(),
                    published: 0,
                    last_seq: None,
                    history: History::new(self.first_seq.max(st.forgotten_with_channels)),
                    idle_since: None,
                },
            );
        }
        st.channels.get_mut(name).expect("inserted above")
    }

    /// Publishes one message to `names` (validated, distinct ids) and hands
    /// it to every reactor with subscribers. `from` is the calling reactor,
    /// which drains its own inbox at the end of its loop turn and so is not
    /// woken.
    pub fn publish(
        &self,
        from: Option<usize>,
        names: &[&str],
        p: Publication,
    ) -> Result<Receipt, LimitError> {
        let mut wake = vec![false; self.links.len()];
        let now = now_ms();
        let receipt = {
            let mut st = self.lock();
            self.check_capacity(&st, names)?;
            st.seq += 1;
            let seq = st.seq;
            let refs: Vec<ChannelRef> = names
                .iter()
                .map(|n| self.channel_entry(&mut st, n).channel_ref())
                .collect();
            let msg = Arc::new(Message::new(seq, refs.into(), now, p));
            st.published_messages += 1;
            let mut infos = Vec::with_capacity(names.len());
            let st = &mut *st;
            for name in names {
                let Some(ch) = st.channels.get_mut(*name) else {
                    continue;
                };
                ch.published += 1;
                ch.last_seq = Some(seq);
                st.store.store(&mut ch.history, &msg, &self.settings.store);
                for (r, n) in ch.per_reactor.iter().enumerate() {
                    wake[r] |= *n > 0;
                }
                infos.push(ch.info());
                st.note_if_idle(name, now);
            }
            self.enforce_store_limits(st, now);
            for (r, w) in wake.iter().enumerate() {
                if *w {
                    self.links[r].push(Delivery::Message(msg.clone()));
                }
            }
            Receipt {
                id: seq,
                channels: infos,
            }
        };
        self.wake(&wake, from);
        Ok(receipt)
    }

    fn wake(&self, which: &[bool], except: Option<usize>) {
        for (r, w) in which.iter().enumerate() {
            if *w && Some(r) != except {
                self.links[r].wake();
            }
        }
    }

    /// Evicts the globally oldest messages while over the TTL or the byte
    /// budget.
    fn enforce_store_limits(&self, st: &mut HubState, now: u64) {
        while let Some(m) = st.store.next_eviction(now, &self.settings.store) {
            st.messages_expired += 1;
            for ch in m.channels.iter() {
                if let Some(c) = st.channels.get_mut(&*ch.name) {
                    if c.id == ch.id {
                        st.store.evict_from(&mut c.history, &m);
                    }
                }
                st.note_if_idle(&ch.name, now);
            }
        }
    }

    /// Registers a subscriber on reactor `r` and returns what it must be sent
    /// first. After this call every message published to these channels is
    /// pushed to reactor `r`'s inbox.
    pub fn subscribe(
        &self,
        r: usize,
        requests: &[ChannelRequest],
        resume: Resume,
    ) -> Result<Subscribed, LimitError> {
        let mut st = self.lock();
        let names: Vec<&str> = requests.iter().map(|q| q.name.as_str()).collect();
        self.check_capacity(&st, &names)?;
        let max_subs = self.settings.max_subscribers_per_channel as u64;
        if max_subs > 0 {
            for name in &names {
                if st
                    .channels
                    .get(*name)
                    .is_some_and(|c| c.subscribers >= max_subs)
                {
                    return Err(LimitError::TooManySubscribers(name.to_string()));
                }
            }
        }
        let now = now_ms();
        // Expired messages must not be replayed.
        self.enforce_store_limits(&mut st, now);
        let mut channels = Vec::with_capacity(requests.len());
        let mut replay: Vec<Arc<Message>> = Vec::new();
        let mut missed = false;
        let current = st.seq;
        st.subscribers += requests.len() as u64;
        for req in requests {
            let ch = self.channel_entry(&mut st, &req.name);
            ch.subscribers += 1;
            ch.per_reactor[r] += 1;
            ch.idle_since = None;
            channels.push(ch.channel_ref());
            match resume {
                Resume::Live => {}
                Resume::AfterSeq(after) => {
                    // Older than what is kept, or an id this run never
                    // issued (an earlier run, another node): a gap.
                    let from_future = after > current;
                    if after < ch.history.forgotten_through || from_future {
                        missed = true;
                    }
                    replay.extend(
                        ch.history
                            .iter()
                            .filter(|m| from_future || m.seq > after)
                            .cloned(),
                    );
                }
                Resume::SinceMs(since) => {
                    replay.extend(
                        ch.history
                            .iter()
                            .filter(|m| m.published_at_ms >= since)
                            .cloned(),
                    );
                }
            }
            if req.backtrack > 0 {
                let skip = ch.history.len().saturating_sub(req.backtrack);
                replay.extend(ch.history.iter().skip(skip).cloned());
            }
        }
        drop(st);
        // One message published to several channels appears once per
        // channel; the subscriber gets it once.
        replay.sort_by_key(|m| m.seq);
        replay.dedup_by_key(|m| m.seq);
        Ok(Subscribed {
            channels,
            replay,
            missed,
            last_seq: current,
        })
    }

    /// Forgets a subscriber of reactor `r`. Channels that were deleted (or
    /// deleted and re-created) in the meantime are skipped by their id.
    pub fn unsubscribe(&self, r: usize, channels: &[ChannelRef]) {
        let mut st = self.lock();
        let now = now_ms();
        for c in channels {
            let st = &mut *st;
            if let Some(ch) = st.channels.get_mut(&*c.name) {
                if ch.id == c.id && ch.subscribers > 0 {
                    st.subscribers -= 1;
                    ch.subscribers -= 1;
                    ch.per_reactor[r] = ch.per_reactor[r].saturating_sub(1);
                    st.note_if_idle(&c.name, now);
                }
            }
        }
        if self.settings.channel_idle_ttl_ms == 0 {
            self.collect_idle(&mut st, now);
        }
    }

    /// Periodic upkeep (called by one reactor about once a second): expire
    /// old messages and collect channels idle for `channel-idle-ttl`.
    pub fn maintain(&self) {
        let now = now_ms();
        let mut st = self.lock();
        self.enforce_store_limits(&mut st, now);
        self.collect_idle(&mut st, now);
    }

    fn collect_idle(&self, st: &mut HubState, now: u64) {
        let ttl = self.settings.channel_idle_ttl_ms;
        while let Some((name, id, since)) = st.idle.front().cloned() {
            if since + ttl > now {
                break;
            }
            st.idle.pop_front();
            let still_idle = st
                .channels
                .get(&*name)
                .is_some_and(|c| c.id == id && c.idle_since == Some(since) && c.is_idle());
            if still_idle {
                if let Some(ch) = st.channels.remove(&*name) {
                    st.forgotten_with_channels =
                        st.forgotten_with_channels.max(ch.history.forgotten_through);
                }
                st.channels_collected += 1;
            }
        }
    }

    /// Deletes a channel and its history, and tells every reactor with
    /// subscribers to disconnect them. Returns the channel's last figures.
    pub fn delete(&self, name: &str) -> Option<ChannelInfo> {
        let mut st = self.lock();
        let mut ch = st.channels.remove(name)?;
        st.store.drop_history(&mut ch.history);
        st.forgotten_with_channels = st.forgotten_with_channels.max(ch.history.forgotten_through);
        st.subscribers -= ch.subscribers;
        let mut info = ch.info();
        info.stored_messages = 0;
        let cref = ch.channel_ref();
        let wake: Vec<bool> = ch.per_reactor.iter().map(|n| *n > 0).collect();
        for (r, w) in wake.iter().enumerate() {
            if *w {
                self.links[r].push(Delivery::ChannelDeleted(cref.clone()));
            }
        }
        drop(st);
        self.wake(&wake, None);
        Some(info)
    }

    /// A channel's figures, or None if it does not exist.
    pub fn info(&self, name: &str) -> Option<ChannelInfo> {
        self.lock().channels.get(name).map(Channel::info)
    }

    /// Totals across all channels.
    pub fn totals(&self) -> HubTotals {
        let st = self.lock();
        HubTotals {
            channels: st.channels.len() as u64,
            subscribers: st.subscribers,
            published_messages: st.published_messages,
            stored_messages: st.store.live_messages,
            stored_bytes: st.store.bytes,
            channels_collected: st.channels_collected,
            messages_expired: st.messages_expired,
        }
    }

    /// Asks every reactor to drain (see `Delivery::Drain`).
    pub fn drain_all(&self, until: std::time::Instant) {
        for link in &self.links {
            link.push(Delivery::Drain(until));
            link.wake();
        }
    }

    /// Asks every reactor to stop.
    pub fn shutdown_all(&self) {
        for link in &self.links {
            link.push(Delivery::Shutdown);
            link.wake();
        }
    }
}
