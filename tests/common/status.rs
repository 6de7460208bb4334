//! Waiting for the server to reach a state: `/status` documents, reading
//! figures out of them, and polling (`/status` or anything else) until a
//! condition holds or a deadline passes. Tests wait with these instead of
//! sleeping and hoping.

use super::conn::Conn;
use super::server::channel_info;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long `poll_until` waits for an asynchronous effect.
pub const POLL_DEADLINE: Duration = Duration::from_secs(5);

/// How long polls sleep between two looks.
const POLL_PERIOD: Duration = Duration::from_millis(20);

/// `GET /status` on a fresh `Connection: close` connection (so it never
/// leaves an idle connection behind that would skew the counts).
pub fn status(addr: SocketAddr) -> serde_json::Value {
    let mut c = Conn::connect(addr);
    c.write(b"GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    r.json()
}

/// A number in a status document by JSON pointer (`/connections/http`);
/// panics if missing.
pub fn num(s: &serde_json::Value, pointer: &str) -> u64 {
    s.pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {s}"))
}

/// Polls `f` until it returns `Ok`, or panics after [`POLL_DEADLINE`]
/// with the last `Err` it returned.
pub fn poll_until<T>(what: &str, f: impl FnMut() -> Result<T, String>) -> T {
    poll_until_within(POLL_DEADLINE, what, f)
}

/// Like [`poll_until`] with an explicit deadline.
pub fn poll_until_within<T>(
    within: Duration,
    what: &str,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => {
                if Instant::now() > deadline {
                    panic!("timed out after {within:?} waiting for {what}; last: {last}");
                }
                std::thread::sleep(POLL_PERIOD);
            }
        }
    }
}

/// Polls `/status` until `pred` holds for it; returns that document.
pub fn poll_status(
    addr: SocketAddr,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    poll_status_within(addr, POLL_DEADLINE, what, pred)
}

/// Like [`poll_status`] with an explicit deadline.
pub fn poll_status_within(
    addr: SocketAddr,
    within: Duration,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    poll_until_within(within, what, || {
        let s = status(addr);
        if pred(&s) {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
}

/// Waits until channel `ch` has at least `n` subscribers.
pub fn wait_subscribers(addr: SocketAddr, ch: &str, n: u64) {
    poll_until(
        &format!("{n} subscriber(s) on {ch}"),
        || match channel_info(addr, ch) {
            Some(v) if v["subscribers"].as_u64() >= Some(n) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
}
