//! One coarse timer wheel per reactor, driving every timeout.
//!
//! A million connections each have a deadline (handshake, idle, next ping,
//! pong, lifetime) that moves on almost every event. So moving a deadline
//! later is a plain store into the connection (`Conn::deadline`): each
//! connection has at most one wheel entry (`Conn::timer`), at the earliest
//! tick it may need attention, and when that entry fires and the stored
//! deadline has moved on, the connection is re-armed at the new deadline.
//! Moving a deadline earlier moves the entry. A tick only looks at one
//! slot, never at every connection. No per-connection OS timer exists.
//!
//! Entries are nodes of intrusive lists, one list per slot, in one node
//! array with a free list, so an entry can be cancelled in O(1) when its
//! connection closes. That matters under churn: without cancelling, every
//! connection that closes before its deadline leaves its entry behind until
//! the deadline, and the wheel grows with the connection *rate* times the
//! handshake timeout (3 MB at 25K connections/s × 10 s) instead of with the
//! connections open (docs/PERFORMANCE.md, "memory under churn").

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

/// A timer handle: an index into the wheel's nodes. [`NO_TIMER`] = none.
pub type TimerId = u32;

/// The handle of no timer.
pub const NO_TIMER: TimerId = u32::MAX;

/// End of a slot list (or of the free list).
const NIL: u32 = u32::MAX;

/// `Node::at` of a node on the free list.
const FREE: u32 = u32::MAX;

/// `Node::at` of a node that fired in the last advance and is not yet
/// recycled.
const FIRED: u32 = u32::MAX - 1;

/// A fired entry: connection slab key, its generation, the tick it was
/// scheduled for, and its handle (unique until the next advance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub key: u32,
    pub generation: u32,
    pub at: u32,
    pub id: TimerId,
}

/// One scheduled entry, linked into its slot's list.
#[derive(Debug, Clone, Copy)]
struct Node {
    key: u32,
    generation: u32,
    /// The tick it fires at, or `FREE` / `FIRED`.
    at: u32,
    prev: u32,
    /// The next node of its slot (or of the free list).
    next: u32,
}

/// A hashed timing wheel of `slots` slots, one tick each.
#[derive(Debug)]
pub struct TimerWheel {
    /// First node of each slot's list.
    heads: Vec<u32>,
    nodes: Vec<Node>,
    /// First free node.
    free: u32,
    /// Nodes that fired in the last advance, recycled at the next one so a
    /// handle in `due` stays unique while the caller handles it.
    fired: Vec<u32>,
    live: usize,
    /// Last tick processed.
    now: u32,
}

impl TimerWheel {
    /// A wheel with `slots` slots (a revolution), starting at tick 0.
    pub fn new(slots: usize) -> TimerWheel {
        TimerWheel {
            heads: vec![NIL; slots.max(1)],
            nodes: Vec::new(),
            free: NIL,
            fired: Vec::new(),
            live: 0,
            now: 0,
        }
    }

    /// Schedules an entry for tick `at` (an `at` in the past fires on the
    /// next advance) and returns its handle.
    pub fn schedule(&mut self, at: u32, key: u32, generation: u32) -> TimerId {
        let at = at.max(self.now + 1).min(FIRED - 1);
        let slot = at as usize % self.heads.len();
        let node = Node {
            key,
            generation,
            at,
            prev: NIL,
            next: self.heads[slot],
        };
        let id = if self.free == NIL {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        } else {
            let id = self.free;
            self.free = self.nodes[id as usize].next;
            self.nodes[id as usize] = node;
            id
        };
        if node.next != NIL {
            self.nodes[node.next as usize].prev = id;
        }
        self.heads[slot] = id;
        self.live += 1;
        id
    }

    /// The tick entry `id` fires at, if it is still scheduled.
    pub fn at(&self, id: TimerId) -> Option<u32> {
        let at = self.nodes.get(id as usize)?.at;
        (at < FIRED).then_some(at)
    }

    /// Removes entry `id` (a no-op when it already fired or was cancelled).
    pub fn cancel(&mut self, id: TimerId) {
        let Some(at) = self.at(id) else {
            return;
        };
        self.unlink(id, at);
        self.release(id);
    }

    fn unlink(&mut self, id: u32, at: u32) {
        let Node { prev, next, .. } = self.nodes[id as usize];
        if prev == NIL {
            let slot = at as usize % self.heads.len();
            self.heads[slot] = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        self.live -= 1;
    }

    fn release(&mut self, id: u32) {
        let node = &mut self.nodes[id as usize];
        node.at = FREE;
        node.next = self.free;
        self.free = id;
    }

    /// The last tick processed.
    pub fn now(&self) -> u32 {
        self.now
    }

    /// Processes every tick up to and including `to`, appending due entries
    /// to `due`. Entries for later revolutions stay put.
    pub fn advance(&mut self, to: u32, due: &mut Vec<Entry>) {
        for id in std::mem::take(&mut self.fired) {
            self.release(id);
        }
        let n = self.heads.len() as u32;
        // Past one full revolution every slot is visited once anyway.
        let last = to.min(self.now.saturating_add(n));
        while self.now < last {
            self.now += 1;
            let mut id = self.heads[(self.now % n) as usize];
            while id != NIL {
                let node = self.nodes[id as usize];
                if node.at <= to {
                    self.unlink(id, node.at);
                    self.nodes[id as usize].at = FIRED;
                    self.fired.push(id);
                    due.push(Entry {
                        key: node.key,
                        generation: node.generation,
                        at: node.at,
                        id,
                    });
                }
                id = node.next;
            }
        }
        self.now = to.max(self.now);
    }

    /// Entries scheduled (for tests and the timer benchmark).
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no entry is scheduled.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Heap bytes reserved by the wheel (for the timer benchmark).
    pub fn capacity_bytes(&self) -> usize {
        self.heads.capacity() * std::mem::size_of::<u32>()
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.fired.capacity() * std::mem::size_of::<u32>()
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
        w.schedule(6, 8, 0);
        let mut due = vec![];
        w.advance(9, &mut due);
        assert_eq!(keys(&due), vec![8]);
        due.clear();
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
        let id = w.schedule(2, 9, 0);
        assert_eq!(w.at(id), Some(6));
        w.advance(6, &mut due);
        assert_eq!(keys(&due), vec![9]);
        assert_eq!(w.at(id), None, "fired");
    }

    #[test]
    fn cancelled_entries_never_fire_and_their_nodes_are_reused() {
        let mut w = TimerWheel::new(8);
        let a = w.schedule(3, 1, 0);
        let b = w.schedule(3, 2, 0);
        let c = w.schedule(3, 3, 0);
        w.cancel(b);
        w.cancel(b);
        assert_eq!(w.len(), 2);
        let mut due = vec![];
        w.advance(3, &mut due);
        assert_eq!(keys(&due), vec![1, 3]);
        // Handles seen in `due` are not reused before the next advance.
        let d = w.schedule(5, 4, 0);
        assert!(d != a && d != c);
        w.cancel(a); // already fired: a no-op
        due.clear();
        w.advance(5, &mut due);
        assert_eq!(keys(&due), vec![4]);
    }

    #[test]
    fn churn_keeps_memory_at_the_open_connections() {
        // Connections that close before their deadline cancel it: the wheel
        // holds what is open, not what was opened.
        let mut w = TimerWheel::new(1024);
        let mut due = vec![];
        let mut open = std::collections::VecDeque::new();
        for tick in 1..2000u32 {
            for k in 0..100 {
                open.push_back(w.schedule(tick + 40, k, 0));
            }
            while open.len() > 500 {
                w.cancel(open.pop_front().unwrap());
            }
            due.clear();
            w.advance(tick, &mut due);
            assert!(due.is_empty());
        }
        assert_eq!(w.len(), 500);
        assert!(
            w.capacity_bytes() < 1024 * 4 + 1024 * 20 + 4096,
            "{}",
            w.capacity_bytes()
        );
    }
}
