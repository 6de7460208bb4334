//! How many connections a server says it holds, read from its own status page. The churn
//! scenario polls it after closing its subscribers: a connection the server still counts
//! has not been torn down yet, and memory read before that would be memory not yet freed,
//! not memory leaked.
//!
//! Each peer counts differently, so the gauge is compared with its own value on the idle
//! server, never with zero:
//! * crier: `/status` JSON `connections.total` (every open connection, the probe included);
//! * floor: `/status` JSON `subscribers` (connections subscribed to a channel);
//! * nchan: `/status` (`nchan_stub_status`, text) line `subscribers: N`;
//! * custom (`--target`, `--server-cmd`): crier's format when it answers so, otherwise no
//!   gauge (the scenario then waits a fixed time instead).
//!
//! The cluster scenario reads one more thing here: whether a node's Redis backplane is up.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::peers::Peer;
use crate::publish::reply::ReplyReader;
use crate::Res;

/// Which number of which status page to read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConnGauge {
    CrierConnections,
    FloorSubscribers,
    NchanSubscribers,
}

impl ConnGauge {
    /// The gauge of `peer`; for a custom server, whichever format it answers in, or None.
    pub fn find(peer: Peer, addr: SocketAddr) -> Res<Option<ConnGauge>> {
        let g = match peer {
            Peer::Crier => ConnGauge::CrierConnections,
            Peer::Floor => ConnGauge::FloorSubscribers,
            Peer::Nchan => ConnGauge::NchanSubscribers,
            Peer::Custom => {
                let g = ConnGauge::CrierConnections;
                return Ok(g.read(addr).ok().map(|_| g));
            }
        };
        g.read(addr)?;
        Ok(Some(g))
    }

    /// The current value, from one `GET /status`.
    pub fn read(self, addr: SocketAddr) -> Res<u64> {
        let body = status_page(addr)?;
        let v = match self {
            ConnGauge::CrierConnections => json_number(&body, &["connections", "total"]),
            ConnGauge::FloorSubscribers => json_number(&body, &["subscribers"]),
            ConnGauge::NchanSubscribers => text_number(&body, "subscribers:"),
        };
        v.ok_or_else(|| format!("{self:?} not found in /status: {body:.200}"))
    }

    /// Channels the server still holds (crier `channels`, nchan `channels:`); None
    /// where the status page does not say (the floor).
    pub fn channels(self, addr: SocketAddr) -> Res<Option<u64>> {
        Ok(match self {
            ConnGauge::CrierConnections => json_number(&status_page(addr)?, &["channels"]),
            ConnGauge::NchanSubscribers => text_number(&status_page(addr)?, "channels:"),
            ConnGauge::FloorSubscribers => None,
        })
    }

    /// Polls until the gauge is back at `idle` or `bound` passes; returns how long it
    /// took, or None when it never got there.
    pub fn wait_for(self, addr: SocketAddr, idle: u64, bound: Duration) -> Res<Option<Duration>> {
        let start = Instant::now();
        loop {
            if self.read(addr)? <= idle {
                return Ok(Some(start.elapsed()));
            }
            if start.elapsed() > bound {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// crier's `/status` `backplane.state` ("up", "degraded", "down"); None for a node
/// without `--redis`. The cluster scenario waits for "up" on every node before it
/// subscribes anyone, since until then a publish is answered 503.
pub fn backplane_state(addr: SocketAddr) -> Res<Option<String>> {
    let body = status_page(addr)?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("/status: {e}"))?;
    Ok(v["backplane"]["state"].as_str().map(str::to_string))
}

/// The body of `GET /status` on a fresh connection. `Connection: close` lets the server
/// drop the probe as soon as it has answered, so the probe counts the same every time.
fn status_page(addr: SocketAddr) -> Res<String> {
    let timeout = Duration::from_secs(2);
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("status connect: {e}"))?;
    let req = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\
               Connection: close\r\n\r\n";
    s.write_all(req.as_bytes())
        .map_err(|e| format!("status write: {e}"))?;
    let reply = ReplyReader::new(s)
        .next_reply(Instant::now() + timeout)
        .map_err(|e| format!("status reply: {e}"))?;
    if reply.status != 200 {
        return Err(format!("/status answered {}", reply.status));
    }
    Ok(String::from_utf8_lossy(&reply.body).into_owned())
}

/// The number at `path` in a JSON document.
fn json_number(body: &str, path: &[&str]) -> Option<u64> {
    let v: Value = serde_json::from_str(body).ok()?;
    path.iter().fold(&v, |v, k| &v[*k]).as_u64()
}

/// The number after `label` at the start of a line (nginx / nchan stub status).
fn text_number(body: &str, label: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|v| v.trim().parse().ok())
}
