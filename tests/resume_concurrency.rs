//! Lossless resume under load: several publishers hammer one channel over
//! keep-alive connections while subscribers keep disconnecting and
//! resuming from their last id. Every subscriber's concatenated sequence
//! must be exactly the server's sequence (as a never-disconnecting
//! reference subscriber sees it) from its first message on: no gap, no
//! duplicate, no reordering.

mod common;

use common::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

const CHANNEL: &str = "hammer";
const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 300;
const END: &str = "end";

/// Whether publishers are still running, and how many resumes happened
/// meanwhile (so the test proves resumes overlapped live publishing).
struct Load {
    publishing: AtomicBool,
    resumes_while_publishing: AtomicUsize,
}

impl Load {
    fn new() -> Arc<Load> {
        Arc::new(Load {
            publishing: AtomicBool::new(true),
            resumes_while_publishing: AtomicUsize::new(0),
        })
    }

    /// Notes a resume (a reconnect or a poll from a known position).
    fn resumed(&self) {
        if self.publishing.load(Ordering::SeqCst) {
            self.resumes_while_publishing.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn check(&self) {
        let n = self.resumes_while_publishing.load(Ordering::SeqCst);
        assert!(n >= 10, "only {n} resumes overlapped the publishing");
    }
}

/// A small xorshift generator, so runs differ by seed but need no crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Reads SSE events until `END`; returns (id, data) without `END`.
fn read_all_sse(sse: &mut SseClient, out: &mut Vec<(u64, String)>) {
    loop {
        let ev = sse.event();
        assert_eq!(ev.kind, "message", "{ev:?}");
        if ev.data == END {
            return;
        }
        out.push((ev.last_id.parse().expect("numeric id"), ev.data));
    }
}

/// Runs the publishers (each on its own keep-alive connection, bodies
/// `p<thread>-<n>`), then publishes `END`. Returns every (id, body)
/// acknowledged, sorted by id.
fn run_publishers(
    addr: SocketAddr,
    start: Arc<Barrier>,
    publishing: &AtomicBool,
) -> Vec<(u64, String)> {
    let handles: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let start = start.clone();
            thread::spawn(move || {
                let mut publ = KeepAlivePublisher::connect(addr);
                start.wait();
                let mut acks = Vec::with_capacity(PER_PUBLISHER);
                for n in 0..PER_PUBLISHER {
                    let body = format!("p{p}-{n}");
                    let id = publ.publish(CHANNEL, body.as_bytes());
                    acks.push((id, body));
                    // Spread the publishing over a few hundred milliseconds
                    // so resumes overlap with live traffic.
                    thread::sleep(Duration::from_millis(1));
                }
                acks
            })
        })
        .collect();
    let mut all: Vec<(u64, String)> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("publisher panicked"))
        .collect();
    all.sort();
    publishing.store(false, Ordering::SeqCst);
    publish(addr, CHANNEL, END.as_bytes());
    all
}

/// Checks the reference against the acknowledged publishes and that
/// `seq` (a subscriber's concatenated messages) is the reference from
/// its first message on.
fn check_against_reference(reference: &[(u64, String)], who: &str, seq: &[(u64, String)]) {
    let Some(first) = seq.first() else {
        panic!("{who} received nothing");
    };
    for w in seq.windows(2) {
        assert!(
            w[0].0 < w[1].0,
            "{who}: ids not strictly increasing: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    let start = reference
        .iter()
        .position(|m| m == first)
        .unwrap_or_else(|| panic!("{who}: first message {first:?} not in the reference"));
    let expected = &reference[start..];
    if seq != expected {
        let at = seq
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(seq.len().min(expected.len()));
        panic!(
            "{who}: differs from the reference at index {at} (of {} vs {} expected): got {:?}, expected {:?}",
            seq.len(),
            expected.len(),
            seq.get(at),
            expected.get(at)
        );
    }
}

/// 4 publishers × 300 messages on one channel; 6 SSE subscribers read a
/// few events, disconnect, resume with `Last-Event-ID`, again and again.
fn sse_hammer(workers: usize) {
    let server = start_with(workers, |c| {
        c.store_messages = 10_000;
    });
    let addr = server.addr();
    let mut reference_client = SseClient::connect(addr, &format!("/ev/{CHANNEL}"));
    let reference = thread::spawn(move || {
        let mut got = Vec::new();
        read_all_sse(&mut reference_client, &mut got);
        got
    });

    const SUBSCRIBERS: usize = 6;
    let start = Arc::new(Barrier::new(PUBLISHERS + SUBSCRIBERS));
    let load = Load::new();
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|s| {
            let start = start.clone();
            let load = load.clone();
            thread::spawn(move || {
                let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ ((s as u64 + 1) * 7919));
                start.wait();
                // Join at different moments.
                thread::sleep(Duration::from_millis(5 * s as u64));
                let mut got: Vec<(u64, String)> = Vec::new();
                let mut connections = 0;
                loop {
                    let extra = match got.last() {
                        Some((id, _)) => {
                            load.resumed();
                            format!("Last-Event-ID: {id}\r\n")
                        }
                        None => String::new(),
                    };
                    let mut sse = SseClient::connect_with(addr, &format!("/ev/{CHANNEL}"), &extra);
                    connections += 1;
                    let n = 1 + rng.below(40);
                    let mut done = false;
                    for _ in 0..n {
                        let ev = sse.event();
                        assert_eq!(ev.kind, "message", "subscriber {s}: {ev:?}");
                        if ev.data == END {
                            done = true;
                            break;
                        }
                        got.push((ev.last_id.parse().expect("numeric id"), ev.data));
                    }
                    drop(sse);
                    if done {
                        return (got, connections);
                    }
                    // Sometimes stay away a little while messages pile up.
                    if rng.below(4) == 0 {
                        thread::sleep(Duration::from_millis(rng.below(20)));
                    }
                }
            })
        })
        .collect();

    let acked = run_publishers(addr, start, &load.publishing);
    let reference = reference.join().expect("reference subscriber panicked");

    // The reference saw the server's whole sequence: every acknowledged
    // publish, once, in id order.
    assert_eq!(reference.len(), PUBLISHERS * PER_PUBLISHER);
    assert_eq!(reference, acked, "reference subscriber vs publish replies");

    for (s, h) in subscribers.into_iter().enumerate() {
        let (got, connections) = h.join().expect("subscriber panicked");
        assert!(
            connections >= 5,
            "subscriber {s} reconnected only {connections} times"
        );
        check_against_reference(&reference, &format!("SSE subscriber {s}"), &got);
    }
    load.check();
    let s = status(addr);
    assert_eq!(
        s["published_messages"].as_u64(),
        Some((PUBLISHERS * PER_PUBLISHER + 1) as u64)
    );
}

#[test]
fn sse_subscribers_resuming_under_load_lose_and_repeat_nothing_4_workers() {
    sse_hammer(4);
}

#[test]
fn sse_subscribers_resuming_under_load_lose_and_repeat_nothing_2_workers() {
    sse_hammer(2);
}

/// The same load with long-poll loops (each poll resumes from the last
/// answer's `Last-Event-ID`) and WebSocket JSON subscribers that resume
/// with `last_event_id`.
fn longpoll_and_websocket_hammer(workers: usize) {
    let server = start_with(workers, |c| {
        c.store_messages = 10_000;
        c.longpoll_timeout = 2;
    });
    let addr = server.addr();
    let mut reference_client = SseClient::connect(addr, &format!("/ev/{CHANNEL}"));
    let reference = thread::spawn(move || {
        let mut got = Vec::new();
        read_all_sse(&mut reference_client, &mut got);
        got
    });

    const POLLERS: usize = 3;
    const WEBSOCKETS: usize = 3;
    let start = Arc::new(Barrier::new(PUBLISHERS + POLLERS + WEBSOCKETS));
    let load = Load::new();
    let mut subscribers = Vec::new();
    for s in 0..POLLERS {
        let start = start.clone();
        let load = load.clone();
        subscribers.push(thread::spawn(move || {
            start.wait();
            thread::sleep(Duration::from_millis(7 * s as u64));
            let mut got: Vec<(u64, String)> = Vec::new();
            let mut conn = Conn::connect(addr);
            let mut pos: Option<String> = None;
            let mut polls = 0;
            loop {
                let extra = match &pos {
                    Some(p) => {
                        load.resumed();
                        format!("Last-Event-ID: {p}\r\n")
                    }
                    None => String::new(),
                };
                let r = longpoll_on(&mut conn, &format!("/lp/{CHANNEL}"), &extra);
                polls += 1;
                pos = Some(
                    r.header("last-event-id")
                        .unwrap_or_else(|| panic!("no Last-Event-ID: {r:?}"))
                        .to_string(),
                );
                if r.status == 304 {
                    continue;
                }
                assert_eq!(r.status, 200, "poller {s}: {r:?}");
                let v = r.json();
                assert_eq!(v["missed"], false, "poller {s}: {v}");
                for m in v["messages"].as_array().expect("messages") {
                    let data = m["data"].as_str().unwrap().to_string();
                    if data == END {
                        return (got, polls);
                    }
                    got.push((m["id"].as_str().unwrap().parse().unwrap(), data));
                }
                // Every few polls, start over on a new connection.
                if polls % 7 == 0 {
                    conn = Conn::connect(addr);
                }
            }
        }));
    }
    for s in 0..WEBSOCKETS {
        let start = start.clone();
        let load = load.clone();
        subscribers.push(thread::spawn(move || {
            let mut rng = Rng(0x9E37_79B9 ^ ((s as u64 + 11) * 104_729));
            start.wait();
            thread::sleep(Duration::from_millis(6 * s as u64));
            let mut got: Vec<(u64, String)> = Vec::new();
            let mut connections = 0;
            loop {
                let path = match got.last() {
                    Some((id, _)) => {
                        load.resumed();
                        format!("/ws/{CHANNEL}?format=json&last_event_id={id}")
                    }
                    None => format!("/ws/{CHANNEL}?format=json"),
                };
                let mut ws = WsJsonClient::connect(addr, &path);
                connections += 1;
                for _ in 0..1 + rng.below(40) {
                    let v = ws.next_json();
                    assert_ne!(v["event"], "missed", "websocket {s}: {v}");
                    let data = v["data"].as_str().unwrap().to_string();
                    if data == END {
                        return (got, connections);
                    }
                    got.push((v["id"].as_str().unwrap().parse().unwrap(), data));
                }
                drop(ws);
            }
        }));
    }

    let acked = run_publishers(addr, start, &load.publishing);
    let reference = reference.join().expect("reference subscriber panicked");
    assert_eq!(reference, acked, "reference subscriber vs publish replies");
    for (i, h) in subscribers.into_iter().enumerate() {
        let who = if i < POLLERS {
            format!("long-poller {i}")
        } else {
            format!("WebSocket subscriber {}", i - POLLERS)
        };
        let (got, rounds) = h.join().unwrap_or_else(|_| panic!("{who} panicked"));
        assert!(rounds >= 3, "{who}: only {rounds} polls/connections");
        check_against_reference(&reference, &who, &got);
    }
    load.check();
}

#[test]
fn longpoll_and_websocket_resume_under_load_4_workers() {
    longpoll_and_websocket_hammer(4);
}

#[test]
fn longpoll_and_websocket_resume_under_load_2_workers() {
    longpoll_and_websocket_hammer(2);
}

/// Starting a server with 3 or more reactors must work in a debug build
/// too (the test profile).
#[test]
fn three_or_more_workers_start_in_debug_builds() {
    let started = std::panic::catch_unwind(|| start_with(3, |_| {}));
    assert!(
        started.is_ok(),
        "Server::start with workers=3 panicked (src/reactor/mod.rs: \
         `setup.id as u64 * 0x9E37_79B9_7F4A_7C15` overflows for id >= 2)"
    );
}
