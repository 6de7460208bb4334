//! Long-polling: a request that waits for the next message(s) after the
//! client's position, answers once, and returns the connection to HTTP
//! keep-alive so the client can ask again.
//!
//! The position travels in `Last-Event-ID` (response header and request
//! header or `last_event_id` query; `ETag`/`If-None-Match` work too). A
//! poll that times out answers `304 Not Modified` with the position it
//! waited from, so a message published between two polls reaches the next.
//! A long-poll has no stream to carry goodbyes: every way it ends is a real
//! HTTP answer (see [`PollEnd`]).

use std::sync::Arc;

use super::conn::{LongPollWait, Role, TransportState};
use super::subscribe::{NewSubscriber, SubscriberAccess};
use super::timer::secs_to_ticks;
use super::Reactor;
use crate::http::request::{BodyKind, RequestHead};
use crate::http::response::{self, ReplyMode};
use crate::http::route::Subscription;
use crate::proto::{longpoll, WireFormat};
use crate::pubsub::channel::Resume;
use crate::pubsub::message::Message;
use crate::status::ConnKind;

/// Lets browser code on another origin read the position headers.
const EXPOSE_HEADERS: &str =
    "Access-Control-Expose-Headers: Last-Event-ID, ETag, X-Missed-Messages";

/// Why a waiting poll ends, and so what it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PollEnd {
    /// Messages arrived, or its time is up: 200 with them, or 304.
    Answer,
    /// Its channel was deleted: 404.
    ChannelDeleted,
    /// The server is going away: 503 with `Retry-After` (seconds), so the
    /// client comes back after the restart instead of at once.
    Shutdown { retry_after_secs: u64 },
    /// The token that opened its private channel expired: 401.
    TokenExpired,
}

impl Reactor {
    /// Starts a long-poll: answers at once when stored messages are after
    /// the client's position (or a gap must be reported), else waits.
    pub(super) fn start_longpoll(
        &mut self,
        k: usize,
        head: &RequestHead<'_>,
        sub: &Subscription,
        access: SubscriberAccess,
    ) {
        let deadline = self.now + secs_to_ticks(self.settings.config.longpoll_timeout).max(1);
        let wait = LongPollWait {
            cors: access.cors.clone(),
            messages: Vec::new(),
            ready: false,
            // A body is not read: were the connection kept, it would be
            // taken for the next request once the poll is answered.
            keep_alive: head.keep_alive && head.body == BodyKind::None,
            missed: false,
            position: 0,
            deadline,
            dialect: access.dialect.clone(),
            deleted: None,
        };
        let new = NewSubscriber {
            format: WireFormat::LongPoll,
            head: Vec::new(),
            state: Some(Box::new(TransportState::LongPoll(Box::new(wait)))),
        };
        let Some(subscribed) = self.register_subscriber(k, new, sub, &access) else {
            return;
        };
        let answer_now =
            !subscribed.replay.is_empty() || subscribed.missed || access.dialect.answers_at_once();
        if let Some(lp) = self
            .conns
            .get_mut(k)
            .and_then(|c| c.subscriber_mut())
            .and_then(|s| s.longpoll_mut())
        {
            lp.position = match sub.resume {
                Resume::AfterSeq(after) if !subscribed.missed => after,
                _ => subscribed.last_seq,
            };
            lp.missed = subscribed.missed;
            lp.messages = subscribed.replay;
        }
        // A token expiring before the poll's timeout answers it then.
        if let Some(c) = self.conns.get_mut(k) {
            if let Role::Subscriber(s) = &mut c.role {
                let token_end = s.lifetime_end;
                if let Some(lp) = s.longpoll_mut() {
                    if c.flags.token_expiry() && token_end < lp.deadline {
                        lp.deadline = token_end;
                    } else {
                        c.flags.set_token_expiry(false);
                    }
                }
            }
        }
        self.rearm_subscriber(k);
        if answer_now {
            self.end_longpoll(k, PollEnd::Answer);
        }
    }

    /// Answers every long-poll that received messages this loop turn.
    pub(super) fn finish_longpolls(&mut self) {
        for k in std::mem::take(&mut self.longpolls_ready) {
            self.end_longpoll(k, PollEnd::Answer);
        }
    }

    /// A cluster long-poll's history has arrived (`cluster.rs`): it answers
    /// at once with it (or the gap), else waits for live messages.
    pub(super) fn longpoll_history(
        &mut self,
        k: usize,
        messages: Vec<Arc<Message>>,
        missed: bool,
        floors: &[u64],
    ) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let floor = floors.iter().copied().max().unwrap_or(0);
        c.last_seq = c.last_seq.max(floor);
        let answer = !messages.is_empty() || missed;
        if let Some(lp) = c.subscriber_mut().and_then(|s| s.longpoll_mut()) {
            lp.position = lp.position.max(floor);
            lp.missed = missed;
            lp.messages = messages;
        }
        if answer {
            self.end_longpoll(k, PollEnd::Answer);
        }
    }

    /// Ends a waiting long-poll because its channel was deleted: `404`.
    pub(super) fn abort_longpoll(&mut self, k: usize, channel: &std::sync::Arc<str>) {
        let lp = self.conns.get_mut(k).and_then(|c| c.subscriber_mut());
        if let Some(lp) = lp.and_then(|s| s.longpoll_mut()) {
            lp.deleted = Some(channel.clone());
        }
        self.end_longpoll(k, PollEnd::ChannelDeleted);
    }

    /// Sends the poll's answer and turns the connection back into a
    /// keep-alive HTTP connection (or closes it after the answer).
    pub(super) fn end_longpoll(&mut self, k: usize, end: PollEnd) {
        let Some(lp) = self
            .conns
            .get_mut(k)
            .and_then(|c| c.subscriber_mut())
            .and_then(|s| s.take_longpoll())
        else {
            return;
        };
        self.unsubscribe_all(k);
        let Some(generation) = self.conns.get(k).map(|c| c.generation) else {
            return;
        };
        // A poll over several backplane shards answers with its composite id.
        let composite = self.longpoll_composite_id(k, generation);
        self.cluster.remove(k);
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        self.shared.stats.reactors[self.id].reclassify(ConnKind::LongPoll, ConnKind::Http);
        c.role = Role::Http(None);
        c.flags.set_token_expiry(false);
        c.flags.set_composite_ids(false);
        c.flags.set_replay_pending(false);
        let shutdown = matches!(end, PollEnd::Shutdown { .. });
        let keep_alive = lp.keep_alive && !c.flags.draining() && !shutdown;
        let mode = ReplyMode::keep_alive(keep_alive);
        let bytes = self.longpoll_answer(&lp, end, mode, composite.as_deref());
        self.send(k, bytes);
        if !keep_alive {
            self.close_after_flush(k, None);
            return;
        }
        let idle = self.now + secs_to_ticks(self.settings.config.idle_timeout);
        self.set_deadline(k, idle);
        // Serve what the client pipelined behind the poll, next turn.
        if let Some(c) = self.conns.get_mut(k) {
            c.flags.set_read_paused(false);
            if !c.pending_in.is_empty() {
                self.more_to_read.push(k);
            }
        }
    }

    /// The HTTP answer that ends a poll.
    fn longpoll_answer(
        &self,
        lp: &LongPollWait,
        end: PollEnd,
        mode: ReplyMode,
        composite: Option<&str>,
    ) -> Vec<u8> {
        if let Some(bytes) = self.compat_longpoll_answer(lp, end, mode) {
            return bytes;
        }
        let opts = &lp.cors;
        match end {
            PollEnd::TokenExpired => response::error(
                opts,
                401,
                "token expired",
                mode,
                &["WWW-Authenticate: Bearer realm=\"crier\", error=\"invalid_token\""],
            ),
            PollEnd::ChannelDeleted => response::error(opts, 404, "channel deleted", mode, &[]),
            PollEnd::Shutdown { retry_after_secs } => {
                let retry = format!("Retry-After: {retry_after_secs}");
                response::error(opts, 503, "server shutting down", mode, &[&retry])
            }
            PollEnd::Answer if lp.messages.is_empty() && !lp.missed => {
                let id = composite.map_or_else(|| lp.position.to_string(), str::to_string);
                let (last, etag) = (format!("Last-Event-ID: {id}"), format!("ETag: \"{id}\""));
                response::full(opts, 304, "", b"", mode, &[&last, &etag, EXPOSE_HEADERS])
            }
            PollEnd::Answer => {
                let settings = &self.shared.encode;
                let last = lp
                    .messages
                    .iter()
                    .map(|m| m.seq)
                    .max()
                    .unwrap_or(lp.position);
                let id = composite.map_or_else(|| last.to_string(), str::to_string);
                let envelopes: Vec<_> = lp
                    .messages
                    .iter()
                    .map(|m| match composite {
                        Some(c) => m.encoded_with_id(WireFormat::LongPoll, settings, c),
                        None => m.encoded(WireFormat::LongPoll, settings),
                    })
                    .collect();
                let body = longpoll::encode_body(envelopes.iter().map(|e| &e[..]), lp.missed, &id);
                let (last, etag) = (format!("Last-Event-ID: {id}"), format!("ETag: \"{id}\""));
                let missed = if lp.missed {
                    "X-Missed-Messages: true"
                } else {
                    "X-Missed-Messages: false"
                };
                let headers = [&last[..], &etag, missed, EXPOSE_HEADERS];
                response::full(opts, 200, "application/json", &body, mode, &headers)
            }
        }
    }
}
