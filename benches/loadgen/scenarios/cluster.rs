//! cluster: what the Redis backplane costs. The same measurements on three lines (`--lines`):
//!
//! * `single`: one crier node, no Redis (the baseline);
//! * `single+redis`: one node with `--redis` to a fresh redis-server;
//! * `nodes`: `--nodes` nodes (default 2) on one fresh redis-server, the subscribers spread
//!   evenly over them.
//!
//! Per line, on the same subscribers (all on one channel; their counters are reset between
//! phases): the paced latency phases (`--paced`, waiting publishers to node A only, so on
//! the nodes line most deliveries cross Redis), a publish-throughput burst to channels
//! nobody listens on (`--pub-messages`, publishers spread over the nodes), and a delivery
//! burst on the subscribers' channel (`--messages`, publishers spread over the nodes) with
//! the CPU of every crier node and of redis-server. Every node and redis-server share core
//! 0, the load core 1, as the single server of the other scenarios does.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use super::{cpu_us_per, ms, per_sec, put, warm_job, Ctx, Line, Metrics, Scenario};
use crate::cli::Opts;
use crate::client::pool::{Pool, Report, SubPlan};
use crate::client::Transport;
use crate::conn_gauge::backplane_state;
use crate::hist::Hist;
use crate::peers::{Peer, Server};
use crate::publish::{publish, publish_spread, Body, PubJob, PubOutcome, PublishMode};
use crate::Res;

/// Where every node and the redis-server run (`taskset -c`): the server core.
const SERVER_CORES: &str = "0";
/// Most publisher lanes the order check keeps per subscriber (see `SubPlan::publishers`).
const MAX_LANES: usize = 64;

pub(super) fn label(o: &Opts, t: &str) -> String {
    let lines: Vec<&str> = o.lines.iter().map(|l| l.name()).collect();
    let paced: Vec<String> = o.paced.iter().map(|&(p, r)| format!("{p}@{r}")).collect();
    format!(
        "cluster {t} {} subs, lines {} ({} nodes), paced {} for {} s, {} publishes, burst {} msgs",
        o.subscribers(Scenario::Cluster),
        lines.join(","),
        o.nodes,
        paced.join(","),
        o.paced_secs,
        o.pub_messages,
        o.message_count(Scenario::Cluster)
    )
}

pub(super) fn run(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    if ctx.peer != Peer::Crier || ctx.opts.target.is_some() {
        return Err(
            "cluster measures crier nodes it starts itself (--peer crier, no --target)".into(),
        );
    }
    let mut m = Metrics::new();
    for &line in &ctx.opts.lines {
        let lm = run_line(ctx, transport, line).map_err(|e| format!("{}: {e}", line.name()))?;
        let prefix = line.name().replace('+', "_");
        m.extend(lm.into_iter().map(|(k, v)| (format!("{prefix}_{k}"), v)));
        thread::sleep(Duration::from_millis(300));
    }
    Ok(m)
}

/// The servers of one line: its crier nodes (node A first) and its redis-server.
struct Cluster {
    // Declared before `redis` so that the nodes stop first.
    nodes: Vec<Server>,
    redis: Option<Server>,
}

impl Cluster {
    fn start(ctx: &Ctx, line: Line) -> Res<Cluster> {
        let (with_redis, count) = match line {
            Line::Single => (false, 1),
            Line::SingleRedis => (true, 1),
            Line::Nodes => (true, ctx.opts.nodes),
        };
        let redis = match with_redis {
            true => Some(Server::start_redis(SERVER_CORES)?),
            false => None,
        };
        let extra: Vec<String> = match &redis {
            Some(r) => vec!["--redis".into(), format!("redis://{}", r.addr)],
            None => Vec::new(),
        };
        let nodes = (0..count)
            .map(|_| Server::start_node(ctx, &extra, Some(SERVER_CORES)))
            .collect::<Res<Vec<_>>>()?;
        let c = Cluster { nodes, redis };
        if c.redis.is_some() {
            for n in &c.nodes {
                wait_backplane_up(n.addr)?;
            }
        }
        Ok(c)
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    /// CPU seconds of every node and of redis-server so far: (all of them, redis alone).
    fn cpu_secs(&self) -> Res<(Option<f64>, Option<f64>)> {
        let mut total = Some(0.0);
        for n in &self.nodes {
            total = total.zip(n.cpu_secs()?).map(|(a, b)| a + b);
        }
        let redis = match &self.redis {
            Some(r) => r.cpu_secs()?,
            None => None,
        };
        if let Some(r) = redis {
            total = total.map(|t| t + r);
        }
        Ok((total, redis))
    }
}

/// Until a node's backplane is up, its publishes are refused (503).
fn wait_backplane_up(addr: SocketAddr) -> Res<()> {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let state = backplane_state(addr)?;
        if state.as_deref() == Some("up") {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(format!(
                "node {addr}: backplane {state:?} after 15 s, not up"
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The subscribers of a line: one pool per node (pool 0 on node A, the node the paced
/// publishers use), all on channel c0.
struct Subs {
    pools: Vec<Pool>,
    connected: Vec<u64>,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Publisher lanes for the order check: a multiple of every phase's connection count, so
/// that seq k's lane (k % lanes) never mixes two connections. None (order not checked)
/// when that would be more than [`MAX_LANES`].
fn order_lanes(o: &Opts) -> Option<usize> {
    let burst = o.publisher_conns(Scenario::Cluster);
    let lcm = o
        .paced
        .iter()
        .map(|&(p, _)| p)
        .chain([burst])
        .fold(1, |l, p| l / gcd(l, p) * p);
    (lcm <= MAX_LANES).then_some(lcm)
}

impl Subs {
    fn open(ctx: &Ctx, cl: &Cluster, transport: Transport, lanes: usize) -> Res<Subs> {
        let total = ctx.opts.subscribers(Scenario::Cluster);
        let k = cl.nodes.len();
        if total < k {
            return Err(format!("--subs {total}: fewer than the {k} nodes"));
        }
        let mut s = Subs {
            pools: Vec::new(),
            connected: Vec::new(),
        };
        let mut want = Vec::new();
        for (i, node) in cl.nodes.iter().enumerate() {
            let plan = SubPlan {
                transport,
                total: total * (i + 1) / k - total * i / k,
                channels: 1,
                publishers: lanes,
            };
            s.pools.push(Pool::spawn(ctx, node.addr, &plan)?);
            want.push(plan.total);
        }
        for (pool, &n) in s.pools.iter_mut().zip(&want) {
            let a = pool.wait_connected(n, Duration::from_secs(120))?;
            if a.failed > 0 {
                let r = pool.report()?;
                return Err(format!(
                    "{} of {n} subscribers failed: {:?}",
                    a.failed, r.errors
                ));
            }
            s.connected.push(a.connected);
        }
        s.confirm(ctx, cl.nodes[0].addr)?;
        Ok(s)
    }

    /// Warm-up messages through node A until every subscriber on every node got one: then
    /// every node has registered its subscribers and subscribed to the channel on Redis
    /// (which it may do a little after the subscriber's response head, hence the repeats).
    fn confirm(&mut self, ctx: &Ctx, addr: SocketAddr) -> Res<()> {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let out = publish(warm_job(ctx, addr, 1));
            if out.ok < 1 {
                return Err(format!("warm-up publish failed: {:?}", out.errors));
            }
            let mut all = true;
            for (pool, &c) in self.pools.iter_mut().zip(&self.connected) {
                let a = pool.wait_for(Duration::from_secs(1), None, |a| a.warm >= c)?;
                all &= a.warm >= c;
            }
            if all {
                return Ok(());
            }
            if Instant::now() > end {
                let warm: Vec<u64> = self.pools.iter().map(|p| p.agg().warm).collect();
                return Err(format!(
                    "warm-up not everywhere after 30 s: {warm:?} of {:?}",
                    self.connected
                ));
            }
        }
    }

    /// Publishes `job` on `conns` connections over `addrs` to the fresh counters of every
    /// subscriber, waits until each got all of it (or --wait / a 5 s stall), and returns
    /// each pool's report.
    fn phase(
        &mut self,
        ctx: &Ctx,
        job: PubJob,
        addrs: &[SocketAddr],
        conns: usize,
    ) -> Res<(PubOutcome, Vec<Report>)> {
        for p in &mut self.pools {
            p.reset()?;
        }
        let msgs = job.msgs.len() as u64;
        let out = publish_spread(job, addrs, conns);
        let wait = Duration::from_secs(ctx.opts.wait_s);
        for (pool, &c) in self.pools.iter_mut().zip(&self.connected) {
            pool.wait_for(wait, Some(Duration::from_secs(5)), |a| a.recv >= c * msgs)?;
        }
        let reports = self
            .pools
            .iter_mut()
            .map(Pool::report)
            .collect::<Res<Vec<_>>>()?;
        if !out.errors.is_empty() || reports.iter().any(|r| !r.errors.is_empty()) {
            let errs: Vec<&Vec<String>> = reports.iter().map(|r| &r.errors).collect();
            eprintln!("  notes: publish {:?}; clients {errs:?}", out.errors);
        }
        Ok((out, reports))
    }
}

/// Losses and other checks summed over every phase of a line.
#[derive(Default)]
struct Checks {
    missing: u64,
    dup: u64,
    ooo: u64,
    unparsed: u64,
    publish_failed: u64,
}

impl Checks {
    fn add(&mut self, out: &PubOutcome, reports: &[Report], connected: &[u64], msgs: u64) {
        for (r, &c) in reports.iter().zip(connected) {
            self.missing += (c * msgs).saturating_sub(r.distinct);
            self.dup += r.dup;
            self.ooo += r.ooo;
            self.unparsed += r.unparsed;
        }
        self.publish_failed += out.failed as u64;
    }
}

fn merged_lat<'a>(reports: impl Iterator<Item = &'a Report>) -> Hist {
    let mut h = Hist::default();
    reports.for_each(|r| h.merge(&r.lat));
    h
}

fn put_lat(m: &mut Metrics, name: &str, h: &Hist) {
    put(m, &format!("{name}_p50_ms"), ms(h.percentile(0.50)));
    put(m, &format!("{name}_p99_ms"), ms(h.percentile(0.99)));
}

fn job(ctx: &Ctx, addr: SocketAddr, msgs: Vec<(u32, Body)>, rate: Option<f64>) -> PubJob {
    PubJob {
        addr,
        msgs,
        mode: PublishMode::Wait,
        rate,
        epoch: ctx.epoch,
        size: ctx.opts.size,
        timeout: Duration::from_secs(ctx.opts.wait_s),
    }
}

fn run_line(ctx: &Ctx, transport: Transport, line: Line) -> Res<Metrics> {
    let o = ctx.opts;
    eprintln!("  line {}", line.name());
    let cl = Cluster::start(ctx, line)?;
    let lanes = order_lanes(o);
    let mut subs = Subs::open(ctx, &cl, transport, lanes.unwrap_or(1))?;
    let addrs = cl.addrs();
    let node_a = addrs[0];
    let mut m = Metrics::new();
    let mut checks = Checks::default();

    // 1. Paced latency: waiting publishers to node A only.
    for &(p, rate) in &o.paced {
        let n = ((rate * o.paced_secs).round() as u64).max(1);
        let msgs = (0..n).map(|k| (0, Body::Seq(k))).collect();
        let (out, reports) = subs.phase(ctx, job(ctx, node_a, msgs, Some(rate)), &[node_a], p)?;
        checks.add(&out, &reports, &subs.connected, n);
        let name = format!("paced_{p}at{rate}").replace('.', "_");
        put_lat(&mut m, &name, &merged_lat(reports.iter()));
        if reports.len() > 1 {
            put_lat(&mut m, &format!("{name}_local"), &reports[0].lat);
            put_lat(
                &mut m,
                &format!("{name}_remote"),
                &merged_lat(reports[1..].iter()),
            );
        }
        put(
            &mut m,
            &format!("{name}_reply_p50_ms"),
            ms(out.reply_lat.percentile(0.50)),
        );
    }

    // 2. Publish throughput: distinct channels c1..cK that nobody subscribes to.
    let k = o.pub_messages;
    let msgs = (0..k as u64)
        .map(|i| (i as u32 + 1, Body::Seq(i)))
        .collect();
    let conns = o.publisher_conns(Scenario::Cluster);
    let out = publish_spread(job(ctx, node_a, msgs, None), &addrs, conns);
    let span = out.last_reply.saturating_sub(out.first_write).max(1);
    put(&mut m, "pub_per_s", per_sec(out.ok as f64, span));
    put(
        &mut m,
        "pub_reply_p50_ms",
        ms(out.reply_lat.percentile(0.50)),
    );
    put(&mut m, "pub_non_2xx", (k - out.ok) as f64);
    if !out.errors.is_empty() {
        eprintln!("  notes: publish {:?}", out.errors);
    }

    // 3. Delivery burst on the subscribers' channel, publishers spread over the nodes.
    let n = o.message_count(Scenario::Cluster) as u64;
    let msgs = (0..n).map(|k| (0, Body::Seq(k))).collect();
    let (cpu0, redis0) = cl.cpu_secs()?;
    let (out, reports) = subs.phase(ctx, job(ctx, node_a, msgs, None), &addrs, conns)?;
    let (cpu1, redis1) = cl.cpu_secs()?;
    checks.add(&out, &reports, &subs.connected, n);
    let recv: u64 = reports.iter().map(|r| r.agg.recv).sum();
    let last = reports.iter().map(|r| r.agg.last_recv).max().unwrap_or(0);
    let span = last.saturating_sub(out.first_write).max(1);
    put(&mut m, "burst_deliveries_per_s", per_sec(recv as f64, span));
    put(
        &mut m,
        "burst_server_cpu_us_per_delivery",
        cpu_us_per(cpu0, cpu1, recv),
    );
    if cl.redis.is_some() {
        put(
            &mut m,
            "burst_redis_cpu_us_per_delivery",
            cpu_us_per(redis0, redis1, recv),
        );
    }
    put(&mut m, "burst_last_delivery_ms", ms(span));

    // Checks over every phase.
    let closed: u64 = reports.iter().map(|r| r.agg.closed).sum();
    put(
        &mut m,
        "subscribers",
        subs.connected.iter().sum::<u64>() as f64,
    );
    put(&mut m, "missing", checks.missing as f64);
    put(&mut m, "duplicate", checks.dup as f64);
    put(
        &mut m,
        "out_of_order",
        lanes.map_or(f64::NAN, |_| checks.ooo as f64),
    );
    put(&mut m, "publish_failed", checks.publish_failed as f64);
    put(&mut m, "subscribers_closed", closed as f64);
    put(&mut m, "unparsed_messages", checks.unparsed as f64);
    Ok(m)
}
