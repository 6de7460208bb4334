//! The measured scenarios. Each scenario file runs one case once against a fresh server
//! and returns its figures; this file holds what they share: the scenario and case names,
//! the run context, and confirming that the server has registered every subscriber before
//! anything is measured (the same way for every peer, with no reliance on a /status format).

mod channels;
mod churn;
mod cluster;
mod connect_rate;
mod delivery;
mod fanout;
mod fit;
mod held;
mod idle_memory;

use std::net::SocketAddr;
use std::time::Duration;

use crate::cli::{Opts, USAGE};
use crate::client::pool::{Agg, Pool, SubPlan};
use crate::client::Transport;
use crate::peers::Peer;
use crate::publish::{publish, Body, PubJob, PublishMode};
use crate::Res;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scenario {
    IdleMemory,
    Fanout,
    Channels,
    ConnectRate,
    Churn,
    Cluster,
}

impl Scenario {
    pub fn parse(s: &str) -> Res<Vec<Scenario>> {
        Ok(match s {
            "idle-memory" => vec![Scenario::IdleMemory],
            "fanout" => vec![Scenario::Fanout],
            "channels" => vec![Scenario::Channels],
            "connect-rate" => vec![Scenario::ConnectRate],
            "churn" => vec![Scenario::Churn],
            "cluster" => vec![Scenario::Cluster],
            // Not cluster: it needs a redis-server, which the other scenarios do not.
            "all" => vec![
                Scenario::IdleMemory,
                Scenario::Fanout,
                Scenario::Channels,
                Scenario::ConnectRate,
                Scenario::Churn,
            ],
            _ => return Err(format!("unknown scenario {s:?}\n{USAGE}")),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::IdleMemory => "idle-memory",
            Scenario::Fanout => "fanout",
            Scenario::Channels => "channels",
            Scenario::ConnectRate => "connect-rate",
            Scenario::Churn => "churn",
            Scenario::Cluster => "cluster",
        }
    }

    pub fn default_transports(self) -> Vec<Transport> {
        match self {
            Scenario::IdleMemory | Scenario::ConnectRate => vec![Transport::Sse, Transport::Ws],
            Scenario::Fanout | Scenario::Channels | Scenario::Churn | Scenario::Cluster => {
                vec![Transport::Sse]
            }
        }
    }
}

/// A line of the cluster scenario: how many crier nodes, and whether through Redis.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Line {
    /// One node, no Redis: the baseline.
    Single,
    /// One node with `--redis` to a fresh redis-server.
    SingleRedis,
    /// `--nodes` nodes on one redis-server.
    Nodes,
}

impl Line {
    pub fn parse(s: &str) -> Res<Line> {
        match s {
            "single" => Ok(Line::Single),
            "single+redis" => Ok(Line::SingleRedis),
            "nodes" => Ok(Line::Nodes),
            _ => Err(format!(
                "unknown --lines {s:?} (single | single+redis | nodes)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Line::Single => "single",
            Line::SingleRedis => "single+redis",
            Line::Nodes => "nodes",
        }
    }
}

/// One measured case: a scenario with one transport.
#[derive(Clone, Copy)]
pub struct Case {
    pub scenario: Scenario,
    pub transport: Transport,
}

impl Case {
    pub fn label(&self, o: &Opts) -> String {
        let t = self.transport.name();
        let (sc, subs) = (self.scenario, o.subscribers(self.scenario));
        match sc {
            Scenario::IdleMemory => format!("idle-memory {t} at {:?} subscribers", o.sizes),
            Scenario::Fanout => format!(
                "fanout {t} {subs} subs, {} msgs of {} B, {}",
                o.message_count(sc),
                o.size,
                fanout_pattern(o)
            ),
            Scenario::Channels => format!(
                "channels {t} {subs} subs / {} channels, {} msgs from {} publishers",
                o.channel_count(sc),
                o.message_count(sc),
                o.publisher_conns(sc)
            ),
            Scenario::ConnectRate => format!(
                "connect-rate {t} {subs} subscriptions, {} in flight",
                o.concurrency
            ),
            Scenario::Churn => format!(
                "churn {t} {subs} subs / {} channels x {} rounds, half FIN half RST",
                o.channel_count(sc),
                o.rounds
            ),
            Scenario::Cluster => cluster::label(o, t),
        }
    }
}

/// How fanout publishes, in words, e.g. "4 publishers waiting, paced 40/s offered".
fn fanout_pattern(o: &Opts) -> String {
    let p = o.publisher_conns(Scenario::Fanout);
    let plural = if p == 1 { "" } else { "s" };
    let pace = if o.burst {
        "back to back".to_string()
    } else if p > 1 {
        format!("paced {}/s offered", o.rate)
    } else {
        format!("paced {}/s", o.rate)
    };
    let held = if o.hold_reads { ", reads held" } else { "" };
    format!("{p} publisher{plural} {}, {pace}{held}", o.publish.name())
}

/// What one run of a case gets: the options, the harness's clock epoch (payload times are
/// relative to it) and the server under test.
pub struct Ctx<'a> {
    pub opts: &'a Opts,
    pub epoch: u64,
    pub peer: Peer,
}

/// A run's figures, in the order they are printed.
pub type Metrics = Vec<(String, f64)>;

fn put(m: &mut Metrics, name: &str, v: f64) {
    m.push((name.to_string(), v));
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Events per second over a span of `span_ns` nanoseconds.
fn per_sec(count: f64, span_ns: u64) -> f64 {
    count / (span_ns as f64 / 1e9)
}

/// Server CPU microseconds per unit of work between two readings (NaN without a pid).
fn cpu_us_per(cpu0: Option<f64>, cpu1: Option<f64>, units: u64) -> f64 {
    match (cpu0, cpu1) {
        (Some(a), Some(b)) => (b - a) * 1e6 / (units.max(1) as f64),
        _ => f64::NAN,
    }
}

pub fn run_case(ctx: &Ctx, case: Case) -> Res<Metrics> {
    match case.scenario {
        Scenario::IdleMemory => idle_memory::run(ctx, case.transport),
        Scenario::Fanout => fanout::run(ctx, case.transport),
        Scenario::Channels => channels::run(ctx, case.transport),
        Scenario::ConnectRate => connect_rate::run(ctx, case.transport),
        Scenario::Churn => churn::run(ctx, case.transport),
        Scenario::Cluster => cluster::run(ctx, case.transport),
    }
}

/// Opens `plan`'s subscribers against `addr` and confirms that the server registered every
/// one of them; a subscriber that failed to connect fails the run.
fn subscribe_all(ctx: &Ctx, addr: SocketAddr, plan: &SubPlan) -> Res<(Pool, Agg)> {
    let mut pool = Pool::spawn(ctx, addr, plan)?;
    let a = pool.wait_connected(plan.total, Duration::from_secs(120))?;
    if a.failed > 0 {
        let r = pool.report()?;
        return Err(format!(
            "{} of {} subscribers failed: {:?}",
            a.failed, plan.total, r.errors
        ));
    }
    confirm_registered(ctx, addr, &mut pool, plan.channels)?;
    Ok((pool, a))
}

fn warm_job(ctx: &Ctx, addr: SocketAddr, channels: usize) -> PubJob {
    PubJob {
        addr,
        msgs: (0..channels as u32).map(|c| (c, Body::Warm)).collect(),
        mode: PublishMode::Pipelined,
        rate: None,
        epoch: ctx.epoch,
        size: 0,
        timeout: Duration::from_secs(20),
    }
}

/// Publishes a warm-up message to every channel and waits until every connected
/// subscriber got it: from then on, the server has registered all of them.
fn confirm_registered(ctx: &Ctx, addr: SocketAddr, pool: &mut Pool, channels: usize) -> Res<Agg> {
    let target = pool.agg().connected;
    let out = publish(warm_job(ctx, addr, channels));
    if out.ok < channels {
        return Err(format!("warm-up publish failed: {:?}", out.errors));
    }
    let a = pool.wait_for(Duration::from_secs(30), None, |a| a.warm >= target)?;
    if a.warm < target {
        return Err(format!(
            "only {} of {target} subscribers got the warm-up message",
            a.warm
        ));
    }
    Ok(a)
}
