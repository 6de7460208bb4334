//! Message history: what a reconnecting client can get back.
//!
//! Each channel keeps its newest `store-messages` messages (count cap,
//! enforced per channel at publish). Across all channels two more limits
//! evict the *globally* oldest messages first: `message-ttl` and the memory
//! budget `store-max-bytes`. For those, the store keeps one FIFO of every
//! stored message in publish order (`Weak` references, so a FIFO entry
//! never keeps a payload alive). A message evicted early by a channel's
//! count cap leaves a dead entry behind; the FIFO is compacted when dead
//! entries outnumber live ones, so it stays proportional to what is stored.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crate::pubsub::message::Message;

/// Store limits from the config.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Messages kept per channel (0 = none).
    pub per_channel: usize,
    /// Milliseconds a message is kept (0 = no age limit).
    pub ttl_ms: u64,
    /// Memory budget of all stored messages.
    pub max_bytes: usize,
}

/// One channel's history, oldest first.
#[derive(Debug, Default)]
pub struct History {
    messages: VecDeque<Arc<Message>>,
    /// The newest id that was dropped from this history (or the first id of
    /// this server run): resuming from before it means a gap.
    pub forgotten_through: u64,
}

impl History {
    /// A history whose gap marker starts at `first_seq`.
    pub fn new(first_seq: u64) -> History {
        History {
            messages: VecDeque::new(),
            forgotten_through: first_seq,
        }
    }

    /// Stored messages, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Arc<Message>> + ExactSizeIterator {
        self.messages.iter()
    }

    /// Number of stored messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The oldest stored message, if any.
    pub fn front(&self) -> Option<&Arc<Message>> {
        self.messages.front()
    }

    fn pop_front(&mut self) -> Option<Arc<Message>> {
        let m = self.messages.pop_front()?;
        self.forgotten_through = self.forgotten_through.max(m.seq);
        Some(m)
    }
}

/// Global accounting plus the eviction FIFO.
#[derive(Debug, Default)]
pub struct StoreAccount {
    fifo: VecDeque<Weak<Message>>,
    /// Messages stored in at least one channel.
    pub live_messages: u64,
    /// Approximate bytes of those messages.
    pub bytes: u64,
}

impl StoreAccount {
    /// Appends `m` to `history` (one channel) and accounts for it; drops
    /// what the channel's count cap pushes out.
    pub fn store(&mut self, history: &mut History, m: &Arc<Message>, limits: &StoreLimits) {
        if limits.per_channel == 0 {
            history.forgotten_through = history.forgotten_through.max(m.seq);
            return;
        }
        if m.stored_copies.fetch_add(1, Ordering::Relaxed) == 0 {
            self.live_messages += 1;
            self.bytes += m.memory_cost() as u64;
            self.fifo.push_back(Arc::downgrade(m));
        }
        history.messages.push_back(m.clone());
        while history.len() > limits.per_channel {
            if let Some(old) = history.pop_front() {
                self.release(&old);
            }
        }
        self.compact_if_sparse();
    }

    /// Forgets a whole history (channel deleted).
    pub fn drop_history(&mut self, history: &mut History) {
        while let Some(m) = history.pop_front() {
            self.release(&m);
        }
    }

    fn release(&mut self, m: &Arc<Message>) {
        if m.stored_copies.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.live_messages -= 1;
            self.bytes = self.bytes.saturating_sub(m.memory_cost() as u64);
        }
    }

    fn compact_if_sparse(&mut self) {
        if self.fifo.len() > 64 && self.fifo.len() as u64 > 2 * self.live_messages {
            self.fifo.retain(|w| {
                w.upgrade()
                    .is_some_and(|m| m.stored_copies.load(Ordering::Relaxed) > 0)
            });
        }
    }

    /// The oldest stored message if it is over the TTL or the byte budget,
    /// removed from the FIFO: the caller must drop it from every history
    /// (see [`evict_from`](Self::evict_from)). Dead entries are skipped.
    pub fn next_eviction(&mut self, now_ms: u64, limits: &StoreLimits) -> Option<Arc<Message>> {
        while let Some(front) = self.fifo.front() {
            let live = front
                .upgrade()
                .filter(|m| m.stored_copies.load(Ordering::Relaxed) > 0);
            let Some(m) = live else {
                self.fifo.pop_front();
                continue;
            };
            let expired = limits.ttl_ms > 0 && m.published_at_ms + limits.ttl_ms <= now_ms;
            let over_budget = self.bytes > limits.max_bytes as u64;
            if !(expired || over_budget) {
                return None;
            }
            self.fifo.pop_front();
            return Some(m);
        }
        None
    }

    /// Drops `m` from `history` if it is stored there (it is always the
    /// oldest entry, since every eviction goes oldest-first).
    pub fn evict_from(&mut self, history: &mut History, m: &Arc<Message>) {
        if history.front().is_some_and(|f| f.seq == m.seq) {
            history.pop_front();
            self.release(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::channel::ChannelRef;
    use crate::pubsub::message::Publication;

    fn msg(seq: u64, at: u64, size: usize) -> Arc<Message> {
        let ch = ChannelRef {
            id: 1,
            name: Arc::from("c"),
        };
        let p = Publication {
            payload: vec![b'x'; size].into(),
            ..Default::default()
        };
        Arc::new(Message::new(seq, vec![ch].into(), at, p))
    }

    fn limits(per_channel: usize, ttl_ms: u64, max_bytes: usize) -> StoreLimits {
        StoreLimits {
            per_channel,
            ttl_ms,
            max_bytes,
        }
    }

    #[test]
    fn count_cap_keeps_the_newest_and_marks_the_gap() {
        let mut acc = StoreAccount::default();
        let mut h = History::new(0);
        let l = limits(2, 0, usize::MAX);
        for seq in 1..=5 {
            acc.store(&mut h, &msg(seq, 0, 1), &l);
        }
        let seqs: Vec<u64> = h.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, vec![4, 5]);
        assert_eq!(h.forgotten_through, 3);
        assert_eq!(acc.live_messages, 2);
    }

    #[test]
    fn ttl_evicts_oldest_first() {
        let mut acc = StoreAccount::default();
        let mut h = History::new(0);
        let l = limits(10, 1000, usize::MAX);
        let (a, b) = (msg(1, 0, 1), msg(2, 500, 1));
        acc.store(&mut h, &a, &l);
        acc.store(&mut h, &b, &l);
        assert!(acc.next_eviction(999, &l).is_none());
        let e = acc.next_eviction(1000, &l).unwrap();
        assert_eq!(e.seq, 1);
        acc.evict_from(&mut h, &e);
        assert_eq!(h.len(), 1);
        assert!(acc.next_eviction(1200, &l).is_none());
        assert_eq!(acc.live_messages, 1);
    }

    #[test]
    fn byte_budget_evicts_until_under() {
        let mut acc = StoreAccount::default();
        let mut h = History::new(0);
        let one = msg(1, 0, 1000).memory_cost();
        let l = limits(100, 0, one * 3);
        let all: Vec<_> = (1..=5).map(|s| msg(s, 0, 1000)).collect();
        for m in &all {
            acc.store(&mut h, m, &l);
        }
        while let Some(m) = acc.next_eviction(0, &l) {
            acc.evict_from(&mut h, &m);
        }
        assert!(acc.bytes <= (one * 3) as u64);
        assert_eq!(h.front().unwrap().seq, 3);
    }

    #[test]
    fn fifo_stays_proportional_to_live_messages() {
        let mut acc = StoreAccount::default();
        let mut h = History::new(0);
        let l = limits(1, 0, usize::MAX);
        for seq in 1..=10_000 {
            acc.store(&mut h, &msg(seq, 0, 1), &l);
        }
        assert_eq!(acc.live_messages, 1);
        assert!(acc.fifo.len() <= 130, "fifo {}", acc.fifo.len());
    }
}
