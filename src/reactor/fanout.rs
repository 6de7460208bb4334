//! Fanout: queueing published messages on this reactor's subscribers.
//!
//! Only queues; the bytes leave in the sliced flush (`flush.rs`), one
//! `writev` per connection however many messages it got.

use bytes::Bytes;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::cluster::{encode_for, Admit, ClusterConns};
use super::conn::{Conn, Role};
use super::flush::FlushQueue;
use super::outqueue::Flushed;
use super::tls::TlsTable;
use super::Reactor;
use crate::proto::{EncodeSettings, WireFormat};
use crate::pubsub::message::Message;
use crate::status::ReactorStats;

impl Reactor {
    /// Queues `batch` — consecutive messages published to the same
    /// channels, in publish order — on every local subscriber of those
    /// channels. Subscribers are the outer loop, so each one's connection
    /// and queue are touched once per batch rather than once per message:
    /// with thousands of subscribers that state is far larger than the CPU
    /// cache. Each message is encoded at most once per wire format, and
    /// each encoding is shared by this reactor's subscribers through one
    /// `Rc`.
    pub(super) fn fan_out(&mut self, batch: &[Arc<Message>]) {
        let Some(first) = batch.first() else {
            return;
        };
        let started = Instant::now();
        let mut turn = FanoutTurn {
            encoded: vec![std::array::from_fn(|_| None); batch.len()],
            settings: &self.shared.encode,
            max_queued: self.settings.config.max_queued_bytes,
            now: self.now,
            flush: &mut self.flush,
            cluster: &mut self.cluster,
            slow: &mut self.slow,
            longpolls_ready: &mut self.longpolls_ready,
            tls: &mut self.tls,
            stats: &self.shared.stats.reactors[self.id],
            delivered: 0,
            written: 0,
            streamed: false,
        };
        for ch in first.channels.iter() {
            let Some(slot) = self.local.slot_of(ch.id) else {
                continue;
            };
            for &key in self.local.subscribers(slot) {
                if let Some(c) = self.conns.get_mut(key as usize) {
                    for (i, m) in batch.iter().enumerate() {
                        turn.deliver(key as usize, c, m, i);
                    }
                }
            }
        }
        let (delivered, written, streamed) = (turn.delivered, turn.written, turn.streamed);
        let stats = &self.shared.stats.reactors[self.id];
        ReactorStats::add(&stats.delivered_messages, delivered);
        ReactorStats::add(&stats.bytes_out, written);
        if streamed {
            self.latency.fanned_out(
                batch.iter().map(|m| m.accepted),
                started,
                self.flush.position(),
            );
        }
    }
}

/// One [`Reactor::fan_out`] call: the batch's encodings and the reactor
/// state a delivery touches besides the connection itself.
struct FanoutTurn<'a> {
    /// Per message of the batch, its encoding per wire format (on first use).
    encoded: Vec<[Option<Rc<Bytes>>; WireFormat::COUNT]>,
    settings: &'a EncodeSettings,
    max_queued: usize,
    now: u32,
    flush: &'a mut FlushQueue,
    cluster: &'a mut ClusterConns,
    slow: &'a mut Vec<usize>,
    longpolls_ready: &'a mut Vec<usize>,
    /// Writes go through it (TLS connections through their sessions).
    tls: &'a mut TlsTable,
    stats: &'a ReactorStats,
    delivered: u64,
    written: u64,
    /// Queued on a stream or WebSocket subscriber (not only long-polls).
    streamed: bool,
}

impl FanoutTurn<'_> {
    /// Queues message `m` (number `i` of the batch) on connection `key`.
    fn deliver(&mut self, key: usize, c: &mut Conn, m: &Arc<Message>, i: usize) {
        if c.flags.close_after_flush() {
            return;
        }
        // Its own ids (a subscription over several backplane shards), or
        // held until its history is in: decided per shard in cluster.rs.
        let mut own: Option<bytes::Bytes> = None;
        if c.flags.replay_pending() || c.flags.composite_ids() {
            match self.cluster.admit(key, c.generation, m) {
                Admit::Held | Admit::Duplicate => return,
                Admit::New(positions) => {
                    if let Some(sub) = c.subscriber() {
                        if sub.format != WireFormat::LongPoll {
                            own = Some(encode_for(m, sub.format, self.settings, positions));
                        }
                    }
                }
            }
        } else if c.last_seq >= m.seq {
            // Already sent (replay raced with this publish, or the message
            // went to several channels this connection has).
            return;
        }
        let Role::Subscriber(sub) = &mut c.role else {
            return;
        };
        if let Some(lp) = sub.longpoll_mut() {
            // Collected, answered at the end of the turn (`longpoll.rs`).
            c.last_seq = c.last_seq.max(m.seq);
            lp.messages.push(m.clone());
            if !lp.ready {
                lp.ready = true;
                self.longpolls_ready.push(key);
            }
            self.delivered += 1;
            return;
        }
        let settings = self.settings;
        let bytes = self.encoded[i][sub.format.index()]
            .get_or_insert_with(|| Rc::new(m.encoded(sub.format, settings)));
        c.last_seq = c.last_seq.max(m.seq);
        // Judged on the backlog *behind* the message being written and
        // *before* this one: one message however large always fits (memory
        // per connection stays below the cap plus one message, and messages
        // are shared anyway).
        if c.out.backlog_bytes() > self.max_queued && !c.flags.write_blocked() {
            // The queue may be over the cap only because this loop turn has
            // not flushed yet (several large messages in one inbox drain):
            // write now before judging. A write error is left to the
            // regular flush to reap.
            if let Ok((n, flushed)) = self.tls.write_conn(key, c, self.stats) {
                self.written += n as u64;
                if n > 0 {
                    c.last_write = self.now;
                }
                c.flags.set_write_blocked(flushed == Flushed::Blocked);
            }
        }
        if c.out.backlog_bytes() > self.max_queued {
            // Slow consumer: dropped after this fanout (it will reconnect
            // and resume from history); nobody waits.
            c.flags.set_close_after_flush(true);
            self.slow.push(key);
            return;
        }
        match own {
            Some(b) => c.out.push(b),
            None => c.out.push_local(bytes),
        }
        self.flush.queue(key, c);
        self.delivered += 1;
        self.streamed = true;
    }
}
