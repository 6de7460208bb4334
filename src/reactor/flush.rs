//! Writing queued output: replies at once, subscribers in slices.
//!
//! Why slices: a publisher that waits for each reply (what real backends
//! do) sends the next message only after the last answer. If a loop turn
//! flushed all of a channel's subscribers before reading again, every
//! message would cost one write per subscriber and nothing could coalesce.
//! So a turn answers every request first, then writes subscribers for at
//! most [`SLICE`] (and [`SLICE_CONNECTIONS`]), oldest first, and polls
//! again without waiting while any are left. Messages published meanwhile
//! are queued behind what a subscriber has not been sent yet, so its next
//! `writev` carries all of them, in order. With one message in flight the
//! work is the same as flushing everyone at once, plus a poll per slice.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::conn::{Conn, Role};
use super::outqueue::Flushed;
use super::Reactor;
use crate::status::{PeerGone, ReactorStats};

/// Longest stretch of subscriber writes between two polls. Chosen by
/// measurement (docs/PERFORMANCE.md, "Flush slice"): a waiting publisher
/// is answered within one slice, so a shorter slice lets it publish faster
/// than the fanout drains, and the backlog (the p99) grows; a longer one
/// coalesces more per `writev` but holds replies longer. 4 ms halved the
/// back-to-back p99 of 1 ms and kept replies under 10 ms.
const SLICE: Duration = Duration::from_micros(4000);

/// At most this many subscriber writes per slice, whatever the clock says.
const SLICE_CONNECTIONS: usize = 4096;

/// How many writes between two looks at the clock.
const CLOCK_EVERY: usize = 16;

/// Connections with queued output.
#[derive(Debug, Default)]
pub(super) struct FlushQueue {
    /// Replies to requests, handshakes and control frames: written every
    /// turn, in full, before any subscriber.
    urgent: Vec<usize>,
    /// Subscribers with fanout output, oldest first; written in slices
    /// across turns.
    sliced: VecDeque<usize>,
    /// Connections ever put in `sliced`, and ever taken out: a fanout is
    /// fully written once `taken` passes what `queued` was when it ended.
    queued: u64,
    taken: u64,
}

impl FlushQueue {
    /// Queues connection `k`'s output for the sliced flush (once).
    pub fn queue(&mut self, k: usize, c: &mut Conn) {
        if !c.flags.dirty() {
            c.flags.set_dirty(true);
            self.sliced.push_back(k);
            self.queued += 1;
        }
    }

    /// Queues connection `k`'s output for this turn, ahead of every
    /// subscriber (once).
    pub fn urgent(&mut self, k: usize, c: &mut Conn) {
        if !c.flags.urgent() {
            c.flags.set_urgent(true);
            self.urgent.push(k);
        }
    }

    /// The position a fanout that ends now is fully written at.
    pub fn position(&self) -> u64 {
        self.queued
    }

    /// Whether subscribers are still waiting for their slice: the loop then
    /// polls without waiting.
    pub fn has_backlog(&self) -> bool {
        !self.sliced.is_empty()
    }
}

impl Reactor {
    /// The turn's writes: every urgent connection, then one slice of
    /// subscribers.
    pub(super) fn flush_turn(&mut self) {
        let urgent = std::mem::take(&mut self.flush.urgent);
        for &k in &urgent {
            if let Some(c) = self.conns.get_mut(k) {
                c.flags.set_urgent(false);
                self.write_out(k);
            }
        }
        // Reuse the allocation for the next turn.
        if self.flush.urgent.is_empty() {
            self.flush.urgent = urgent;
            self.flush.urgent.clear();
        }
        let started = Instant::now();
        for written in 0..SLICE_CONNECTIONS {
            if written % CLOCK_EVERY == CLOCK_EVERY - 1 && started.elapsed() >= SLICE {
                break;
            }
            let Some(k) = self.flush.sliced.pop_front() else {
                break;
            };
            self.flush.taken += 1;
            if let Some(c) = self.conns.get_mut(k) {
                c.flags.set_dirty(false);
                if self.write_out(k) > 0 {
                    self.latency
                        .first_write(&self.shared.stats.reactors[self.id]);
                }
            }
        }
        let stats = &self.shared.stats.reactors[self.id];
        self.latency.written_up_to(self.flush.taken, stats);
    }

    /// Writes connection `k`'s queue now: as much as the socket takes.
    /// Returns the bytes written.
    pub(super) fn write_out(&mut self, k: usize) -> usize {
        let Some(c) = self.conns.get_mut(k) else {
            return 0;
        };
        if c.flags.write_blocked() {
            return 0;
        }
        let stats = &self.shared.stats.reactors[self.id];
        match self.tls.write_conn(k, c, stats) {
            Ok((n, flushed)) => {
                if n > 0 {
                    c.last_write = self.now;
                }
                ReactorStats::add(&self.shared.stats.reactors[self.id].bytes_out, n as u64);
                match flushed {
                    Flushed::Blocked => c.flags.set_write_blocked(true),
                    Flushed::All => {
                        if c.flags.close_after_flush() {
                            self.close(k, None);
                        } else if c.flags.read_paused() && matches!(c.role, Role::Http(_)) {
                            // The replies it was not reading are out.
                            c.flags.set_read_paused(false);
                            self.more_to_read.push(k);
                        }
                    }
                }
                n
            }
            Err(_) => {
                self.peer_gone(k, PeerGone::WriteError);
                0
            }
        }
    }

    /// Queues `bytes` (a reply, a handshake, a control frame) on connection
    /// `k` for this turn's writes.
    pub(super) fn send(&mut self, k: usize, bytes: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(k) {
            c.out.push_vec(bytes);
            self.flush.urgent(k, c);
        }
    }
}
