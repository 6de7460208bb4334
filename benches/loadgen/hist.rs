//! Latency histogram. Workers record into it and ship it to the harness as JSON, which
//! merges them, so the harness reports percentiles over every delivery of every worker;
//! publisher connections merge theirs in memory.

use serde_json::{json, Value};

/// Log-linear histogram: exact below 64, then 32 sub-buckets per power of two (≤3% error).
/// Mergeable across worker processes, so percentiles cover every delivery, not a sample.
#[derive(Clone)]
pub struct Hist {
    counts: Vec<u64>,
    n: u64,
    pub max: u64,
}

const HSUB: u64 = 32;
const HBITS: u32 = 5;

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: vec![0; (2 * HSUB + 64 * HSUB) as usize],
            n: 0,
            max: 0,
        }
    }
}

impl Hist {
    fn index(v: u64) -> usize {
        if v < 2 * HSUB {
            return v as usize;
        }
        let shift = (63 - v.leading_zeros()) - HBITS;
        (2 * HSUB + (shift as u64 - 1) * HSUB + ((v >> shift) - HSUB)) as usize
    }

    /// Midpoint of bucket `i`.
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < 2 * HSUB {
            return i;
        }
        let r = i - 2 * HSUB;
        let shift = r / HSUB + 1;
        (((r % HSUB) + HSUB) << shift) + (1u64 << shift) / 2
    }

    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.n += 1;
        self.max = self.max.max(v);
    }

    pub fn percentile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max);
            }
        }
        self.max
    }

    pub fn to_json(&self) -> Value {
        let buckets: Vec<Value> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| json!([i, c]))
            .collect();
        json!({"n": self.n, "max": self.max, "b": buckets})
    }

    /// Adds every sample of `other` (publisher connections in one process).
    pub fn merge(&mut self, other: &Hist) {
        for (slot, &c) in self.counts.iter_mut().zip(&other.counts) {
            *slot += c;
        }
        self.n += other.n;
        self.max = self.max.max(other.max);
    }

    pub fn merge_json(&mut self, v: &Value) {
        for pair in v["b"].as_array().into_iter().flatten() {
            let (Some(i), Some(c)) = (pair[0].as_u64(), pair[1].as_u64()) else {
                continue;
            };
            if let Some(slot) = self.counts.get_mut(i as usize) {
                *slot += c;
                self.n += c;
            }
        }
        self.max = self.max.max(v["max"].as_u64().unwrap_or(0));
    }
}
