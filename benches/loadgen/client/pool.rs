//! The harness side of the client workers: spawn them, read their JSON lines, wait on
//! their combined progress, and merge their final reports.

use std::env;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{note_error, Transport, WorkerSpec};
use crate::harness::{die_with_parent, earliest, exited_by};
use crate::hist::Hist;
use crate::scenarios::Ctx;
use crate::Res;

/// Sum of the latest progress lines of all workers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Agg {
    pub opened: u64,
    pub connected: u64,
    pub failed: u64,
    pub closed: u64,
    pub recv: u64,
    pub warm: u64,
    pub last_recv: u64,
}

/// Merged final reports of all workers.
#[derive(Default)]
pub struct Report {
    pub agg: Agg,
    pub distinct: u64,
    pub dup: u64,
    pub ooo: u64,
    pub unparsed: u64,
    pub inflated: u64,
    pub first_start: u64,
    pub last_established: u64,
    pub lat: Hist,
    pub conn_lat: Hist,
    pub errors: Vec<String>,
}

pub struct Pool {
    kids: Vec<Child>,
    stdins: Vec<ChildStdin>,
    rx: Receiver<(usize, Value)>,
    latest: Vec<Value>,
    reports: Vec<Option<Value>>,
    /// Which workers have confirmed a "hold" (stopped reading).
    held: Vec<bool>,
    /// Which workers have confirmed a "reset" (message counters zeroed).
    reset: Vec<bool>,
    /// Per worker, (FIN, RST) closes once it has confirmed a "close".
    closes: Vec<Option<(u64, u64)>>,
}

static SRC_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh loopback source address per worker (127.x.y.z, x >= 2).
fn next_src_ip() -> Ipv4Addr {
    let k = SRC_COUNTER.fetch_add(1, Ordering::Relaxed) + std::process::id() as usize * 7;
    Ipv4Addr::new(
        127,
        2 + ((k / 62_500) % 200) as u8,
        ((k / 250) % 250) as u8,
        (k % 250 + 1) as u8,
    )
}

/// Which subscribers to open: `total` of them, subscriber i on channel `c{i % channels}`.
pub struct SubPlan {
    pub transport: Transport,
    pub total: usize,
    pub channels: usize,
    /// Publisher connections whose messages each keep their order (see `WorkerSpec`).
    pub publishers: usize,
}

impl Pool {
    pub fn spawn(ctx: &Ctx, addr: SocketAddr, plan: &SubPlan) -> Res<Pool> {
        let exe = env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let n = plan.total.div_ceil(ctx.opts.per_client).max(1);
        let (tx, rx) = mpsc::channel();
        let mut pool = Pool {
            kids: Vec::new(),
            stdins: Vec::new(),
            rx,
            latest: vec![Value::Null; n],
            reports: vec![None; n],
            held: vec![false; n],
            reset: vec![false; n],
            closes: vec![None; n],
        };
        for w in 0..n {
            let first = plan.total * w / n;
            let spec = WorkerSpec {
                addr: crate::tls::subscriber_addr(addr, ctx.opts.tls),
                src: next_src_ip(),
                transport: plan.transport,
                first,
                count: plan.total * (w + 1) / n - first,
                channels: plan.channels,
                publishers: plan.publishers,
                concurrency: ctx.opts.concurrency,
                epoch: ctx.epoch,
                connect_timeout: Duration::from_secs(20),
                lifetime: Duration::from_secs(1800),
                tls_ca: match ctx.opts.tls {
                    true => crate::tls::pki()?.ca.display().to_string(),
                    false => String::new(),
                },
            };
            let mut child = die_with_parent(&mut Command::new(&exe))
                .arg("--client-worker")
                .arg(spec.to_json().to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("spawn client worker: {e}"))?;
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return Err("client worker pipes missing".into());
            };
            pool.kids.push(child);
            pool.stdins.push(stdin);
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if tx.send((w, v)).is_err() {
                            return;
                        }
                    }
                }
                let _ = tx.send((w, json!({"ev": "eof"})));
            });
        }
        Ok(pool)
    }

    /// Takes in the next line from any worker, waiting up to `timeout` for one.
    fn pump(&mut self, timeout: Duration) -> Res<()> {
        match self.rx.recv_timeout(timeout) {
            Ok((w, v)) => self.absorb(w, v),
            Err(RecvTimeoutError::Timeout) => Ok(()),
            Err(RecvTimeoutError::Disconnected) => Err("client workers gone".into()),
        }
    }

    fn absorb(&mut self, w: usize, v: Value) -> Res<()> {
        match v["ev"].as_str() {
            Some("progress") => self.latest[w] = v,
            Some("report") => self.reports[w] = Some(v),
            Some("held") => self.held[w] = true,
            Some("reset") => {
                // Progress as of the reset: everything sent before it is stale.
                self.latest[w] = v;
                self.reset[w] = true;
            }
            Some("closed") => {
                let f = |k: &str| v[k].as_u64().unwrap_or(0);
                self.closes[w] = Some((f("fin"), f("rst")));
            }
            Some("fatal") => return Err(format!("client worker {w}: {}", v["error"])),
            Some("eof") => return Err(format!("client worker {w} exited unexpectedly")),
            _ => {}
        }
        Ok(())
    }

    pub fn agg(&self) -> Agg {
        let mut a = Agg::default();
        for v in &self.latest {
            let f = |k: &str| v[k].as_u64().unwrap_or(0);
            a.opened += f("opened");
            a.connected += f("connected");
            a.failed += f("failed");
            a.closed += f("closed");
            a.recv += f("recv");
            a.warm += f("warm");
            a.last_recv = a.last_recv.max(f("last_recv"));
        }
        a
    }

    /// Waits until `done` holds, `timeout` passes, or (with `stall`) nothing has moved for
    /// that long. Returns the last aggregate either way; only a dead worker is an error.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        stall: Option<Duration>,
        done: impl Fn(&Agg) -> bool,
    ) -> Res<Agg> {
        let end = Instant::now() + timeout;
        let mut last_key = (u64::MAX, 0, 0);
        let mut last_change = Instant::now();
        loop {
            let a = self.agg();
            if done(&a) {
                return Ok(a);
            }
            let key = (a.connected + a.failed, a.recv, a.warm);
            if key != last_key {
                last_key = key;
                last_change = Instant::now();
            }
            if Instant::now() > end || stall.is_some_and(|s| last_change.elapsed() > s) {
                return Ok(a);
            }
            self.pump(Duration::from_millis(50))?;
        }
    }

    /// Waits for every subscriber to have either connected or failed.
    pub fn wait_connected(&mut self, total: usize, timeout: Duration) -> Res<Agg> {
        let total = total as u64;
        let a = self.wait_for(timeout, None, |a| a.connected + a.failed >= total)?;
        if a.connected == 0 {
            return Err(format!("no subscriber connected ({a:?})"));
        }
        Ok(a)
    }

    /// Stops every worker reading and waits until each has confirmed it.
    pub fn hold(&mut self) -> Res<()> {
        self.held.iter_mut().for_each(|h| *h = false);
        self.send_all("hold\n");
        let end = Instant::now() + Duration::from_secs(10);
        while !self.held.iter().all(|h| *h) {
            if Instant::now() > end {
                return Err("timed out waiting for client workers to hold".into());
            }
            self.pump(Duration::from_millis(50))?;
        }
        Ok(())
    }

    /// Has every worker forget the messages received so far (counters, latency, seen
    /// seqs; connections stay) and waits until each has, so that the next phase on the
    /// same subscribers is scored on its own and may number its messages from 0.
    pub fn reset(&mut self) -> Res<()> {
        self.reset.iter_mut().for_each(|r| *r = false);
        self.send_all("reset\n");
        let end = Instant::now() + Duration::from_secs(10);
        while !self.reset.iter().all(|r| *r) {
            if Instant::now() > end {
                return Err("timed out waiting for client workers to reset".into());
            }
            self.pump(Duration::from_millis(50))?;
        }
        Ok(())
    }

    /// Has every worker close all its subscribers (half FIN, half RST; see the worker's
    /// `close_all`) and waits until each has; returns the (FIN, RST) totals.
    pub fn close_all(&mut self) -> Res<(u64, u64)> {
        self.closes.iter_mut().for_each(|c| *c = None);
        self.send_all("close\n");
        let end = Instant::now() + Duration::from_secs(10);
        while self.closes.iter().any(Option::is_none) {
            if Instant::now() > end {
                return Err("timed out waiting for client workers to close".into());
            }
            self.pump(Duration::from_millis(20))?;
        }
        Ok(self
            .closes
            .iter()
            .flatten()
            .fold((0, 0), |(f, r), &(a, b)| (f + a, r + b)))
    }

    /// Lets held workers read again.
    pub fn release(&mut self) {
        self.send_all("release\n");
    }

    fn send_all(&mut self, cmd: &str) {
        for s in &mut self.stdins {
            let _ = s.write_all(cmd.as_bytes()).and_then(|()| s.flush());
        }
    }

    pub fn report(&mut self) -> Res<Report> {
        self.reports.iter_mut().for_each(|r| *r = None);
        self.send_all("report\n");
        let end = Instant::now() + Duration::from_secs(20);
        while self.reports.iter().any(Option::is_none) {
            if Instant::now() > end {
                return Err("timed out waiting for client reports".into());
            }
            self.pump(Duration::from_millis(100))?;
        }
        Ok(self.merge_reports())
    }

    fn merge_reports(&mut self) -> Report {
        let mut r = Report::default();
        self.latest = self
            .reports
            .iter()
            .map(|v| v.clone().unwrap_or_default())
            .collect();
        r.agg = self.agg();
        for v in self.reports.iter().flatten() {
            let f = |k: &str| v[k].as_u64().unwrap_or(0);
            r.distinct += f("distinct");
            r.dup += f("dup");
            r.ooo += f("ooo");
            r.unparsed += f("unparsed");
            r.inflated += f("inflated");
            r.first_start = earliest(r.first_start, f("first_start"));
            r.last_established = r.last_established.max(f("last_established"));
            r.lat.merge_json(&v["lat"]);
            r.conn_lat.merge_json(&v["conn_lat"]);
            for e in v["errors"].as_array().into_iter().flatten() {
                if let Some(e) = e.as_str() {
                    note_error(&mut r.errors, e);
                }
            }
        }
        r
    }

    /// Asks workers to exit (closing all sockets); kills any that linger past 10 s.
    pub fn quit(&mut self) {
        self.send_all("quit\n");
        self.stdins.clear();
        let end = Instant::now() + Duration::from_secs(10);
        for k in &mut self.kids {
            if !exited_by(k, end) {
                let _ = k.kill();
            }
            let _ = k.wait();
        }
        self.kids.clear();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.quit();
    }
}
