//! Subscribers on a reactor: registering them (hub, local index, socket
//! options), the replay that opens a resumed stream, unsubscribing, and
//! telling them their channel was deleted.

use std::sync::Arc;

use super::conn::{Role, Subscriber, TransportState};
use super::events::ConnEvent;
use super::timer::secs_to_ticks;
use super::{sockopt, Reactor};
use crate::auth::token::Grant;
use crate::compat::SubDialect;
use crate::http::response::Cors;
use crate::http::route::Subscription;
use crate::proto::{signal, WireFormat};
use crate::pubsub::channel::ChannelRef;
use crate::pubsub::hub::now_ms;
use crate::pubsub::hub::Subscribed;
use crate::pubsub::message::Message;
use crate::reactor::local::SubList;
use crate::status::{CloseCause, ReactorStats};

/// Everything that describes a subscriber about to be registered.
pub(super) struct NewSubscriber {
    pub format: WireFormat,
    /// Response head (and anything else) to send before the replay.
    pub head: Vec<u8>,
    /// WebSocket or long-poll state (see `conn.rs`).
    pub state: Option<Box<TransportState>>,
}

/// What access control decided for a subscription request.
pub(super) struct SubscriberAccess {
    /// CORS headers for its answers.
    pub cors: Cors,
    /// The verified token it presented, if any.
    pub grant: Option<Grant>,
    /// For a WebSocket: which of its channels the client may publish to.
    pub publish_rights: Option<Vec<bool>>,
    /// The peer whose formats it speaks (`--compat`), or crier's own.
    pub dialect: SubDialect,
}

impl NewSubscriber {
    /// An SSE or raw-stream subscriber: a format and a response head.
    pub fn stream(format: WireFormat, head: Vec<u8>) -> NewSubscriber {
        NewSubscriber {
            format,
            head,
            state: None,
        }
    }
}

impl Reactor {
    /// Registers a streaming subscriber (SSE, raw stream, WebSocket) and
    /// queues what opens its stream: the response head, the "missed" signal
    /// when history did not reach back far enough, and the replay.
    pub(super) fn start_stream(
        &mut self,
        k: usize,
        new: NewSubscriber,
        sub: &Subscription,
        access: &SubscriberAccess,
    ) {
        let format = new.format;
        let Some(subscribed) = self.register_subscriber(k, new, sub, access) else {
            return;
        };
        if subscribed.missed {
            self.send(k, signal::missed(format, sub.resume.after()));
        }
        self.queue_replay(k, format, &subscribed.replay);
    }

    /// Turns HTTP connection `k` into a subscriber: registers it with the
    /// hub and the local index, then queues `head`. Registration happens
    /// before the replay is read (inside the hub's lock) so nothing
    /// published meanwhile is lost; duplicates are filtered by id in
    /// [`fan_out`](Self::fan_out). A limit refusal is answered here (429).
    pub(super) fn register_subscriber(
        &mut self,
        k: usize,
        new: NewSubscriber,
        sub: &Subscription,
        access: &SubscriberAccess,
    ) -> Option<Subscribed> {
        let NewSubscriber {
            format,
            head,
            state,
        } = new;
        let subscribed = match self.hub.subscribe(self.id, &sub.channels, sub.resume) {
            Ok(s) => s,
            Err(limit) => {
                self.refuse(k, &limit, &access.cors, None);
                return None;
            }
        };
        let lifetime_end = if format == WireFormat::LongPoll {
            0
        } else {
            self.lifetime_end()
        };
        // A token that opened a private channel bounds the connection: it
        // ends when the token expires (docs/TOKENS.md).
        let private = sub
            .channels
            .iter()
            .any(|c| self.settings.policy.is_private(&c.name));
        let token_end = access.grant.as_ref().filter(|_| private).map(|g| {
            let left = g.expires_at.saturating_sub(now_ms() / 1000);
            self.now + secs_to_ticks(left).max(1)
        });
        let (lifetime_end, token_expiry) = match token_end {
            Some(t) if lifetime_end == 0 || t <= lifetime_end => (t, true),
            _ => (lifetime_end, false),
        };
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
        let was = c.kind();
        c.role = Role::Subscriber(Subscriber {
            format,
            subs,
            lifetime_end,
            state,
        });
        stats.reclassify(was, c.kind());
        c.flags.set_token_expiry(token_expiry);
        c.last_seq = subscribed.last_seq;
        c.out.push_vec(head);
        c.last_write = self.now;
        // The response head goes out this turn; replayed messages with it.
        self.flush.urgent(k, c);
        sockopt::on_subscribe(&c.socket, &self.settings.config);
        self.rearm_subscriber(k);
        if self.hub.is_remote() {
            self.cluster_subscribed(k, sub, &subscribed);
        }
        Some(subscribed)
    }

    /// When a new subscriber is asked to reconnect: the configured lifetime
    /// ±10%, so a fleet rebalances gradually instead of in waves.
    fn lifetime_end(&mut self) -> u32 {
        let lifetime = secs_to_ticks(self.settings.config.max_connection_lifetime);
        if lifetime == 0 {
            return 0;
        }
        let jitter = u64::from(lifetime / 5);
        let offset = self.jitter.below(jitter + 1) as u32;
        self.now + lifetime - lifetime / 10 + offset
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

    /// Tells local subscribers of a deleted channel and disconnects them.
    pub(super) fn on_channel_deleted(&mut self, ch: &ChannelRef) {
        let Some(slot) = self.local.slot_of(ch.id) else {
            return;
        };
        let keys: Vec<u32> = self.local.subscribers(slot).to_vec();
        for key in keys {
            let k = key as usize;
            let Some(format) = self
                .conns
                .get(k)
                .and_then(|c| c.subscriber())
                .map(|s| s.format)
            else {
                continue;
            };
            if format == WireFormat::LongPoll {
                self.abort_longpoll(k, &ch.name);
                self.note(Some(k), None, ConnEvent::Cut(CloseCause::ChannelDeleted));
                continue;
            }
            if let Some(c) = self.conns.get_mut(k) {
                c.out.push_vec(signal::channel_deleted(
                    format,
                    &ch.name,
                    &self.shared.encode,
                ));
            }
            self.close_after_flush(k, Some(CloseCause::ChannelDeleted));
        }
    }

    /// Removes connection `k` from every channel, locally and in the hub.
    pub(super) fn unsubscribe_all(&mut self, k: usize) {
        let Some(sub) = self.conns.get_mut(k).and_then(|c| c.subscriber_mut()) else {
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
            // The connection that took the freed position must learn it.
            let Some(moved) = self.local.remove(s) else {
                continue;
            };
            let other = self
                .conns
                .get_mut(moved as usize)
                .and_then(|c| c.subscriber_mut());
            if let Some(o) = other.and_then(|o| {
                o.subs
                    .as_mut_slice()
                    .iter_mut()
                    .find(|o| o.channel == s.channel)
            }) {
                o.pos = s.pos;
            }
        }
        self.hub.unsubscribe(self.id, &channels);
    }
}
