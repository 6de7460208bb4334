//! Access control end to end: publish secrets and source networks, status
//! protection, signed tokens for private channels (minted by the Python
//! example of docs/TOKENS.md, an implementation independent of the
//! server's), token expiry on open connections, WebSocket publish rights,
//! per-address connection limits, and secrets that never show.

mod common;

use common::*;
use crier::Secret;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

const KEY: &str = "security-test-key-0123456789-0123456789";

/// A token minted by docs/examples/tokens/mint.py.
fn mint(channels: &str, publish: &str, ttl: i64) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/tokens/mint.py");
    let out = Command::new("python3")
        .args([script, KEY, channels, publish, &ttl.to_string()])
        .output()
        .expect("python3 (run bash tests/deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn secured(tweak: impl FnOnce(&mut crier::Config)) -> crier::Handle {
    start_with(2, |c| {
        c.subscribe_key = vec![Secret::new(KEY)];
        c.private_channels = "private-*".into();
        c.ws_publish = true;
        tweak(c);
    })
}

/// A raw request; returns the response (head and body).
fn request(addr: SocketAddr, req: &str) -> Response {
    let mut c = Conn::connect(addr);
    c.write(req.as_bytes());
    c.read_response()
}

fn post(addr: SocketAddr, channel: &str, auth: Option<&str>) -> Response {
    let auth = auth.map_or(String::new(), |a| format!("Authorization: Bearer {a}\r\n"));
    request(
        addr,
        &format!("POST /pub?id={channel} HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: 2\r\n\r\nhi"),
    )
}

#[test]
fn publish_needs_the_secret_and_rotation_keeps_both_valid() {
    let server = start_with(1, |c| {
        c.publish_secret = vec![Secret::new("old-secret"), Secret::new("new-secret")];
    });
    let addr = server.addr();
    let r = post(addr, "news", None);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"crier\""));
    assert_eq!(r.json()["status"], 401);
    assert!(r.json()["error"].as_str().unwrap().contains("Bearer"));
    let r = post(addr, "news", Some("wrong"));
    assert_eq!(r.status, 403, "{r:?}");
    assert!(!r.text().contains("wrong"), "never echoes a credential");
    assert_eq!(post(addr, "news", Some("old-secret")).status, 200);
    assert_eq!(post(addr, "news", Some("new-secret")).status, 200);
    // DELETE is held to the same rule.
    let del = |auth: &str| {
        request(
            addr,
            &format!("DELETE /pub?id=news HTTP/1.1\r\nHost: t\r\n{auth}\r\n"),
        )
        .status
    };
    assert_eq!(del(""), 401);
    assert_eq!(del("Authorization: Bearer new-secret\r\n"), 200);
    let s = status(addr);
    assert_eq!(num(&s, "/denied/missing_credential"), 2, "{s}");
    assert_eq!(num(&s, "/denied/bad_credential"), 1, "{s}");
    assert!(!s.to_string().contains("secret"), "{s}");
}

#[test]
fn publish_from_a_network_not_allowed_is_403_even_with_the_secret() {
    let server = start_with(1, |c| {
        c.publish_allow = "10.0.0.0/8".into();
        c.publish_secret = vec![Secret::new("s3cret")];
    });
    let r = post(server.addr(), "news", Some("s3cret"));
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["error"], "not allowed from this address");
    let server = start_with(1, |c| c.publish_allow = "127.0.0.0/8".into());
    assert_eq!(post(server.addr(), "news", None).status, 200);
}

#[test]
fn status_is_open_on_loopback_only_unless_a_secret_is_given() {
    // Default: status-allow is loopback, and the tests run on loopback.
    let server = start_with(1, |_| {});
    assert_eq!(
        call(agent().get(&url(server.addr(), "/status"))).status(),
        200
    );
    let server = start_with(1, |c| {
        c.status_allow = "10.0.0.0/8".into();
        c.status_secret = vec![Secret::new("look")];
    });
    let addr = server.addr();
    for path in ["/status", "/metrics", "/pub?id=x", "/status?id=x"] {
        let r = request(addr, &format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_eq!(r.status, 401, "{path}: {r:?}");
    }
    let r = request(
        addr,
        "GET /status HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer nope\r\n\r\n",
    );
    assert_eq!(r.status, 403);
    let r = request(
        addr,
        "GET /status HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer look\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let r = request(addr, "GET /metrics?token=look HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
    // No secret configured and not from an allowed network: 403.
    let server = start_with(1, |c| c.status_allow = "10.0.0.0/8".into());
    let r = request(server.addr(), "GET /status HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 403);
}

#[test]
fn private_channels_need_a_token_covering_every_channel() {
    let server = secured(|_| {});
    let addr = server.addr();
    let sub = |path: &str| {
        request(
            addr,
            &format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        )
    };
    // Public channels need nothing.
    let mut public = SseClient::connect(addr, "/ev/news");
    publish(addr, "news", b"open");
    assert_eq!(public.event().data, "open");
    let r = sub("/lp/private-a");
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.json()["error"],
        "a signed token is required for this channel"
    );
    let good = mint("private-a,news", "", 60);
    let other = mint("private-b", "", 60);
    let expired = mint("private-a", "", -10);
    let forged = {
        let mut t = good.clone();
        let last = t.pop().unwrap();
        t.push(if last == 'A' { 'B' } else { 'A' });
        t
    };
    for (token, why) in [
        (&other, "channel"),
        (&expired, "expired"),
        (&forged, "signature"),
    ] {
        let r = sub(&format!("/ev/private-a?token={token}"));
        assert_eq!(r.status, 403, "{why}: {r:?}");
        assert!(!r.text().contains(token.as_str()), "never echoes the token");
    }
    // One channel of the request not covered: refused as a whole.
    assert_eq!(
        sub(&format!("/ev/private-a/private-b?token={good}")).status,
        403
    );
    // As a query parameter (browsers) or a bearer header.
    let mut sse = SseClient::connect(addr, &format!("/ev/private-a/news?token={good}"));
    assert_eq!(sse.head.status, 200);
    let mut hdr = SseClient::connect_with(
        addr,
        "/ev/private-a",
        &format!("Authorization: Bearer {good}\r\n"),
    );
    assert_eq!(hdr.head.status, 200);
    publish(addr, "private-a", b"secret stuff");
    assert_eq!(sse.event().data, "secret stuff");
    assert_eq!(hdr.event().data, "secret stuff");
    let s = status(addr);
    assert_eq!(num(&s, "/denied/token_required"), 1, "{s}");
    assert_eq!(num(&s, "/denied/bad_token"), 2, "{s}");
    assert_eq!(num(&s, "/denied/channel_not_granted"), 2, "{s}");
}

#[test]
fn websocket_refusal_happens_at_the_handshake() {
    let server = secured(|_| {});
    let addr = server.addr();
    let handshake = |path: &str| {
        let mut c = Conn::connect(addr);
        c.write(
            format!(
                "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        );
        c.read_head()
    };
    assert_eq!(handshake("/ws/private-a").status, 403);
    let expired = mint("private-a", "", -1);
    assert_eq!(
        handshake(&format!("/ws/private-a?token={expired}")).status,
        403
    );
    let good = mint("private-a", "", 60);
    assert_eq!(
        handshake(&format!("/ws/private-a?token={good}")).status,
        101
    );
}

#[test]
fn a_token_with_publish_rights_lets_a_browser_publish_over_websocket() {
    let server = secured(|c| c.publish_secret = vec![Secret::new("backend-only")]);
    let addr = server.addr();
    let mut listener = SseClient::connect(
        addr,
        &format!("/ev/private-chat?token={}", mint("private-chat", "", 60)),
    );
    let token = mint("private-chat", "private-chat", 60);
    let mut ws = ws_connect(addr, &format!("/ws/private-chat?token={token}"));
    ws.send(tungstenite::Message::Text("hello from a browser".into()))
        .unwrap();
    assert_eq!(listener.event().data, "hello from a browser");
    // Without publish rights the first data frame closes with 1008.
    let read_only = mint("private-chat", "", 60);
    let mut ws2 = ws_connect(addr, &format!("/ws/private-chat?token={read_only}"));
    ws2.send(tungstenite::Message::Text("sneaky".into()))
        .unwrap();
    loop {
        match ws2.read() {
            Ok(tungstenite::Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 1008);
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("expected close 1008, got {e}"),
        }
    }
    // HTTP publishing with a publishing token works too; without, 401.
    assert_eq!(post(addr, "private-chat", Some(&token)).status, 200);
    assert_eq!(post(addr, "private-chat", None).status, 401);
    assert_eq!(post(addr, "private-chat", Some(&read_only)).status, 403);
}

#[test]
fn an_open_connection_is_closed_when_its_token_expires() {
    let server = secured(|_| {});
    let addr = server.addr();
    let token = mint("private-x", "", 2);
    let mut sse = SseClient::connect(addr, &format!("/ev/private-x?token={token}"));
    let mut lp = Conn::connect(addr);
    lp.write(format!("GET /lp/private-x?token={token} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let mut ws = ws_connect(addr, &format!("/ws/private-x?token={token}"));
    let ev = sse.event();
    assert_eq!(ev.kind, "token_expired", "{ev:?}");
    sse.conn.expect_eof();
    assert_eq!(lp.read_response().status, 401);
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 4001);
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("expected close 4001, got {e}"),
        }
    }
    let s = poll_status(addr, "three closed for token expiry", |s| {
        num(s, "/closed_by_server/token_expired") == 3
    });
    assert_eq!(num(&s, "/subscribers"), 0, "{s}");
}

#[test]
fn connections_per_address_are_capped_with_a_fast_429() {
    let server = start_with(2, |c| c.max_connections_per_ip = 3);
    let addr = server.addr();
    let held: Vec<SseClient> = (0..3)
        .map(|_| SseClient::connect(addr, "/ev/cap"))
        .collect();
    let mut extra = Conn::connect(addr);
    let r = extra.read_response();
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.json()["status"], 429);
    extra.expect_eof();
    drop(held);
    let s = poll_status(addr, "slots given back", |s| {
        num(s, "/connections/eventsource") == 0
    });
    assert_eq!(num(&s, "/refused/max_connections_per_ip"), 1, "{s}");
    // Room again once they are gone.
    let _again = SseClient::connect(addr, "/ev/cap");
}

#[test]
fn size_limits_are_counted_by_limit() {
    let server = start_with(1, |c| {
        c.max_request_line = 100;
        c.max_headers = 6;
        c.max_channel_id = 8;
        c.max_frame_size = 64;
    });
    let addr = server.addr();
    let long = format!("GET /ev/{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(200));
    assert_eq!(request(addr, &long).status, 414);
    let many =
        "GET /status HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\n\r\n";
    assert_eq!(request(addr, many).status, 431);
    assert_eq!(
        request(
            addr,
            "GET /ev/abcdefghi HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .status,
        400
    );
    let mut ws = ws_connect(addr, "/ws/w");
    ws.send(tungstenite::Message::Binary(vec![0; 100])).unwrap();
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 1009);
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("expected close 1009, got {e}"),
        }
    }
    let s = poll_status(addr, "every limit counted", |s| {
        num(s, "/too_large/frame") == 1
    });
    for (limit, n) in [("request_line", 1), ("header_count", 1), ("channel_id", 1)] {
        assert_eq!(num(&s, &format!("/too_large/{limit}")), n, "{limit}: {s}");
    }
}

#[test]
fn secrets_never_show_in_logs_status_or_help() {
    let help = Command::new(env!("CARGO_BIN_EXE_crier"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--publish-secret"), "{help}");
    let secret = "env-secret-7f3a9c2e";
    let mut server = ChildServer::spawn_env(
        &["--workers", "1", "--status-secret", "flag-secret-19af"],
        &[("CRIER_PUBLISH_SECRET", secret)],
    );
    let addr = server.addr;
    assert_eq!(post(addr, "n", None).status, 401);
    assert_eq!(post(addr, "n", Some(secret)).status, 200);
    let s = status(addr).to_string();
    let metrics = call(agent().get(&url(addr, "/metrics")))
        .into_string()
        .unwrap();
    server.signal(libc::SIGTERM);
    server.wait_exit(Duration::from_secs(10));
    let log = server.log();
    for text in [&s, &metrics, &log, &help.to_string()] {
        assert!(
            !text.contains(secret) && !text.contains("flag-secret-19af"),
            "{text}"
        );
    }
}
