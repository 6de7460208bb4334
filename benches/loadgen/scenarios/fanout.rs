//! fanout: every subscriber on one channel, messages published on `--publishers`
//! keep-alive connections that wait for each reply (or pipeline, `--publish pipelined`),
//! paced or back to back; measures the cost and latency of delivering each message to
//! everyone, and how fast the publishers got their messages accepted.
//! With `--hold-reads` the subscribers stop reading during the burst (see `held.rs`).

use std::time::Duration;

use super::delivery::{score_delivery, setup_delivery};
use super::held::{held_figures, CpuSampler};
use super::{ms, per_sec, put, Ctx, Metrics, Scenario};
use crate::client::pool::SubPlan;
use crate::client::Transport;
use crate::publish::{publish_parallel, Body, PubJob, PubOutcome};
use crate::Res;

pub(super) fn run(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    let o = ctx.opts;
    let (n, msgs) = (
        o.subscribers(Scenario::Fanout),
        o.message_count(Scenario::Fanout),
    );
    let plan = SubPlan {
        transport,
        total: n,
        channels: 1,
        // Several connections interleave freely; each one's messages keep their order.
        publishers: o.publisher_conns(Scenario::Fanout),
    };
    let mut d = setup_delivery(ctx, &plan)?;
    let sampler = if o.hold_reads {
        d.pool.hold()?;
        Some(CpuSampler::start(d.server.pid()?)?)
    } else {
        None
    };
    let cpu0 = d.server.cpu_secs()?;
    let job = PubJob {
        addr: d.server.addr,
        msgs: (0..msgs as u64).map(|k| (0, Body::Seq(k))).collect(),
        mode: o.publish,
        rate: (!o.burst).then_some(o.rate),
        epoch: ctx.epoch,
        size: o.size,
        timeout: Duration::from_secs(o.wait_s),
    };
    let out = publish_parallel(job, o.publisher_conns(Scenario::Fanout));
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
    m.extend(publisher_figures(&out));
    if let Some(held) = held {
        // Latency and client-side throughput include the hold: only the checks and the
        // server figures mean something.
        m.retain(|(k, _)| {
            !k.starts_with("latency_") && k != "deliveries_per_s" && k != "last_delivery_ms"
        });
        m.extend(held);
    }
    d.pool.quit();
    Ok(m)
}

/// What the publishers saw: the rate at which their messages were accepted, and how long
/// each request took to be answered.
fn publisher_figures(out: &PubOutcome) -> Metrics {
    let span = out.last_reply.saturating_sub(out.first_write).max(1);
    let mut m = Metrics::new();
    put(
        &mut m,
        "achieved_publish_rate",
        per_sec(out.ok as f64, span),
    );
    put(&mut m, "reply_p50_ms", ms(out.reply_lat.percentile(0.50)));
    put(&mut m, "reply_p99_ms", ms(out.reply_lat.percentile(0.99)));
    m
}
