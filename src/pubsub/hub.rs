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

/// Hub settings taken from the config.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Messages kept per channel (0 = none).
    pub store_messages: usize,
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
}

struct Channel {
    id: u64,
    name: Arc<str>,
    subscribers: u64,
    /// Subscribers per reactor, so a publish only wakes reactors that care.
    per_reactor: Box<[u32]>,
    published: u64,
    last_seq: Option<u64>,
    history: VecDeque<Arc<Message>>,
    /// Messages with an id at or below this were dropped from `history` (or
    /// belong to an earlier run of the server): resuming from before it
    /// means the client missed something.
    forgotten_through: u64,
}

struct HubState {
    /// Last assigned message id.
    seq: u64,
    next_channel_id: u64,
    channels: HashMap<Arc<str>, Channel>,
    published_messages: u64,
    stored_messages: u64,
    stored_bytes: u64,
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
                published_messages: 0,
                stored_messages: 0,
                stored_bytes: 0,
            }),
            links,
            settings,
            first_seq,
        }
    }

    /// Number of reactors linked to the hub.
    pub fn reactor_count(&self) -> usize {
        self.links.len()
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

    /// Publishes one message to `names` (already validated ids) and hands it
    /// to every reactor with subscribers. `from` is the calling reactor,
    /// which drains its own inbox at the end of its loop turn and so is not
    /// woken.
    pub fn publish(&self, from: Option<usize>, names: &[&str], p: Publication) -> Receipt {
        let mut wake = vec![false; self.links.len()];
        let receipt = {
            let mut st = self.lock();
            st.seq += 1;
            let seq = st.seq;
            let refs: Vec<ChannelRef> = names
                .iter()
                .map(|n| {
                    let ch = self.channel_entry(&mut st, n);
                    ChannelRef {
                        id: ch.id,
                        name: ch.name.clone(),
                    }
                })
                .collect();
            let msg = Arc::new(Message::new(seq, refs.into(), now_ms(), p));
            let cost = msg.memory_cost() as u64;
            st.published_messages += 1;
            let mut infos = Vec::with_capacity(names.len());
            let mut stored_delta = (0u64, 0u64, 0u64, 0u64); // +msgs, +bytes, -msgs, -bytes
            for name in names {
                let Some(ch) = st.channels.get_mut(*name) else {
                    continue;
                };
                ch.published += 1;
                ch.last_seq = Some(seq);
                if self.settings.store_messages > 0 {
                    ch.history.push_back(msg.clone());
                    stored_delta.0 += 1;
                    stored_delta.1 += cost;
                    while ch.history.len() > self.settings.store_messages {
                        if let Some(old) = ch.history.pop_front() {
                            ch.forgotten_through = old.seq;
                            stored_delta.2 += 1;
                            stored_delta.3 += old.memory_cost() as u64;
                        }
                    }
                } else {
                    ch.forgotten_through = seq;
                }
                for (r, n) in ch.per_reactor.iter().enumerate() {
                    if *n > 0 {
                        wake[r] = true;
                    }
                }
                infos.push(info_of(ch));
            }
            st.stored_messages = st.stored_messages + stored_delta.0 - stored_delta.2;
            st.stored_bytes = st.stored_bytes + stored_delta.1 - stored_delta.3;
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
        receipt
    }

    fn wake(&self, which: &[bool], except: Option<usize>) {
        for (r, w) in which.iter().enumerate() {
            if *w && Some(r) != except {
                self.links[r].wake();
            }
        }
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
                    history: VecDeque::new(),
                    forgotten_through: self.first_seq,
                },
            );
        }
        st.channels.get_mut(name).expect("inserted above")
    }

    /// Registers a subscriber on reactor `r` and returns what it must be sent
    /// first. After this call every message published to these channels is
    /// pushed to reactor `r`'s inbox.
    pub fn subscribe(&self, r: usize, requests: &[ChannelRequest], resume: Resume) -> Subscribed {
        let mut st = self.lock();
        let mut channels = Vec::with_capacity(requests.len());
        let mut replay: Vec<Arc<Message>> = Vec::new();
        let mut missed = false;
        let current = st.seq;
        for req in requests {
            let ch = self.channel_entry(&mut st, &req.name);
            ch.subscribers += 1;
            ch.per_reactor[r] += 1;
            channels.push(ChannelRef {
                id: ch.id,
                name: ch.name.clone(),
            });
            match resume {
                Resume::Live => {}
                Resume::AfterSeq(after) => {
                    if after < ch.forgotten_through || after > current {
                        missed = true;
                    }
                    let from_future = after > current;
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
        Subscribed {
            channels,
            replay,
            missed,
            last_seq: current,
        }
    }

    /// Forgets a subscriber of reactor `r`. Channels that were deleted (or
    /// deleted and re-created) in the meantime are skipped by their id.
    pub fn unsubscribe(&self, r: usize, channels: &[ChannelRef]) {
        let mut st = self.lock();
        for c in channels {
            let remove = match st.channels.get_mut(&*c.name) {
                Some(ch) if ch.id == c.id => {
                    ch.subscribers = ch.subscribers.saturating_sub(1);
                    ch.per_reactor[r] = ch.per_reactor[r].saturating_sub(1);
                    ch.subscribers == 0 && ch.history.is_empty()
                }
                _ => false,
            };
            if remove {
                st.channels.remove(&*c.name);
            }
        }
    }

    /// Deletes a channel and its history, and tells every reactor with
    /// subscribers to disconnect them. Returns the channel's last figures.
    pub fn delete(&self, name: &str) -> Option<ChannelInfo> {
        let mut st = self.lock();
        let ch = st.channels.remove(name)?;
        st.stored_messages -= ch.history.len() as u64;
        st.stored_bytes -= ch
            .history
            .iter()
            .map(|m| m.memory_cost() as u64)
            .sum::<u64>();
        let info = info_of(&ch);
        let cref = ChannelRef {
            id: ch.id,
            name: ch.name.clone(),
        };
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
        self.lock().channels.get(name).map(info_of)
    }

    /// Totals across all channels.
    pub fn totals(&self) -> HubTotals {
        let st = self.lock();
        HubTotals {
            channels: st.channels.len() as u64,
            subscribers: st.channels.values().map(|c| c.subscribers).sum(),
            published_messages: st.published_messages,
            stored_messages: st.stored_messages,
            stored_bytes: st.stored_bytes,
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

fn info_of(ch: &Channel) -> ChannelInfo {
    ChannelInfo {
        channel: ch.name.to_string(),
        subscribers: ch.subscribers,
        published_messages: ch.published,
        stored_messages: ch.history.len() as u64,
        last_id: ch.last_seq,
    }
}
