//! Cost of the per-reactor timer wheel per connection (issue: "report its
//! cost per connection"). Run: `cargo bench --bench timer`.
//!
//! Measures, for N connections each holding one wheel entry:
//! - nanoseconds to schedule one entry (arming a new deadline),
//! - nanoseconds per fired entry when the wheel advances over them,
//! - the lazy re-arm path (deadline moved later: the entry fires, is seen
//!   to be early and is re-inserted), which is what an idle subscriber
//!   costs once per ping interval,
//! - wheel memory per connection (a 20-byte node per entry, in one array
//!   that grows by doubling, plus 4 bytes per slot).
//!
//! Resetting a deadline to a later time costs nothing here: it is a store
//! into the connection (`Conn::deadline`), not a wheel operation.

use crier::bench::{Entry, TimerWheel};
use std::time::Instant;

fn main() {
    println!(
        "{:>10} {:>14} {:>14} {:>14} {:>14}",
        "conns", "schedule ns", "fire ns", "re-arm ns", "bytes/conn"
    );
    for &n in &[10_000u32, 100_000, 1_000_000] {
        let mut wheel = TimerWheel::new(1024);
        // Spread over 120 s of 250 ms ticks, like pings spread over an interval.
        let t = Instant::now();
        for k in 0..n {
            wheel.schedule(1 + (k.wrapping_mul(2_654_435_761) % 480), k, 0);
        }
        let schedule_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        let bytes = wheel_bytes(&wheel) as f64 / f64::from(n);

        let mut due: Vec<Entry> = Vec::with_capacity(n as usize);
        let t = Instant::now();
        wheel.advance(480, &mut due);
        let fire_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        assert_eq!(due.len(), n as usize);

        // Re-arm every fired entry one interval later (the lazy path).
        let t = Instant::now();
        for e in due.drain(..) {
            wheel.schedule(e.at + 120, e.key, e.generation);
        }
        wheel.advance(600, &mut due);
        let rearm_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        assert_eq!(due.len(), n as usize);
        println!("{n:>10} {schedule_ns:>14.1} {fire_ns:>14.1} {rearm_ns:>14.1} {bytes:>14.1}");
        println!(
            "{{\"bench\":\"timer\",\"conns\":{n},\"schedule_ns\":{schedule_ns:.1},\"fire_ns\":{fire_ns:.1},\"rearm_ns\":{rearm_ns:.1},\"bytes_per_conn\":{bytes:.1}}}"
        );
    }
}

/// Heap bytes held by the wheel's slots (capacity, not length).
fn wheel_bytes(wheel: &TimerWheel) -> usize {
    wheel.capacity_bytes()
}
