//! Publishers: POST messages on keep-alive connections, in one of two patterns.
//!
//! * **waiting** (`waiting.rs`, the default): send one request, read its reply, send the
//!   next — what real backends do (requests, curl, Go `http.Client`, `fetch`), so the
//!   server's reply latency limits how fast one connection can publish.
//! * **pipelined** (`pipelined.rs`): one thread writes every request while another reads
//!   the replies, so the writer never waits on the server.
//!
//! Messages are split round-robin over one or more connections, each with its own thread
//! and its own share of the schedule: back to back, or paced at an offered rate shared by
//! all connections. This file holds what both patterns share: the job, the schedule, the
//! request bytes, and merging the connections' outcomes.

mod pipelined;
pub mod reply;
mod waiting;

use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{earliest, mono_ns};
use crate::hist::Hist;
use crate::wire::{self, WARM};
use crate::Res;

/// How a connection sends its requests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PublishMode {
    /// The next request only after the previous reply has been read.
    Wait,
    /// Requests written without waiting; replies read by another thread.
    Pipelined,
}

impl PublishMode {
    pub fn parse(s: &str) -> Res<PublishMode> {
        match s {
            "wait" => Ok(PublishMode::Wait),
            "pipelined" => Ok(PublishMode::Pipelined),
            _ => Err(format!("unknown --publish {s:?} (wait | pipelined)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PublishMode::Wait => "waiting",
            PublishMode::Pipelined => "pipelined",
        }
    }
}

#[derive(Clone, Copy)]
pub enum Body {
    Warm,
    Seq(u64),
}

impl Body {
    /// The payload; `t_ns` (since the harness epoch) is what latency is measured from.
    fn payload(self, t_ns: u64, size: usize) -> Vec<u8> {
        match self {
            Body::Warm => WARM.to_vec(),
            Body::Seq(seq) => wire::make_payload(seq, t_ns, size),
        }
    }
}

pub struct PubJob {
    pub addr: SocketAddr,
    pub msgs: Vec<(u32, Body)>,
    pub mode: PublishMode,
    /// Offered messages per second over all connections together; None = back to back.
    pub rate: Option<f64>,
    pub epoch: u64,
    pub size: usize,
    pub timeout: Duration,
}

#[derive(Default)]
pub struct PubOutcome {
    pub ok: usize,
    pub failed: usize,
    pub first_write: u64,
    pub last_reply: u64,
    /// Request write → its reply fully read, per request. Pipelined, this includes the
    /// wait behind the requests written before it.
    pub reply_lat: Hist,
    pub last_body: String,
    pub errors: Vec<String>,
}

impl PubOutcome {
    /// Counts one reply read at `now` to a request written at `written`.
    fn note_reply(&mut self, status: u16, body: &[u8], written: u64, now: u64) {
        self.last_reply = now;
        self.reply_lat.record(now.saturating_sub(written));
        if (200..300).contains(&status) {
            self.ok += 1;
        } else if self.errors.len() < 5 {
            self.errors.push(format!("publish answered {status}"));
        }
        self.last_body = String::from_utf8_lossy(body).into_owned();
    }

    fn absorb(&mut self, o: PubOutcome) {
        self.ok += o.ok;
        self.failed += o.failed;
        self.first_write = earliest(self.first_write, o.first_write);
        self.last_reply = self.last_reply.max(o.last_reply);
        self.reply_lat.merge(&o.reply_lat);
        if !o.last_body.is_empty() {
            self.last_body = o.last_body;
        }
        self.errors.extend(o.errors);
    }
}

/// When a connection's messages are due. Message `j` of connection `p` out of `P` is
/// message `k = p + j·P` overall; paced at R/s it is due at `start + k/R`, so each
/// connection runs its own schedule at R/P per second and together they offer R evenly
/// spaced, rather than P at once every P/R seconds.
struct Lane {
    first: usize,
    stride: usize,
    start_ns: u64,
    rate: Option<f64>,
}

impl Lane {
    /// The due time of this connection's message `j` (mono ns); None = back to back.
    fn due(&self, j: usize) -> Option<u64> {
        let rate = self.rate?.max(0.001);
        let k = (self.first + j * self.stride) as f64;
        Some(self.start_ns + (k * 1e9 / rate) as u64)
    }
}

/// Sleeps until `due_ns` (mono ns); returns at once when it has passed.
fn sleep_until(due_ns: u64) {
    let now = mono_ns();
    if due_ns > now {
        thread::sleep(Duration::from_nanos(due_ns - now));
    }
}

/// What one connection's thread gets.
struct ConnJob {
    msgs: Vec<(u32, Body)>,
    lane: Lane,
    epoch: u64,
    size: usize,
    deadline: Instant,
}

impl ConnJob {
    /// The request for message `j` and the time stamped into it: the scheduled time when
    /// paced (so a server that cannot keep up shows it as latency), else `now`.
    fn request(&self, j: usize, now: u64) -> Vec<u8> {
        let (channel, body) = self.msgs[j];
        let stamp = self.lane.due(j).unwrap_or(now);
        let payload = body.payload(stamp.saturating_sub(self.epoch), self.size);
        pub_request(channel, &payload)
    }
}

fn pub_request(channel: u32, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST /pub?id=c{channel} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Publishes `job` on one connection.
pub fn publish(job: PubJob) -> PubOutcome {
    publish_parallel(job, 1)
}

/// Publishes `base.msgs` split round-robin over `conns` connections, concurrently. All
/// connections are opened before the schedule starts, so connecting is never counted as
/// lateness; a connection with no messages is not opened.
pub fn publish_parallel(base: PubJob, conns: usize) -> PubOutcome {
    let addrs = [base.addr];
    publish_spread(base, &addrs, conns)
}

/// As [`publish_parallel`], with connection `p` opened to `addrs[p % addrs.len()]`
/// (`base.addr` only when `addrs` is empty): publishers spread over a cluster's nodes.
pub fn publish_spread(base: PubJob, addrs: &[SocketAddr], conns: usize) -> PubOutcome {
    let conns = conns.clamp(1, base.msgs.len().max(1));
    let mut total = PubOutcome::default();
    let mut streams = Vec::with_capacity(conns);
    for p in 0..conns {
        let addr = addrs.get(p % addrs.len().max(1)).copied();
        match connect(addr.unwrap_or(base.addr)) {
            Ok(s) => streams.push(s),
            Err(e) => {
                total.failed = base.msgs.len();
                total.errors.push(e);
                return total;
            }
        }
    }
    let pace_secs = base
        .rate
        .map_or(0.0, |r| base.msgs.len() as f64 / r.max(0.001));
    let deadline = Instant::now() + base.timeout + Duration::from_secs_f64(pace_secs);
    let start_ns = mono_ns();
    let handles: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(p, stream)| {
            let job = ConnJob {
                msgs: base.msgs.iter().skip(p).step_by(conns).copied().collect(),
                lane: Lane {
                    first: p,
                    stride: conns,
                    start_ns,
                    rate: base.rate,
                },
                epoch: base.epoch,
                size: base.size,
                deadline,
            };
            let mode = base.mode;
            thread::spawn(move || match mode {
                PublishMode::Wait => waiting::run(stream, &job),
                PublishMode::Pipelined => pipelined::run(stream, job),
            })
        })
        .collect();
    for h in handles {
        match h.join() {
            Ok(o) => total.absorb(o),
            Err(_) => total.errors.push("publisher thread panicked".into()),
        }
    }
    total
}

fn connect(addr: SocketAddr) -> Res<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("publisher connect: {e}"))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}
