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

/// How much later than its configured time a timed event (a timeout, a
/// ping, a drain deadline) may be seen on a loaded 2-core CI machine.
/// Timing checks keep a tight lower bound (not too early: that is the
/// behaviour under test) and allow this much on top.
pub const SLACK: Duration = Duration::from_secs(3);

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
    f: impl FnMut() -> Result<T, String>,
) -> T {
    poll_for(within, f).unwrap_or_else(|last| {
        panic!("timed out after {within:?} waiting for {what}; last: {last}")
    })
}

/// Polls `f` until it returns `Ok`; after `within`, gives up with the
/// last `Err` (for tests that explain a timeout themselves).
pub fn poll_for<T, E>(within: Duration, mut f: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + within;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(last) if Instant::now() > deadline => return Err(last),
            Err(_) => std::thread::sleep(POLL_PERIOD),
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

/// The server's `requests` counter (request heads parsed), from a fresh
/// `/status`; the figure includes that status request itself.
pub fn requests_so_far(addr: SocketAddr) -> u64 {
    num(&status(addr), "/requests")
}

/// Polls `/status` until the server has parsed the heads of `n` more
/// requests than when `before` (from [`requests_so_far`]) was read, not
/// counting the polls themselves. The server counts a request as soon as
/// its head is parsed, so this tells when a request whose body is still
/// on its way has been seen.
pub fn wait_requests_parsed(addr: SocketAddr, before: u64, n: u64) {
    let mut polls = 0;
    poll_until(&format!("{n} more request head(s) parsed"), || {
        // Each poll's own request is counted in the figure it returns.
        polls += 1;
        let got = num(&status(addr), "/requests");
        if got >= before + polls + n {
            Ok(())
        } else {
            Err(format!(
                "requests {got}, want {before} + {polls} polls + {n}"
            ))
        }
    })
}

/// A keep-alive connection that reactor `avoid` does not serve, so its
/// requests never wake that reactor: for watching something the reactor
/// must do on its own timer. Call it while no other connection is open
/// (the serving reactor is told by the per-reactor connection counts).
pub fn conn_avoiding_reactor(addr: SocketAddr, avoid: usize) -> Conn {
    // SO_REUSEPORT spreads connections by a hash of the address pair,
    // which changes with every new source port.
    for _ in 0..32 {
        let mut c = Conn::connect(addr);
        let s = poll_until("the probe connection to be the only one", || {
            let s = c.status();
            if num(&s, "/connections/total") == 1 {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        });
        let reactors = s["reactors"].as_array().expect("reactors in /status");
        let on = reactors
            .iter()
            .position(|r| r["connections"] == 1)
            .unwrap_or_else(|| panic!("no reactor holds the probe connection: {s}"));
        if on != avoid {
            return c;
        }
    }
    panic!("32 connections in a row all went to reactor {avoid}")
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
