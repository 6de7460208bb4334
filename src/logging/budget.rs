//! How many connection events (refusals, cuts) get a log line: a token
//! bucket shared by every reactor, so a flood of bad clients costs a
//! bounded number of lines per second however many reactors see it, and
//! the lines it drops are counted and reported in one line later.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A budget of `per_second` lines, with bursts of five seconds' worth.
#[derive(Debug)]
pub struct EventBudget {
    per_second: AtomicU64,
    /// No token before this time (ms): the fast path under a flood, a
    /// relaxed load instead of the lock.
    empty_until_ms: AtomicU64,
    /// Events not logged since the last report.
    dropped: AtomicU64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Thousandths of a line.
    tokens: u64,
    last_ms: u64,
}

/// What to do with one event.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it (after a line saying `dropped` were not, when non-zero).
    Log {
        dropped: u64,
    },
    Drop,
}

impl EventBudget {
    /// `per_second` 0 logs no connection event at all.
    pub fn new(per_second: u64) -> EventBudget {
        EventBudget {
            per_second: AtomicU64::new(per_second),
            empty_until_ms: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            bucket: Mutex::new(Bucket {
                tokens: per_second * 5 * 1000,
                last_ms: 0,
            }),
        }
    }

    /// A new rate (SIGHUP).
    pub fn set_rate(&self, per_second: u64) {
        self.per_second.store(per_second, Ordering::Relaxed);
        self.empty_until_ms.store(0, Ordering::Relaxed);
    }

    /// Takes a token for an event at `now_ms`, if there is one.
    pub fn take(&self, now_ms: u64) -> Verdict {
        let rate = self.per_second.load(Ordering::Relaxed);
        if rate == 0 || now_ms < self.empty_until_ms.load(Ordering::Relaxed) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Verdict::Drop;
        }
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let burst = rate * 5 * 1000;
        let elapsed = now_ms.saturating_sub(b.last_ms);
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last_ms = b.last_ms.max(now_ms);
        if b.tokens < 1000 {
            let wait = (1000 - b.tokens).div_ceil(rate);
            self.empty_until_ms.store(now_ms + wait, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Verdict::Drop;
        }
        b.tokens -= 1000;
        Verdict::Log {
            dropped: self.dropped.swap(0, Ordering::Relaxed),
        }
    }

    /// Events dropped since the last report, taken (for a periodic
    /// report when no event has been logged for a while).
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_gets_its_burst_then_the_rate_and_the_rest_is_counted() {
        let b = EventBudget::new(10);
        let logged = (0..1000).filter(|_| b.take(1_000) != Verdict::Drop).count();
        assert_eq!(logged, 50, "five seconds' worth at once");
        // One second later: ten more, the first reporting what was dropped.
        assert_eq!(b.take(2_000), Verdict::Log { dropped: 950 });
        let more = (0..100).filter(|_| b.take(2_000) != Verdict::Drop).count();
        assert_eq!(more, 9);
        assert_eq!(b.take_dropped(), 91);
        assert_eq!(b.take_dropped(), 0);
    }

    #[test]
    fn zero_logs_nothing_and_a_new_rate_applies_at_once() {
        let b = EventBudget::new(0);
        assert_eq!(b.take(5), Verdict::Drop);
        b.set_rate(1);
        assert_eq!(b.take(10_000), Verdict::Log { dropped: 1 });
    }
}
