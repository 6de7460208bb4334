//! Latency histograms with fixed buckets, for tail latency on `/metrics`
//! without a load tool: each reactor observes into its own block (relaxed
//! atomics, never contended), `/status` and `/metrics` sum the blocks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds: 50 µs to 10 s, about
/// three per decade (the `le` labels of `/metrics`).
pub const BOUNDS_US: [u64; 17] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Buckets plus one for everything slower.
const SLOTS: usize = BOUNDS_US.len() + 1;

/// One reactor's observations of one quantity.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; SLOTS],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let slot = BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }
}

/// The sum of several reactors' histograms, for rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations per bucket (not cumulative); the last is over 10 s.
    pub buckets: [u64; SLOTS],
    pub sum_us: u64,
}

impl HistogramSnapshot {
    pub fn sum_of<'a>(all: impl Iterator<Item = &'a Histogram>) -> HistogramSnapshot {
        let mut s = HistogramSnapshot::default();
        for h in all {
            for (total, b) in s.buckets.iter_mut().zip(&h.buckets) {
                *total += b.load(Ordering::Relaxed);
            }
            s.sum_us += h.sum_us.load(Ordering::Relaxed);
        }
        s
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The upper bound (µs) of the bucket holding quantile `q`; None
    /// without observations, u64::MAX past the last bound.
    pub fn quantile_bound_us(&self, q: f64) -> Option<u64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(BOUNDS_US.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        Some(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_micros(51));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let s = HistogramSnapshot::sum_of([&h, &Histogram::default()].into_iter());
        assert_eq!(s.buckets[0], 1, "50 µs is within le=0.00005");
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[6], 1, "3 ms is within le=0.005");
        assert_eq!(s.buckets[SLOTS - 1], 1, "over 10 s");
        assert_eq!(s.count(), 4);
        assert_eq!(s.sum_us, 50 + 51 + 3_000 + 60_000_000);
    }

    #[test]
    fn quantiles_are_bucket_bounds() {
        let h = Histogram::default();
        for _ in 0..99 {
            h.observe(Duration::from_micros(200));
        }
        h.observe(Duration::from_millis(40));
        let s = HistogramSnapshot::sum_of([&h].into_iter());
        assert_eq!(s.quantile_bound_us(0.5), Some(250));
        assert_eq!(s.quantile_bound_us(0.99), Some(250));
        assert_eq!(s.quantile_bound_us(1.0), Some(50_000));
        assert_eq!(HistogramSnapshot::default().quantile_bound_us(0.5), None);
    }
}
