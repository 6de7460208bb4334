//! What the delivery scenarios (fanout, channels) share: a server with confirmed
//! subscribers before publishing, and the scoring of a run once the messages are out
//! (throughput, server CPU, latency, and missing / duplicate / out-of-order counts).

use std::time::Duration;

use super::{cpu_us_per, ms, per_sec, put, subscribe_all, Ctx, Metrics};
use crate::client::pool::{Pool, SubPlan};
use crate::client::Transport;
use crate::peers::Server;
use crate::publish::PubOutcome;
use crate::Res;

/// Everything a delivery scenario (fanout, channels) needs to score its run.
pub(super) struct Delivery {
    transport: Transport,
    pub(super) pool: Pool,
    pub(super) server: Server,
    pub(super) connected: u64,
}

/// Starts a server, connects and confirms `plan` subscribers.
pub(super) fn setup_delivery(ctx: &Ctx, plan: &SubPlan) -> Res<Delivery> {
    let server = Server::start(ctx)?;
    let (pool, a) = subscribe_all(ctx, server.addr, plan)?;
    Ok(Delivery {
        transport: plan.transport,
        pool,
        server,
        connected: a.connected,
    })
}

/// Waits for `expected` deliveries (or a 5 s stall / --wait), then scores the run.
pub(super) fn score_delivery(
    ctx: &Ctx,
    d: &mut Delivery,
    expected: u64,
    cpu0: Option<f64>,
    out: &PubOutcome,
) -> Res<Metrics> {
    let wait = Duration::from_secs(ctx.opts.wait_s);
    d.pool
        .wait_for(wait, Some(Duration::from_secs(5)), |a| a.recv >= expected)?;
    let cpu1 = d.server.cpu_secs()?;
    let r = d.pool.report()?;
    let span = r.agg.last_recv.saturating_sub(out.first_write).max(1);
    let mut m = Metrics::new();
    put(&mut m, "deliveries_per_s", per_sec(r.agg.recv as f64, span));
    let cpu = cpu_us_per(cpu0, cpu1, r.agg.recv);
    put(&mut m, "server_cpu_us_per_delivery", cpu);
    put(&mut m, "latency_p50_ms", ms(r.lat.percentile(0.50)));
    put(&mut m, "latency_p99_ms", ms(r.lat.percentile(0.99)));
    put(&mut m, "latency_max_ms", ms(r.lat.max));
    put(&mut m, "publish_ok", out.ok as f64);
    put(
        &mut m,
        "publish_replies_ms",
        ms(out.last_reply.saturating_sub(out.first_write)),
    );
    // The whole job as a user sees it: first publish sent → last subscriber served.
    put(&mut m, "last_delivery_ms", ms(span));
    put(&mut m, "delivered", r.agg.recv as f64);
    put(
        &mut m,
        "missing",
        expected.saturating_sub(r.distinct) as f64,
    );
    put(&mut m, "duplicate", r.dup as f64);
    put(&mut m, "subscribers_closed", r.agg.closed as f64);
    put(&mut m, "unparsed_messages", r.unparsed as f64);
    if d.transport == Transport::WsDeflate {
        // Proves permessage-deflate was negotiated and used, not silently declined.
        put(&mut m, "compressed_deliveries", r.inflated as f64);
    }
    if !out.errors.is_empty() || !r.errors.is_empty() {
        eprintln!("  notes: publish {:?}; clients {:?}", out.errors, r.errors);
    }
    put(&mut m, "out_of_order", r.ooo as f64);
    Ok(m)
}
