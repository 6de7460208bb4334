//! Connection refusals and cuts in the log of the real binary: one line
//! each with its cause and peer, as JSON with `--log-format json`, and no
//! more than `log-events-per-second` allows however many a flood brings,
//! with what was dropped counted in one line.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The log's JSON lines (every line must be one).
fn json_lines(server: &ChildServer) -> Vec<serde_json::Value> {
    server
        .log()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Sends a request the server answers 400 and closes, and reads the answer.
fn bad_request(addr: std::net::SocketAddr) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s.write_all(b"GET /ev/bad\x01id HTTP/1.1\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");
}

#[test]
fn refusals_and_cuts_are_json_lines_with_cause_and_peer() {
    let server = ChildServer::spawn(&["--log-format", "json", "--max-connections-per-ip", "1"]);
    let addr = server.addr;
    let _held = SseClient::connect(addr, "/ev/news");
    // A second connection from 127.0.0.1 is refused with a fast 429.
    let mut second = TcpStream::connect(addr).unwrap();
    second.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mut answer = Vec::new();
    let _ = second.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 429"), "{answer:?}");
    let line = poll_until("the refusal logged", || {
        json_lines(&server)
            .into_iter()
            .find(|l| l["msg"] == "connection refused")
            .ok_or_else(|| server.log())
    });
    assert_eq!(line["level"], "warn");
    assert_eq!(line["cause"], "max_connections_per_ip");
    assert!(
        line["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{line}"
    );
    assert!(line["ts"].as_str().unwrap().ends_with('Z'), "{line}");
    assert_eq!(line["target"], "crier::events");
    // The first startup lines are JSON too (json_lines would have failed).
    assert!(json_lines(&server)
        .iter()
        .any(|l| l["msg"].as_str().unwrap().contains("listening on")));
}

#[test]
fn a_flood_gets_a_bounded_number_of_lines_and_a_count_of_the_rest() {
    let server = ChildServer::spawn(&["--log-events-per-second", "2"]);
    let addr = server.addr;
    for _ in 0..200 {
        bad_request(addr);
    }
    // Reactor 0 reports what the budget dropped about once a second.
    let (log, cuts) = poll_until_within(
        Duration::from_secs(10),
        "every event logged or counted",
        || {
            let log = server.log();
            let cuts = log.matches("connection cut cause=bad_input").count();
            let dropped: u64 = log
                .lines()
                .filter(|l| l.contains("connection events not logged"))
                .map(|l| {
                    let v = l.split("dropped=").nth(1).expect("a dropped= field");
                    v.split_whitespace().next().unwrap().parse::<u64>().unwrap()
                })
                .sum();
            if cuts as u64 + dropped == 200 {
                Ok((log, cuts))
            } else {
                Err(format!("{cuts} logged + {dropped} dropped:\n{log}"))
            }
        },
    );
    // A burst of five seconds' worth, plus what refilled while it ran.
    assert!((10..=20).contains(&cuts), "{cuts} lines:\n{log}");
    assert!(log.contains("peer=127.0.0.1:"), "{log}");
}
