//! connect-rate: how fast the server accepts new subscriptions, with a bounded number of
//! handshakes in flight from one client process.

use std::time::Duration;

use super::{cpu_us_per, ms, per_sec, put, Ctx, Metrics, Scenario};
use crate::client::pool::{Pool, SubPlan};
use crate::client::Transport;
use crate::peers::Server;
use crate::Res;

pub(super) fn run(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    let n = ctx.opts.subscribers(Scenario::ConnectRate);
    let server = Server::start(ctx)?;
    let cpu0 = server.cpu_secs()?;
    let plan = SubPlan {
        transport,
        total: n,
        channels: 1,
        publishers: 1,
    };
    let mut pool = Pool::spawn(ctx, server.addr, &plan)?;
    pool.wait_connected(n, Duration::from_secs(120))?;
    let cpu1 = server.cpu_secs()?;
    let r = pool.report()?;
    pool.quit();
    let span = r.last_established.saturating_sub(r.first_start).max(1);
    let mut m = Metrics::new();
    put(
        &mut m,
        "subscriptions_per_s",
        per_sec(r.agg.connected as f64, span),
    );
    put(&mut m, "handshake_p50_ms", ms(r.conn_lat.percentile(0.50)));
    put(&mut m, "handshake_p99_ms", ms(r.conn_lat.percentile(0.99)));
    let cpu = cpu_us_per(cpu0, cpu1, r.agg.connected);
    put(&mut m, "server_cpu_us_per_subscription", cpu);
    put(&mut m, "connected", r.agg.connected as f64);
    put(&mut m, "failed", r.agg.failed as f64);
    if !r.errors.is_empty() {
        eprintln!("  notes: clients {:?}", r.errors);
    }
    Ok(m)
}
