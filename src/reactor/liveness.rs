//! Time-driven behaviour: deadlines, keepalive pings, pong checks,
//! handshake/idle timeouts, connection lifetime, slow consumers, and the
//! goodbyes sent on drain.
//!
//! Keepalive is two-phase (as in uWebSockets): a connection silent for
//! `ping-interval` gets a static, pre-encoded ping; a WebSocket then has
//! `pong-timeout` to answer. Writes double as probes: a dead peer makes the
//! ping's write fail, or, when the peer vanished without FIN/RST, TCP
//! keepalive and TCP_USER_TIMEOUT make the kernel report ETIMEDOUT.

use std::time::Instant;

use super::conn::Role;
use super::events::ConnEvent;
use super::longpoll::PollEnd;
use super::timer::{secs_to_ticks, Entry, NO_TIMER};
use super::Reactor;
use crate::http::response::{self, ReplyMode};
use crate::proto::{signal, WireFormat};
use crate::status::{CloseCause, ReactorStats};

/// A small xorshift generator: jitter only, never security.
#[derive(Debug)]
pub struct Jitter(u64);

impl Jitter {
    /// Seeds from the clock and the reactor id.
    pub fn new(seed: u64) -> Jitter {
        Jitter(seed | 1)
    }

    /// A number in `0..bound` (0 when bound is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        if bound == 0 {
            0
        } else {
            x % bound
        }
    }
}

impl Reactor {
    /// Sets connection `k`'s deadline. Later than its wheel entry: a store
    /// (the entry re-arms when it fires). Earlier: the entry moves.
    pub(super) fn set_deadline(&mut self, k: usize, at: u32) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        c.deadline = at;
        if at == 0 {
            return;
        }
        match self.wheel.at(c.timer) {
            Some(armed) if armed <= at => {}
            _ => {
                self.wheel.cancel(c.timer);
                c.timer = self.wheel.schedule(at, k as u32, c.generation);
            }
        }
    }

    /// Runs the timer wheel up to the current tick.
    pub(super) fn run_timers(&mut self) {
        let mut due = std::mem::take(&mut self.due);
        self.wheel.advance(self.now, &mut due);
        for Entry { key, id, .. } in due.drain(..) {
            let k = key as usize;
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            // Closing cancels a connection's entry, so a due entry is its
            // owner's; the check guards that invariant.
            if c.timer != id {
                debug_assert!(false, "timer entry of another connection");
                continue;
            }
            c.timer = NO_TIMER;
            if c.deadline == 0 {
                continue;
            }
            if c.deadline > self.now {
                let d = c.deadline;
                self.set_deadline(k, d);
            } else {
                self.on_deadline(k);
            }
        }
        self.due = due;
    }

    fn on_deadline(&mut self, k: usize) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        if c.flags.tls() && self.tls.handshaking(k) {
            return self.tls_handshake_timeout(k);
        }
        match &c.role {
            Role::Http(pending) => {
                let in_request = pending.is_some() || !c.pending_in.is_empty();
                if in_request {
                    let cors = self.cors_for(None);
                    let msg = "request not received in time";
                    let bytes = response::error(&cors, 408, msg, ReplyMode::CLOSE, &[]);
                    self.send(k, bytes);
                    self.close_after_flush(k, Some(CloseCause::HandshakeTimeout));
                    // Do not wait for a peer that is not reading either.
                    let d = self.now + secs_to_ticks(1);
                    self.set_deadline(k, d);
                } else if c.flags.close_after_flush() {
                    self.close(k, None);
                } else {
                    let cause = if c.last_seq == 0 && c.last_write == 0 {
                        CloseCause::HandshakeTimeout
                    } else {
                        CloseCause::IdleTimeout
                    };
                    self.close(k, Some(cause));
                }
            }
            Role::Subscriber(_) if c.flags.close_after_flush() => {
                // A goodbye that could not be delivered in time.
                self.close(k, None);
            }
            Role::Subscriber(_) => self.subscriber_deadline(k),
        }
    }

    fn subscriber_deadline(&mut self, k: usize) {
        let now = self.now;
        let (ping_ticks, pong_ticks) = (self.ping_ticks, self.pong_ticks);
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let Role::Subscriber(sub) = &mut c.role else {
            return;
        };
        let token_expired = c.flags.token_expiry() && now >= sub.lifetime_end;
        if sub.format == WireFormat::LongPoll {
            // The poll's time is up: answer 304 (or what arrived), or 401
            // when it was its token's.
            if token_expired {
                self.note(Some(k), None, ConnEvent::Cut(CloseCause::TokenExpired));
                self.end_longpoll(k, PollEnd::TokenExpired);
            } else {
                self.end_longpoll(k, PollEnd::Answer);
            }
            return;
        }
        if token_expired {
            let format = sub.format;
            c.out
                .push_vec(signal::token_expired(format, &self.shared.encode));
            self.close_after_flush(k, Some(CloseCause::TokenExpired));
            let d = self.now + secs_to_ticks(2);
            self.set_deadline(k, d);
            return;
        }
        if sub.lifetime_end != 0 && now >= sub.lifetime_end {
            self.say_goodbye(k, CloseCause::Lifetime);
            return;
        }
        let pong_due = sub.ws().map_or(0, |ws| ws.pong_due);
        if pong_due != 0 && now >= pong_due {
            self.close(k, Some(CloseCause::PongTimeout));
            return;
        }
        if ping_ticks > 0 && now.saturating_sub(c.last_write) >= ping_ticks {
            if let Some(ping) = self.shared.pings.ping(sub.format) {
                if let Some(ws) = sub.ws_mut().filter(|ws| ws.pong_due == 0) {
                    ws.pong_due = now + pong_ticks;
                }
                c.out.push(ping.clone());
                c.last_write = now;
                self.flush.queue(k, c);
                ReactorStats::add(&self.shared.stats.reactors[self.id].pings_sent, 1);
            }
        }
        self.rearm_subscriber(k);
    }

    /// Computes and sets a subscriber's next deadline: the earliest of the
    /// next ping, the pong due and the end of its lifetime.
    pub(super) fn rearm_subscriber(&mut self, k: usize) {
        let Some(c) = self.conns.get(k) else {
            return;
        };
        let Role::Subscriber(sub) = &c.role else {
            return;
        };
        if let Some(lp) = sub.longpoll() {
            let at = lp.deadline;
            self.set_deadline(k, at);
            return;
        }
        let mut next = u32::MAX;
        if self.ping_ticks > 0 {
            // Spread pings over a quarter of the interval, so subscribers
            // that were all written to at once (one publish) are not all
            // pinged in the same tick.
            let spread = (c.generation.wrapping_mul(2_654_435_761)) % (self.ping_ticks / 4 + 1);
            next = c.last_write + self.ping_ticks + spread;
        }
        if let Some(ws) = sub.ws().filter(|ws| ws.pong_due != 0) {
            next = next.min(ws.pong_due);
        }
        if sub.lifetime_end != 0 {
            next = next.min(sub.lifetime_end);
        }
        let next = if next == u32::MAX {
            0
        } else {
            next.max(self.now + 1)
        };
        self.set_deadline(k, next);
    }

    /// Asks a subscriber to come back later and closes it once that is
    /// sent. The retry delay is jittered over `reconnect-spread`, so a
    /// restart does not bring every client back in the same second; a
    /// waiting long-poll gets it as a 503's `Retry-After`.
    pub(super) fn say_goodbye(&mut self, k: usize, cause: CloseCause) {
        let spread_ms = self.settings.config.reconnect_spread * 1000;
        let retry_ms = self.settings.config.retry_ms + self.jitter.below(spread_ms + 1);
        let Some(format) = self
            .conns
            .get(k)
            .and_then(|c| c.subscriber())
            .map(|s| s.format)
        else {
            return;
        };
        if format == WireFormat::LongPoll {
            let retry_after_secs = retry_ms.div_ceil(1000).max(1);
            self.end_longpoll(k, PollEnd::Shutdown { retry_after_secs });
            self.note(Some(k), None, ConnEvent::Cut(cause));
        } else {
            if let Some(c) = self.conns.get_mut(k) {
                c.out
                    .push_vec(signal::goodbye(format, retry_ms, &self.shared.encode));
            }
            self.close_after_flush(k, Some(cause));
        }
        // Bound the wait for a peer that does not read its goodbye.
        let d = self.now + secs_to_ticks(2);
        self.set_deadline(k, d);
    }

    /// Drops a subscriber whose unsent output passed the cap. Its queue is
    /// freed at once; a WebSocket gets a best-effort 1008 close frame.
    pub(super) fn drop_slow_consumer(&mut self, k: usize) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        c.out.clear();
        if let Some(frame) = c.subscriber().and_then(|s| signal::slow_consumer(s.format)) {
            // One write, through TLS when the connection has it.
            c.out.push_vec(frame);
            let _ = self
                .tls
                .write_conn(k, c, &self.shared.stats.reactors[self.id]);
        }
        self.close(k, Some(CloseCause::SlowConsumer));
    }

    /// Graceful shutdown: stop accepting, say goodbye to subscribers, close
    /// idle HTTP connections, let requests in progress finish.
    pub(super) fn start_drain(&mut self, until: Instant) {
        if self.drain_until.is_some() {
            return;
        }
        self.drain_until = Some(until);
        for mut l in [self.listener.take(), self.tls_listener.take()]
            .into_iter()
            .flatten()
        {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            match &c.role {
                Role::Subscriber(_) => self.say_goodbye(k, CloseCause::Shutdown),
                Role::Http(None) if c.pending_in.is_empty() && c.out.is_empty() => {
                    self.close(k, Some(CloseCause::Shutdown))
                }
                Role::Http(_) => c.flags.set_draining(true),
            }
        }
    }
}
