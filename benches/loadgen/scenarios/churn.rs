//! churn: a soak of connect/disconnect cycles against one server, to find what a
//! long-lived server leaks when subscribers come and go (per-connection state, channel
//! entries, buffers the allocator never gets back).
//!
//! Each round opens `--subs` subscribers over `--channels` channels, confirms every one
//! registered (response head, then a warm-up message on every channel that each of them
//! must receive), closes them all from the client side (half FIN, half RST), waits until
//! the server reports them gone, and reads its RSS. The figure that matters is the RSS
//! slope over the second half of the rounds, when start-up growth (allocator arenas,
//! tables sized to the peak) is over: a slope a few standard errors above zero is a leak.

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use super::fit::slope_with_stderr;
use super::{cpu_us_per, ms, per_sec, put, subscribe_all, Ctx, Metrics, Scenario};
use crate::client::pool::SubPlan;
use crate::client::Transport;
use crate::conn_gauge::ConnGauge;
use crate::harness::proc_rss_bytes;
use crate::peers::Server;
use crate::Res;

/// How long a round may wait for the server to report the closed connections gone.
const DRAIN_BOUND: Duration = Duration::from_secs(10);
/// Without a status gauge (a custom server that does not answer crier's format), each
/// round waits this long after closing instead.
const FIXED_DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Waits after a round until the server no longer counts the closed connections.
enum Drain {
    Gauge { gauge: ConnGauge, idle: u64 },
    Fixed,
}

impl Drain {
    /// Reads the idle value on the fresh server, before the first round.
    fn new(ctx: &Ctx, addr: SocketAddr) -> Res<Drain> {
        Ok(match ConnGauge::find(ctx.peer, addr)? {
            Some(gauge) => Drain::Gauge {
                gauge,
                idle: gauge.read(addr)?,
            },
            None => {
                eprintln!(
                    "  no connection gauge on this server: waiting {} s after each round",
                    FIXED_DRAIN_WAIT.as_secs()
                );
                Drain::Fixed
            }
        })
    }

    /// How long the server took to drop the round's connections (None: not within
    /// [`DRAIN_BOUND`], or no gauge).
    fn wait(&self, addr: SocketAddr) -> Res<Option<Duration>> {
        match *self {
            Drain::Gauge { gauge, idle } => gauge.wait_for(addr, idle, DRAIN_BOUND),
            Drain::Fixed => {
                thread::sleep(FIXED_DRAIN_WAIT);
                Ok(None)
            }
        }
    }
}

/// Totals over all rounds.
#[derive(Default)]
struct Tally {
    connected: u64,
    open_ns: u64,
    server_closed: u64,
    fin: u64,
    rst: u64,
    not_drained: u64,
    drain_max: Duration,
    /// RSS after each round, bytes.
    rss: Vec<u64>,
}

pub(super) fn run(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    let o = ctx.opts;
    let plan = SubPlan {
        transport,
        total: o.subscribers(Scenario::Churn),
        channels: o.channel_count(Scenario::Churn),
        publishers: 1,
    };
    let server = Server::start(ctx)?;
    let (addr, pid) = (server.addr, server.pid()?);
    let drain = Drain::new(ctx, addr)?;
    let rss_idle = proc_rss_bytes(pid)?;
    let cpu0 = server.cpu_secs()?;
    let mut t = Tally::default();
    let every = (o.rounds / 10).max(1);
    for round in 1..=o.rounds {
        one_round(ctx, addr, &plan, &drain, &mut t).map_err(|e| format!("round {round}: {e}"))?;
        t.rss.push(proc_rss_bytes(pid)?);
        if round % every == 0 || round == o.rounds {
            let drained = match drain {
                Drain::Gauge { .. } => format!("longest drain {:?}", t.drain_max),
                Drain::Fixed => "fixed wait".into(),
            };
            let rss = t.rss[round - 1] / 1024;
            eprintln!("  round {round}/{}: rss {rss} KiB, {drained}", o.rounds);
        }
    }
    let cpu1 = server.cpu_secs()?;
    let channels_end = match drain {
        Drain::Gauge { gauge, .. } => gauge.channels(addr)?,
        Drain::Fixed => None,
    };
    let cycles = t.connected;
    let mut m = Metrics::new();
    put(&mut m, "rss_idle_KiB", rss_idle as f64 / 1024.0);
    put(&mut m, "rss_round_1_KiB", t.rss[0] as f64 / 1024.0);
    let last = t.rss[t.rss.len() - 1];
    put(&mut m, "rss_last_round_KiB", last as f64 / 1024.0);
    let (slope, stderr) = second_half_slope(&t.rss, plan.total);
    put(&mut m, "rss_slope_B_per_1k_cycles", slope * 1000.0);
    put(&mut m, "rss_slope_stderr_B_per_1k_cycles", stderr * 1000.0);
    let (growth, page_step) = second_half_growth(&t.rss, plan.total);
    put(&mut m, "rss_second_half_growth_KiB", growth as f64 / 1024.0);
    put(
        &mut m,
        "rss_one_page_slope_B_per_1k_cycles",
        page_step * 1000.0,
    );
    put(
        &mut m,
        "connect_rate_per_s",
        per_sec(t.connected as f64, t.open_ns.max(1)),
    );
    put(
        &mut m,
        "server_cpu_us_per_cycle",
        cpu_us_per(cpu0, cpu1, cycles),
    );
    put(&mut m, "cycles", cycles as f64);
    put(&mut m, "closed_fin", t.fin as f64);
    put(&mut m, "closed_rst", t.rst as f64);
    let drain_max = match drain {
        Drain::Gauge { .. } => ms(t.drain_max.as_nanos() as u64),
        Drain::Fixed => f64::NAN,
    };
    put(&mut m, "drain_max_ms", drain_max);
    put(&mut m, "rounds_not_drained", t.not_drained as f64);
    put(&mut m, "subscribers_closed", t.server_closed as f64);
    // Channels left after the last round: whether idle channels were collected.
    put(
        &mut m,
        "server_channels_end",
        channels_end.map_or(f64::NAN, |c| c as f64),
    );
    Ok(m)
}

/// Open, confirm, close, wait for the server to let go.
fn one_round(ctx: &Ctx, addr: SocketAddr, plan: &SubPlan, drain: &Drain, t: &mut Tally) -> Res<()> {
    // A fresh pool per round: new worker processes, each from a new 127.x source
    // address, so the client side never runs short of ports however many rounds.
    let (mut pool, _) = subscribe_all(ctx, addr, plan)?;
    let r = pool.report()?;
    t.connected += r.agg.connected;
    t.open_ns += r.last_established.saturating_sub(r.first_start);
    t.server_closed += r.agg.closed;
    let (fin, rst) = pool.close_all()?;
    t.fin += fin;
    t.rst += rst;
    pool.quit();
    match drain.wait(addr)? {
        Some(d) => t.drain_max = t.drain_max.max(d),
        None if matches!(drain, Drain::Gauge { .. }) => t.not_drained += 1,
        None => {}
    }
    Ok(())
}

/// RSS slope in bytes per connect/disconnect cycle over the second half of the rounds
/// (x = cycles done after the round, y = RSS), with its standard error.
fn second_half_slope(rss: &[u64], per_round: usize) -> (f64, f64) {
    let from = rss.len() / 2;
    let points: Vec<(f64, f64)> = rss
        .iter()
        .enumerate()
        .skip(from)
        .map(|(i, &b)| (((i + 1) * per_round) as f64, b as f64))
        .collect();
    slope_with_stderr(&points)
}

/// RSS growth over the second half of the rounds (first fitted point to the last), and
/// the slope a single 4 KiB page over that span would show: RSS moves in whole pages,
/// so a slope at or under that is the measurement's resolution, not a leak.
fn second_half_growth(rss: &[u64], per_round: usize) -> (i64, f64) {
    let from = rss.len() / 2;
    let growth = rss[rss.len() - 1] as i64 - rss[from] as i64;
    let cycles = ((rss.len() - 1 - from) * per_round).max(1);
    (growth, 4096.0 / cycles as f64)
}
