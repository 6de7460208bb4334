//! Long-polling: a request that waits for the next message(s) after the
//! client's position, answers once, and returns the connection to HTTP
//! keep-alive so the client can ask again.
//!
//! The position travels in `Last-Event-ID` (response header and request
//! header or `last_event_id` query; `ETag`/`If-None-Match` work too). A
//! poll that times out answers `304 Not Modified` with the position it
//! waited from, so a message published between two polls reaches the next.

use std::sync::Arc;

use super::conn::{Role, TransportState};
use super::fanout::NewSubscriber;
use super::liveness::secs_to_ticks;
use super::Reactor;
use crate::http::request::RequestHead;
use crate::http::response;
use crate::proto::longpoll;
use crate::pubsub::hub::{ChannelRequest, Resume};
use crate::pubsub::message::{Message, WireFormat};
use crate::status::ConnKind;

/// A waiting long-poll request.
#[derive(Debug)]
pub struct LongPollWait {
    /// Messages that arrived since the poll started (answered together).
    pub messages: Vec<Arc<Message>>,
    /// Already queued for an answer at the end of this loop turn.
    pub ready: bool,
    /// The client's request allows reusing the connection.
    pub keep_alive: bool,
    /// The client's position was older than the stored history.
    pub missed: bool,
    /// The id the poll waits after (reported back on timeout).
    pub position: u64,
    /// Tick at which the poll answers 304.
    pub deadline: u32,
}

impl Reactor {
    /// Starts a long-poll: answers at once when stored messages are after
    /// the client's position (or a gap must be reported), else waits.
    pub(super) fn start_longpoll(
        &mut self,
        k: usize,
        head: &RequestHead,
        requests: &[ChannelRequest],
        resume: Resume,
    ) {
        let deadline = self.now + secs_to_ticks(self.shared.config.longpoll_timeout).max(1);
        let wait = LongPollWait {
            messages: Vec::new(),
            ready: false,
            keep_alive: head.keep_alive,
            missed: false,
            position: 0,
            deadline,
        };
        let new = NewSubscriber {
            format: WireFormat::Sse,
            kind: ConnKind::LongPoll,
            head: Vec::new(),
            state: Some(Box::new(TransportState::LongPoll(wait))),
        };
        let Some(subscribed) = self.register_subscriber(k, new, requests, resume) else {
            return;
        };
        let answer_now = !subscribed.replay.is_empty() || subscribed.missed;
        if let Some(Role::Subscriber(sub)) = self.conns.get_mut(k).map(|c| &mut c.role) {
            if let Some(lp) = sub.longpoll_mut() {
                lp.position = match resume {
                    Resume::AfterSeq(after) if !subscribed.missed => after,
                    _ => subscribed.last_seq,
                };
                lp.missed = subscribed.missed;
                lp.messages = subscribed.replay;
            }
        }
        if answer_now {
            self.answer_longpoll(k);
        }
    }

    /// Answers every long-poll that received messages this loop turn.
    pub(super) fn finish_longpolls(&mut self) {
        for k in std::mem::take(&mut self.longpolls_ready) {
            self.answer_longpoll(k);
        }
    }

    /// Sends the answer (200 with messages, or 304 when there are none) and
    /// turns the connection back into a keep-alive HTTP connection.
    pub(super) fn answer_longpoll(&mut self, k: usize) {
        self.end_longpoll(k, None);
    }

    /// Ends a waiting long-poll because its channel was deleted: `404`.
    pub(super) fn abort_longpoll(&mut self, k: usize) {
        self.end_longpoll(k, Some("channel deleted"));
    }

    fn end_longpoll(&mut self, k: usize, deleted: Option<&str>) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let Role::Subscriber(sub) = &mut c.role else {
            return;
        };
        let Some(lp) = sub.take_longpoll() else {
            return;
        };
        self.unsubscribe_all(k);
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        self.shared.stats.reactors[self.id].reclassify(ConnKind::LongPoll, ConnKind::Http);
        c.role = Role::Http(None);
        let keep_alive = lp.keep_alive && !c.flags.draining;
        let opts = &self.shared.responses;
        let bytes = if let Some(reason) = deleted {
            response::error(opts, 404, reason, keep_alive, &[])
        } else if lp.messages.is_empty() && !lp.missed {
            let id = lp.position.to_string();
            response::full(
                opts,
                304,
                "",
                b"",
                keep_alive,
                &[
                    &format!("Last-Event-ID: {id}"),
                    &format!("ETag: \"{id}\""),
                    EXPOSE_HEADERS,
                ],
            )
        } else {
            let last = lp.messages.last().map_or(lp.position, |m| m.seq);
            let body = longpoll::encode_body(&lp.messages, lp.missed, last);
            let id = last.to_string();
            let missed = if lp.missed {
                "X-Missed-Messages: true"
            } else {
                "X-Missed-Messages: false"
            };
            response::full(
                opts,
                200,
                "application/json",
                &body,
                keep_alive,
                &[
                    &format!("Last-Event-ID: {id}"),
                    &format!("ETag: \"{id}\""),
                    missed,
                    EXPOSE_HEADERS,
                ],
            )
        };
        self.send(k, bytes);
        if keep_alive {
            let idle = self.now + secs_to_ticks(self.shared.config.idle_timeout);
            self.set_deadline(k, idle);
            // Serve what the client pipelined behind the poll, next turn.
            if let Some(c) = self.conns.get_mut(k) {
                c.flags.read_paused = false;
                if !c.pending_in.is_empty() {
                    self.more_to_read.push(k);
                }
            }
        } else {
            self.close_after_flush(k, None);
        }
    }
}

/// Lets browser code on another origin read the position headers.
const EXPOSE_HEADERS: &str =
    "Access-Control-Expose-Headers: Last-Event-ID, ETag, X-Missed-Messages";
