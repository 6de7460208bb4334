//! `crier health URL` against the real binary: a healthy server passes
//! (text and JSON), and each way of being unhealthy fails with exit 1 and
//! a one-line reason: a closed port, a publish secret missing or wrong, a
//! private channel without a token, a server that accepts the publish but
//! never delivers it. Bad usage is exit 2. The secret is never printed.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const SECRET: &str = "health-test-publish-secret";

fn health(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crier"))
        .arg("health")
        .args(args)
        .env_remove("CRIER_PUBLISH_SECRET")
        .envs(env.iter().copied())
        .output()
        .expect("run crier health")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit code and the one line of stdout, checked to be one line with no
/// secret anywhere in the output.
fn outcome(out: &Output) -> (i32, String) {
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains(SECRET) && !text(&out.stderr).contains(SECRET),
        "the secret was printed: {stdout}{}",
        text(&out.stderr)
    );
    assert_eq!(stdout.matches('\n').count(), 1, "one line: {stdout:?}");
    (
        out.status.code().expect("exit code"),
        stdout.trim_end().into(),
    )
}

fn server_url(server: &ChildServer) -> String {
    format!("http://{}", server.addr)
}

#[test]
fn a_healthy_server_passes_with_the_latency() {
    let server = ChildServer::spawn(&[]);
    let out = health(&[&server_url(&server)], &[]);
    let (code, line) = outcome(&out);
    assert_eq!(code, 0, "{line} {}", text(&out.stderr));
    let ms = line
        .strip_prefix("ok ")
        .and_then(|l| l.strip_suffix(" ms"))
        .unwrap_or_else(|| panic!("{line:?}"));
    assert!(ms.parse::<f64>().unwrap() >= 0.0, "{line}");

    // JSON, another channel, the URL without its scheme.
    let out = health(
        &[&server.addr.to_string(), "--channel", "lb-check", "--json"],
        &[],
    );
    let (code, line) = outcome(&out);
    assert_eq!(code, 0, "{line}");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["channel"], "lb-check");
    assert_eq!(v["subscribers"], 1, "{v}");
    assert!(v["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(v["publish_ms"].as_f64().is_some() && v["id"].as_str().is_some());

    // The check's subscriber is gone once it exits.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = channel_info(server.addr, "lb-check").expect("channel exists");
        if info["subscribers"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "subscriber left behind: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_closed_port_fails_at_once() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = health(&[&format!("http://127.0.0.1:{port}")], &[]);
    let (code, line) = outcome(&out);
    assert_eq!(code, 1, "{line}");
    assert_eq!(
        line,
        format!("fail: subscribe: cannot connect to 127.0.0.1:{port}: connection refused")
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    let out = health(&[&format!("http://127.0.0.1:{port}"), "--json"], &[]);
    let (code, line) = outcome(&out);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["stage"], "subscribe");
    assert!(v["error"].as_str().unwrap().ends_with("connection refused"));
}

#[test]
fn the_publish_secret_is_sent_from_the_flag_or_the_environment() {
    let server = ChildServer::spawn(&["--publish-secret", SECRET]);
    let url = server_url(&server);

    let (code, line) = outcome(&health(&[&url], &[]));
    assert_eq!(code, 1, "{line}");
    assert_eq!(
        line,
        "fail: publish: HTTP 401 Unauthorized: credentials required: send Authorization: Bearer"
    );

    let out = health(&[&url, "--publish-secret", "not-it", "--json"], &[]);
    let (code, line) = outcome(&out);
    assert_eq!(code, 1, "{line}");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["stage"], "publish");
    assert_eq!(v["http_status"], 403);
    assert_eq!(v["error"], "HTTP 403 Forbidden: invalid credentials");

    let (code, line) = outcome(&health(&[&url, "--publish-secret", SECRET], &[]));
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("ok "), "{line}");

    // The server's own variable, rotation list and all: the first is used.
    let env = format!("{SECRET},older-secret");
    let (code, line) = outcome(&health(&[&url], &[("CRIER_PUBLISH_SECRET", &env)]));
    assert_eq!(code, 0, "{line}");
}

#[test]
fn a_private_health_channel_needs_a_token() {
    let key = "health-test-subscribe-key-0123456789";
    let server = ChildServer::spawn(&["--subscribe-key", key, "--private-channels", "health-*"]);
    let url = server_url(&server);
    let (code, line) = outcome(&health(&[&url, "--channel", "health-1"], &[]));
    assert_eq!(code, 1, "{line}");
    assert_eq!(
        line,
        "fail: subscribe: HTTP 403 Forbidden: a signed token is required for this channel"
    );

    let minted = Command::new(env!("CARGO_BIN_EXE_crier"))
        .args(["token", "--key", key, "--channels", "health-*"])
        .output()
        .unwrap();
    let token = text(&minted.stdout).trim().to_string();
    let out = health(&[&url, "--channel", "health-1", "--token", &token], &[]);
    let (code, line) = outcome(&out);
    assert_eq!(code, 0, "{line}");
    assert!(!line.contains(&token));
}

/// A server that answers like crier but never delivers: the subscription
/// opens, the publish is accepted, the message never comes.
#[test]
fn a_message_that_never_arrives_is_a_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = std::thread::spawn(move || {
        let mut held = Vec::new();
        for (i, conn) in listener.incoming().take(2).enumerate() {
            let mut conn = conn.unwrap();
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let reply = if i == 0 {
                assert!(request.starts_with("GET /ev/crier-health "), "{request}");
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nretry: 3000\n\n"
                    .to_string()
            } else {
                assert!(
                    request.starts_with("POST /pub?id=crier-health "),
                    "{request}"
                );
                let body = r#"{"channel":"crier-health","id":"42","subscribers":1}"#;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            };
            conn.write_all(reply.as_bytes()).unwrap();
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(2));
    });
    let started = Instant::now();
    let out = health(&[&format!("http://{addr}"), "--timeout", "0.8"], &[]);
    let (code, line) = outcome(&out);
    assert_eq!(code, 1, "{line}");
    assert_eq!(
        line,
        "fail: wait: published (id 42) but not received within 0.8 s"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    fake.join().unwrap();
}

#[test]
fn a_path_that_is_not_crier_fails_with_the_http_status() {
    let server = ChildServer::spawn(&[]);
    let (code, line) = outcome(&health(
        &[&format!("{}/not-here", server_url(&server))],
        &[],
    ));
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("fail: subscribe: HTTP 404 Not Found"),
        "{line}"
    );
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        vec!["https://127.0.0.1:8080"],
        vec!["ftp://127.0.0.1"],
        vec!["http://127.0.0.1:8080", "--channel", "a/b"],
        vec!["http://127.0.0.1:8080", "--channel", "news.b5"],
        vec!["http://127.0.0.1:8080", "--timeout", "0"],
        vec![],
    ] {
        let out = health(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = health(&["https://127.0.0.1:8080"], &[]);
    assert_eq!(
        text(&out.stderr),
        "crier health: https:// is not supported yet; use http://\n"
    );
}
