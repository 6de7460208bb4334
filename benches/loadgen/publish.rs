//! The publisher: POSTs messages on one keep-alive connection, with requests written on
//! one thread (paced or back-to-back, pipelined) while another reads the replies, so the
//! pipeline never waits on a reply before the next write. Several connections run side by
//! side for the channels scenario.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{earliest, mono_ns};
use crate::wire::{self, ChunkDecoder, WARM};
use crate::Res;

#[derive(Clone, Copy)]
pub enum Body {
    Warm,
    Seq(u64),
}

pub struct PubJob {
    pub addr: SocketAddr,
    pub msgs: Vec<(u32, Body)>,
    /// Messages per second; None = back-to-back.
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
    pub last_body: String,
    pub errors: Vec<String>,
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

/// Writes every request of `job` (paced or back-to-back) on a thread while this thread
/// reads the replies, so the pipeline never waits on a reply before the next write.
pub fn publish(job: PubJob) -> PubOutcome {
    let mut out = PubOutcome::default();
    let n = job.msgs.len();
    let stream = match TcpStream::connect_timeout(&job.addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => {
            out.failed = n;
            out.errors.push(format!("publisher connect: {e}"));
            return out;
        }
    };
    let _ = stream.set_nodelay(true);
    let reader = stream.try_clone();
    let pace_secs = job.rate.map_or(0.0, |r| n as f64 / r.max(0.001));
    let deadline = Instant::now() + job.timeout + Duration::from_secs_f64(pace_secs);
    let writer = thread::spawn(move || write_publishes(stream, &job));
    match reader {
        Ok(r) => read_replies(r, n, deadline, &mut out),
        Err(e) => out.errors.push(format!("publisher clone: {e}")),
    }
    match writer.join() {
        Ok(Ok(first)) => out.first_write = first,
        Ok(Err(e)) => out.errors.push(e),
        Err(_) => out.errors.push("publisher writer panicked".into()),
    }
    out.failed = n - out.ok;
    out
}

/// Returns the time of the first write.
fn write_publishes(mut s: TcpStream, job: &PubJob) -> Res<u64> {
    let start = Instant::now();
    let mut first = 0;
    for (k, &(channel, body)) in job.msgs.iter().enumerate() {
        if let Some(rate) = job.rate {
            let due = start + Duration::from_secs_f64(k as f64 / rate.max(0.001));
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        let now = mono_ns();
        let payload = match body {
            Body::Warm => WARM.to_vec(),
            Body::Seq(seq) => wire::make_payload(seq, now.saturating_sub(job.epoch), job.size),
        };
        if k == 0 {
            first = now;
        }
        s.write_all(&pub_request(channel, &payload))
            .map_err(|e| format!("publish write #{k}: {e}"))?;
    }
    Ok(first)
}

fn read_replies(mut s: TcpStream, n: usize, deadline: Instant, out: &mut PubOutcome) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut replies = 0;
    while replies < n && Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => {
                out.errors
                    .push("server closed the publisher connection".into());
                return;
            }
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                out.errors.push(format!("publisher read: {e}"));
                return;
            }
        }
        loop {
            match parse_response(&buf) {
                Ok(Some((used, status, body))) => {
                    buf.drain(..used);
                    replies += 1;
                    out.last_reply = mono_ns();
                    if (200..300).contains(&status) {
                        out.ok += 1;
                    } else if out.errors.len() < 5 {
                        out.errors.push(format!("publish answered {status}"));
                    }
                    out.last_body = String::from_utf8_lossy(&body).into_owned();
                }
                Ok(None) => break,
                Err(e) => {
                    out.errors.push(e);
                    return;
                }
            }
        }
    }
    if replies < n {
        out.errors.push(format!(
            "only {replies} of {n} publish replies before the deadline"
        ));
    }
}

/// One complete HTTP response from the front of `buf`: (bytes used, status, body).
fn parse_response(buf: &[u8]) -> Res<Option<(usize, u16, Vec<u8>)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let head_len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad publish reply: {e}")),
    };
    let status = r.code.unwrap_or(0);
    let value = |name: &str| wire::header(r.headers, name).map(|v| v.to_ascii_lowercase());
    let rest = &buf[head_len..];
    if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut dec = ChunkDecoder::new();
        let mut body = Vec::new();
        let used = dec.feed(rest, &mut body)?;
        return Ok(dec.is_done().then(|| (head_len + used, status, body)));
    }
    let len = match value("content-length") {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| "bad Content-Length")?,
        None => 0,
    };
    Ok((rest.len() >= len).then(|| (head_len + len, status, rest[..len].to_vec())))
}

/// Publishes `msgs` split round-robin over `conns` connections, concurrently.
pub fn publish_parallel(base: PubJob, conns: usize) -> PubOutcome {
    let conns = conns.max(1);
    let handles: Vec<_> = (0..conns)
        .map(|p| {
            let job = PubJob {
                addr: base.addr,
                msgs: base.msgs.iter().skip(p).step_by(conns).copied().collect(),
                rate: base.rate,
                epoch: base.epoch,
                size: base.size,
                timeout: base.timeout,
            };
            thread::spawn(move || publish(job))
        })
        .collect();
    let mut total = PubOutcome::default();
    for h in handles {
        let Ok(o) = h.join() else {
            total.errors.push("publisher thread panicked".into());
            continue;
        };
        total.ok += o.ok;
        total.failed += o.failed;
        total.first_write = earliest(total.first_write, o.first_write);
        total.last_reply = total.last_reply.max(o.last_reply);
        total.last_body = o.last_body;
        total.errors.extend(o.errors);
    }
    total
}
