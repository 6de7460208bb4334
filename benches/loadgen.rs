//! Load generator and comparison harness for crier.
//!
//! `cargo bench --bench loadgen -- <scenario> [options]`; see `benches/README.md`.
//!
//! One binary, three roles:
//! * harness (default): starts the server under test pinned to core 0, spawns client
//!   workers (pinned to core 1 like itself), publishes, measures, prints a table and a JSON line;
//! * `--client-worker SPEC`: holds up to ~19K subscriber sockets on one mio loop and reports
//!   counters and latency histograms as JSON lines on stdout; commands arrive on stdin;
//! * `--floor-server --listen ADDR`: the raw floor, a minimal single-threaded fan-out server
//!   that only writes pre-encoded bytes to subscriber sockets.

use std::collections::HashMap;
use std::env;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use serde_json::{json, Map, Value};

type Res<T> = Result<T, String>;

/// Cap on buffered, not yet parsed bytes per connection (a sane server never gets near it).
const MAX_CARRY: usize = 4 << 20;
/// Per-process subscriber count; stays clear of the 20000 open-files hard limit.
const DEFAULT_PER_CLIENT: usize = 9000;
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn main() {
    // `cargo bench` appends `--bench` to the arguments of harness = false benches.
    let args: Vec<String> = env::args().skip(1).filter(|a| a != "--bench").collect();
    raise_nofile();
    let code = match args.first().map(String::as_str) {
        Some("--client-worker") => worker_entry(&args[1..]),
        Some("--floor-server") => floor_entry(&args[1..]),
        _ => harness_entry(&args),
    };
    std::process::exit(code);
}

// ===================================================================================
// Clock and /proc helpers
// ===================================================================================

/// CLOCK_MONOTONIC in ns. It is system-wide, so a timestamp written into a payload by the
/// publisher (harness process) compares directly with receive times in worker processes.
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Soft open-files limit up to the hard limit; children (servers, workers) inherit it.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Pin the calling thread (and every thread/process it creates later) to one core.
fn pin_to_core(core: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn ncpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn proc_rss_bytes(pid: i32) -> Res<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("read /proc/{pid}/status: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// utime + stime of a whole process (all threads), in seconds.
fn proc_cpu_secs(pid: i32) -> Res<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("read /proc/{pid}/stat: {e}"))?;
    // The command name may contain spaces; the numeric fields start after the last ')'.
    let rest = s
        .rfind(')')
        .map(|i| &s[i + 1..])
        .ok_or("malformed /proc/PID/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state), so utime (field 14) is f[11] and stime (15) is f[12].
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let (ut, st) = tick(11)
        .zip(tick(12))
        .ok_or("no utime/stime in /proc/PID/stat")?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ut + st) as f64 / hz)
}

/// Kernel memory held by all TCP sockets (`/proc/net/sockstat` "TCP: ... mem N" pages).
fn sockstat_tcp_mem_bytes() -> Option<u64> {
    let s = fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = s.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    while let Some(w) = words.next() {
        if w == "mem" {
            return words.next()?.parse::<u64>().ok().map(|p| p * page);
        }
    }
    None
}

/// Slab bytes of the per-socket kernel objects (TCP sock, socket inode, epoll item), from
/// `/proc/slabinfo` (root only). Idle sockets hold no buffers, so this is their real cost.
fn kernel_socket_slab_bytes() -> Option<u64> {
    const CACHES: [&str; 3] = ["TCP", "sock_inode_cache", "eventpoll_epi"];
    let s = fs::read_to_string("/proc/slabinfo").ok()?;
    let mut total = 0;
    for line in s.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 3 && CACHES.contains(&f[0]) {
            let active: u64 = f[1].parse().ok()?;
            let size: u64 = f[3].parse().ok()?;
            total += active * size;
        }
    }
    Some(total)
}

fn machine_note() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} cores ({cpu}), Linux {}; server pinned to core 0, load to core 1",
        ncpus(),
        kernel.trim()
    )
}

// ===================================================================================
// Histogram
// ===================================================================================

/// Log-linear histogram: exact below 64, then 32 sub-buckets per power of two (≤3% error).
/// Mergeable across worker processes, so percentiles cover every delivery, not a sample.
#[derive(Clone)]
struct Hist {
    counts: Vec<u64>,
    n: u64,
    max: u64,
}

const HSUB: u64 = 32;
const HBITS: u32 = 5;

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: vec![0; (2 * HSUB + 64 * HSUB) as usize],
            n: 0,
            max: 0,
        }
    }
}

impl Hist {
    fn index(v: u64) -> usize {
        if v < 2 * HSUB {
            return v as usize;
        }
        let shift = (63 - v.leading_zeros()) - HBITS;
        (2 * HSUB + (shift as u64 - 1) * HSUB + ((v >> shift) - HSUB)) as usize
    }

    /// Midpoint of bucket `i`.
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < 2 * HSUB {
            return i;
        }
        let r = i - 2 * HSUB;
        let shift = r / HSUB + 1;
        (((r % HSUB) + HSUB) << shift) + (1u64 << shift) / 2
    }

    fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.n += 1;
        self.max = self.max.max(v);
    }

    fn percentile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max);
            }
        }
        self.max
    }

    fn to_json(&self) -> Value {
        let buckets: Vec<Value> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| json!([i, c]))
            .collect();
        json!({"n": self.n, "max": self.max, "b": buckets})
    }

    fn merge_json(&mut self, v: &Value) {
        for pair in v["b"].as_array().into_iter().flatten() {
            let (Some(i), Some(c)) = (pair[0].as_u64(), pair[1].as_u64()) else {
                continue;
            };
            if let Some(slot) = self.counts.get_mut(i as usize) {
                *slot += c;
                self.n += c;
            }
        }
        self.max = self.max.max(v["max"].as_u64().unwrap_or(0));
    }
}

// ===================================================================================
// Payloads
// ===================================================================================

/// `t=<ns since harness epoch>;seq=<k>;` padded with 'x' to `size` bytes.
fn make_payload(seq: u64, t_ns: u64, size: usize) -> Vec<u8> {
    let mut p = format!("t={t_ns};seq={seq};").into_bytes();
    if p.len() < size {
        p.resize(size, b'x');
    }
    p
}

/// Warm-up message: confirms a subscriber is registered without counting as a delivery.
const WARM: &[u8] = b"warm";

fn parse_payload(p: &[u8]) -> Option<(u64, u64)> {
    let (t, rest) = take_num(p.strip_prefix(b"t=")?)?;
    let (seq, _) = take_num(rest.strip_prefix(b"seq=")?)?;
    Some((t, seq))
}

fn take_num(b: &[u8]) -> Option<(u64, &[u8])> {
    let end = b.iter().position(|&c| c == b';')?;
    if end == 0 {
        return None;
    }
    let mut v = 0u64;
    for &c in &b[..end] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some((v, &b[end + 1..]))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ===================================================================================
// HTTP/1.1 chunked decoding (servers may frame an SSE stream or a reply as chunked)
// ===================================================================================

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ChunkState {
    Size,
    SizeExt,
    Data(usize),
    DataCr,
    TrailerStart,
    Trailer,
    Done,
}

struct ChunkDecoder {
    state: ChunkState,
    size: usize,
}

impl ChunkDecoder {
    fn new() -> Self {
        ChunkDecoder {
            state: ChunkState::Size,
            size: 0,
        }
    }

    /// Decodes `data` into `out`; returns how many input bytes were used (fewer than
    /// `data.len()` only once the terminating chunk and trailers are complete).
    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Res<usize> {
        let mut i = 0;
        while i < data.len() && self.state != ChunkState::Done {
            let c = data[i];
            match self.state {
                ChunkState::Size => {
                    i += 1;
                    match c {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let d = (c as char).to_digit(16).unwrap_or(0) as usize;
                            self.size = self
                                .size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(d))
                                .filter(|&s| s < MAX_CARRY)
                                .ok_or("chunk too large")?;
                        }
                        b';' | b'\r' | b' ' => self.state = ChunkState::SizeExt,
                        b'\n' => self.end_size(),
                        _ => return Err(format!("bad chunk size byte {c:#x}")),
                    }
                }
                ChunkState::SizeExt => {
                    i += 1;
                    if c == b'\n' {
                        self.end_size();
                    }
                }
                ChunkState::Data(rem) => {
                    let n = rem.min(data.len() - i);
                    out.extend_from_slice(&data[i..i + n]);
                    i += n;
                    self.state = if n == rem {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(rem - n)
                    };
                }
                ChunkState::DataCr => {
                    i += 1;
                    match c {
                        b'\r' => {}
                        b'\n' => self.state = ChunkState::Size,
                        _ => return Err("missing CRLF after chunk".into()),
                    }
                }
                ChunkState::TrailerStart => {
                    i += 1;
                    match c {
                        b'\r' => {}
                        b'\n' => self.state = ChunkState::Done,
                        _ => self.state = ChunkState::Trailer,
                    }
                }
                ChunkState::Trailer => {
                    i += 1;
                    if c == b'\n' {
                        self.state = ChunkState::TrailerStart;
                    }
                }
                ChunkState::Done => {}
            }
        }
        Ok(i)
    }

    fn end_size(&mut self) {
        self.state = if self.size == 0 {
            ChunkState::TrailerStart
        } else {
            ChunkState::Data(self.size)
        };
        self.size = 0;
    }
}

// ===================================================================================
// WebSocket framing (client side: we mask what we send, the server must not mask)
// ===================================================================================

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Sse,
    Ws,
    WsDeflate,
}

impl Transport {
    fn parse(s: &str) -> Res<Self> {
        match s {
            "sse" => Ok(Transport::Sse),
            "ws" => Ok(Transport::Ws),
            "ws-deflate" => Ok(Transport::WsDeflate),
            _ => Err(format!("unknown transport {s:?} (sse | ws | ws-deflate)")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Ws => "ws",
            Transport::WsDeflate => "ws-deflate",
        }
    }

    fn is_ws(self) -> bool {
        self != Transport::Sse
    }

    fn request(self, channel: &str) -> String {
        match self {
            Transport::Sse => format!(
                "GET /ev/{channel} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
            ),
            Transport::Ws | Transport::WsDeflate => {
                let ext = if self == Transport::WsDeflate {
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                } else {
                    ""
                };
                format!(
                    "GET /ws/{channel} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Version: 13\r\n{ext}\r\n"
                )
            }
        }
    }
}

/// A masked client frame (RFC 6455 §5.3); used for pongs.
fn ws_client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0x17, 0xc3, 0x81];
    let mut f = vec![0x80 | opcode];
    push_ws_len(&mut f, payload.len(), 0x80);
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// An unmasked server frame; `rsv1` marks a permessage-deflate message.
fn ws_server_frame(payload: &[u8], rsv1: bool) -> Vec<u8> {
    let mut f = vec![0x81 | if rsv1 { 0x40 } else { 0 }];
    push_ws_len(&mut f, payload.len(), 0);
    f.extend_from_slice(payload);
    f
}

fn push_ws_len(f: &mut Vec<u8>, len: usize, mask_bit: u8) {
    if len < 126 {
        f.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        f.push(mask_bit | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(mask_bit | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// One parsed frame header: (fin+rsv+opcode byte, header length, payload length, mask).
fn ws_frame_header(d: &[u8]) -> Option<(u8, usize, usize, Option<[u8; 4]>)> {
    if d.len() < 2 {
        return None;
    }
    let masked = d[1] & 0x80 != 0;
    let (len, mut h) = match d[1] & 0x7f {
        126 => (u64::from(u16::from_be_bytes([*d.get(2)?, *d.get(3)?])), 4),
        127 => (u64::from_be_bytes(d.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let m: [u8; 4] = d.get(h..h + 4)?.try_into().ok()?;
        h += 4;
        Some(m)
    } else {
        None
    };
    Some((d[0], h, usize::try_from(len).unwrap_or(usize::MAX), mask))
}

/// Inflates one permessage-deflate message (RFC 7692 §7.2.2: append 00 00 ff ff).
fn inflate_message(d: &mut Decompress, payload: &[u8]) -> Res<Vec<u8>> {
    let mut input = Vec::with_capacity(payload.len() + 4);
    input.extend_from_slice(payload);
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    let mut pos = 0;
    loop {
        let (in0, out0) = (d.total_in(), out.len());
        d.decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
            .map_err(|e| format!("inflate: {e}"))?;
        pos += (d.total_in() - in0) as usize;
        let full = out.len() == out.capacity();
        if pos >= input.len() && !full {
            return Ok(out);
        }
        if full {
            if out.len() > MAX_CARRY {
                return Err("inflated message too large".into());
            }
            out.reserve(out.capacity().max(256));
        } else if d.total_in() == in0 && out.len() == out0 {
            return Err("inflate made no progress".into());
        }
    }
}

/// Deflates one message for permessage-deflate without context takeover.
fn deflate_message(payload: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(payload.len() + 64);
    loop {
        let before = c.total_in() as usize;
        if c.compress_vec(&payload[before..], &mut out, FlushCompress::Sync)
            .is_err()
        {
            break;
        }
        if c.total_in() as usize >= payload.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(256);
    }
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    out
}

// ===================================================================================
// Client worker: many subscribers on one mio loop
// ===================================================================================

struct WorkerSpec {
    addr: SocketAddr,
    src: Ipv4Addr,
    transport: Transport,
    first: usize,
    count: usize,
    channels: usize,
    concurrency: usize,
    epoch: u64,
    connect_timeout: Duration,
    lifetime: Duration,
}

impl WorkerSpec {
    fn to_json(&self) -> Value {
        json!({
            "addr": self.addr.to_string(), "src": self.src.to_string(),
            "transport": self.transport.name(), "first": self.first, "count": self.count,
            "channels": self.channels, "concurrency": self.concurrency, "epoch": self.epoch,
            "connect_timeout_ms": self.connect_timeout.as_millis() as u64,
            "lifetime_s": self.lifetime.as_secs(),
        })
    }

    fn from_json(v: &Value) -> Res<Self> {
        let num = |k: &str| v[k].as_u64().ok_or_else(|| format!("spec: missing {k}"));
        let text = |k: &str| v[k].as_str().ok_or_else(|| format!("spec: missing {k}"));
        Ok(WorkerSpec {
            addr: text("addr")?
                .parse()
                .map_err(|e| format!("spec addr: {e}"))?,
            src: text("src")?.parse().map_err(|e| format!("spec src: {e}"))?,
            transport: Transport::parse(text("transport")?)?,
            first: num("first")? as usize,
            count: num("count")? as usize,
            channels: (num("channels")? as usize).max(1),
            concurrency: (num("concurrency")? as usize).max(1),
            epoch: num("epoch")?,
            connect_timeout: Duration::from_millis(num("connect_timeout_ms")?),
            lifetime: Duration::from_secs(num("lifetime_s")?),
        })
    }
}

/// Counters of one worker; everything the harness needs is summed or merged from these.
#[derive(Default)]
struct WStats {
    opened: u64,
    connected: u64,
    failed: u64,
    closed: u64,
    recv: u64,
    distinct: u64,
    dup: u64,
    ooo: u64,
    unparsed: u64,
    inflated: u64,
    warm: u64,
    first_start: u64,
    last_established: u64,
    last_recv: u64,
    lat: Hist,
    conn_lat: Hist,
    errors: Vec<String>,
}

impl WStats {
    fn note_error(&mut self, e: String) {
        if self.errors.len() < 5 && !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    fn progress(&self, ev: &str) -> Value {
        json!({
            "ev": ev, "opened": self.opened, "connected": self.connected,
            "failed": self.failed, "closed": self.closed, "recv": self.recv,
            "warm": self.warm, "last_recv": self.last_recv,
        })
    }

    fn report(&self) -> Value {
        let mut v = self.progress("report");
        let extra = json!({
            "distinct": self.distinct, "dup": self.dup, "ooo": self.ooo,
            "unparsed": self.unparsed, "inflated": self.inflated, "first_start": self.first_start,
            "last_established": self.last_established, "lat": self.lat.to_json(),
            "conn_lat": self.conn_lat.to_json(), "errors": self.errors,
        });
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        v
    }
}

/// What a subscriber's parser needs besides its own state.
struct RxCtx<'a> {
    now: u64,
    epoch: u64,
    transport: Transport,
    st: &'a mut WStats,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Head,
    Stream,
}

/// WebSocket receive state (only allocated for WS subscribers).
struct WsRx {
    inflate: Option<Decompress>,
    reset_each: bool,
    frag: Vec<u8>,
    frag_rsv1: bool,
}

/// One subscriber. Kept small: idle buffers are empty Vecs (no allocation).
struct Sub {
    sock: TcpStream,
    phase: Phase,
    channel: u32,
    started: u64,
    /// Raw bytes not yet parsed (partial head, frame or chunk).
    carry: Vec<u8>,
    /// Partial SSE line.
    line: Vec<u8>,
    chunk: Option<ChunkDecoder>,
    ws: Option<Box<WsRx>>,
    /// Bitset of received sequence numbers: duplicate / missing detection.
    seen: Vec<u64>,
    max_seq: Option<u64>,
    warm: bool,
}

impl Sub {
    /// Sends the subscribe request once the non-blocking connect has completed.
    /// Returns false while the connect is still in progress.
    fn try_send_request(&mut self, transport: Transport) -> Res<bool> {
        if let Some(e) = self.sock.take_error().map_err(|e| e.to_string())? {
            return Err(format!("connect: {e}"));
        }
        match self.sock.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(format!("connect: {e}")),
        }
        let req = transport.request(&format!("c{}", self.channel));
        match self.sock.write(req.as_bytes()) {
            Ok(n) if n == req.len() => {
                self.phase = Phase::Head;
                Ok(true)
            }
            Ok(_) => Err("short write of subscribe request".into()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(format!("write request: {e}")),
        }
    }

    fn on_event(&mut self, readable: bool, scratch: &mut [u8], cx: &mut RxCtx) -> Res<()> {
        if self.phase == Phase::Connecting && !self.try_send_request(cx.transport)? {
            return Ok(());
        }
        if readable || self.phase != Phase::Connecting {
            self.read_all(scratch, cx)?;
        }
        Ok(())
    }

    /// Edge-triggered: drain the socket until WouldBlock.
    fn read_all(&mut self, scratch: &mut [u8], cx: &mut RxCtx) -> Res<()> {
        loop {
            match self.sock.read(scratch) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => {
                    cx.now = mono_ns();
                    self.feed(&scratch[..n], cx)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    fn feed(&mut self, data: &[u8], cx: &mut RxCtx) -> Res<()> {
        if self.carry.is_empty() {
            let used = self.process(data, cx)?;
            self.carry.extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.carry);
            buf.extend_from_slice(data);
            let used = self.process(&buf, cx)?;
            buf.drain(..used);
            if !buf.is_empty() {
                self.carry = buf;
            }
        }
        if self.carry.len() > MAX_CARRY {
            return Err("unparseable stream (too many buffered bytes)".into());
        }
        Ok(())
    }

    /// Parses as much of `data` as possible; returns the number of bytes consumed.
    fn process(&mut self, data: &[u8], cx: &mut RxCtx) -> Res<usize> {
        let mut used = 0;
        if self.phase == Phase::Head {
            let Some(end) = find(data, b"\r\n\r\n") else {
                return Ok(0);
            };
            self.on_head(&data[..end + 4], cx)?;
            used = end + 4;
        }
        if self.phase != Phase::Stream {
            return Ok(used);
        }
        let rest = &data[used..];
        let n = if cx.transport.is_ws() {
            self.ws_frames(rest, cx)?
        } else {
            self.sse_bytes(rest, cx)?
        };
        Ok(used + n)
    }

    fn on_head(&mut self, head: &[u8], cx: &mut RxCtx) -> Res<()> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        resp.parse(head)
            .map_err(|e| format!("bad response head: {e}"))?;
        let status = resp.code.unwrap_or(0);
        let want = if cx.transport.is_ws() { 101 } else { 200 };
        if status != want {
            return Err(format!("subscribe answered {status}, expected {want}"));
        }
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
        };
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            self.chunk = Some(ChunkDecoder::new());
        }
        if cx.transport.is_ws() {
            let ext = header("sec-websocket-extensions").unwrap_or_default();
            let deflate = ext.contains("permessage-deflate");
            self.ws = Some(Box::new(WsRx {
                inflate: deflate.then(|| Decompress::new(false)),
                reset_each: ext.contains("server_no_context_takeover"),
                frag: Vec::new(),
                frag_rsv1: false,
            }));
        }
        self.phase = Phase::Stream;
        cx.st.connected += 1;
        cx.st.last_established = cx.now;
        cx.st.conn_lat.record(cx.now.saturating_sub(self.started));
        Ok(())
    }

    fn sse_bytes(&mut self, data: &[u8], cx: &mut RxCtx) -> Res<usize> {
        let Some(dec) = self.chunk.as_mut() else {
            self.sse_lines(data, cx);
            return Ok(data.len());
        };
        let mut decoded = Vec::with_capacity(data.len());
        let used = dec.feed(data, &mut decoded)?;
        if dec.state == ChunkState::Done {
            return Err("server ended the event stream".into());
        }
        self.sse_lines(&decoded, cx);
        Ok(used)
    }

    fn sse_lines(&mut self, data: &[u8], cx: &mut RxCtx) {
        let mut rest = data;
        while let Some(p) = rest.iter().position(|&c| c == b'\n') {
            if self.line.is_empty() {
                self.sse_line(&rest[..p], cx);
            } else {
                let mut l = std::mem::take(&mut self.line);
                l.extend_from_slice(&rest[..p]);
                self.sse_line(&l, cx);
            }
            rest = &rest[p + 1..];
        }
        self.line.extend_from_slice(rest);
    }

    fn sse_line(&mut self, line: &[u8], cx: &mut RxCtx) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(d) = line.strip_prefix(b"data:") {
            self.on_message(d.strip_prefix(b" ").unwrap_or(d), cx);
        }
        // "id:", "event:", ":" comments (pings) and blank separators carry nothing we count.
    }

    fn ws_frames(&mut self, data: &[u8], cx: &mut RxCtx) -> Res<usize> {
        let mut pos = 0;
        while let Some((b0, h, len, mask)) = ws_frame_header(&data[pos..]) {
            if len > MAX_CARRY {
                return Err("websocket frame too large".into());
            }
            if data.len() - pos < h + len {
                break;
            }
            let raw = &data[pos + h..pos + h + len];
            match mask {
                // Servers must not mask (RFC 6455 §5.1); tolerate it rather than abort.
                Some(m) => {
                    let un: Vec<u8> = raw.iter().enumerate().map(|(i, b)| b ^ m[i % 4]).collect();
                    self.ws_frame(b0, &un, cx)?;
                }
                None => self.ws_frame(b0, raw, cx)?,
            }
            pos += h + len;
        }
        Ok(pos)
    }

    fn ws_frame(&mut self, b0: u8, payload: &[u8], cx: &mut RxCtx) -> Res<()> {
        let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
        match opcode {
            0x9 => {
                // Best effort: a pong lost to a full send buffer is not worth failing over.
                let _ = self.sock.write(&ws_client_frame(0xA, payload));
                Ok(())
            }
            0xA => Ok(()),
            0x8 => Err("server sent websocket close".into()),
            0x1 | 0x2 if fin => self.ws_message(payload, rsv1, cx),
            0x1 | 0x2 => {
                let ws = self.ws.as_mut().ok_or("websocket state missing")?;
                ws.frag = payload.to_vec();
                ws.frag_rsv1 = rsv1;
                Ok(())
            }
            0x0 => {
                let ws = self.ws.as_mut().ok_or("websocket state missing")?;
                ws.frag.extend_from_slice(payload);
                if !fin {
                    return Ok(());
                }
                let (msg, compressed) = (std::mem::take(&mut ws.frag), ws.frag_rsv1);
                self.ws_message(&msg, compressed, cx)
            }
            op => Err(format!("unexpected websocket opcode {op:#x}")),
        }
    }

    fn ws_message(&mut self, payload: &[u8], compressed: bool, cx: &mut RxCtx) -> Res<()> {
        if !compressed {
            self.on_message(payload, cx);
            return Ok(());
        }
        let ws = self.ws.as_mut().ok_or("websocket state missing")?;
        let reset = ws.reset_each;
        let d = ws
            .inflate
            .as_mut()
            .ok_or("compressed frame without negotiated permessage-deflate")?;
        let msg = inflate_message(d, payload)?;
        cx.st.inflated += 1;
        if reset {
            d.reset(false);
        }
        self.on_message(&msg, cx);
        Ok(())
    }

    fn on_message(&mut self, payload: &[u8], cx: &mut RxCtx) {
        let st = &mut *cx.st;
        if payload.starts_with(WARM) {
            if !self.warm {
                self.warm = true;
                st.warm += 1;
            }
            return;
        }
        let Some((t, seq)) = parse_payload(payload).filter(|&(_, s)| s < 1 << 24) else {
            st.unparsed += 1;
            return;
        };
        st.recv += 1;
        st.last_recv = cx.now;
        st.lat.record(cx.now.saturating_sub(cx.epoch + t));
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & bit != 0 {
            st.dup += 1;
            return;
        }
        self.seen[word] |= bit;
        st.distinct += 1;
        match self.max_seq {
            Some(m) if seq < m => st.ooo += 1,
            _ => self.max_seq = Some(seq),
        }
    }
}

/// Non-blocking connect from `src` (a distinct 127.x address per worker, with the port
/// picked at connect time) so that many runs in a row never run out of ephemeral ports.
fn open_socket(addr: SocketAddr, src: Ipv4Addr) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    let one: libc::c_int = 1;
    // SAFETY: valid fd and option buffer. IP_BIND_ADDRESS_NO_PORT defers port choice to
    // connect(); failure only means the old behaviour, so the result is ignored.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    s.bind(&SocketAddr::from((src, 0)).into())?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    s.set_nodelay(true)?;
    Ok(TcpStream::from_std(s.into()))
}

fn emit(v: &Value) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn worker_entry(args: &[String]) -> i32 {
    let spec = args
        .first()
        .ok_or_else(|| "client-worker: missing spec".to_string())
        .and_then(|s| serde_json::from_str::<Value>(s).map_err(|e| e.to_string()))
        .and_then(|v| WorkerSpec::from_json(&v));
    match spec.and_then(run_worker) {
        Ok(()) => 0,
        Err(e) => {
            emit(&json!({"ev": "fatal", "error": e}));
            1
        }
    }
}

/// Reads commands ("report", "quit") from stdin on a thread; EOF means quit, so a dying
/// harness never leaves workers behind.
fn spawn_stdin_reader() -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
        let _ = tx.send("quit".into());
    });
    rx
}

struct Worker {
    spec: WorkerSpec,
    poll: Poll,
    subs: Vec<Option<Sub>>,
    next: usize,
    in_flight: usize,
    st: WStats,
}

impl Worker {
    /// Opens connections while fewer than `concurrency` handshakes are in flight.
    fn open_more(&mut self) {
        while self.in_flight < self.spec.concurrency && self.next < self.spec.count {
            let i = self.next;
            self.next += 1;
            self.st.opened += 1;
            let now = mono_ns();
            if self.st.first_start == 0 {
                self.st.first_start = now;
            }
            let opened = open_socket(self.spec.addr, self.spec.src).and_then(|mut sock| {
                self.poll.registry().register(
                    &mut sock,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                Ok(sock)
            });
            match opened {
                Ok(sock) => {
                    let channel = ((self.spec.first + i) % self.spec.channels) as u32;
                    self.subs[i] = Some(new_sub(sock, channel, now));
                    self.in_flight += 1;
                }
                Err(e) => {
                    self.st.failed += 1;
                    self.st.note_error(format!("connect: {e}"));
                }
            }
        }
    }

    fn drop_sub(&mut self, i: usize, err: String) {
        let Some(mut sub) = self.subs[i].take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut sub.sock);
        if sub.phase == Phase::Stream {
            self.st.closed += 1;
        } else {
            self.st.failed += 1;
            self.in_flight -= 1;
        }
        self.st.note_error(err);
    }

    fn handle(&mut self, i: usize, readable: bool, scratch: &mut [u8]) {
        let Some(sub) = self.subs.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let pending = sub.phase != Phase::Stream;
        let mut cx = RxCtx {
            now: mono_ns(),
            epoch: self.spec.epoch,
            transport: self.spec.transport,
            st: &mut self.st,
        };
        let res = sub.on_event(readable, scratch, &mut cx);
        let established = sub.phase == Phase::Stream;
        match res {
            Err(e) => self.drop_sub(i, e),
            Ok(()) if pending && established => self.in_flight -= 1,
            Ok(()) => {}
        }
    }

    fn sweep_timeouts(&mut self) {
        let limit = self.spec.connect_timeout.as_nanos() as u64;
        let now = mono_ns();
        let late: Vec<usize> = (0..self.subs.len())
            .filter(|&i| {
                self.subs[i].as_ref().is_some_and(|s| {
                    s.phase != Phase::Stream && now.saturating_sub(s.started) > limit
                })
            })
            .collect();
        for i in late {
            self.drop_sub(i, "subscribe handshake timed out".into());
        }
    }
}

fn new_sub(sock: TcpStream, channel: u32, now: u64) -> Sub {
    Sub {
        sock,
        phase: Phase::Connecting,
        channel,
        started: now,
        carry: Vec::new(),
        line: Vec::new(),
        chunk: None,
        ws: None,
        seen: Vec::new(),
        max_seq: None,
        warm: false,
    }
}

fn run_worker(spec: WorkerSpec) -> Res<()> {
    let commands = spawn_stdin_reader();
    let poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let deadline = Instant::now() + spec.lifetime;
    let mut w = Worker {
        subs: (0..spec.count).map(|_| None).collect(),
        spec,
        poll,
        next: 0,
        in_flight: 0,
        st: WStats::default(),
    };
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 256 * 1024];
    let (mut last_progress, mut last_sweep) = (Instant::now(), Instant::now());
    loop {
        w.open_more();
        if let Err(e) = w.poll.poll(&mut events, Some(Duration::from_millis(20))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll: {e}"));
            }
        }
        for ev in events.iter() {
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            w.handle(ev.token().0, readable, &mut scratch);
        }
        if last_sweep.elapsed() > Duration::from_millis(250) {
            w.sweep_timeouts();
            last_sweep = Instant::now();
        }
        if last_progress.elapsed() > Duration::from_millis(100) {
            emit(&w.st.progress("progress"));
            last_progress = Instant::now();
        }
        while let Ok(cmd) = commands.try_recv() {
            match cmd.trim() {
                "report" => emit(&w.st.report()),
                "quit" => return Ok(()),
                _ => {}
            }
        }
        if Instant::now() > deadline {
            return Err("client worker lifetime exceeded".into());
        }
    }
}

// ===================================================================================
// Harness side of the workers
// ===================================================================================

/// Sum of the latest progress lines of all workers.
#[derive(Debug, Default, Clone, Copy)]
struct Agg {
    opened: u64,
    connected: u64,
    failed: u64,
    closed: u64,
    recv: u64,
    warm: u64,
    last_recv: u64,
}

/// Merged final reports of all workers.
#[derive(Default)]
struct Report {
    agg: Agg,
    distinct: u64,
    dup: u64,
    ooo: u64,
    unparsed: u64,
    inflated: u64,
    first_start: u64,
    last_established: u64,
    lat: Hist,
    conn_lat: Hist,
    errors: Vec<String>,
}

struct Pool {
    kids: Vec<Child>,
    stdins: Vec<ChildStdin>,
    rx: Receiver<(usize, Value)>,
    latest: Vec<Value>,
    reports: Vec<Option<Value>>,
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

struct SubPlan {
    transport: Transport,
    total: usize,
    channels: usize,
}

impl Pool {
    fn spawn(ctx: &Ctx, addr: SocketAddr, plan: &SubPlan) -> Res<Pool> {
        let exe = env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let n = plan.total.div_ceil(ctx.opts.per_client).max(1);
        let (tx, rx) = mpsc::channel();
        let mut pool = Pool {
            kids: Vec::new(),
            stdins: Vec::new(),
            rx,
            latest: vec![Value::Null; n],
            reports: vec![None; n],
        };
        for w in 0..n {
            let first = plan.total * w / n;
            let spec = WorkerSpec {
                addr,
                src: next_src_ip(),
                transport: plan.transport,
                first,
                count: plan.total * (w + 1) / n - first,
                channels: plan.channels,
                concurrency: ctx.opts.concurrency,
                epoch: ctx.epoch,
                connect_timeout: Duration::from_secs(20),
                lifetime: Duration::from_secs(1800),
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

    fn absorb(&mut self, w: usize, v: Value) -> Res<()> {
        match v["ev"].as_str() {
            Some("progress") => self.latest[w] = v,
            Some("report") => self.reports[w] = Some(v),
            Some("fatal") => return Err(format!("client worker {w}: {}", v["error"])),
            Some("eof") => return Err(format!("client worker {w} exited unexpectedly")),
            _ => {}
        }
        Ok(())
    }

    fn agg(&self) -> Agg {
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
    fn wait_for(
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
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok((w, v)) => self.absorb(w, v)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err("client workers gone".into()),
            }
        }
    }

    /// Waits for every subscriber to have either connected or failed.
    fn wait_connected(&mut self, total: usize, timeout: Duration) -> Res<Agg> {
        let total = total as u64;
        let a = self.wait_for(timeout, None, |a| a.connected + a.failed >= total)?;
        if a.connected == 0 {
            return Err(format!("no subscriber connected ({a:?})"));
        }
        Ok(a)
    }

    fn send_all(&mut self, cmd: &str) {
        for s in &mut self.stdins {
            let _ = s.write_all(cmd.as_bytes()).and_then(|()| s.flush());
        }
    }

    fn report(&mut self) -> Res<Report> {
        self.reports.iter_mut().for_each(|r| *r = None);
        self.send_all("report\n");
        let end = Instant::now() + Duration::from_secs(20);
        while self.reports.iter().any(Option::is_none) {
            if Instant::now() > end {
                return Err("timed out waiting for client reports".into());
            }
            match self.rx.recv_timeout(Duration::from_millis(100)) {
                Ok((w, v)) => self.absorb(w, v)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err("client workers gone".into()),
            }
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
            let fs = f("first_start");
            if fs > 0 && (r.first_start == 0 || fs < r.first_start) {
                r.first_start = fs;
            }
            r.last_established = r.last_established.max(f("last_established"));
            r.lat.merge_json(&v["lat"]);
            r.conn_lat.merge_json(&v["conn_lat"]);
            for e in v["errors"].as_array().into_iter().flatten() {
                if let Some(e) = e.as_str() {
                    if r.errors.len() < 5 && !r.errors.iter().any(|x| x == e) {
                        r.errors.push(e.to_string());
                    }
                }
            }
        }
        r
    }

    /// Asks workers to exit (closing all sockets); kills any that linger past 10 s.
    fn quit(&mut self) {
        self.send_all("quit\n");
        self.stdins.clear();
        let end = Instant::now() + Duration::from_secs(10);
        for k in &mut self.kids {
            while matches!(k.try_wait(), Ok(None)) && Instant::now() < end {
                thread::sleep(Duration::from_millis(20));
            }
            if matches!(k.try_wait(), Ok(None)) {
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

// ===================================================================================
// Publisher: one keep-alive connection, pipelined writes, replies read concurrently
// ===================================================================================

#[derive(Clone, Copy)]
enum Body {
    Warm,
    Seq(u64),
}

struct PubJob {
    addr: SocketAddr,
    msgs: Vec<(u32, Body)>,
    /// Messages per second; None = back-to-back.
    rate: Option<f64>,
    epoch: u64,
    size: usize,
    timeout: Duration,
}

#[derive(Default)]
struct PubOutcome {
    ok: usize,
    failed: usize,
    first_write: u64,
    last_reply: u64,
    last_body: String,
    errors: Vec<String>,
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
fn publish(job: PubJob) -> PubOutcome {
    let mut out = PubOutcome::default();
    let n = job.msgs.len();
    let stream = match StdStream::connect_timeout(&job.addr, Duration::from_secs(5)) {
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
fn write_publishes(mut s: StdStream, job: &PubJob) -> Res<u64> {
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
            Body::Seq(seq) => make_payload(seq, now.saturating_sub(job.epoch), job.size),
        };
        if k == 0 {
            first = now;
        }
        s.write_all(&pub_request(channel, &payload))
            .map_err(|e| format!("publish write #{k}: {e}"))?;
    }
    Ok(first)
}

fn read_replies(mut s: StdStream, n: usize, deadline: Instant, out: &mut PubOutcome) {
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
    let value = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    let rest = &buf[head_len..];
    if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut dec = ChunkDecoder::new();
        let mut body = Vec::new();
        let used = dec.feed(rest, &mut body)?;
        return Ok((dec.state == ChunkState::Done).then(|| (head_len + used, status, body)));
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
fn publish_parallel(base: PubJob, conns: usize) -> PubOutcome {
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
        if o.first_write > 0 && (total.first_write == 0 || o.first_write < total.first_write) {
            total.first_write = o.first_write;
        }
        total.last_reply = total.last_reply.max(o.last_reply);
        total.last_body = o.last_body;
        total.errors.extend(o.errors);
    }
    total
}

// ===================================================================================
// Servers under test
// ===================================================================================

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    Crier,
    Floor,
    Nchan,
    /// `--target` or `--server-cmd`.
    Custom,
}

impl Peer {
    /// One name, a comma list, or "all".
    fn parse(s: &str) -> Res<Vec<Peer>> {
        if s.contains(',') {
            let lists = parse_list(s, Peer::parse)?;
            return Ok(lists.into_iter().flatten().collect());
        }
        match s {
            "crier" => Ok(vec![Peer::Crier]),
            "floor" => Ok(vec![Peer::Floor]),
            "nchan" => Ok(vec![Peer::Nchan]),
            "all" => Ok(vec![Peer::Crier, Peer::Floor, Peer::Nchan]),
            _ => Err(format!("unknown peer {s:?} (crier | floor | nchan | all)")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Peer::Crier => "crier",
            Peer::Floor => "floor",
            Peer::Nchan => "nchan",
            Peer::Custom => "custom",
        }
    }
}

struct Server {
    addr: SocketAddr,
    child: Option<Child>,
    /// The process whose memory and CPU are measured (nginx: the worker, not the master).
    pid: Option<i32>,
    dir: Option<PathBuf>,
}

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

fn temp_dir(tag: &str) -> Res<PathBuf> {
    let k = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
    let d = env::temp_dir().join(format!("crier-loadgen-{}-{tag}-{k}", std::process::id()));
    fs::create_dir_all(d.join("logs")).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    Ok(d)
}

fn free_port() -> Res<u16> {
    let l = StdListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// `taskset -c 0 <program>` when taskset exists, so servers run on core 0.
fn pinned(program: &Path) -> Command {
    if Path::new("/usr/bin/taskset").exists() {
        let mut c = Command::new("/usr/bin/taskset");
        c.arg("-c").arg("0").arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The child gets SIGTERM when the harness dies (even by SIGKILL), so an interrupted run
/// never leaves a server or client worker behind. Spawn from the main thread only: the
/// signal fires when the spawning thread exits.
fn die_with_parent(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        })
    }
}

fn log_file(dir: &Path) -> Res<(Stdio, Stdio)> {
    let f = fs::File::create(dir.join("logs/server.log")).map_err(|e| e.to_string())?;
    let g = f.try_clone().map_err(|e| e.to_string())?;
    Ok((Stdio::from(f), Stdio::from(g)))
}

impl Server {
    fn start(ctx: &Ctx) -> Res<Server> {
        if let Some(addr) = ctx.opts.target {
            return Ok(Server {
                addr,
                child: None,
                pid: ctx.opts.server_pid,
                dir: None,
            });
        }
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = temp_dir(ctx.peer.name())?;
        let (out, err) = log_file(&dir)?;
        let mut cmd = match ctx.peer {
            Peer::Crier => {
                let mut c = pinned(&ctx.opts.crier_bin);
                c.arg("--listen").arg(addr.to_string());
                c.arg("--workers").arg(ctx.opts.server_workers.to_string());
                c.args(&ctx.opts.server_args);
                c
            }
            Peer::Floor => {
                let exe = env::current_exe().map_err(|e| e.to_string())?;
                let mut c = pinned(&exe);
                c.arg("--floor-server")
                    .arg("--listen")
                    .arg(addr.to_string());
                c
            }
            Peer::Nchan => nchan_command(ctx, &dir, port)?,
            Peer::Custom => {
                let line = ctx.opts.server_cmd.as_deref().unwrap_or_default();
                let line = line
                    .replace("{port}", &port.to_string())
                    .replace("{addr}", &addr.to_string());
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(format!("exec {line}"));
                c
            }
        };
        let child = die_with_parent(&mut cmd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {}: {e}", ctx.peer.name()))?;
        let pid = child.id() as i32;
        let mut s = Server {
            addr,
            child: Some(child),
            pid: Some(pid),
            dir: Some(dir),
        };
        s.wait_listening()?;
        if ctx.peer == Peer::Nchan {
            s.pid = Some(nginx_worker_pid(pid)?);
        }
        Ok(s)
    }

    fn wait_listening(&mut self) -> Res<()> {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("server exited ({status}): {}", self.log_tail()));
            }
            if StdStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > end {
                return Err(format!(
                    "server not listening after 15 s: {}",
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let Some(d) = &self.dir else {
            return String::new();
        };
        let mut s = fs::read_to_string(d.join("logs/server.log")).unwrap_or_default();
        s.push_str(&fs::read_to_string(d.join("logs/error.log")).unwrap_or_default());
        let tail: Vec<&str> = s.lines().rev().take(8).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    fn pid(&self) -> Res<i32> {
        self.pid
            .ok_or_else(|| "no server pid (use --server-pid with --target)".into())
    }

    /// SIGTERM, then SIGKILL after 5 s; only for a server this harness started.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < end {
            thread::sleep(Duration::from_millis(20));
        }
        if matches!(child.try_wait(), Ok(None)) {
            if let Some(w) = self.pid.filter(|&p| p != child.id() as i32) {
                // SAFETY: the nginx worker we started through its master.
                unsafe { libc::kill(w, libc::SIGKILL) };
            }
            let _ = child.kill();
        }
        let _ = child.wait();
        if let Some(d) = self.dir.take() {
            if env::var_os("LOADGEN_KEEP_LOGS").is_some() {
                eprintln!("  server logs kept in {}", d.display());
            } else {
                let _ = fs::remove_dir_all(d);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn nchan_command(ctx: &Ctx, dir: &Path, port: u16) -> Res<Command> {
    let nginx = Path::new("/usr/sbin/nginx");
    if !nginx.exists() {
        return Err("nginx not installed: run benches/setup-peers.sh".into());
    }
    let template = fs::read_to_string(&ctx.opts.nchan_conf)
        .map_err(|e| format!("read {}: {e}", ctx.opts.nchan_conf.display()))?;
    let conf = template
        .replace("{{PORT}}", &port.to_string())
        .replace("{{PREFIX}}", &dir.display().to_string());
    let conf_path = dir.join("nginx.conf");
    fs::write(&conf_path, conf).map_err(|e| format!("write nginx.conf: {e}"))?;
    let mut c = pinned(nginx);
    c.arg("-p").arg(dir).arg("-c").arg(&conf_path);
    c.arg("-e").arg(dir.join("logs/error.log"));
    Ok(c)
}

/// nginx runs one worker under its master; the worker does all the work.
fn nginx_worker_pid(master: i32) -> Res<i32> {
    let path = format!("/proc/{master}/task/{master}/children");
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let kids = fs::read_to_string(&path).unwrap_or_default();
        if let Some(pid) = kids.split_whitespace().find_map(|p| p.parse().ok()) {
            return Ok(pid);
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err("nginx worker process not found".into())
}

// ===================================================================================
// Raw floor server
// ===================================================================================

enum Role {
    Http,
    Sse,
    Ws { deflate: bool },
}

struct FConn {
    sock: TcpStream,
    role: Role,
    inbuf: Vec<u8>,
    /// Bytes a full socket buffer refused; flushed on the next writable event.
    out: Vec<u8>,
    /// (channel, index in that channel's subscriber list)
    member: Option<(String, usize)>,
}

impl FConn {
    /// One write() of pre-encoded bytes; any remainder waits in `out`. False = dead.
    fn send(&mut self, bytes: &[u8]) -> bool {
        if !self.out.is_empty() {
            self.out.extend_from_slice(bytes);
            return true;
        }
        match self.sock.write(bytes) {
            Ok(n) => {
                self.out.extend_from_slice(&bytes[n..]);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.out.extend_from_slice(bytes);
                true
            }
            Err(_) => false,
        }
    }

    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            match self.sock.write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        self.out = Vec::new();
        true
    }
}

#[derive(Default)]
struct Chan {
    subs: Vec<usize>,
    next_id: u64,
}

enum FloorReq {
    Publish {
        chan: String,
        body: Vec<u8>,
    },
    Sse {
        chan: String,
    },
    Ws {
        chan: String,
        key: String,
        deflate: bool,
    },
    Status,
    NotFound,
}

struct Floor {
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<FConn>>,
    free: Vec<usize>,
    chans: HashMap<String, Chan>,
}

const LISTENER: Token = Token(usize::MAX - 1);

fn floor_entry(args: &[String]) -> i32 {
    let addr = match args {
        [flag, a, ..] if flag == "--listen" => a.parse::<SocketAddr>(),
        _ => "127.0.0.1:8080".parse(),
    };
    let run = addr.map_err(|e| e.to_string()).and_then(run_floor);
    match run {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("floor-server: {e}");
            1
        }
    }
}

/// Listener with a 4096 backlog (mio's default is 1024; crier and nginx use 4096 too), so
/// connect bursts are not slowed by SYN retransmits.
fn floor_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(TcpListener::from_std(s.into()))
}

fn run_floor(addr: SocketAddr) -> Res<()> {
    let poll = Poll::new().map_err(|e| e.to_string())?;
    let mut listener = floor_listener(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| e.to_string())?;
    let mut f = Floor {
        poll,
        listener,
        conns: Vec::new(),
        free: Vec::new(),
        chans: HashMap::new(),
    };
    let mut events = Events::with_capacity(1024);
    // The harness stops the floor; the lifetime cap only guards against orphaning.
    let deadline = Instant::now() + Duration::from_secs(4 * 3600);
    while Instant::now() < deadline {
        if let Err(e) = f.poll.poll(&mut events, Some(Duration::from_secs(1))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll: {e}"));
            }
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                f.accept_all();
                continue;
            }
            let t = ev.token().0;
            if ev.is_writable() && !f.conns[t].as_mut().is_some_and(FConn::flush) {
                f.close(t);
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() {
                f.on_readable(t);
            }
        }
    }
    Ok(())
}

impl Floor {
    fn accept_all(&mut self) {
        loop {
            let (mut sock, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return, // WouldBlock, or EMFILE: retry on the next event
            };
            let _ = sock.set_nodelay(true);
            let t = self.free.pop().unwrap_or(self.conns.len());
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut sock, Token(t), interest)
                .is_err()
            {
                continue;
            }
            let c = FConn {
                sock,
                role: Role::Http,
                inbuf: Vec::new(),
                out: Vec::new(),
                member: None,
            };
            if t == self.conns.len() {
                self.conns.push(Some(c));
            } else {
                self.conns[t] = Some(c);
            }
        }
    }

    fn close(&mut self, t: usize) {
        let Some(mut c) = self.conns.get_mut(t).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.sock);
        if let Some((name, slot)) = c.member {
            if let Some(ch) = self.chans.get_mut(&name) {
                ch.subs.swap_remove(slot);
                // The former last subscriber now sits at `slot`: fix its back-reference.
                if let Some(&moved) = ch.subs.get(slot) {
                    if let Some(Some(m)) = self.conns.get_mut(moved) {
                        m.member = Some((name, slot));
                    }
                }
            }
        }
        self.free.push(t);
    }

    fn on_readable(&mut self, t: usize) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(c) = self.conns[t].as_mut() else {
                return;
            };
            match c.sock.read(&mut buf) {
                Ok(0) => return self.close(t),
                // Subscribers' input (pongs, close frames) is ignored.
                Ok(n) if matches!(c.role, Role::Http) => c.inbuf.extend_from_slice(&buf[..n]),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(t),
            }
        }
        self.serve_requests(t);
    }

    /// Handles every complete (possibly pipelined) request buffered on connection `t`.
    fn serve_requests(&mut self, t: usize) {
        let mut replies = Vec::new();
        loop {
            let Some(c) = self.conns[t].as_mut() else {
                return;
            };
            if !matches!(c.role, Role::Http) {
                break;
            }
            let (used, req) = match parse_floor_request(&c.inbuf) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(_) => return self.close(t),
            };
            c.inbuf.drain(..used);
            match req {
                FloorReq::Publish { chan, body } => {
                    let (id, n) = self.publish(&chan, &body);
                    let json = format!(
                        "{{\"channel\":\"{chan}\",\"id\":{id},\"subscribers\":{n},\
                         \"published_messages\":{id},\"stored_messages\":0}}"
                    );
                    replies.extend_from_slice(http_json(200, &json).as_bytes());
                }
                FloorReq::Status => {
                    let subs: usize = self.chans.values().map(|c| c.subs.len()).sum();
                    let json = format!("{{\"subscribers\":{subs}}}");
                    replies.extend_from_slice(http_json(200, &json).as_bytes());
                }
                FloorReq::NotFound => replies.extend_from_slice(http_json(404, "{}").as_bytes()),
                FloorReq::Sse { chan } => self.subscribe(t, &chan, Role::Sse, SSE_HEAD.into()),
                FloorReq::Ws { chan, key, deflate } => {
                    let head = ws_accept_head(&key, deflate);
                    self.subscribe(t, &chan, Role::Ws { deflate }, head);
                }
            }
        }
        let alive = self.conns[t].as_mut().is_some_and(|c| c.send(&replies));
        if !alive {
            self.close(t);
        }
    }

    fn subscribe(&mut self, t: usize, chan: &str, role: Role, head: String) {
        let ch = self.chans.entry(chan.to_string()).or_default();
        let Some(c) = self.conns[t].as_mut() else {
            return;
        };
        c.role = role;
        c.inbuf = Vec::new();
        c.member = Some((chan.to_string(), ch.subs.len()));
        ch.subs.push(t);
        if !c.send(head.as_bytes()) {
            self.close(t);
        }
    }

    /// The floor itself: encode once, then one write() per subscriber socket.
    fn publish(&mut self, chan: &str, body: &[u8]) -> (u64, usize) {
        let ch = self.chans.entry(chan.to_string()).or_default();
        ch.next_id += 1;
        let id = ch.next_id;
        let sse = sse_event(id, body);
        let ws = ws_server_frame(body, false);
        let mut wsd: Option<Vec<u8>> = None;
        let mut dead = Vec::new();
        for &t in &ch.subs {
            let Some(c) = self.conns[t].as_mut() else {
                continue;
            };
            let bytes: &[u8] = match c.role {
                Role::Sse => &sse,
                Role::Ws { deflate: false } => &ws,
                Role::Ws { deflate: true } => {
                    wsd.get_or_insert_with(|| ws_server_frame(&deflate_message(body), true))
                }
                Role::Http => continue,
            };
            if !c.send(bytes) {
                dead.push(t);
            }
        }
        let n = ch.subs.len() - dead.len();
        for t in dead {
            self.close(t);
        }
        (id, n)
    }
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                        Cache-Control: no-cache\r\nConnection: keep-alive\r\n\r\n";

fn sse_event(id: u64, body: &[u8]) -> Vec<u8> {
    let mut e = format!("id: {id}\n").into_bytes();
    for line in body.split(|&c| c == b'\n') {
        e.extend_from_slice(b"data: ");
        e.extend_from_slice(line);
        e.push(b'\n');
    }
    e.push(b'\n');
    e
}

fn ws_accept_head(key: &str, deflate: bool) -> String {
    use base64::Engine as _;
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(WS_GUID.as_bytes());
    let accept = base64::engine::general_purpose::STANDARD.encode(h.finalize());
    let ext = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
         client_no_context_takeover\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{ext}\r\n"
    )
}

fn http_json(status: u16, body: &str) -> String {
    let reason = if status == 200 { "OK" } else { "Not Found" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One complete request from the front of `buf`: (bytes used, request).
fn parse_floor_request(buf: &[u8]) -> Res<Option<(usize, FloorReq)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Request::new(&mut headers);
    let head_len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let path = r.path.unwrap_or("/");
    let method = r.method.unwrap_or("GET");
    if method == "POST" {
        let len: usize = header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() < head_len + len {
            return Ok(None);
        }
        let body = buf[head_len..head_len + len].to_vec();
        let req = match path.strip_prefix("/pub?id=") {
            Some(chan) => FloorReq::Publish {
                chan: chan.split('&').next().unwrap_or_default().to_string(),
                body,
            },
            None => FloorReq::NotFound,
        };
        return Ok(Some((head_len + len, req)));
    }
    let req = if let Some(chan) = path.strip_prefix("/ev/") {
        FloorReq::Sse { chan: chan.into() }
    } else if let (Some(chan), Some(key)) = (path.strip_prefix("/ws/"), header("sec-websocket-key"))
    {
        let deflate =
            header("sec-websocket-extensions").is_some_and(|v| v.contains("permessage-deflate"));
        FloorReq::Ws {
            chan: chan.into(),
            key,
            deflate,
        }
    } else if path == "/status" {
        FloorReq::Status
    } else {
        FloorReq::NotFound
    };
    Ok(Some((head_len, req)))
}

// ===================================================================================
// Options
// ===================================================================================

struct Opts {
    scenarios: Vec<Scenario>,
    peers: Vec<Peer>,
    runs: usize,
    subs: Option<usize>,
    messages: Option<usize>,
    size: usize,
    rate: f64,
    burst: bool,
    transports: Option<Vec<Transport>>,
    channels: usize,
    publishers: usize,
    sizes: Vec<usize>,
    per_client: usize,
    concurrency: usize,
    crier_bin: PathBuf,
    server_workers: usize,
    server_args: Vec<String>,
    target: Option<SocketAddr>,
    server_cmd: Option<String>,
    server_pid: Option<i32>,
    nchan_conf: PathBuf,
    wait_s: u64,
    seed: u64,
}

const USAGE: &str = "\
usage: cargo bench --bench loadgen -- <scenario> [options]
scenarios: idle-memory | fanout | channels | connect-rate | all (every scenario)
  --peer crier|floor|nchan|all   server(s) to measure, comma list allowed (default crier;
                                 several peers add a comparison table with ratios)
  --runs K                       repetitions, medians reported (default 3)
  --transport T[,T..]            sse | ws | ws-deflate (scenario default otherwise)
  --subs N                       subscribers (default 10000)
  --messages M                   messages (fanout 200, channels 20000)
  --size S                       payload bytes (default 128)
  --rate R | --burst             fanout publishing: R msgs/s (default 20) or back-to-back
  --channels C                   channels scenario: channel count (default 1000)
  --publishers P                 channels scenario: publisher connections (default 4)
  --sizes A,B,C                  idle-memory subscriber counts (default 1000,10000,19000)
  --per-client N                 subscribers per client process (default 9000)
  --concurrency N                handshakes in flight per client process (default 256)
  --crier-bin PATH               crier binary (default target/release/crier, or $CRIER_BIN)
  --server-workers N             crier --workers (default 1)
  --server-arg ARG               extra crier argument (repeatable)
  --target http://HOST:PORT      use a running server (memory/CPU need --server-pid)
  --server-cmd 'CMD {port}'      start this command as the server ({port}, {addr})
  --nchan-conf PATH              nginx/nchan template (default benches/peers/nchan.conf)
  --wait S                       max seconds to wait for deliveries (default 60)";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_list<T>(v: &str, f: impl Fn(&str) -> Res<T>) -> Res<Vec<T>> {
    v.split(',').filter(|s| !s.is_empty()).map(f).collect()
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Res<T> {
    v.parse().map_err(|_| format!("{flag}: bad number {v:?}"))
}

fn parse_target(url: &str) -> Res<SocketAddr> {
    let hostport = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let addr: SocketAddr = hostport
        .parse()
        .map_err(|_| format!("--target: want http://IP:PORT, got {url:?}"))?;
    if !addr.ip().is_loopback() {
        return Err("--target must be a loopback address".into());
    }
    Ok(addr)
}

fn parse_opts(args: &[String]) -> Res<Opts> {
    let mut o = Opts {
        scenarios: Vec::new(),
        peers: vec![Peer::Crier],
        runs: 3,
        subs: None,
        messages: None,
        size: 128,
        rate: 20.0,
        burst: false,
        transports: None,
        channels: 1000,
        publishers: 4,
        sizes: vec![1000, 10_000, 19_000],
        per_client: DEFAULT_PER_CLIENT,
        concurrency: 256,
        crier_bin: env::var_os("CRIER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest_dir().join("target/release/crier")),
        server_workers: 1,
        server_args: Vec::new(),
        target: None,
        server_cmd: None,
        server_pid: None,
        nchan_conf: manifest_dir().join("benches/peers/nchan.conf"),
        wait_s: 60,
        seed: 0x5eed,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        if flag == "--burst" {
            o.burst = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        if !flag.starts_with("--") {
            o.scenarios.extend(Scenario::parse(flag)?);
            continue;
        }
        let v = match inline.or_else(|| it.next().cloned()) {
            Some(v) => v,
            None => return Err(format!("{flag} needs a value\n{USAGE}")),
        };
        match flag {
            "--peer" => o.peers = Peer::parse(&v)?,
            "--runs" => o.runs = parse_num::<usize>(flag, &v)?.max(1),
            "--subs" => o.subs = Some(parse_num(flag, &v)?),
            "--messages" => o.messages = Some(parse_num(flag, &v)?),
            "--size" => o.size = parse_num(flag, &v)?,
            "--rate" => o.rate = parse_num(flag, &v)?,
            "--transport" => o.transports = Some(parse_list(&v, Transport::parse)?),
            "--channels" => o.channels = parse_num::<usize>(flag, &v)?.max(1),
            "--publishers" => o.publishers = parse_num::<usize>(flag, &v)?.max(1),
            "--sizes" => o.sizes = parse_list(&v, |s| parse_num(flag, s))?,
            "--per-client" => o.per_client = parse_num::<usize>(flag, &v)?.clamp(1, 19_000),
            "--concurrency" => o.concurrency = parse_num::<usize>(flag, &v)?.max(1),
            "--crier-bin" => o.crier_bin = PathBuf::from(v),
            "--server-workers" => o.server_workers = parse_num(flag, &v)?,
            "--server-arg" => o.server_args.push(v),
            "--target" => o.target = Some(parse_target(&v)?),
            "--server-cmd" => o.server_cmd = Some(v),
            "--server-pid" => o.server_pid = Some(parse_num(flag, &v)?),
            "--nchan-conf" => o.nchan_conf = PathBuf::from(v),
            "--wait" => o.wait_s = parse_num(flag, &v)?,
            "--seed" => o.seed = parse_num(flag, &v)?,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if o.scenarios.is_empty() {
        return Err(format!("no scenario given\n{USAGE}"));
    }
    if o.target.is_some() || o.server_cmd.is_some() {
        o.peers = vec![Peer::Custom];
    }
    if o.scenarios.len() > 1 && !args.iter().any(|a| a.starts_with("--peer")) {
        o.peers = vec![Peer::Crier, Peer::Floor, Peer::Nchan];
    }
    Ok(o)
}

// ===================================================================================
// Scenarios
// ===================================================================================

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    IdleMemory,
    Fanout,
    Channels,
    ConnectRate,
}

impl Scenario {
    fn parse(s: &str) -> Res<Vec<Scenario>> {
        Ok(match s {
            "idle-memory" => vec![Scenario::IdleMemory],
            "fanout" => vec![Scenario::Fanout],
            "channels" => vec![Scenario::Channels],
            "connect-rate" => vec![Scenario::ConnectRate],
            "all" => vec![
                Scenario::IdleMemory,
                Scenario::Fanout,
                Scenario::Channels,
                Scenario::ConnectRate,
            ],
            _ => return Err(format!("unknown scenario {s:?}\n{USAGE}")),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Scenario::IdleMemory => "idle-memory",
            Scenario::Fanout => "fanout",
            Scenario::Channels => "channels",
            Scenario::ConnectRate => "connect-rate",
        }
    }

    fn default_transports(self) -> Vec<Transport> {
        match self {
            Scenario::IdleMemory | Scenario::ConnectRate => vec![Transport::Sse, Transport::Ws],
            Scenario::Fanout | Scenario::Channels => vec![Transport::Sse],
        }
    }
}

/// One measured case: a scenario with one transport.
#[derive(Clone, Copy)]
struct Case {
    scenario: Scenario,
    transport: Transport,
}

impl Case {
    fn label(&self, o: &Opts) -> String {
        let t = self.transport.name();
        match self.scenario {
            Scenario::IdleMemory => format!("idle-memory {t} at {:?} subscribers", o.sizes),
            Scenario::Fanout => {
                let mode = if o.burst {
                    "burst".to_string()
                } else {
                    format!("paced {}/s", o.rate)
                };
                format!(
                    "fanout {t} {} subs x {} msgs x {} B, {mode}",
                    o.subs.unwrap_or(10_000),
                    o.messages.unwrap_or(200),
                    o.size
                )
            }
            Scenario::Channels => format!(
                "channels {t} {} subs / {} channels, {} msgs from {} publishers",
                o.subs.unwrap_or(10_000),
                o.channels,
                o.messages.unwrap_or(20_000),
                o.publishers
            ),
            Scenario::ConnectRate => format!(
                "connect-rate {t} {} subscriptions, {} in flight",
                o.subs.unwrap_or(10_000),
                o.concurrency
            ),
        }
    }
}

struct Ctx<'a> {
    opts: &'a Opts,
    epoch: u64,
    peer: Peer,
}

type Metrics = Vec<(String, f64)>;

fn put(m: &mut Metrics, name: &str, v: f64) {
    m.push((name.to_string(), v));
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn run_case(ctx: &Ctx, case: Case) -> Res<Metrics> {
    match case.scenario {
        Scenario::IdleMemory => idle_memory(ctx, case.transport),
        Scenario::Fanout => fanout(ctx, case.transport),
        Scenario::Channels => channels(ctx, case.transport),
        Scenario::ConnectRate => connect_rate(ctx, case.transport),
    }
}

fn warm_job(ctx: &Ctx, addr: SocketAddr, channels: usize) -> PubJob {
    PubJob {
        addr,
        msgs: (0..channels as u32).map(|c| (c, Body::Warm)).collect(),
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

fn idle_memory(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    let mut m = Metrics::new();
    for &n in &ctx.opts.sizes {
        let p = idle_point(ctx, transport, n)?;
        let t = transport.name();
        put(&mut m, &format!("{t}_{n}_rss_B_per_sub"), p.rss_per_sub);
        put(
            &mut m,
            &format!("{t}_{n}_tcp_buf_B_per_conn"),
            p.tcp_buf_per_conn,
        );
        put(
            &mut m,
            &format!("{t}_{n}_sock_slab_B_per_conn"),
            p.slab_per_conn,
        );
        put(
            &mut m,
            &format!("{t}_{n}_empty_rss_KiB"),
            p.empty_rss as f64 / 1024.0,
        );
    }
    Ok(m)
}

struct IdlePoint {
    rss_per_sub: f64,
    /// Kernel TCP buffer memory (sockstat), both ends of each loopback connection.
    tcp_buf_per_conn: f64,
    /// Kernel socket objects (slabinfo), both ends of each loopback connection.
    slab_per_conn: f64,
    empty_rss: u64,
}

/// Byte delta per connection of an optional kernel counter (NaN when unreadable).
fn per_conn(before: Option<u64>, after: Option<u64>, conns: f64) -> f64 {
    match (before, after) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / conns,
        _ => f64::NAN,
    }
}

fn idle_point(ctx: &Ctx, transport: Transport, n: usize) -> Res<IdlePoint> {
    let server = Server::start(ctx)?;
    let pid = server.pid()?;
    thread::sleep(Duration::from_millis(300));
    let rss0 = proc_rss_bytes(pid)?;
    let (k0, s0) = (sockstat_tcp_mem_bytes(), kernel_socket_slab_bytes());
    let plan = SubPlan {
        transport,
        total: n,
        channels: 1,
    };
    let mut pool = Pool::spawn(ctx, server.addr, &plan)?;
    let a = pool.wait_connected(n, Duration::from_secs(120))?;
    if a.failed > 0 {
        let r = pool.report()?;
        return Err(format!(
            "{} of {n} subscribers failed: {:?}",
            a.failed, r.errors
        ));
    }
    confirm_registered(ctx, server.addr, &mut pool, 1)?;
    thread::sleep(Duration::from_millis(500));
    let rss1 = proc_rss_bytes(pid)?;
    let (k1, s1) = (sockstat_tcp_mem_bytes(), kernel_socket_slab_bytes());
    pool.quit();
    let conns = a.connected as f64;
    Ok(IdlePoint {
        rss_per_sub: rss1.saturating_sub(rss0) as f64 / conns,
        tcp_buf_per_conn: per_conn(k0, k1, conns),
        slab_per_conn: per_conn(s0, s1, conns),
        empty_rss: rss0,
    })
}

/// Everything a delivery scenario (fanout, channels) needs to score its run.
struct Delivery {
    transport: Transport,
    pool: Pool,
    server: Server,
    connected: u64,
}

/// Starts a server, connects and confirms `plan` subscribers.
fn setup_delivery(ctx: &Ctx, plan: &SubPlan) -> Res<Delivery> {
    let server = Server::start(ctx)?;
    let mut pool = Pool::spawn(ctx, server.addr, plan)?;
    let a = pool.wait_connected(plan.total, Duration::from_secs(120))?;
    if a.failed > 0 {
        let r = pool.report()?;
        return Err(format!(
            "{} of {} subscribers failed: {:?}",
            a.failed, plan.total, r.errors
        ));
    }
    confirm_registered(ctx, server.addr, &mut pool, plan.channels)?;
    Ok(Delivery {
        transport: plan.transport,
        pool,
        server,
        connected: a.connected,
    })
}

/// Waits for `expected` deliveries (or a 5 s stall / --wait), then scores the run.
fn score_delivery(
    ctx: &Ctx,
    d: &mut Delivery,
    expected: u64,
    cpu0: Option<f64>,
    out: &PubOutcome,
) -> Res<Metrics> {
    let wait = Duration::from_secs(ctx.opts.wait_s);
    d.pool
        .wait_for(wait, Some(Duration::from_secs(5)), |a| a.recv >= expected)?;
    let cpu1 = d.server.pid.map(proc_cpu_secs).transpose()?;
    let r = d.pool.report()?;
    let span = r.agg.last_recv.saturating_sub(out.first_write).max(1);
    let mut m = Metrics::new();
    put(
        &mut m,
        "deliveries_per_s",
        r.agg.recv as f64 / (span as f64 / 1e9),
    );
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => (b - a) * 1e6 / (r.agg.recv.max(1) as f64),
        _ => f64::NAN,
    };
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
    m.push(("out_of_order".into(), r.ooo as f64));
    Ok(m)
}

fn fanout(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    let o = ctx.opts;
    let (n, msgs) = (o.subs.unwrap_or(10_000), o.messages.unwrap_or(200));
    let plan = SubPlan {
        transport,
        total: n,
        channels: 1,
    };
    let mut d = setup_delivery(ctx, &plan)?;
    let cpu0 = d.server.pid.map(proc_cpu_secs).transpose()?;
    let out = publish(PubJob {
        addr: d.server.addr,
        msgs: (0..msgs as u64).map(|k| (0, Body::Seq(k))).collect(),
        rate: (!o.burst).then_some(o.rate),
        epoch: ctx.epoch,
        size: o.size,
        timeout: Duration::from_secs(o.wait_s),
    });
    let expected = d.connected * msgs as u64;
    let m = score_delivery(ctx, &mut d, expected, cpu0, &out)?;
    d.pool.quit();
    Ok(m)
}

/// xorshift64*: deterministic channel choice for the channels scenario.
fn next_rand(s: &mut u64) -> u64 {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    s.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn channels(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    let o = ctx.opts;
    let (n, msgs, c) = (
        o.subs.unwrap_or(10_000),
        o.messages.unwrap_or(20_000),
        o.channels,
    );
    let plan = SubPlan {
        transport,
        total: n,
        channels: c,
    };
    let mut d = setup_delivery(ctx, &plan)?;
    // Subscriber i listens on channel i % c.
    let per_chan: Vec<u64> = (0..c).map(|ch| ((n + c - 1 - ch) / c) as u64).collect();
    let mut seed = o.seed.max(1);
    let list: Vec<(u32, Body)> = (0..msgs as u64)
        .map(|k| ((next_rand(&mut seed) % c as u64) as u32, Body::Seq(k)))
        .collect();
    let expected: u64 = list.iter().map(|&(ch, _)| per_chan[ch as usize]).sum();
    let cpu0 = d.server.pid.map(proc_cpu_secs).transpose()?;
    let base = PubJob {
        addr: d.server.addr,
        msgs: list,
        rate: None,
        epoch: ctx.epoch,
        size: o.size,
        timeout: Duration::from_secs(o.wait_s),
    };
    let out = publish_parallel(base, o.publishers);
    let pub_span = out.last_reply.saturating_sub(out.first_write).max(1);
    let mut m = vec![(
        "publishes_per_s".to_string(),
        out.ok as f64 / (pub_span as f64 / 1e9),
    )];
    m.extend(score_delivery(ctx, &mut d, expected, cpu0, &out)?);
    // Several publishers interleave freely, so arrival order across them is not defined.
    m.retain(|(k, _)| k != "out_of_order");
    d.pool.quit();
    Ok(m)
}

fn connect_rate(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    let n = ctx.opts.subs.unwrap_or(10_000);
    let server = Server::start(ctx)?;
    let cpu0 = server.pid.map(proc_cpu_secs).transpose()?;
    let plan = SubPlan {
        transport,
        total: n,
        channels: 1,
    };
    let mut pool = Pool::spawn(ctx, server.addr, &plan)?;
    pool.wait_connected(n, Duration::from_secs(120))?;
    let cpu1 = server.pid.map(proc_cpu_secs).transpose()?;
    let r = pool.report()?;
    pool.quit();
    let span = r.last_established.saturating_sub(r.first_start).max(1);
    let mut m = Metrics::new();
    put(
        &mut m,
        "subscriptions_per_s",
        r.agg.connected as f64 / (span as f64 / 1e9),
    );
    put(&mut m, "handshake_p50_ms", ms(r.conn_lat.percentile(0.50)));
    put(&mut m, "handshake_p99_ms", ms(r.conn_lat.percentile(0.99)));
    let cpu = match (cpu0, cpu1) {
        (Some(a), Some(b)) => (b - a) * 1e6 / (r.agg.connected.max(1) as f64),
        _ => f64::NAN,
    };
    put(&mut m, "server_cpu_us_per_subscription", cpu);
    put(&mut m, "connected", r.agg.connected as f64);
    put(&mut m, "failed", r.agg.failed as f64);
    if !r.errors.is_empty() {
        eprintln!("  notes: clients {:?}", r.errors);
    }
    Ok(m)
}

// ===================================================================================
// Runs, medians, reporting
// ===================================================================================

struct Summary {
    label: String,
    scenario: Scenario,
    peer: Peer,
    names: Vec<String>,
    runs: Vec<Metrics>,
    failures: Vec<String>,
}

impl Summary {
    fn values(&self, name: &str) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.iter().find(|(k, _)| k == name).map(|&(_, v)| v))
            .collect()
    }

    fn median(&self, name: &str) -> Option<f64> {
        let mut v = self.values(name);
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        })
    }
}

fn run_peer(o: &Opts, epoch: u64, case: Case, peer: Peer) -> Summary {
    let ctx = Ctx {
        opts: o,
        epoch,
        peer,
    };
    let label = case.label(o);
    let mut s = Summary {
        label: label.clone(),
        scenario: case.scenario,
        peer,
        names: Vec::new(),
        runs: Vec::new(),
        failures: Vec::new(),
    };
    if peer == Peer::Crier && o.target.is_none() && !o.crier_bin.exists() {
        s.failures.push(format!(
            "crier binary {} not found (cargo build --release)",
            o.crier_bin.display()
        ));
        return s;
    }
    for run in 1..=o.runs {
        eprintln!("[{}] {label}: run {run}/{}", peer.name(), o.runs);
        match run_case(&ctx, case) {
            Ok(m) => {
                if s.names.is_empty() {
                    s.names = m.iter().map(|(k, _)| k.clone()).collect();
                }
                s.runs.push(m);
            }
            Err(e) => {
                eprintln!("  run {run} failed: {e}");
                s.failures.push(e);
            }
        }
        thread::sleep(Duration::from_millis(300));
    }
    s
}

fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.abs() >= 1000.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn json_num(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn print_summary(s: &Summary, machine: &str) {
    println!(
        "\n== {} — peer {} ({} of {} runs ok) ==",
        s.label,
        s.peer.name(),
        s.runs.len(),
        s.runs.len() + s.failures.len()
    );
    let mut head = format!("{:<36} {:>12}", "metric", "median");
    for i in 1..=s.runs.len() {
        head.push_str(&format!(" {:>12}", format!("run{i}")));
    }
    println!("{head}");
    for name in &s.names {
        let mut row = format!(
            "{:<36} {:>12}",
            name,
            fmt_num(s.median(name).unwrap_or(f64::NAN))
        );
        for v in s.values(name) {
            row.push_str(&format!(" {:>12}", fmt_num(v)));
        }
        println!("{row}");
    }
    for f in &s.failures {
        println!("  failed run: {f}");
    }
    let medians: Map<String, Value> = s
        .names
        .iter()
        .map(|n| (n.clone(), json_num(s.median(n).unwrap_or(f64::NAN))))
        .collect();
    let runs: Vec<Value> = s
        .runs
        .iter()
        .map(|r| Value::Object(r.iter().map(|(k, v)| (k.clone(), json_num(*v))).collect()))
        .collect();
    let line = json!({
        "bench": "crier-loadgen", "scenario": s.scenario.name(), "case": s.label,
        "peer": s.peer.name(), "runs": runs.len(), "median": medians, "per_run": runs,
        "failures": s.failures, "machine": machine,
    });
    println!("{line}");
}

/// Side-by-side medians of crier, floor and nchan for one case, with ratios.
fn print_comparison(group: &[&Summary]) {
    let find = |p: Peer| group.iter().find(|s| s.peer == p);
    let Some(first) = group.iter().find(|s| !s.names.is_empty()) else {
        return;
    };
    println!("\n== comparison: {} ==", first.label);
    println!(
        "{:<36} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "metric (median)", "crier", "floor", "nchan", "crier/floor", "crier/nchan"
    );
    let mut rows = Map::new();
    for name in &first.names {
        let get = |p: Peer| find(p).and_then(|s| s.median(name)).unwrap_or(f64::NAN);
        let (c, f, n) = (get(Peer::Crier), get(Peer::Floor), get(Peer::Nchan));
        println!(
            "{:<36} {:>12} {:>12} {:>12} {:>12} {:>12}",
            name,
            fmt_num(c),
            fmt_num(f),
            fmt_num(n),
            fmt_num(c / f),
            fmt_num(c / n)
        );
        rows.insert(
            name.clone(),
            json!({"crier": json_num(c), "floor": json_num(f), "nchan": json_num(n),
                   "crier_over_floor": json_num(c / f), "crier_over_nchan": json_num(c / n)}),
        );
    }
    println!(
        "{}",
        json!({"bench": "crier-loadgen", "comparison": first.label, "metrics": rows})
    );
}

fn harness_entry(args: &[String]) -> i32 {
    let o = match parse_opts(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let machine = machine_note(); // before pinning, which narrows available_parallelism
    if ncpus() > 1 {
        pin_to_core(1);
    }
    println!("# crier loadgen — {machine}");
    let epoch = mono_ns();
    let mut all_ok = true;
    for &scenario in &o.scenarios {
        let transports = o
            .transports
            .clone()
            .unwrap_or_else(|| scenario.default_transports());
        for transport in transports {
            let case = Case {
                scenario,
                transport,
            };
            let sums: Vec<Summary> = o
                .peers
                .iter()
                .map(|&p| run_peer(&o, epoch, case, p))
                .collect();
            for s in &sums {
                print_summary(s, &machine);
                all_ok &= !s.runs.is_empty();
            }
            if sums.len() > 1 {
                print_comparison(&sums.iter().collect::<Vec<_>>());
            }
        }
    }
    i32::from(!all_ok)
}
