//! Subscriber clients. The harness starts worker processes (`worker`: one mio loop each)
//! that hold thousands of subscribers (`sub`, parsing `sse` or `ws`), and drives them
//! through a `pool`. This file holds what both sides of that pipe share: the transport,
//! the spec a worker starts from, and the counters it reports back as JSON lines.

mod sse;
mod sub;
mod tls;
mod ws;

pub mod pool;
pub mod worker;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};

use crate::hist::Hist;
use crate::Res;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transport {
    Sse,
    Ws,
    WsDeflate,
}

impl Transport {
    pub fn parse(s: &str) -> Res<Self> {
        match s {
            "sse" => Ok(Transport::Sse),
            "ws" => Ok(Transport::Ws),
            "ws-deflate" => Ok(Transport::WsDeflate),
            _ => Err(format!("unknown transport {s:?} (sse | ws | ws-deflate)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::Ws => "ws",
            Transport::WsDeflate => "ws-deflate",
        }
    }

    pub fn is_ws(self) -> bool {
        self != Transport::Sse
    }

    pub fn request(self, channel: &str) -> String {
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

/// Everything a worker process needs, passed as one JSON argument.
struct WorkerSpec {
    addr: SocketAddr,
    src: Ipv4Addr,
    transport: Transport,
    first: usize,
    count: usize,
    channels: usize,
    /// Publisher connections: seq k comes from connection k % publishers, and only
    /// messages of one connection have a defined order.
    publishers: usize,
    concurrency: usize,
    epoch: u64,
    connect_timeout: Duration,
    lifetime: Duration,
    /// `--tls`: the CA file to trust (empty: plaintext).
    tls_ca: String,
}

impl WorkerSpec {
    fn to_json(&self) -> Value {
        json!({
            "addr": self.addr.to_string(), "src": self.src.to_string(),
            "transport": self.transport.name(), "first": self.first, "count": self.count,
            "channels": self.channels, "publishers": self.publishers,
            "concurrency": self.concurrency, "epoch": self.epoch,
            "connect_timeout_ms": self.connect_timeout.as_millis() as u64,
            "lifetime_s": self.lifetime.as_secs(), "tls_ca": self.tls_ca,
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
            publishers: (num("publishers")? as usize).max(1),
            concurrency: (num("concurrency")? as usize).max(1),
            epoch: num("epoch")?,
            connect_timeout: Duration::from_millis(num("connect_timeout_ms")?),
            lifetime: Duration::from_secs(num("lifetime_s")?),
            tls_ca: v["tls_ca"].as_str().unwrap_or_default().to_string(),
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
    /// Zeroes the message counters and the latency histogram (a "reset"), keeping the
    /// connection counters: the same subscribers then measure another phase.
    fn reset_messages(&mut self) {
        self.recv = 0;
        self.distinct = 0;
        self.dup = 0;
        self.ooo = 0;
        self.unparsed = 0;
        self.inflated = 0;
        self.last_recv = 0;
        self.lat = Hist::default();
    }

    fn note_error(&mut self, e: &str) {
        note_error(&mut self.errors, e);
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

/// Keeps the first few distinct errors: enough to diagnose, bounded however many fail.
pub fn note_error(errors: &mut Vec<String>, e: &str) {
    if errors.len() < 5 && !errors.iter().any(|x| x == e) {
        errors.push(e.to_string());
    }
}
