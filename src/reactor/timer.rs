//! One coarse timer wheel per reactor, driving every timeout.
//!
//! Why a wheel with lazy re-arm: a million connections each have a
//! deadline (handshake, idle, next ping, pong, lifetime) that moves on
//! almost every event. Moving a deadline later is a plain store into the
//! connection (`Conn::deadline`); each connection has one *live* wheel
//! entry, at the earliest tick it may need attention (`Conn::armed_at`).
//! When that entry fires and the stored deadline has moved on, the entry
//! is re-inserted at the new deadline. Moving a deadline earlier adds a new
//! entry and leaves the old one behind as a stale entry, recognised and
//! dropped when it fires (its tick or generation no longer matches). A
//! tick only looks at one slot, never at every connection, and scheduling
//! allocates only while a slot grows past what it held before. No
//! per-connection OS timer exists.

use std::time::Duration;

/// Length of one tick: the resolution of every timeout.
pub const TICK: Duration = Duration::from_millis(250);

/// Ticks in a second.
pub const TICKS_PER_SEC: u32 = 4;

/// Converts a setting in whole seconds to ticks (0 stays 0 = off).
pub fn secs_to_ticks(secs: u64) -> u32 {
    secs.saturating_mul(u64::from(TICKS_PER_SEC))
        .min(u64::from(u32::MAX / 2)) as u32
}

/// A wheel entry: connection slab key, its generation, and the tick the
/// entry was scheduled for (ticks beyond one revolution stay in their slot
/// until their revolution comes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub key: u32,
    pub generation: u32,
    pub at: u32,
}

/// A hashed timing wheel of `slots` slots, one tick each.
#[derive(Debug)]
pub struct TimerWheel {
    slots: Vec<Vec<Entry>>,
    /// Last tick processed.
    now: u32,
}

impl TimerWheel {
    /// A wheel with `slots` slots (a revolution), starting at tick 0.
    pub fn new(slots: usize) -> TimerWheel {
        TimerWheel {
            slots: (0..slots.max(1)).map(|_| Vec::new()).collect(),
            now: 0,
        }
    }

    /// Schedules an entry for tick `at` (an `at` in the past fires on the
    /// next advance).
    pub fn schedule(&mut self, at: u32, key: u32, generation: u32) {
        let at = at.max(self.now + 1);
        let slot = at as usize % self.slots.len();
        self.slots[slot].push(Entry {
            key,
            generation,
            at,
        });
    }

    /// The last tick processed.
    pub fn now(&self) -> u32 {
        self.now
    }

    /// Processes every tick up to and including `to`, appending due entries
    /// to `due`. Entries for later revolutions stay put.
    pub fn advance(&mut self, to: u32, due: &mut Vec<Entry>) {
        let n = self.slots.len() as u32;
        // Past one full revolution every slot is visited once anyway.
        let last = to.min(self.now.saturating_add(n));
        while self.now < last {
            self.now += 1;
            let slot = &mut self.slots[(self.now % n) as usize];
            let mut i = 0;
            while i < slot.len() {
                if slot[i].at <= to {
                    due.push(slot.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            // Give memory back after a burst (e.g. a reconnect storm).
            if slot.is_empty() && slot.capacity() > 1024 {
                *slot = Vec::new();
            }
        }
        self.now = to.max(self.now);
    }

    /// Entries currently in the wheel, stale ones included (for tests and
    /// the timer benchmark).
    pub fn len(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }

    /// Heap bytes reserved by the slots (for the timer benchmark).
    pub fn capacity_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Vec<Entry>>()
            + self
                .slots
                .iter()
                .map(|s| s.capacity() * std::mem::size_of::<Entry>())
                .sum::<usize>()
    }

    /// True when no entry is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(due: &[Entry]) -> Vec<u32> {
        let mut k: Vec<u32> = due.iter().map(|e| e.key).collect();
        k.sort();
        k
    }

    #[test]
    fn fires_at_the_tick_not_before() {
        let mut w = TimerWheel::new(8);
        w.schedule(3, 1, 0);
        w.schedule(5, 2, 0);
        let mut due = vec![];
        w.advance(2, &mut due);
        assert!(due.is_empty());
        w.advance(3, &mut due);
        assert_eq!(keys(&due), vec![1]);
        due.clear();
        w.advance(10, &mut due);
        assert_eq!(keys(&due), vec![2]);
        assert!(w.is_empty());
    }

    #[test]
    fn beyond_one_revolution_waits_for_its_turn() {
        let mut w = TimerWheel::new(4);
        w.schedule(10, 7, 0);
        let mut due = vec![];
        w.advance(9, &mut due);
        assert!(due.is_empty());
        w.advance(10, &mut due);
        assert_eq!(keys(&due), vec![7]);
    }

    #[test]
    fn long_jumps_visit_each_slot_once() {
        let mut w = TimerWheel::new(4);
        for k in 0..20 {
            w.schedule(k + 1, k, 0);
        }
        let mut due = vec![];
        w.advance(1000, &mut due);
        assert_eq!(due.len(), 20);
    }

    #[test]
    fn past_deadlines_fire_next_tick() {
        let mut w = TimerWheel::new(4);
        let mut due = vec![];
        w.advance(5, &mut due);
        w.schedule(2, 9, 0);
        w.advance(6, &mut due);
        assert_eq!(keys(&due), vec![9]);
    }
}
