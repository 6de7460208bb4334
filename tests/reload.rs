//! SIGHUP on the real binary: the settings that can change while running
//! (README, "Reloading") take effect without dropping a connection, the
//! log names what changed and what waits for a restart (never a secret's
//! value), and a broken file changes nothing.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Waits until the server's log has `n` lines containing `needle`.
fn wait_log(server: &ChildServer, needle: &str, n: usize) -> String {
    poll_until_within(Duration::from_secs(10), needle, || {
        let log = server.log();
        if log.matches(needle).count() >= n {
            Ok(log)
        } else {
            Err(log)
        }
    })
}

fn write_config(path: &Path, secret: &str, max_message: usize, origin: &str, extra: &str) {
    std::fs::write(
        path,
        format!(
            "publish-secret = [\"{secret}\"]\nmax-message-size = {max_message}\n\
             allow-origins = \"{origin}\"\n{extra}"
        ),
    )
    .unwrap();
}

/// Publishes `body` with `secret`; the status.
fn publish(addr: SocketAddr, secret: &str, body: &[u8]) -> u16 {
    send(
        agent()
            .post(&url(addr, "/pub?id=news"))
            .set("Authorization", &format!("Bearer {secret}")),
        body,
    )
    .status()
}

/// The `Access-Control-Allow-Origin` a status request from `origin` gets.
fn cors_for(addr: SocketAddr, origin: &str) -> Option<String> {
    let r = agent()
        .get(&url(addr, "/status"))
        .set("Origin", origin)
        .call()
        .unwrap_or_else(|e| match e {
            ureq::Error::Status(_, r) => r,
            e => panic!("{e}"),
        });
    r.header("Access-Control-Allow-Origin").map(str::to_string)
}

#[test]
fn sighup_applies_secrets_limits_and_origins_and_keeps_every_connection() {
    let dir = TempDir::new("settings-reload");
    let file = dir.0.join("crier.toml");
    write_config(
        &file,
        "old-secret-1234",
        1000,
        "https://a.example",
        "store-messages = 10\n",
    );
    let path = file.display().to_string();
    let server = ChildServer::spawn(&["--config", &path, "--workers", "2"]);
    let addr = server.addr;
    let mut sse = SseClient::connect(addr, "/ev/news");
    let mut ws = ws_connect(addr, "/ws/news");
    assert_eq!(publish(addr, "old-secret-1234", b"before"), 200);
    assert_eq!(sse.event().data, "before");
    assert_eq!(publish(addr, "old-secret-1234", &[b'x'; 2000]), 413);
    assert_eq!(
        cors_for(addr, "https://a.example").as_deref(),
        Some("https://a.example")
    );

    // A new secret, a larger limit, another origin, a per-address limit,
    // and one setting that needs a restart.
    write_config(
        &file,
        "new-secret-5678",
        5000,
        "https://b.example",
        "store-messages = 20\nmax-connections-per-ip = 4\n",
    );
    server.signal(libc::SIGHUP);
    let log = wait_log(&server, "SIGHUP: reloaded", 1);
    for name in [
        "publish-secret",
        "max-message-size",
        "allow-origins",
        "max-connections-per-ip",
    ] {
        assert!(log.contains(name), "{name} is named as reloaded:\n{log}");
    }
    assert!(
        log.contains("kept until a restart: store-messages"),
        "{log}"
    );
    assert!(
        !log.contains("secret-1234") && !log.contains("secret-5678"),
        "no secret in the log:\n{log}"
    );

    // Each reactor takes the new settings at its next loop turn.
    poll_until("the new secret is accepted", || {
        match publish(addr, "new-secret-5678", &[b'y'; 2000]) {
            200 => Ok(()),
            s => Err(format!("status {s}")),
        }
    });
    assert_eq!(sse.event().data.len(), 2000, "the old subscriber stays");
    assert_eq!(publish(addr, "old-secret-1234", b"stale"), 403);
    assert_eq!(publish(addr, "new-secret-5678", b"after"), 200);
    assert_eq!(sse.event().data, "after");
    let mut ws_texts = Vec::new();
    while ws_texts.len() < 3 {
        if let tungstenite::Message::Text(t) = ws.read().expect("the WebSocket stays") {
            ws_texts.push(t.len());
        }
    }
    assert_eq!(ws_texts, [6, 2000, 5]);
    assert_eq!(cors_for(addr, "https://a.example"), None);
    assert_eq!(
        cors_for(addr, "https://b.example").as_deref(),
        Some("https://b.example")
    );
    // The per-address limit counts connections made from now on: the two
    // subscribers from before are not counted. Once the requests above
    // are gone, four more are allowed and a fifth is refused.
    poll_status(addr, "only the two subscribers and this request", |s| {
        s["connections"]["total"] == 3
    });
    let newer: Vec<SseClient> = (0..4)
        .map(|_| SseClient::connect(addr, "/ev/other"))
        .collect();
    assert_eq!(call_status(addr, "/status"), 429);
    drop(newer);
    poll_status(addr, "the refusal counted", |s| {
        s["refused"]["max_connections_per_ip"] == 1
    });

    // A broken file changes nothing.
    std::fs::write(&file, "max-message-size = \"lots\"\n").unwrap();
    server.signal(libc::SIGHUP);
    wait_log(&server, "configuration not reloaded, nothing changed", 1);
    assert_eq!(publish(addr, "new-secret-5678", b"still"), 200);
    assert_eq!(sse.event().data, "still");
}

/// The status of a plain GET (a refused connection counts as its 429).
fn call_status(addr: SocketAddr, path: &str) -> u16 {
    match agent().get(&url(addr, path)).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    }
}
