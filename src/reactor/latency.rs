//! What the fanout latency histograms need to remember between a fanout
//! and the writes that carry it (`crier_publish_to_first_write_seconds`,
//! `crier_fanout_duration_seconds`; docs/METRICS.md).
//!
//! The sliced flush writes subscribers in the order they were queued, so a
//! fanout is fully written once the flush has taken as many connections
//! out of its queue as had been put in when the fanout ended: one counter
//! comparison, nothing per connection. Long-polls are answered in the same
//! turn as the fanout and are not measured here.

use std::collections::VecDeque;
use std::time::Instant;

use crate::status::{Latency, ReactorStats};

/// Fanouts not yet fully written.
#[derive(Debug, Default)]
pub(super) struct FanoutLatency {
    /// Accept times of messages queued on subscribers but not yet in any
    /// write.
    awaiting_first_write: Vec<Instant>,
    /// (started, messages, flush position it is written at), oldest first.
    in_flight: VecDeque<(Instant, u32, u64)>,
}

impl FanoutLatency {
    /// A fanout of messages accepted at `accepted` started at `started`
    /// and queued its last copy with the flush queue at `position`.
    pub fn fanned_out(
        &mut self,
        accepted: impl Iterator<Item = Instant>,
        started: Instant,
        position: u64,
    ) {
        let before = self.awaiting_first_write.len();
        self.awaiting_first_write.extend(accepted);
        let n = (self.awaiting_first_write.len() - before) as u32;
        self.in_flight.push_back((started, n, position));
    }

    /// A subscriber write went out: the first for whatever is waiting.
    pub fn first_write(&mut self, stats: &ReactorStats) {
        if self.awaiting_first_write.is_empty() {
            return;
        }
        let now = Instant::now();
        for accepted in self.awaiting_first_write.drain(..) {
            stats.observe(Latency::PublishToFirstWrite, now - accepted);
        }
    }

    /// The flush has taken `taken` connections so far: every fanout
    /// written by then is done.
    pub fn written_up_to(&mut self, taken: u64, stats: &ReactorStats) {
        let mut now = None;
        while let Some(&(started, n, position)) = self.in_flight.front() {
            if position > taken {
                break;
            }
            self.in_flight.pop_front();
            let d = *now.get_or_insert_with(Instant::now) - started;
            for _ in 0..n {
                stats.observe(Latency::Fanout, d);
            }
        }
    }
}
