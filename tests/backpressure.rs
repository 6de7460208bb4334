//! Backpressure: a subscriber that stops reading is dropped once its
//! unsent output passes `max-queued-bytes`, without holding back the
//! others, and the server's memory stays bounded however much is published
//! to subscribers that never read.

mod common;

use common::*;
use std::io::{self, Read};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

/// Reads `count` SSE events of exactly `size` bytes of data from `stream`
/// (after the `buffered` bytes), checking they come in publish order.
/// Each payload starts with `INDEX:NANOS:` where NANOS is when the
/// publisher sent it (since `base`); returns the publish→receive latencies.
///
/// Hand-rolled instead of `SseClient` so a hundred readers moving 160 MB
/// between them stay cheap even in a debug build.
fn read_events(
    mut stream: TcpStream,
    mut buf: Vec<u8>,
    count: usize,
    size: usize,
    base: Instant,
) -> Result<Vec<Duration>, String> {
    let mut latencies = Vec::with_capacity(count);
    let mut scan = 0;
    let mut tmp = vec![0u8; 64 * 1024];
    while latencies.len() < count {
        // Every complete event ("id: N\ndata: ...\n\n") in the buffer.
        while let Some(end) = buf[scan..].windows(2).position(|w| w == b"\n\n") {
            let block = &buf[..scan + end];
            let text = std::str::from_utf8(block).map_err(|e| e.to_string())?;
            let data = text
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .ok_or_else(|| format!("event without data: {text:.80}"))?;
            if data.len() != size {
                return Err(format!("event of {} bytes: {data:.40}", data.len()));
            }
            let mut parts = data.splitn(3, ':');
            let index: usize = parts.next().unwrap().parse().map_err(|_| "bad index")?;
            let sent: u64 = parts.next().unwrap_or("").parse().map_err(|_| "bad time")?;
            if index != latencies.len() {
                return Err(format!(
                    "message {index} arrived when {} was expected",
                    latencies.len()
                ));
            }
            let now = base.elapsed().as_nanos() as u64;
            latencies.push(Duration::from_nanos(now.saturating_sub(sent)));
            buf.drain(..scan + end + 2);
            scan = 0;
        }
        if latencies.len() == count {
            break;
        }
        scan = buf.len().saturating_sub(1);
        match stream.read(&mut tmp) {
            Ok(0) => return Err(format!("EOF after {} events", latencies.len())),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("after {} events: {e}", latencies.len())),
        }
    }
    Ok(latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[test]
fn slow_consumer_is_dropped_and_the_others_get_everything_in_time() {
    const READERS: usize = 100;
    const MESSAGES: usize = 400;
    const SIZE: usize = 4096;
    let server = start_with(2, |c| c.max_queued_bytes = 64 << 10);
    let addr = server.addr();

    // Subscribes with a tiny receive window and never reads. It also takes
    // a bulk channel: on loopback the server's kernel send buffer grows to
    // megabytes (see `slow_consumer_cap_counts_what_the_kernel_would_hold`),
    // which the 1.6 MB of the main feed alone would not get through.
    let mut stalled = Conn::from_stream(connect_small_rcvbuf(addr, 1024));
    stalled.write(b"GET /ev/sc/bulk HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n");

    let base = Instant::now();
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let mut sse = SseClient::connect(addr, "/ev/sc");
            let buffered = sse.conn.take_buffered();
            let stream = sse.conn.stream.try_clone().unwrap();
            thread::spawn(move || {
                let r = read_events(stream, buffered, MESSAGES, SIZE, base);
                drop(sse);
                r
            })
        })
        .collect();
    poll_status(addr, "every subscriber registered", |s| {
        num(s, "/subscribers") == READERS as u64 + 2
    });

    // Paced a little, as a real feed would be: each reader has to keep up
    // with 800 KB/s; the stalled one falls behind at once.
    let mut publisher = Conn::connect(addr);
    let bulk = vec![b'b'; 256 << 10];
    let mut dropped_at = None;
    for i in 0..MESSAGES {
        let mut body = format!("{i}:{}:", base.elapsed().as_nanos()).into_bytes();
        body.resize(SIZE, b'x');
        publisher.publish("sc", &body);
        if i % 16 == 0 {
            publisher.publish("bulk", &bulk);
        }
        if dropped_at.is_none() && i % 8 == 0 && num(&publisher.status(), "/slow_consumers") > 0 {
            dropped_at = Some(i);
        }
        thread::sleep(Duration::from_millis(5));
    }
    println!("stalled subscriber dropped by message {dropped_at:?} of {MESSAGES}");

    let mut latencies = Vec::new();
    for (i, r) in readers.into_iter().enumerate() {
        match r.join().unwrap() {
            Ok(l) => latencies.extend(l),
            Err(e) => panic!("reader {i}: {e}"),
        }
    }
    latencies.sort();
    let (p50, p99, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        *latencies.last().unwrap(),
    );
    println!(
        "publish→receive latency over {READERS} readers: p50 {p50:?}, p99 {p99:?}, max {max:?}"
    );
    assert!(p99 < Duration::from_secs(1), "p99 latency {p99:?}");

    // The stalled subscriber was cut off: it reads what the kernel had
    // buffered for it, then the end of the connection.
    let got = stalled.drain_until_closed(Duration::from_secs(10));
    println!("stalled subscriber got {got} bytes before being dropped");
    let s = poll_status(addr, "slow consumer counted", |s| {
        num(s, "/slow_consumers") >= 1
    });
    assert_eq!(num(&s, "/slow_consumers"), 1, "{s}");
    assert_eq!(num(&s, "/closed_by_server/slow_consumer"), 1, "{s}");
    assert_eq!(num(&s, "/connections/eventsource"), 0, "{s}");
    assert_eq!(num(&s, "/subscribers"), 0, "{s}");
}

/// Regression: `max-queued-bytes` used to count only the server's own out
/// queue; the kernel's send-buffer autotuning let a subscriber that never
/// reads soak up ~1.6 MB of unsent payload (`ss -tm`: notsent:1613560)
/// before the cap started counting. Subscriber sockets now set
/// TCP_NOTSENT_LOWAT, so the backlog stays in the counted queue.
///
/// Request: max-queued-bytes 65536; `GET /ev/k` from a client with
/// SO_RCVBUF 1024 that never reads; 1 MiB published to `k` (256 × 4 KiB).
/// Expected: the subscriber is dropped (slow_consumers 1).
#[test]
fn slow_consumer_cap_counts_what_the_kernel_would_hold() {
    let server = start_with(1, |c| c.max_queued_bytes = 64 << 10);
    let addr = server.addr();
    let mut stalled = Conn::from_stream(connect_small_rcvbuf(addr, 1024));
    stalled.write(b"GET /ev/k HTTP/1.1\r\nHost: t\r\n\r\n");
    poll_status(addr, "subscribed", |s| num(s, "/subscribers") == 1);
    let mut publisher = Conn::connect(addr);
    let body = vec![b'k'; 4096];
    for _ in 0..256 {
        publisher.publish("k", &body);
    }
    // The cut-off follows the publishes asynchronously: poll for it.
    let s = poll_for(POLL_DEADLINE, || {
        let s = status(addr);
        if num(&s, "/slow_consumers") >= 1 {
            Ok(s)
        } else {
            Err(s)
        }
    })
    .unwrap_or_else(|s| {
        // What the server had handed to the kernel for this client.
        let mut held = stalled.take_buffered().len();
        stalled
            .stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut tmp = vec![0u8; 64 << 10];
        while let Ok(n) = stalled.stream.read(&mut tmp) {
            if n == 0 {
                break;
            }
            held += n;
        }
        panic!(
            "a subscriber with 1 MiB unsent (cap 64 KiB) is still connected after \
             {POLL_DEADLINE:?}; it could read back {held} bytes queued in the server's \
             kernel socket; status {s}"
        )
    });
    assert_eq!(num(&s, "/slow_consumers"), 1, "{s}");
    assert_eq!(num(&s, "/closed_by_server/slow_consumer"), 1, "{s}");
}

#[test]
fn memory_stays_bounded_with_200_subscribers_that_never_read() {
    const SLOW: usize = 200;
    const SIZE: usize = 256 << 10;
    // 96 MiB in all: were the 200 queues not capped they would keep every
    // message alive (shared between them, but still all of it).
    const MESSAGES: usize = 384;
    const BOUND: u64 = 64 << 20;
    // A child process, so rss_bytes is the server's alone.
    let server = ChildServer::spawn(&["--workers", "2", "--max-queued-bytes", "65536"]);
    let addr = server.addr;
    let mut ctl = Conn::connect(addr);
    let mut slow = Vec::with_capacity(SLOW);
    for i in 0..SLOW {
        let mut c = Conn::from_stream(connect_small_rcvbuf(addr, 1024));
        let path = if i % 2 == 0 { "/ev/mem" } else { "/sub/mem" };
        c.write(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        slow.push(c);
    }
    let s = poll_until("every slow reader registered", || {
        let s = ctl.status();
        if num(&s, "/subscribers") == SLOW as u64 {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    let baseline = num(&s, "/rss_bytes");
    assert!(baseline > 0, "rss_bytes not reported: {s}");

    let body = vec![b'm'; SIZE];
    let mut peak = baseline;
    let started = Instant::now();
    for i in 0..MESSAGES {
        ctl.publish("mem", &body);
        if i % 16 == 15 {
            peak = peak.max(num(&ctl.status(), "/rss_bytes"));
        }
    }
    println!(
        "published {} MiB in {:?}",
        (MESSAGES * SIZE) >> 20,
        started.elapsed()
    );
    let s = poll_until("every slow reader dropped", || {
        let s = ctl.status();
        let open = num(&s, "/connections/eventsource") + num(&s, "/connections/stream");
        if open == 0 && num(&s, "/slow_consumers") == SLOW as u64 {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    peak = peak.max(num(&s, "/rss_bytes"));
    println!(
        "rss baseline {} MiB, peak {} MiB, growth {} MiB",
        baseline >> 20,
        peak >> 20,
        peak.saturating_sub(baseline) >> 20
    );
    assert!(
        peak.saturating_sub(baseline) < BOUND,
        "RSS grew from {baseline} to {peak} bytes"
    );
    assert_eq!(num(&s, "/subscribers"), 0, "{s}");
    // (Not drained: reading what the kernel still holds for 200 tiny
    // windows takes seconds; the slow-consumer test checks the EOF.)
    drop(slow);
}

/// A subscriber that reads promptly is not a slow consumer just because
/// several large messages arrived in one loop turn: the cap applies to the
/// backlog behind the message being written, and the server writes before
/// judging. (Found by the WebSocket suite: a 300 KB message followed by a
/// small one dropped a fast reader.)
#[test]
fn fast_reader_survives_large_messages_published_in_one_write() {
    // The cap holds one large message, not two: only the backlog behind
    // the message being written counts.
    let server = start_with(1, |c| c.max_queued_bytes = 512 << 10);
    let addr = server.addr();
    let mut sub = StreamClient::connect(addr, "/sub/big");
    let big = vec![b'b'; 300 << 10];
    // One write holding two large publishes and a small one, so all three
    // are fanned out in the same loop turn.
    let mut wire = Vec::new();
    for body in [&big[..], &big[..], b"small"] {
        wire.extend_from_slice(
            format!(
                "POST /pub?id=big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        wire.extend_from_slice(body);
    }
    let mut publisher = Conn::connect(addr);
    publisher.write(&wire);
    for _ in 0..3 {
        assert_eq!(publisher.read_response().status, 200);
    }
    assert_eq!(sub.chunk().len(), big.len() + 1);
    assert_eq!(sub.chunk().len(), big.len() + 1);
    assert_eq!(sub.chunk(), b"small\n");
    assert_eq!(status(addr)["slow_consumers"], 0);
}
