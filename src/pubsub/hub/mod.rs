//! The hub: the one shared table of channels (ids, counts, history), and
//! the only way into it. Reactors call a handful of methods — publish,
//! subscribe, unsubscribe, info, delete, totals — and never see the table.
//!
//! Why a single lock: message ids are one global sequence, assigned under
//! the lock together with pushing the message into each interested
//! reactor's inbox. That makes every reactor see messages in id order, so a
//! single id is enough to resume a multi-channel subscription without loss
//! or duplicates, and a subscriber registering while others publish can be
//! de-duplicated by comparing ids. The critical sections are a few hash
//! lookups and pushes; fanout to sockets happens outside, in the reactors.

mod lookup;
mod table;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::pubsub::bus::{Delivery, ReactorLink};
use crate::pubsub::channel::{is_node_local, ChannelInfo, ChannelRef, ChannelRequest, Resume};
use crate::pubsub::message::{Message, Publication};
use crate::pubsub::remote::{RemoteMessage, RemoteWatch};
use crate::pubsub::store::StoreLimits;
use table::{Channel, HubState};

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
    /// A backplane (Redis) holds ids and history: the hub only routes
    /// messages to reactors and counts subscribers, and replays come from
    /// the backplane (`reactor/cluster.rs`).
    pub remote: bool,
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
    /// 0 with a backplane (its ids are Redis's).
    pub last_seq: u64,
    /// With a backplane: per shard, the highest seq handed to reactors so
    /// far (later messages are above it).
    pub positions: Vec<u64>,
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

/// The reply to a publish.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub id: u64,
    pub channels: Vec<ChannelInfo>,
}

/// Totals for `/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubTotals {
    pub channels: u64,
    pub subscribers: u64,
    pub published_messages: u64,
    pub stored_messages: u64,
    pub stored_bytes: u64,
    pub channels_collected: u64,
    pub messages_expired: u64,
}

/// The shared channel table plus the links to every reactor.
pub struct Hub {
    state: Mutex<HubState>,
    links: Vec<ReactorLink>,
    settings: HubSettings,
    /// Told which channels have local subscribers (cluster mode).
    watcher: OnceLock<Arc<dyn RemoteWatch>>,
    /// First id of this run; ids from before it come from an earlier run.
    first_seq: u64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    /// Creates the hub. Ids start at the start time in microseconds, so ids
    /// keep increasing across restarts (as long as fewer than a million
    /// messages per second are published on average) and a client resuming
    /// with an id from an earlier run is told it missed messages.
    pub fn new(links: Vec<ReactorLink>, settings: HubSettings) -> Hub {
        let first_seq = now_ms() * 1000;
        Hub {
            state: Mutex::new(HubState::new(first_seq)),
            links,
            settings,
            watcher: OnceLock::new(),
            first_seq,
        }
    }

    /// Connects the backplane that must learn which channels have local
    /// subscribers. Set once, before any reactor runs.
    pub fn set_watcher(&self, watcher: Arc<dyn RemoteWatch>) {
        let _ = self.watcher.set(watcher);
    }

    /// Whether ids and history live in a backplane.
    pub fn is_remote(&self) -> bool {
        self.settings.remote
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock is a bug in the hub; the state is
        // still consistent enough to keep serving other channels.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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
            let mut guard = self.lock();
            let st = &mut *guard;
            st.check_capacity(names, self.settings.max_channels)?;
            st.seq += 1;
            let seq = st.seq;
            let system = p.system;
            let refs: Vec<ChannelRef> = names
                .iter()
                .map(|n| {
                    st.channel_entry(n, self.links.len(), self.first_seq)
                        .channel_ref()
                })
                .collect();
            let msg = Arc::new(Message::new(seq, refs.into(), now, p));
            if !system {
                st.published_messages += 1;
            }
            let mut infos = Vec::with_capacity(names.len());
            for name in names {
                let Some(ch) = st.channels.get_mut(*name) else {
                    continue;
                };
                ch.published += 1;
                ch.last_seq = Some(seq);
                if !system {
                    st.store.store(&mut ch.history, &msg, &self.settings.store);
                }
                for (r, n) in ch.per_reactor.iter().enumerate() {
                    wake[r] |= *n > 0;
                }
                infos.push(ch.info());
                st.note_if_idle(name, now);
            }
            st.enforce_store_limits(now, &self.settings);
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

    /// Registers a subscriber on reactor `r` and returns what it must be sent
    /// first. After this call every message published to these channels is
    /// pushed to reactor `r`'s inbox.
    pub fn subscribe(
        &self,
        r: usize,
        requests: &[ChannelRequest],
        resume: Resume,
    ) -> Result<Subscribed, LimitError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let names: Vec<&str> = requests.iter().map(|q| q.name.as_str()).collect();
        st.check_capacity(&names, self.settings.max_channels)?;
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
        st.enforce_store_limits(now, &self.settings);
        let mut channels = Vec::with_capacity(requests.len());
        let mut replay: Vec<Arc<Message>> = Vec::new();
        let mut missed = false;
        let current = st.seq;
        st.subscribers += requests.len() as u64;
        for req in requests {
            let ch = st.channel_entry(&req.name, self.links.len(), self.first_seq);
            ch.subscribers += 1;
            ch.per_reactor[r] += 1;
            ch.idle_since = None;
            channels.push(ch.channel_ref());
            if ch.subscribers == 1 && !is_node_local(&req.name) {
                if let Some(w) = self.watcher.get() {
                    w.watch(&req.name);
                }
            }
            if self.settings.remote {
                continue;
            }
            missed |= replay_from(ch, resume, current, &mut replay);
            if req.backtrack > 0 {
                let skip = ch.history.len().saturating_sub(req.backtrack);
                replay.extend(ch.history.iter().skip(skip).cloned());
            }
        }
        let positions = st.watermarks.clone();
        drop(guard);
        // One message published to several channels appears once per
        // channel; the subscriber gets it once.
        replay.sort_by_key(|m| m.seq);
        replay.dedup_by_key(|m| m.seq);
        Ok(Subscribed {
            channels,
            replay,
            missed,
            last_seq: if self.settings.remote { 0 } else { current },
            positions,
        })
    }

    /// Forgets a subscriber of reactor `r`. Channels that were deleted (or
    /// deleted and re-created) in the meantime are skipped by their id.
    pub fn unsubscribe(&self, r: usize, channels: &[ChannelRef]) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let now = now_ms();
        for c in channels {
            if let Some(ch) = st.channels.get_mut(&*c.name) {
                if ch.id == c.id && ch.subscribers > 0 {
                    st.subscribers -= 1;
                    ch.subscribers -= 1;
                    ch.per_reactor[r] = ch.per_reactor[r].saturating_sub(1);
                    if ch.subscribers == 0 && !is_node_local(&c.name) {
                        if let Some(w) = self.watcher.get() {
                            w.unwatch(&c.name);
                        }
                    }
                    st.note_if_idle(&c.name, now);
                }
            }
        }
        if self.settings.channel_idle_ttl_ms == 0 {
            st.collect_idle(now, 0);
        }
    }

    /// Periodic upkeep (called by one reactor about once a second): expire
    /// old messages and collect channels idle for `channel-idle-ttl`.
    pub fn maintain(&self) {
        let now = now_ms();
        let mut st = self.lock();
        st.enforce_store_limits(now, &self.settings);
        st.collect_idle(now, self.settings.channel_idle_ttl_ms);
    }

    /// Deletes a channel and its history, and tells every reactor with
    /// subscribers to disconnect them. Returns the channel's last figures.
    pub fn delete(&self, name: &str) -> Option<ChannelInfo> {
        let mut st = self.lock();
        let ch = st.remove_channel(name)?;
        if ch.subscribers > 0 && !is_node_local(name) {
            if let Some(w) = self.watcher.get() {
                w.unwatch(name);
            }
        }
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

    /// Routes messages the backplane received to the reactors with local
    /// subscribers of their channels (channels nobody here listens to are
    /// skipped). Nothing is stored or numbered here: Redis did both.
    pub fn deliver_remote(&self, messages: Vec<RemoteMessage>) {
        let mut wake = vec![false; self.links.len()];
        {
            let mut guard = self.lock();
            let st = &mut *guard;
            for m in messages {
                let shard = usize::from(m.shard);
                if st.watermarks.len() <= shard {
                    st.watermarks.resize(shard + 1, 0);
                }
                st.watermarks[shard] = st.watermarks[shard].max(m.seq);
                let Some(ch) = st.channels.get_mut(m.channel.as_str()) else {
                    continue;
                };
                if ch.subscribers == 0 {
                    continue;
                }
                ch.published += 1;
                ch.last_seq = Some(m.seq);
                let msg = Arc::new(Message::remote(&m, ch.channel_ref()));
                for (r, n) in ch.per_reactor.iter().enumerate() {
                    if *n > 0 {
                        wake[r] = true;
                        self.links[r].push(Delivery::Message(msg.clone()));
                    }
                }
            }
        }
        self.wake(&wake, None);
    }

    /// Messages this node published through the backplane (the local
    /// publish path counts its own in `publish`).
    pub fn note_published(&self, n: u64) {
        self.lock().published_messages += n;
    }

    /// A message from the backplane bound to this node's channel, for a
    /// replay (None when nobody here subscribes to the channel any more).
    pub fn remote_message(&self, m: &RemoteMessage) -> Option<Arc<Message>> {
        let st = self.lock();
        let ch = st.channels.get(m.channel.as_str())?;
        Some(Arc::new(Message::remote(m, ch.channel_ref())))
    }

    /// Another node deleted `name`: tell and disconnect the local
    /// subscribers, as a local DELETE does.
    pub fn deleted_remotely(&self, name: &str) {
        let _ = self.delete(name);
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
        self.tell_all(|| Delivery::Drain(until));
    }

    /// Asks every reactor to stop.
    pub fn shutdown_all(&self) {
        self.tell_all(|| Delivery::Shutdown);
    }

    fn tell_all(&self, d: impl Fn() -> Delivery) {
        for link in &self.links {
            link.push(d());
            link.wake();
        }
    }
}

/// Adds to `replay` what `resume` asks of one channel's history; returns
/// whether the history no longer reaches back to the resume point.
fn replay_from(ch: &Channel, resume: Resume, current: u64, replay: &mut Vec<Arc<Message>>) -> bool {
    match resume {
        Resume::Live => false,
        Resume::AfterSeq(after) => {
            // Older than what is kept, or an id this run never issued (an
            // earlier run, another node): a gap.
            let from_future = after > current;
            replay.extend(
                ch.history
                    .iter()
                    .filter(|m| from_future || m.seq > after)
                    .cloned(),
            );
            after < ch.history.forgotten_through || from_future
        }
        Resume::SinceMs(since) => {
            replay.extend(
                ch.history
                    .iter()
                    .filter(|m| m.published_at_ms >= since)
                    .cloned(),
            );
            false
        }
        // `--first-message` (src/compat/settings.rs): where a subscriber
        // without a resume point starts.
        Resume::Stored(skip) => {
            replay.extend(ch.history.iter().skip(skip as usize).cloned());
            false
        }
        Resume::Newest(n) => {
            let skip = ch.history.len().saturating_sub(n as usize);
            replay.extend(ch.history.iter().skip(skip).cloned());
            false
        }
    }
}
