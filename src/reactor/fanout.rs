//! Subscriber side of the reactor: registering subscribers, queueing
//! published messages on them, and tearing subscriptions down.

use bytes::Bytes;
use std::rc::Rc;
use std::sync::Arc;

use super::conn::{Conn, Role, Subscriber, TransportState};
use super::outqueue::Flushed;
use super::{mark_dirty, Reactor};
use crate::proto::{sse, stream, websocket};
use crate::pubsub::bus::ChannelRef;
use crate::pubsub::hub::{ChannelRequest, Resume, Subscribed};
use crate::pubsub::message::{EncodeSettings, Message, WireFormat};
use crate::reactor::liveness::secs_to_ticks;
use crate::reactor::local::SubList;
use crate::status::{CloseCause, ConnKind, ReactorStats};
use std::time::Duration;

/// Unsent bytes the kernel may hold for a subscriber before writes return
/// EAGAIN. Without it the kernel grows a stalled reader's send buffer to
/// megabytes that `max-queued-bytes` never sees; with it the backlog stays
/// in our queue, where the cap counts it. Bytes sent but not yet
/// acknowledged are not "unsent" and are bounded by the congestion window.
const KERNEL_UNSENT_BYTES: libc::c_int = 16 * 1024;

/// Sets TCP_NOTSENT_LOWAT (not in socket2).
fn set_notsent_lowat(socket: &mio::net::TcpStream, bytes: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor belongs to a live socket borrowed for the call,
    // and the option value is a c_int on the stack whose size is passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Everything that describes a subscriber about to be registered.
pub(super) struct NewSubscriber {
    pub format: WireFormat,
    pub kind: ConnKind,
    /// Response head (and anything else) to send before the replay.
    pub head: Vec<u8>,
    /// WebSocket or long-poll state (see `conn.rs`).
    pub state: Option<Box<TransportState>>,
}

impl Reactor {
    /// Turns HTTP connection `k` into a subscriber: registers it with the
    /// hub and the local index, then queues `head` and the replayed
    /// messages. Registration happens before the replay is read (inside the
    /// hub's lock) so nothing published meanwhile is lost; duplicates are
    /// filtered by id in [`fan_out`](Self::fan_out).
    pub(super) fn register_subscriber(
        &mut self,
        k: usize,
        new: NewSubscriber,
        requests: &[ChannelRequest],
        resume: Resume,
    ) -> Option<Subscribed> {
        let NewSubscriber {
            format,
            kind,
            head,
            state,
        } = new;
        let subscribed = match self.hub.subscribe(self.id, requests, resume) {
            Ok(s) => s,
            Err(limit) => {
                self.fail(k, 429, &limit.message(), &[]);
                return None;
            }
        };
        let is_longpoll = matches!(state.as_deref(), Some(TransportState::LongPoll(_)));
        let lifetime_end = if is_longpoll { 0 } else { self.lifetime_end() };
        let key = k as u32;
        let subs: SubList = subscribed
            .channels
            .iter()
            .map(|ch| self.local.add(ch, key))
            .collect();
        let stats = &self.shared.stats.reactors[self.id];
        let Some(c) = self.conns.get_mut(k) else {
            return Some(subscribed);
        };
        stats.reclassify(c.kind(), kind);
        c.role = Role::Subscriber(Subscriber {
            format,
            kind,
            subs,
            lifetime_end,
            state,
        });
        c.last_seq = subscribed.last_seq;
        c.out.push_vec(head);
        c.last_write = self.now;
        mark_dirty(&mut self.dirty, k, c);
        self.set_tcp_liveness(k);
        self.rearm_subscriber(k);
        Some(subscribed)
    }

    /// When a new subscriber is asked to reconnect: the configured lifetime
    /// ±10%, so a fleet rebalances gradually instead of in waves.
    fn lifetime_end(&mut self) -> u32 {
        let lifetime = secs_to_ticks(self.shared.config.max_connection_lifetime);
        if lifetime == 0 {
            return 0;
        }
        let jitter = u64::from(lifetime / 5);
        let offset = self.jitter.below(jitter + 1) as u32;
        self.now + lifetime - lifetime / 10 + offset
    }

    /// TCP keepalive and TCP_USER_TIMEOUT bound how long a peer that
    /// vanished without FIN/RST can hold a subscriber slot, even while our
    /// data sits unacknowledged in the kernel.
    fn set_tcp_liveness(&mut self, k: usize) {
        let cfg = &self.shared.config;
        let Some(c) = self.conns.get(k) else {
            return;
        };
        let sock = socket2::SockRef::from(&c.socket);
        if cfg.tcp_keepalive > 0 {
            let idle = Duration::from_secs(cfg.tcp_keepalive);
            let interval = Duration::from_secs((cfg.tcp_keepalive / 4).clamp(1, 15));
            let ka = socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(interval)
                .with_retries(4);
            let _ = sock.set_tcp_keepalive(&ka);
        }
        if cfg.tcp_user_timeout > 0 {
            let _ = sock.set_tcp_user_timeout(Some(Duration::from_secs(cfg.tcp_user_timeout)));
        }
        if let Err(e) = set_notsent_lowat(&c.socket, KERNEL_UNSENT_BYTES) {
            log::debug!("TCP_NOTSENT_LOWAT: {e}");
        }
    }

    /// Queues replayed messages on a freshly registered subscriber.
    pub(super) fn queue_replay(&mut self, k: usize, format: WireFormat, replay: &[Arc<Message>]) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        for m in replay {
            c.out.push(m.encoded(format, &self.shared.encode));
        }
        ReactorStats::add(
            &self.shared.stats.reactors[self.id].delivered_messages,
            replay.len() as u64,
        );
    }

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
        let mut turn = FanoutTurn {
            encoded: vec![Default::default(); batch.len()],
            settings: &self.shared.encode,
            max_queued: self.shared.config.max_queued_bytes,
            now: self.now,
            dirty: &mut self.dirty,
            slow: &mut self.slow,
            longpolls_ready: &mut self.longpolls_ready,
            delivered: 0,
            written: 0,
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
        let stats = &self.shared.stats.reactors[self.id];
        ReactorStats::add(&stats.delivered_messages, turn.delivered);
        ReactorStats::add(&stats.bytes_out, turn.written);
    }

    /// Tells local subscribers of a deleted channel and disconnects them.
    pub(super) fn on_channel_deleted(&mut self, ch: &ChannelRef) {
        let Some(slot) = self.local.slot_of(ch.id) else {
            return;
        };
        let keys: Vec<u32> = self.local.subscribers(slot).to_vec();
        for key in keys {
            let k = key as usize;
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            let Role::Subscriber(sub) = &c.role else {
                continue;
            };
            if sub.longpoll().is_some() {
                self.abort_longpoll(k);
                ReactorStats::add(
                    &self.shared.stats.reactors[self.id].closed_by_server
                        [CloseCause::ChannelDeleted as usize],
                    1,
                );
                continue;
            }
            let mut goodbye = Vec::new();
            match sub.format {
                WireFormat::Sse => sse::encode_event(
                    None,
                    Some("channel_deleted"),
                    ch.name.as_bytes(),
                    &mut goodbye,
                ),
                WireFormat::StreamChunked => goodbye.extend_from_slice(stream::LAST_CHUNK),
                WireFormat::StreamRaw => {}
                WireFormat::StreamJson => {
                    let mut line =
                        serde_json::json!({"event": "channel_deleted", "channel": &*ch.name})
                            .to_string();
                    line.push('\n');
                    stream::encode_chunk(line.as_bytes(), b"", &mut goodbye);
                    goodbye.extend_from_slice(stream::LAST_CHUNK);
                }
                WireFormat::WebSocket { .. } => {
                    goodbye = websocket::encode_close(1000, "channel deleted")
                }
            }
            c.out.push_vec(goodbye);
            self.close_after_flush(k, Some(CloseCause::ChannelDeleted));
        }
    }

    /// Removes connection `k` from every channel, locally and in the hub.
    pub(super) fn unsubscribe_all(&mut self, k: usize) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let Role::Subscriber(sub) = &mut c.role else {
            return;
        };
        let taken = std::mem::take(&mut sub.subs);
        let subs = taken.as_slice();
        if subs.is_empty() {
            return;
        }
        let mut channels = Vec::with_capacity(subs.len());
        for &s in subs {
            if let Some(ch) = self.local.channel_of(s.channel) {
                channels.push(ch.clone());
            }
            let removed = self.local.remove(s);
            // The connection that took the freed position must learn it.
            if let Some(moved) = removed.moved {
                if let Some(Role::Subscriber(other)) =
                    self.conns.get_mut(moved as usize).map(|c| &mut c.role)
                {
                    if let Some(o) = other
                        .subs
                        .as_mut_slice()
                        .iter_mut()
                        .find(|o| o.channel == s.channel)
                    {
                        o.pos = s.pos;
                    }
                }
            }
        }
        self.hub.unsubscribe(self.id, &channels);
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
    dirty: &'a mut Vec<usize>,
    slow: &'a mut Vec<usize>,
    longpolls_ready: &'a mut Vec<usize>,
    delivered: u64,
    written: u64,
}

impl FanoutTurn<'_> {
    /// Queues message `m` (number `i` of the batch) on connection `key`.
    fn deliver(&mut self, key: usize, c: &mut Conn, m: &Arc<Message>, i: usize) {
        // Already sent (replay raced with this publish, or the message went
        // to several channels this connection has), or on its way out.
        if c.last_seq >= m.seq || c.flags.close_after_flush {
            return;
        }
        let Role::Subscriber(sub) = &mut c.role else {
            return;
        };
        if let Some(lp) = sub.longpoll_mut() {
            c.last_seq = m.seq;
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
        c.last_seq = m.seq;
        // Judged on the backlog *behind* the message being written and
        // *before* this one: one message however large always fits (memory
        // per connection stays below the cap plus one message, and messages
        // are shared anyway).
        if c.out.backlog_bytes() > self.max_queued && !c.flags.write_blocked {
            // The queue may be over the cap only because this loop turn has
            // not flushed yet (several large messages in one inbox drain):
            // write now before judging. A write error is left to the
            // regular flush to reap.
            if let Ok((n, flushed)) = c.out.write_to(&mut c.socket) {
                self.written += n as u64;
                if n > 0 {
                    c.last_write = self.now;
                }
                c.flags.write_blocked = flushed == Flushed::Blocked;
            }
        }
        if c.out.backlog_bytes() > self.max_queued {
            // Slow consumer: dropped after this fanout (it will reconnect
            // and resume from history); nobody waits.
            c.flags.close_after_flush = true;
            self.slow.push(key);
            return;
        }
        c.out.push_local(bytes);
        mark_dirty(self.dirty, key, c);
        self.delivered += 1;
    }
}
