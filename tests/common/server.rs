//! An in-process server on 127.0.0.1:0 (`crier::Server::start`) and the
//! plain HTTP calls the tests make to it: ureq requests, publishing (one-shot
//! or on a keep-alive connection), channel figures.

use super::conn::{Conn, READ_TIMEOUT};
use std::net::SocketAddr;

/// Starts a server on 127.0.0.1:0 with `workers` reactors and `tweak`
/// applied to the config.
pub fn start_with(workers: usize, tweak: impl FnOnce(&mut crier::Config)) -> crier::Handle {
    let mut cfg = crier::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers,
        log_level: "off".into(),
        ..Default::default()
    };
    tweak(&mut cfg);
    crier::Server::start(cfg).expect("server starts")
}

/// Starts a server with default settings and 4 reactors.
pub fn start() -> crier::Handle {
    start_with(4, |_| {})
}

/// `http://ADDR` for ureq.
pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// A ureq agent with timeouts (no connection pooling, so connection
/// counts in /status are predictable).
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(READ_TIMEOUT)
        .max_idle_connections(0)
        .build()
}

/// Calls a ureq request and returns the response whatever its status.
pub fn call(req: ureq::Request) -> ureq::Response {
    match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    }
}

/// Sends a ureq request with a body and returns the response whatever its
/// status.
pub fn send(req: ureq::Request, body: &[u8]) -> ureq::Response {
    match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    }
}

/// Reads a ureq response body as JSON.
pub fn json_of(r: ureq::Response) -> serde_json::Value {
    let text = r.into_string().expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// Publishes `body` to `channels` (`a` or `a/b`) with ureq; asserts 200 and
/// returns the reply JSON.
pub fn publish(addr: SocketAddr, channels: &str, body: &[u8]) -> serde_json::Value {
    publish_event(addr, channels, None, body)
}

/// Like [`publish`] with an optional `Event-Type` header.
pub fn publish_event(
    addr: SocketAddr,
    channels: &str,
    event: Option<&str>,
    body: &[u8],
) -> serde_json::Value {
    let mut req = agent().post(&url(addr, &format!("/pub?id={channels}")));
    if let Some(e) = event {
        req = req.set("Event-Type", e);
    }
    let r = send(req, body);
    assert_eq!(r.status(), 200, "publish to {channels}");
    json_of(r)
}

/// Message id from a publish reply (a decimal string).
pub fn id_of(reply: &serde_json::Value) -> u64 {
    reply["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {reply}"))
        .parse()
        .expect("numeric id")
}

/// The figures of channel `ch` (`GET /pub?id=CH`), or None on 404.
pub fn channel_info(addr: SocketAddr, ch: &str) -> Option<serde_json::Value> {
    let r = call(agent().get(&url(addr, &format!("/pub?id={ch}"))));
    match r.status() {
        200 => Some(json_of(r)),
        404 => None,
        s => panic!("GET /pub?id={ch}: status {s}"),
    }
}

/// A publisher on one keep-alive connection (raw HTTP/1.1).
pub struct KeepAlivePublisher {
    pub conn: Conn,
}

impl KeepAlivePublisher {
    pub fn connect(addr: SocketAddr) -> KeepAlivePublisher {
        KeepAlivePublisher {
            conn: Conn::connect(addr),
        }
    }

    /// Publishes `body` to `channels`; asserts 200 and a kept-alive
    /// connection; returns the message id.
    pub fn publish(&mut self, channels: &str, body: &[u8]) -> u64 {
        let mut req = format!(
            "POST /pub?id={channels} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.conn.write(&req);
        let r = self.conn.read_response();
        assert_eq!(r.status, 200, "publish: {}", r.text());
        assert_eq!(r.header("connection"), Some("keep-alive"));
        id_of(&r.json())
    }
}
