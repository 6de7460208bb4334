//! Liveness: dead peers are reaped (EOF, RST, half-open), slow or silent
//! clients are cut off (handshake and idle timeouts), idle subscribers get
//! keepalive pings, WebSockets that stop answering pings are closed, the
//! connection cap answers 503 and long-lived subscribers are rotated.
//!
//! Every wait polls for its condition (a socket closing, a figure in
//! /status) with a deadline. Timing checks have a tight lower bound (not
//! too early is the behaviour under test; the timer ticks every 250 ms) and
//! a generous upper one: the configured time plus `SLACK`, since a loaded
//! 2-core runner can be seconds late. What must *not* happen during a
//! period is watched for a bounded time and then checked in /status too.

mod common;

use common::*;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// `secs` as a Duration.
fn secs(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

/// How long to wait for something due after `due` seconds.
fn within(due: f64) -> Duration {
    secs(due) + SLACK
}

/// Asserts that something due after `due` seconds, seen after `d`, came no
/// sooner than `lo` seconds and no later than `due` + [`SLACK`].
fn assert_timely(what: &str, d: Duration, lo: f64, due: f64) {
    assert!(
        d >= secs(lo),
        "{what} after {d:?}: too early (due at {due} s, not before {lo} s)"
    );
    assert!(
        d <= within(due),
        "{what} after {d:?}: due at {due} s, later than {:?}",
        within(due)
    );
}

// ---------------------------------------------------------------------------
// A client that goes away is noticed at once.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Leave {
    /// close(): FIN.
    Eof,
    /// SO_LINGER 0, then close(): RST.
    Reset,
}

/// Subscribes on `path` (a `kind` connection), leaves as `how`, and checks
/// the slot is freed within a second and counted under `how`.
fn client_leaves(path: &str, kind: &str, how: Leave) {
    let server = start_with(2, |_| {});
    let addr = server.addr();
    let stream = match kind {
        "eventsource" => SseClient::connect(addr, path).conn.stream,
        "stream" => StreamClient::connect(addr, path).conn.stream,
        "websocket" => ws_connect_raw(addr, path).stream,
        _ => unreachable!(),
    };
    let before = poll_status(addr, "subscribed", |s| {
        num(s, &format!("/connections/{kind}")) == 1 && num(s, "/subscribers") == 1
    });
    let counter = match how {
        Leave::Eof => "/dead_peers_reaped/eof",
        Leave::Reset => "/dead_peers_reaped/reset",
    };
    let n0 = num(&before, counter);
    if let Leave::Reset = how {
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }
    let t = Instant::now();
    drop(stream);
    // Only the status request's own connection is left (the previous
    // status connection may take a moment longer to leave the gauge: the
    // server closes it right after writing the reply). "At once": with the
    // default 30 s ping interval and TCP timeouts, nothing but the EOF or
    // RST itself can free the slot within the poll deadline.
    let s = poll_status(addr, "slot freed", |s| {
        num(s, &format!("/connections/{kind}")) == 0
            && num(s, "/subscribers") == 0
            && num(s, counter) == n0 + 1
            && num(s, "/connections/total") == 1
    });
    println!("{kind} {how:?}: slot freed after {:?}", t.elapsed());
    let gone = &s["dead_peers_reaped"];
    let total: u64 = ["eof", "reset", "timeout", "write_error"]
        .iter()
        .map(|k| gone[k].as_u64().unwrap())
        .sum();
    assert_eq!(total, n0 + 1, "counted once, under {counter}: {s}");
}

#[test]
fn client_eof_on_idle_sse_frees_the_slot_at_once() {
    client_leaves("/ev/gone", "eventsource", Leave::Eof);
}

#[test]
fn client_eof_on_idle_stream_frees_the_slot_at_once() {
    client_leaves("/sub/gone", "stream", Leave::Eof);
}

#[test]
fn client_eof_on_idle_websocket_frees_the_slot_at_once() {
    client_leaves("/ws/gone", "websocket", Leave::Eof);
}

#[test]
fn client_reset_on_idle_sse_frees_the_slot_at_once() {
    client_leaves("/ev/rst", "eventsource", Leave::Reset);
}

#[test]
fn client_reset_on_idle_stream_frees_the_slot_at_once() {
    client_leaves("/sub/rst", "stream", Leave::Reset);
}

// ---------------------------------------------------------------------------
// Slowloris and idle connections.
// ---------------------------------------------------------------------------

#[test]
fn slowloris_is_cut_off_after_handshake_timeout_while_others_are_served() {
    // 2 s rather than 1: room for the publish below to be served well
    // before the cut-off even on a loaded runner.
    const HANDSHAKE: f64 = 2.0;
    let server = start_with(2, |c| {
        c.handshake_timeout = HANDSHAKE as u64;
        c.idle_timeout = 30;
    });
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/sl");

    // One header byte every 200 ms: the head is never complete.
    let mut loris = Conn::connect(addr);
    let mut writer = loris.stream.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let dribbler = {
        let (stop, sent) = (stop.clone(), sent.clone());
        thread::spawn(move || {
            let head = b"GET /status HTTP/1.1\r\nHost: t\r\nX-Slow: ";
            for &b in head.iter().chain(std::iter::repeat(&b'z')).take(50) {
                if stop.load(Ordering::Relaxed) || writer.write_all(&[b]).is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // Meanwhile (once the dribbler is under way) the server serves
    // everyone else: the message is delivered while the slowloris is still
    // connected, i.e. before its cut-off.
    poll_until("the slowloris under way", || {
        match sent.load(Ordering::Relaxed) {
            n if n >= 2 => Ok(()),
            n => Err(format!("{n} bytes sent")),
        }
    });
    publish(addr, "sl", b"during");
    assert_eq!(sse.event().data, "during");
    let s = status(addr);
    assert_eq!(
        num(&s, "/closed_by_server/handshake_timeout"),
        0,
        "served only {:?} after the slowloris started, after its cut-off: {s}",
        started.elapsed()
    );

    // About HANDSHAKE seconds after its first byte the dribbler is
    // answered 408 (or just closed, if it keeps sending into a closed
    // socket).
    let got = loris.read_until_closed(within(HANDSHAKE));
    let closed_after = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    dribbler.join().unwrap();
    let text = String::from_utf8_lossy(&got);
    println!(
        "slowloris closed after {closed_after:?} having sent {} bytes; got {text:?}",
        sent.load(Ordering::Relaxed)
    );
    assert_timely(
        "slowloris cut-off",
        closed_after,
        HANDSHAKE - 0.3,
        HANDSHAKE,
    );
    if !got.is_empty() {
        assert!(text.starts_with("HTTP/1.1 408 "), "{text:?}");
        let r = Response::parse(&got).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.json()["status"], 408, "{r:?}");
    }
    let s = poll_status(addr, "handshake timeout counted", |s| {
        num(s, "/closed_by_server/handshake_timeout") == 1
    });
    assert_eq!(num(&s, "/closed_by_server/idle_timeout"), 0, "{s}");

    // Still serving.
    publish(addr, "sl", b"after");
    assert_eq!(sse.event().data, "after");
}

#[test]
fn silent_connection_is_closed_after_handshake_timeout() {
    let server = start_with(1, |c| {
        c.handshake_timeout = 1;
        c.idle_timeout = 30;
    });
    let addr = server.addr();
    let mut c = Conn::connect(addr);
    let t = Instant::now();
    let got = c.read_until_closed(within(1.0));
    assert_timely("silent connection cut-off", t.elapsed(), 0.7, 1.0);
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    // Only the status request's own connection is left.
    poll_status(addr, "handshake timeout counted", |s| {
        num(s, "/closed_by_server/handshake_timeout") == 1 && num(s, "/connections/http") == 1
    });
}

#[test]
fn idle_keepalive_publisher_is_closed_after_idle_timeout() {
    let server = start_with(1, |c| {
        c.idle_timeout = 1;
        c.handshake_timeout = 10;
    });
    let addr = server.addr();
    let mut busy = Conn::connect(addr);
    let mut idle = Conn::connect(addr);
    idle.publish("it", b"one");
    let t = Instant::now();
    // A connection with a request every 400 ms is never idle for 1 s (the
    // pacing is the behaviour under test, not a wait).
    for i in 0..6 {
        thread::sleep(Duration::from_millis(400));
        busy.publish("it", format!("busy {i}").as_bytes());
    }
    // The idle one was closed after about a second, without a response
    // (checked for the timing in idle_timeout_closes_at_about_the_configured_time).
    let got = idle.read_until_closed(within(1.0));
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    // The server counts a close before it drops the socket: no wait needed.
    let s = busy.status();
    println!("idle publisher closed; status after {:?}: {s}", t.elapsed());
    assert_eq!(num(&s, "/closed_by_server/idle_timeout"), 1, "{s}");
    assert_eq!(num(&s, "/closed_by_server/handshake_timeout"), 0, "{s}");
    assert_eq!(num(&s, "/connections/http"), 1, "{s}");
}

#[test]
fn idle_timeout_closes_at_about_the_configured_time() {
    let server = start_with(1, |c| {
        c.idle_timeout = 1;
        c.handshake_timeout = 10;
    });
    let addr = server.addr();
    let mut idle = Conn::connect(addr);
    idle.publish("it", b"one");
    let t = Instant::now();
    idle.read_until_closed(within(1.0));
    assert_timely("idle keep-alive close", t.elapsed(), 0.7, 1.0);
    poll_status(addr, "idle timeout counted", |s| {
        num(s, "/closed_by_server/idle_timeout") == 1
    });
}

#[test]
fn idle_subscribers_are_not_cut_off_by_handshake_or_idle_timeouts() {
    let server = start_with(2, |c| {
        c.handshake_timeout = 1;
        c.idle_timeout = 1;
        c.ping_interval = 0;
    });
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/quiet");
    let mut stream = StreamClient::connect(addr, "/sub/quiet");
    let mut ws = ws_connect_raw(addr, "/ws/quiet");
    // Something that must NOT happen: watch for more than two of either
    // timeout (and ticks), then check the figures as well as the sockets.
    thread::sleep(Duration::from_millis(2500));
    let s = status(addr);
    assert_eq!(num(&s, "/closed_by_server/idle_timeout"), 0, "{s}");
    assert_eq!(num(&s, "/closed_by_server/handshake_timeout"), 0, "{s}");
    assert_eq!(num(&s, "/connections/eventsource"), 1, "{s}");
    assert_eq!(num(&s, "/connections/stream"), 1, "{s}");
    assert_eq!(num(&s, "/connections/websocket"), 1, "{s}");
    assert_eq!(num(&s, "/subscribers"), 3, "{s}");
    publish(addr, "quiet", b"still there");
    assert_eq!(sse.event().data, "still there");
    assert!(sse.comments.is_empty(), "no pings with ping-interval 0");
    assert_eq!(stream.chunk(), b"still there\n");
    // An unmasked text frame of 11 bytes.
    assert_eq!(ws.exact(13), b"\x81\x0bstill there");
    let s = status(addr);
    assert_eq!(num(&s, "/closed_by_server/idle_timeout"), 0, "{s}");
    assert_eq!(num(&s, "/closed_by_server/handshake_timeout"), 0, "{s}");
    assert_eq!(num(&s, "/pings_sent"), 0, "{s}");
}

// ---------------------------------------------------------------------------
// Keepalive pings.
// ---------------------------------------------------------------------------

#[test]
fn idle_subscribers_get_keepalive_pings() {
    let server = start_with(2, |c| {
        c.ping_interval = 1;
        c.stream_ping = "ping\n".into();
    });
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/p");
    let t_sse = Instant::now();
    let mut stream = StreamClient::connect(addr, "/sub/p");
    let t_stream = Instant::now();

    sse.conn.stream.set_read_timeout(Some(within(1.0))).unwrap();
    assert_eq!(sse.conn.exact(3), b":\n\n", "SSE ping is an empty comment");
    let first = t_sse.elapsed();
    stream
        .conn
        .stream
        .set_read_timeout(Some(within(1.0)))
        .unwrap();
    assert_eq!(
        stream.chunk(),
        b"ping\n",
        "stream ping is a stream-ping chunk"
    );
    let stream_first = t_stream.elapsed();
    // And again about an interval later.
    assert_eq!(sse.conn.exact(3), b":\n\n");
    let second = t_sse.elapsed();
    println!("SSE pings at {first:?} and {second:?}; stream ping at {stream_first:?}");
    assert_timely("first SSE ping", first, 0.5, 1.0);
    assert_timely("first stream ping", stream_first, 0.5, 1.0);
    assert_timely("interval between pings", second - first, 0.5, 1.0);

    // An HTTP/1.0 stream (no chunking) gets the bare stream-ping bytes.
    let mut raw = Conn::connect(addr);
    raw.write(b"GET /sub/p HTTP/1.0\r\nHost: t\r\n\r\n");
    let head = raw.read_head();
    assert_eq!(head.status, 200, "{head:?}");
    let t_raw = Instant::now();
    raw.stream.set_read_timeout(Some(within(1.0))).unwrap();
    assert_eq!(raw.exact(5), b"ping\n");
    assert_timely("first raw stream ping", t_raw.elapsed(), 0.5, 1.0);

    let s = status(addr);
    assert!(num(&s, "/pings_sent") >= 4, "{s}");
    // The pings themselves never disturb the event stream.
    publish(addr, "p", b"real");
    let ev = sse.event();
    assert_eq!(ev.data, "real");
    let chunk = loop {
        let c = stream.chunk();
        if c != b"ping\n" {
            break c;
        }
    };
    assert_eq!(chunk, b"real\n");
}

#[test]
fn subscriber_that_just_got_a_message_is_not_pinged_early() {
    let server = start_with(1, |c| c.ping_interval = 1);
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/busy");
    // A message every 400 ms for 3 s: never silent for an interval (the
    // pacing is the behaviour under test, not a wait).
    for i in 0..8 {
        thread::sleep(Duration::from_millis(400));
        publish(addr, "busy", format!("m{i}").as_bytes());
        assert_eq!(sse.event().data, format!("m{i}"));
    }
    assert!(
        sse.comments.is_empty(),
        "pinged while busy: {:?}",
        sse.comments
    );
    assert_eq!(num(&status(addr), "/pings_sent"), 0);
    // Then silence: the first ping comes an interval after the last
    // message, not sooner.
    let t = Instant::now();
    sse.conn.stream.set_read_timeout(Some(within(1.0))).unwrap();
    assert_eq!(sse.conn.exact(3), b":\n\n");
    println!("first ping {:?} after the last message", t.elapsed());
    assert_timely("ping after the last message", t.elapsed(), 0.7, 1.0);
    let pings = num(&status(addr), "/pings_sent");
    assert!((1..=2).contains(&pings), "pings_sent {pings}");
}

#[test]
fn websocket_that_does_not_answer_pings_is_closed_after_pong_timeout() {
    let server = start_with(1, |c| {
        c.ping_interval = 1;
        c.pong_timeout = 1;
    });
    let addr = server.addr();
    let mut ws = ws_connect_raw(addr, "/ws/pt");
    let t = Instant::now();
    ws.stream.set_read_timeout(Some(within(1.0))).unwrap();
    assert_eq!(ws.exact(2), [0x89, 0x00], "an empty ping frame");
    let pinged = t.elapsed();
    // Never answered: closed about a pong timeout later.
    let rest = ws.read_until_closed(within(1.0));
    let closed = t.elapsed();
    println!("ping at {pinged:?}, closed at {closed:?}; then {rest:?}");
    assert_timely("ping", pinged, 0.5, 1.0);
    assert_timely("close after the ping", closed - pinged, 0.7, 1.0);
    let s = poll_status(addr, "pong timeout counted", |s| {
        num(s, "/connections/websocket") == 0
    });
    assert_eq!(num(&s, "/pong_timeouts"), 1, "{s}");
    assert_eq!(num(&s, "/closed_by_server/pong_timeout"), 1, "{s}");
}

#[test]
fn websocket_that_answers_pings_stays_connected() {
    let server = start_with(1, |c| {
        c.ping_interval = 1;
        c.pong_timeout = 1;
    });
    let addr = server.addr();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/ws/alive"), tcp).expect("handshake");
    // tungstenite answers pings by itself on the next read.
    let t = Instant::now();
    let mut pings = 0;
    while t.elapsed() < Duration::from_millis(3500) {
        match ws.read() {
            Ok(tungstenite::Message::Ping(_)) => pings += 1,
            Ok(m) => panic!("unexpected {m:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("connection lost after {:?}: {e}", t.elapsed()),
        }
    }
    assert!(pings >= 2, "{pings} pings in 3.5 s");
    publish(addr, "alive", b"still here");
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                assert_eq!(t, "still here");
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if Instant::now() < deadline => {
                assert!(matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ));
            }
            Err(e) => panic!("{e}"),
        }
    }
    let s = status(addr);
    assert_eq!(num(&s, "/pong_timeouts"), 0, "{s}");
    assert_eq!(num(&s, "/connections/websocket"), 1, "{s}");
}

// ---------------------------------------------------------------------------
// A peer that vanishes without FIN or RST.
// ---------------------------------------------------------------------------

/// A one-connection TCP proxy in front of the server that can be frozen:
/// it then stops reading and forwarding in both directions but keeps both
/// sockets open, so the server sees a live peer whose receive window
/// closes and never reopens (the closest loopback gets to a vanished
/// client: nothing is ever acknowledged as read again).
struct Proxy {
    addr: SocketAddr,
    frozen: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
    kept: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let kept = Arc::new(Mutex::new(Vec::new()));
        let (f, d, k) = (frozen.clone(), done.clone(), kept.clone());
        let acceptor = thread::spawn(move || {
            listener.set_nonblocking(true).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let client = loop {
                match listener.accept() {
                    Ok((c, _)) => break c,
                    Err(_) if Instant::now() < deadline && !d.load(Ordering::Relaxed) => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => return,
                }
            };
            client.set_nonblocking(false).unwrap();
            // A small receive buffer towards the server, so a few kilobytes
            // close the window once the proxy stops reading.
            let up = connect_small_rcvbuf(upstream, 4096);
            let pumps = [
                (client.try_clone().unwrap(), up.try_clone().unwrap()),
                (up.try_clone().unwrap(), client.try_clone().unwrap()),
            ];
            k.lock().unwrap().extend([client, up]);
            let handles: Vec<_> = pumps
                .into_iter()
                .map(|(from, to)| {
                    let (f, d) = (f.clone(), d.clone());
                    thread::spawn(move || pump(from, to, &f, &d))
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
        });
        Proxy {
            addr,
            frozen,
            done,
            threads: vec![acceptor],
            kept,
        }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::Relaxed);
    }
}

/// Copies `from` → `to` until EOF, an error, the end of the test, or a
/// freeze (after which it only waits, reading nothing).
fn pump(mut from: TcpStream, mut to: TcpStream, frozen: &AtomicBool, done: &AtomicBool) {
    from.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 16 * 1024];
    while !done.load(Ordering::Relaxed) {
        if frozen.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(50));
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if frozen.load(Ordering::Relaxed) || to.write_all(&buf[..n]).is_err() {
                    continue;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.kept.lock().unwrap().clear();
    }
}

#[test]
fn half_open_subscriber_is_reaped_by_tcp_user_timeout() {
    let server = start_with(1, |c| {
        c.tcp_user_timeout = 2;
        c.ping_interval = 1;
        // Large, so the slow-consumer cap is not what drops it.
        c.max_queued_bytes = 64 << 20;
    });
    let addr = server.addr();
    let proxy = Proxy::start(addr);
    let mut sse = SseClient::connect(proxy.addr, "/ev/ho");
    publish(addr, "ho", b"through the proxy");
    assert_eq!(sse.event().data, "through the proxy");
    let before = status(addr);
    assert_eq!(num(&before, "/connections/eventsource"), 1, "{before}");

    proxy.freeze();
    let t = Instant::now();
    // Data the peer never takes: it fills the proxy's window, then waits
    // in the server's socket while the kernel probes the zero window.
    let body = vec![b'h'; 64 << 10];
    for _ in 0..16 {
        publish(addr, "ho", &body);
    }
    let s = poll_status_within(
        addr,
        Duration::from_secs(20),
        "half-open peer reaped",
        |s| num(s, "/connections/eventsource") == 0,
    );
    let took = t.elapsed();
    println!(
        "half-open subscriber reaped {took:?} after the freeze; dead_peers_reaped {}, closed_by_server {}",
        s["dead_peers_reaped"], s["closed_by_server"]
    );
    assert_eq!(num(&s, "/subscribers"), 0, "{s}");
    assert_eq!(
        num(&s, "/dead_peers_reaped/timeout") + num(&s, "/dead_peers_reaped/write_error"),
        1,
        "{s}"
    );
    assert_eq!(num(&s, "/slow_consumers"), 0, "{s}");
    drop(sse);
    drop(proxy);
}

// ---------------------------------------------------------------------------
// Connection cap.
// ---------------------------------------------------------------------------

#[test]
fn connection_over_max_connections_gets_a_fast_503() {
    let server = start_with(2, |c| c.max_connections = 5);
    let addr = server.addr();
    // Five connections: one keep-alive for status, two subscribers, two idle.
    let mut ctl = Conn::connect(addr);
    let mut sse = SseClient::connect(addr, "/ev/cap");
    let _stream = StreamClient::connect(addr, "/sub/cap");
    let _idle: Vec<Conn> = (0..2).map(|_| Conn::connect(addr)).collect();
    poll_until("five connections", || {
        let s = ctl.status();
        if num(&s, "/connections/total") == 5 {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });

    // The sixth is told at once, before it says anything: not after a
    // handshake timeout (10 s) or a request that never comes.
    let t = Instant::now();
    let mut sixth = Conn::connect(addr);
    let r = sixth.read_response();
    let took = t.elapsed();
    assert_eq!(r.status, 503, "{r:?}");
    assert!(took < SLACK, "503 after {took:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("retry-after").is_some(), "{r:?}");
    let v = r.json();
    assert_eq!(v["status"], 503, "{v}");
    sixth.expect_eof();

    // A seventh that sends its request at once gets the same answer.
    let mut seventh = Conn::connect(addr);
    seventh.write(b"GET /status HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = seventh.read_response();
    assert_eq!(r.status, 503, "{r:?}");

    // The server counts an over-capacity close just after writing the
    // 503, so the figure may trail the answer by a moment.
    let s = poll_until("both 503s counted", || {
        let s = ctl.status();
        if num(&s, "/closed_by_server/over_capacity") >= 2 {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    assert_eq!(num(&s, "/closed_by_server/over_capacity"), 2, "{s}");
    assert_eq!(num(&s, "/connections/total"), 5, "{s}");
    // The five are served as before.
    ctl.publish("cap", b"still served");
    assert_eq!(sse.event().data, "still served");

    // One leaves: a new connection is accepted again.
    drop(_idle);
    poll_until("room again", || {
        let s = ctl.status();
        if num(&s, "/connections/total") <= 3 {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
    let s = status(addr);
    assert_eq!(num(&s, "/closed_by_server/over_capacity"), 2, "{s}");
}

// ---------------------------------------------------------------------------
// Connection lifetime.
// ---------------------------------------------------------------------------

#[test]
fn subscriber_is_asked_to_reconnect_after_max_connection_lifetime() {
    // 2 s ±10%: due by 2.2 s.
    const DUE: f64 = 2.2;
    let server = start_with(2, |c| {
        c.max_connection_lifetime = 2;
        c.retry_ms = 1000;
        c.reconnect_spread = 2;
    });
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/life");
    let t = Instant::now();
    let mut stream = StreamClient::connect(addr, "/sub/life");
    let t_stream = Instant::now();
    let mut ws = ws_connect_raw(addr, "/ws/life");
    let t_ws = Instant::now();
    // Messages before the end arrive as usual.
    publish(addr, "life", b"before");
    assert_eq!(sse.event().data, "before");
    assert_eq!(stream.chunk(), b"before\n");
    assert_eq!(ws.exact(8), b"\x81\x06before");

    let got = sse.conn.read_until_closed(within(DUE));
    let lived = t.elapsed();
    let text = String::from_utf8_lossy(&got).into_owned();
    println!("SSE subscriber closed after {lived:?} with {text:?}");
    assert_timely("SSE lifetime", lived, 1.6, DUE);
    let retry: u64 = text
        .strip_prefix("retry: ")
        .and_then(|r| r.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("expected only a retry field: {text:?}"))
        .parse()
        .expect("numeric retry");
    assert!((1000..=3000).contains(&retry), "retry {retry}");

    stream
        .conn
        .stream
        .set_read_timeout(Some(within(DUE)))
        .unwrap();
    assert_eq!(stream.next_chunk(), None, "stream ends with the last chunk");
    stream.conn.expect_eof();
    assert_timely("stream lifetime", t_stream.elapsed(), 1.6, DUE);

    // WebSocket: a close frame with 1001 (going away).
    let got = ws.read_until_closed(within(DUE));
    assert_timely("WebSocket lifetime", t_ws.elapsed(), 1.6, DUE);
    assert!(got.len() >= 4 && got[0] == 0x88, "close frame: {got:?}");
    assert_eq!(u16::from_be_bytes([got[2], got[3]]), 1001, "{got:?}");

    let s = poll_status(addr, "lifetime counted", |s| {
        num(s, "/connections/eventsource") == 0
            && num(s, "/connections/stream") == 0
            && num(s, "/connections/websocket") == 0
    });
    assert_eq!(num(&s, "/closed_by_server/lifetime"), 3, "{s}");
    assert_eq!(num(&s, "/subscribers"), 0, "{s}");
}
