//! `fanout --hold-reads`: subscribers stop reading while the messages are published, so
//! the load generator costs no CPU during the measurement and the figure is the server's
//! own write rate. The end of the server's work is the last millisecond in which its CPU
//! time (all threads, `schedstat`) advanced; the kernel then confirms that nothing is left
//! unsent on the server's sockets, so the server was not merely stalled on full buffers.
//! The subscribers are released afterwards and every message is still checked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{put, Metrics};
use crate::harness::{mono_ns, proc_cpu_ns, proc_write_syscalls, tcp_unsent_bytes};
use crate::publish::PubOutcome;
use crate::Res;

/// A millisecond counts as busy when the server used at least this share of it.
const BUSY_SHARE: f64 = 0.25;
/// The server is done once it has been quiet this long after the last publish reply.
const QUIET: Duration = Duration::from_millis(50);

/// Samples a process's CPU time every millisecond on a thread.
pub(super) struct CpuSampler {
    pid: i32,
    writes0: u64,
    published: Arc<AtomicBool>,
    thread: JoinHandle<Res<Vec<(u64, u64)>>>,
}

impl CpuSampler {
    pub(super) fn start(pid: i32) -> Res<CpuSampler> {
        let writes0 = proc_write_syscalls(pid)?;
        let published = Arc::new(AtomicBool::new(false));
        let flag = published.clone();
        let thread = thread::spawn(move || sample_until_quiet(pid, &flag));
        Ok(CpuSampler {
            pid,
            writes0,
            published,
            thread,
        })
    }

    /// Call when the publisher is done; returns once the server has gone quiet.
    fn finish(self) -> Res<Vec<(u64, u64)>> {
        self.published.store(true, Ordering::Release);
        self.thread
            .join()
            .map_err(|_| "cpu sampler panicked".to_string())?
    }
}

/// (time ns, cpu ns) pairs until the publisher is done and the server has been quiet
/// for [`QUIET`], or 120 s.
fn sample_until_quiet(pid: i32, published: &AtomicBool) -> Res<Vec<(u64, u64)>> {
    let mut samples = vec![(mono_ns(), proc_cpu_ns(pid)?)];
    let mut last_busy = samples[0].0;
    let start = samples[0].0;
    loop {
        thread::sleep(Duration::from_millis(1));
        let s = (mono_ns(), proc_cpu_ns(pid)?);
        let prev = samples[samples.len() - 1];
        if busy(prev, s) {
            last_busy = s.0;
        }
        samples.push(s);
        let quiet_for = s.0.saturating_sub(last_busy);
        if published.load(Ordering::Acquire) && quiet_for > QUIET.as_nanos() as u64 {
            return Ok(samples);
        }
        if s.0 - start > 120_000_000_000 {
            return Err("server never went quiet within 120 s".into());
        }
    }
}

fn busy(a: (u64, u64), b: (u64, u64)) -> bool {
    let wall = b.0.saturating_sub(a.0).max(1) as f64;
    b.1.saturating_sub(a.1) as f64 >= BUSY_SHARE * wall
}

/// The held-reads figures: server deliveries per second from the first publish write to
/// the end of the server's last busy millisecond, exact CPU per delivery, deliveries per
/// write syscall, and the bytes left unsent (an error unless 0).
pub(super) fn held_figures(
    sampler: CpuSampler,
    port: u16,
    expected: u64,
    out: &PubOutcome,
) -> Res<Metrics> {
    let (pid, writes0) = (sampler.pid, sampler.writes0);
    let samples = sampler.finish()?;
    let writes = proc_write_syscalls(pid)?.saturating_sub(writes0);
    let unsent = tcp_unsent_bytes(port)?;
    if unsent > 0 {
        return Err(format!(
            "{unsent} bytes still unsent on the server's sockets: the receive buffers are \
             too small for this burst (use fewer --messages or a smaller --size)"
        ));
    }
    let end = samples
        .windows(2)
        .rev()
        .find(|w| busy(w[0], w[1]))
        .map(|w| w[1])
        .ok_or("the server did no measurable work")?;
    let cpu0 = samples[0].1;
    let span = end.0.saturating_sub(out.first_write).max(1);
    let mut m = Metrics::new();
    put(
        &mut m,
        "held_server_deliveries_per_s",
        expected as f64 / (span as f64 / 1e9),
    );
    put(&mut m, "held_server_busy_ms", span as f64 / 1e6);
    put(
        &mut m,
        "held_server_cpu_us_per_delivery",
        end.1.saturating_sub(cpu0) as f64 / 1e3 / expected.max(1) as f64,
    );
    put(
        &mut m,
        "held_server_deliveries_per_write",
        expected as f64 / writes.max(1) as f64,
    );
    put(&mut m, "held_unsent_bytes", unsent as f64);
    Ok(m)
}
