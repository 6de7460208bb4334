//! Running out of file descriptors: the real binary under a low
//! RLIMIT_NOFILE keeps serving the connections it has, counts the failed
//! accepts, does not spin, and accepts again once descriptors come back.

mod common;

use common::*;
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// CPU time (user + system) the process `pid` used so far.
fn cpu_time(pid: i32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

#[test]
fn out_of_descriptors_keeps_serving_and_recovers() {
    const NOFILE: u64 = 64;
    let server = ChildServer::spawn_with_nofile(
        &[
            "--workers",
            "1",
            "--handshake-timeout",
            "60",
            "--idle-timeout",
            "60",
        ],
        Some(NOFILE),
    );
    let addr = server.addr;
    let mut ctl = Conn::connect(addr);
    let s = ctl.status();
    assert_eq!(num(&s, "/accept_fd_errors"), 0, "{s}");
    let mut sse = SseClient::connect(addr, "/ev/fd");

    // More connections than descriptors: the kernel completes them all
    // (backlog), the server accepts until it runs out.
    let fillers: Vec<TcpStream> = (0..NOFILE + 16)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let s = poll_until("accept to fail for lack of descriptors", || {
        let s = ctl.status();
        if num(&s, "/accept_fd_errors") > 0 {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    let open_when_full = num(&s, "/connections/total");
    println!(
        "full at {open_when_full} connections; accept_fd_errors {}",
        num(&s, "/accept_fd_errors")
    );
    assert!(open_when_full < NOFILE, "{s}");

    // No busy loop while accepts keep failing: measured over a fixed
    // second (a measurement period, not a wait), in CPU time and in
    // accept retries, which come once per 250 ms pause.
    let errors0 = num(&ctl.status(), "/accept_fd_errors");
    let t = Instant::now();
    let cpu0 = cpu_time(server.pid());
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_time(server.pid()) - cpu0;
    let retries = num(&ctl.status(), "/accept_fd_errors") - errors0;
    let window = t.elapsed();
    println!("CPU while out of descriptors: {spent:?} and {retries} accept retries in {window:?}");
    assert!(spent < Duration::from_millis(300), "CPU {spent:?} in 1 s");
    let most = 4 * window.as_secs() + 8;
    assert!(
        (1..=most).contains(&retries),
        "{retries} failed accepts in {window:?}: expected one per 250 ms pause (1..={most})"
    );

    // Existing connections are served: a publish on the open keep-alive
    // connection reaches the open subscriber.
    ctl.publish("fd", b"while full");
    assert_eq!(sse.event().data, "while full");

    // A newcomer waits in the backlog, unanswered.
    let mut waiting = Conn::connect(addr);
    waiting.write(b"GET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    waiting
        .stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut one = [0u8; 1];
    match waiting.stream.read(&mut one) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected no answer while out of descriptors, got {other:?}"),
    }
    // ... and not accepted either: the server holds what it held.
    let s = ctl.status();
    assert_eq!(num(&s, "/connections/total"), open_when_full, "{s}");

    // Descriptors come back: the newcomer is answered, new connections work.
    let t = Instant::now();
    drop(fillers);
    waiting.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let r = waiting.read_response();
    assert_eq!(r.status, 200, "{r:?}");
    println!(
        "newcomer answered {:?} after descriptors came back",
        t.elapsed()
    );
    let s = poll_status(addr, "fillers reaped", |s| {
        num(s, "/connections/total") <= 4
    });
    assert!(num(&s, "/accept_fd_errors") > 0, "{s}");
    assert!(num(&s, "/rss_bytes") > 0, "{s}");
    ctl.publish("fd", b"after");
    assert_eq!(sse.event().data, "after");
}
