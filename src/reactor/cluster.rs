//! The reactor's side of the Redis backplane (docs/CLUSTER.md): publishes
//! answered when Redis has taken them, resuming subscribers held until
//! their history has come back from every shard, and the per-subscriber
//! ids of subscriptions that span shards.
//!
//! The state lives beside the slab, keyed by connection, because few
//! connections ever have any; a flag bit on the connection says when to
//! look (`awaiting_reply`, `replay_pending`, `composite_ids`).

use std::collections::HashMap;
use std::sync::Arc;

use super::Reactor;
use crate::cluster::{
    encode_positions, parse_positions, Backplane, ChannelStart, PublishRequest, ReplayRequest,
    ReplyTo,
};
use crate::http::response::{self, Cors, ReplyMode};
use crate::http::route::Subscription;
use crate::proto::{signal, EncodeSettings, WireFormat};
use crate::pubsub::channel::{is_node_local, Resume};
use crate::pubsub::hub::Subscribed;
use crate::pubsub::message::{Message, Publication};
use crate::pubsub::remote::{PublishOutcome, PublishedChannel, ReplayPart};

/// Per-connection backplane state.
#[derive(Debug, Default)]
pub(super) struct ClusterConns(HashMap<usize, ClusterConn>);

#[derive(Debug, Default)]
pub(super) struct ClusterConn {
    generation: u32,
    publish: Option<AwaitingPublish>,
    replay: Option<PendingReplay>,
    /// Composite ids: per shard, the last seq sent to this subscriber.
    positions: Option<Box<[u64]>>,
}

/// A publish waiting for every shard it went to.
#[derive(Debug)]
struct AwaitingPublish {
    parts: usize,
    channels: Vec<PublishedChannel>,
    refused: Option<&'static str>,
    cors: Cors,
    mode: ReplyMode,
    /// When the request's head was read.
    started: std::time::Instant,
}

/// A resuming subscriber waiting for its history.
#[derive(Debug)]
struct PendingReplay {
    parts: usize,
    replay: Vec<Arc<Message>>,
    /// Live messages that arrived meanwhile, sent after the history.
    live: Vec<Arc<Message>>,
    missed: bool,
    /// The single id it resumed after (for the "missed" signal).
    requested: Option<u64>,
    /// Where it said it was, per shard (the dedupe floor once the history
    /// is in).
    floors: Vec<u64>,
}

impl ClusterConns {
    fn entry(&mut self, key: usize, generation: u32) -> &mut ClusterConn {
        let e = self.0.entry(key).or_default();
        if e.generation != generation {
            *e = ClusterConn {
                generation,
                ..Default::default()
            };
        }
        e
    }

    fn get(&mut self, key: usize, generation: u32) -> Option<&mut ClusterConn> {
        self.0.get_mut(&key).filter(|e| e.generation == generation)
    }

    /// Forgets a connection that closed.
    pub fn remove(&mut self, key: usize) {
        self.0.remove(&key);
    }

    /// Fanout's check of a message for a connection flagged for backplane
    /// handling: held (its history is not in yet), a duplicate, or new
    /// (then its positions are advanced and returned).
    pub fn admit(&mut self, key: usize, generation: u32, m: &Arc<Message>) -> Admit<'_> {
        let Some(state) = self.get(key, generation) else {
            return Admit::Duplicate;
        };
        if let Some(pending) = &mut state.replay {
            pending.live.push(m.clone());
            return Admit::Held;
        }
        let Some(positions) = state.positions.as_mut() else {
            return Admit::Duplicate;
        };
        match positions.get_mut(usize::from(m.shard)) {
            Some(last) if m.seq > *last => {
                *last = m.seq;
                Admit::New(positions)
            }
            _ => Admit::Duplicate,
        }
    }
}

/// What [`ClusterConns::admit`] decided.
pub(super) enum Admit<'a> {
    Held,
    Duplicate,
    /// Send it; the subscriber's positions after it.
    New(&'a [u64]),
}

/// The message as this subscriber gets it: with its composite id where
/// the format carries ids.
pub(super) fn encode_for(
    m: &Message,
    format: WireFormat,
    settings: &EncodeSettings,
    positions: &[u64],
) -> bytes::Bytes {
    let carries_id = matches!(
        format,
        WireFormat::Sse
            | WireFormat::StreamJson
            | WireFormat::LongPoll
            | WireFormat::WebSocket { json: true, .. }
    );
    if carries_id {
        m.encoded_with_id(format, settings, &encode_positions(positions))
    } else {
        m.encoded(format, settings)
    }
}

/// A publish's channels by the shard that holds them, in first-seen order.
fn group_by_shard(bp: &Backplane, channels: Vec<String>) -> Vec<(usize, Vec<String>)> {
    let mut by_shard: Vec<(usize, Vec<String>)> = Vec::new();
    for ch in channels {
        let s = bp.shard_of(&ch);
        match by_shard.iter_mut().find(|(shard, _)| *shard == s) {
            Some((_, list)) => list.push(ch),
            None => by_shard.push((s, vec![ch])),
        }
    }
    by_shard
}

impl Reactor {
    /// Sends a publish to the shards of its channels; the answer comes back
    /// as `Delivery::Published` and the connection reads nothing more until
    /// then (its replies stay in order).
    pub(super) fn cluster_publish(
        &mut self,
        k: usize,
        channels: Vec<String>,
        publication: Publication,
        cors: Cors,
        mode: ReplyMode,
        started: std::time::Instant,
    ) {
        let Some(bp) = self.shared.backplane.clone() else {
            return;
        };
        let by_shard = group_by_shard(&bp, channels);
        if let Some((down, _)) = by_shard.iter().find(|(s, _)| !bp.is_up(*s)) {
            log::debug!("publish refused: shard {down} is down");
            bp.count_refused(*down);
            self.answer_unavailable(k, &cors, mode);
            return self.observe_publish(started);
        }
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let generation = c.generation;
        c.flags.set_awaiting_reply(true);
        self.cluster.entry(k, generation).publish = Some(AwaitingPublish {
            parts: by_shard.len(),
            channels: Vec::new(),
            refused: None,
            cors,
            mode,
            started,
        });
        let reply = ReplyTo {
            reactor: self.id,
            key: k,
            generation,
        };
        for (i, (shard, channels)) in by_shard.into_iter().enumerate() {
            bp.publish(
                shard,
                PublishRequest {
                    channels,
                    publication: publication.clone(),
                    reply: Some(reply),
                    counts: i == 0,
                },
            );
        }
    }

    /// A WebSocket client's message: published fleet-wide, nobody waits.
    pub(super) fn cluster_publish_unanswered(
        &mut self,
        channels: Vec<String>,
        publication: Publication,
    ) {
        let Some(bp) = self.shared.backplane.clone() else {
            return;
        };
        // One request per shard, as over HTTP: a subscriber of several of
        // the channels on one shard gets the message once.
        for (i, (shard, channels)) in group_by_shard(&bp, channels).into_iter().enumerate() {
            bp.publish(
                shard,
                PublishRequest {
                    channels,
                    publication: publication.clone(),
                    reply: None,
                    counts: i == 0,
                },
            );
        }
    }

    fn answer_unavailable(&mut self, k: usize, cors: &Cors, mode: ReplyMode) {
        let reason = "backplane unavailable: Redis is not reachable";
        let bytes = response::error(cors, 503, reason, mode, &["Retry-After: 1"]);
        self.reply(k, bytes, mode);
    }

    /// One shard answered a publish of connection `k`.
    pub(super) fn on_published(&mut self, k: usize, generation: u32, outcome: PublishOutcome) {
        let Some(state) = self.cluster.get(k, generation) else {
            return;
        };
        let Some(p) = &mut state.publish else {
            return;
        };
        match outcome {
            PublishOutcome::Accepted(channels) => p.channels.extend(channels),
            PublishOutcome::Unavailable(why) => p.refused = Some(why),
        }
        p.parts -= 1;
        if p.parts > 0 {
            return;
        }
        let Some(p) = state.publish.take() else {
            return;
        };
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        c.flags.set_awaiting_reply(false);
        let draining = c.flags.draining();
        let mode = ReplyMode::keep_alive(p.mode.keep_alive && !draining);
        if p.refused.is_some() {
            self.answer_unavailable(k, &p.cors, mode);
        } else {
            let body = self.receipt_json(&p.channels);
            let bytes = response::json(&p.cors, 200, &body, mode, &[]);
            self.reply(k, bytes, mode);
        }
        self.observe_publish(p.started);
        // Requests it pipelined behind the publish are read again.
        self.more_to_read.push(k);
    }

    /// The reply to an accepted cluster publish: as on a single node, with
    /// the node count that heard it (docs/CLUSTER.md).
    fn receipt_json(&self, channels: &[PublishedChannel]) -> serde_json::Value {
        let one = |c: &PublishedChannel| {
            let local = self.hub.info(&c.channel).map_or(0, |i| i.subscribers);
            serde_json::json!({
                "channel": c.channel,
                "id": c.id.to_string(),
                "subscribers": local,
                "nodes": c.nodes,
                "published_messages": c.published_messages,
                "stored_messages": c.stored_messages,
            })
        };
        match channels {
            [c] => one(c),
            many => serde_json::json!({
                "id": many.first().map(|c| c.id.to_string()),
                "channels": many.iter().map(one).collect::<Vec<_>>(),
            }),
        }
    }

    /// After a subscriber is registered with a backplane: decides whether
    /// it needs history (then asks each shard and holds live messages), and
    /// whether its ids are composite (its channels span shards). Returns
    /// whether it is now waiting for history.
    pub(super) fn cluster_subscribed(
        &mut self,
        k: usize,
        sub: &Subscription,
        subscribed: &Subscribed,
    ) -> bool {
        let Some(bp) = self.shared.backplane.clone() else {
            return false;
        };
        // `$status` and the like: this node's own, never in Redis.
        if sub.channels.iter().all(|c| is_node_local(&c.name)) {
            return false;
        }
        let shards = bp.shard_count();
        let mut used: Vec<usize> = sub.channels.iter().map(|c| bp.shard_of(&c.name)).collect();
        used.sort_unstable();
        used.dedup();
        let composite = used.len() > 1;
        // Where it is per shard: its composite id, one number for every
        // shard, or (live) what this node has handed on so far.
        let given = sub
            .resume_text
            .as_deref()
            .and_then(|t| parse_positions(t, shards));
        let floors: Vec<u64> = match (&given, sub.resume) {
            (Some(p), _) => p.clone(),
            (None, Resume::AfterSeq(after)) => vec![after; shards],
            _ => (0..shards)
                .map(|s| subscribed.positions.get(s).copied().unwrap_or(0))
                .collect(),
        };
        let wants_history = given.is_some()
            || sub.resume != Resume::Live
            || sub.channels.iter().any(|c| c.backtrack > 0);
        let Some(c) = self.conns.get_mut(k) else {
            return false;
        };
        let generation = c.generation;
        if composite {
            c.flags.set_composite_ids(true);
            self.cluster.entry(k, generation).positions = Some(floors.clone().into_boxed_slice());
        }
        if !wants_history {
            return false;
        }
        c.flags.set_replay_pending(true);
        let requested = match sub.resume {
            Resume::AfterSeq(s) if given.is_none() => Some(s),
            _ => None,
        };
        self.cluster.entry(k, generation).replay = Some(PendingReplay {
            parts: used.len(),
            replay: Vec::new(),
            live: Vec::new(),
            missed: false,
            requested,
            floors: floors.clone(),
        });
        let since_ms = match sub.resume {
            Resume::SinceMs(ms) => Some(ms),
            _ => None,
        };
        // `--first-message` for a subscriber that named no resume point.
        let (all_but_oldest, newest) = match sub.resume {
            Resume::Stored(skip) => (Some(skip as usize), 0),
            Resume::Newest(n) => (None, n as usize),
            _ => (None, 0),
        };
        let reply = ReplyTo {
            reactor: self.id,
            key: k,
            generation,
        };
        for shard in used {
            let channels = sub
                .channels
                .iter()
                .filter(|c| bp.shard_of(&c.name) == shard)
                .map(|c| ChannelStart {
                    channel: c.name.clone(),
                    after: (given.is_some() || requested.is_some()).then(|| floors[shard]),
                    backtrack: c.backtrack.max(newest),
                    since_ms,
                    all_but_oldest,
                })
                .collect();
            bp.replay(shard, ReplayRequest { reply, channels });
        }
        true
    }

    /// One shard's history for a waiting subscriber. When every shard has
    /// answered: the "missed" signal, the history, then what arrived live
    /// meanwhile, each once.
    pub(super) fn on_replay(&mut self, k: usize, generation: u32, part: ReplayPart) {
        let Some(state) = self.cluster.get(k, generation) else {
            return;
        };
        let Some(pending) = &mut state.replay else {
            return;
        };
        pending.missed |= part.missed;
        // An id this shard never issued: start from where the shard is.
        if let Some(floor) = pending.floors.get_mut(usize::from(part.shard)) {
            *floor = (*floor).min(part.current);
        }
        pending.replay.extend(part.messages);
        pending.parts -= 1;
        if pending.parts > 0 {
            return;
        }
        let Some(pending) = state.replay.take() else {
            return;
        };
        let mut positions = state.positions.take();
        let mut floors = pending.floors;
        // The history, as the backplane picked it, then the live messages
        // it does not already cover.
        let mut queue = pending.replay;
        queue.sort_by_key(|m| (m.shard, m.seq));
        queue.dedup_by_key(|m| (m.shard, m.seq));
        for m in &queue {
            if let Some(f) = floors.get_mut(usize::from(m.shard)) {
                *f = (*f).max(m.seq);
            }
        }
        for m in pending.live {
            if let Some(f) = floors.get_mut(usize::from(m.shard)) {
                if m.seq > *f {
                    *f = m.seq;
                    queue.push(m);
                }
            }
        }
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        c.flags.set_replay_pending(false);
        let format = c.subscriber().map_or(WireFormat::Sse, |s| s.format);
        if format == WireFormat::LongPoll {
            if let Some(state) = self.cluster.get(k, generation) {
                state.positions = positions;
            }
            return self.longpoll_history(k, queue, pending.missed, &floors);
        }
        if pending.missed {
            c.out.push_vec(signal::missed(format, pending.requested));
        }
        let settings = &self.shared.encode;
        for m in &queue {
            let bytes = match positions.as_deref_mut() {
                Some(p) => {
                    p[usize::from(m.shard)] = m.seq;
                    encode_for(m, format, settings, p)
                }
                None => m.encoded(format, settings),
            };
            c.out.push(bytes);
        }
        if positions.is_none() {
            c.last_seq = floors.iter().copied().max().unwrap_or(0).max(c.last_seq);
        }
        let delivered = queue.len() as u64;
        self.flush.urgent(k, c);
        crate::status::ReactorStats::add(&self.stats().delivered_messages, delivered);
        if let Some(state) = self.cluster.get(k, generation) {
            state.positions = positions;
        }
    }

    /// The composite id of a long-poll answer, when its subscription has one.
    pub(super) fn longpoll_composite_id(&mut self, k: usize, generation: u32) -> Option<String> {
        let p = self.cluster.get(k, generation)?.positions.as_deref()?;
        Some(encode_positions(p))
    }
}
