//! channels: subscribers spread over many channels, messages to seeded-random channels
//! from several publisher connections at once; measures publish and delivery throughput
//! when the work is many small fan-outs.

use std::time::Duration;

use super::delivery::{score_delivery, setup_delivery};
use super::{per_sec, put, Ctx, Metrics, Scenario};
use crate::client::pool::SubPlan;
use crate::client::Transport;
use crate::publish::{publish_parallel, Body, PubJob, PublishMode};
use crate::Res;

/// xorshift64*: deterministic channel choice for the channels scenario.
fn next_rand(s: &mut u64) -> u64 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    s.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

pub(super) fn run(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    let o = ctx.opts;
    let (n, msgs, c) = (
        o.subscribers(Scenario::Channels),
        o.message_count(Scenario::Channels),
        o.channel_count(Scenario::Channels),
    );
    let plan = SubPlan {
        transport,
        total: n,
        channels: c,
        publishers: 1,
    };
    let mut d = setup_delivery(ctx, &plan)?;
    // Subscriber i listens on channel i % c.
    let per_chan: Vec<u64> = (0..c).map(|ch| ((n + c - 1 - ch) / c) as u64).collect();
    let mut seed = o.seed.max(1);
    let list: Vec<(u32, Body)> = (0..msgs as u64)
        .map(|k| ((next_rand(&mut seed) % c as u64) as u32, Body::Seq(k)))
        .collect();
    let expected: u64 = list.iter().map(|&(ch, _)| per_chan[ch as usize]).sum();
    let cpu0 = d.server.cpu_secs()?;
    let base = PubJob {
        addr: d.server.addr,
        msgs: list,
        mode: PublishMode::Pipelined,
        rate: None,
        epoch: ctx.epoch,
        size: o.size,
        timeout: Duration::from_secs(o.wait_s),
    };
    let out = publish_parallel(base, o.publisher_conns(Scenario::Channels));
    let pub_span = out.last_reply.saturating_sub(out.first_write).max(1);
    let mut m = Metrics::new();
    put(&mut m, "publishes_per_s", per_sec(out.ok as f64, pub_span));
    m.extend(score_delivery(ctx, &mut d, expected, cpu0, &out)?);
    // Several publishers interleave freely, so arrival order across them is not defined.
    m.retain(|(k, _)| k != "out_of_order");
    d.pool.quit();
    Ok(m)
}
