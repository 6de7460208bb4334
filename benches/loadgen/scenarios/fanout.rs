//! fanout: every subscriber on one channel, messages published on one connection, paced
//! or in a burst; measures the cost and latency of delivering each message to everyone.
//! With `--hold-reads` the subscribers stop reading during the burst (see `held.rs`).

use std::time::Duration;

use super::delivery::{score_delivery, setup_delivery};
use super::held::{held_figures, CpuSampler};
use super::{Ctx, Metrics, Scenario};
use crate::client::pool::SubPlan;
use crate::client::Transport;
use crate::publish::{publish, Body, PubJob};
use crate::Res;

pub(super) fn run(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    let o = ctx.opts;
    let (n, msgs) = (o.subscribers(), o.message_count(Scenario::Fanout));
    let plan = SubPlan {
        transport,
        total: n,
        channels: 1,
    };
    let mut d = setup_delivery(ctx, &plan)?;
    let sampler = if o.hold_reads {
        d.pool.hold()?;
        Some(CpuSampler::start(d.server.pid()?)?)
    } else {
        None
    };
    let cpu0 = d.server.cpu_secs()?;
    let out = publish(PubJob {
        addr: d.server.addr,
        msgs: (0..msgs as u64).map(|k| (0, Body::Seq(k))).collect(),
        rate: (!o.burst).then_some(o.rate),
        epoch: ctx.epoch,
        size: o.size,
        timeout: Duration::from_secs(o.wait_s),
    });
    let expected = d.connected * msgs as u64;
    let held = match sampler {
        Some(s) => {
            let figures = held_figures(s, d.server.addr.port(), expected, &out);
            d.pool.release();
            Some(figures?)
        }
        None => None,
    };
    let mut m = score_delivery(ctx, &mut d, expected, cpu0, &out)?;
    if let Some(held) = held {
        // Latency and client-side throughput include the hold: only the checks and the
        // server figures mean something.
        m.retain(|(k, _)| !k.starts_with("latency_") && k != "deliveries_per_s");
        m.extend(held);
    }
    d.pool.quit();
    Ok(m)
}
