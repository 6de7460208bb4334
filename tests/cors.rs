//! CORS: Access-Control-Allow-Origin on every response, OPTIONS preflight.

mod common;

use common::*;

#[test]
fn allow_origin_on_publish_sse_stream_and_errors() {
    let server = start();
    let addr = server.addr();
    let sse = SseClient::connect_with(addr, "/ev/c", "Origin: https://page.example\r\n");
    assert_eq!(sse.head.header("access-control-allow-origin"), Some("*"));
    let stream = StreamClient::connect(addr, "/sub/c");
    assert_eq!(stream.head.header("access-control-allow-origin"), Some("*"));

    let r = send(
        agent()
            .post(&url(addr, "/pub?id=c"))
            .set("Origin", "https://page.example"),
        b"x",
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    for path in ["/status", "/metrics", "/pub?id=c", "/nope"] {
        let r = call(agent().get(&url(addr, path)));
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("*"),
            "GET {path}"
        );
    }
}

#[test]
fn preflight_is_204_with_allow_methods() {
    let server = start();
    let addr = server.addr();
    for path in ["/pub?id=c", "/ev/c", "/sub/c/d", "/status", "/metrics"] {
        let r = call(
            agent()
                .request("OPTIONS", &url(addr, path))
                .set("Origin", "https://page.example")
                .set("Access-Control-Request-Method", "POST")
                .set("Access-Control-Request-Headers", "event-type"),
        );
        assert_eq!(r.status(), 204, "OPTIONS {path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        let methods = r.header("access-control-allow-methods").unwrap_or("");
        for m in ["GET", "POST", "PUT", "DELETE", "OPTIONS"] {
            assert!(methods.contains(m), "OPTIONS {path}: {methods}");
        }
        let headers = r
            .header("access-control-allow-headers")
            .unwrap_or("")
            .to_ascii_lowercase();
        assert!(headers.contains("event-type"), "{headers}");
        assert!(headers.contains("last-event-id"), "{headers}");
        assert_eq!(r.into_string().unwrap(), "");
    }
    // Raw: no body, keep-alive works after it.
    let mut c = Conn::connect(addr);
    c.write(
        b"OPTIONS /pub?id=c HTTP/1.1\r\nHost: t\r\n\r\nGET /status HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(c.read_response().status, 200);
}

#[test]
fn an_origin_list_echoes_listed_origins_only() {
    let server = start_with(1, |c| {
        c.allow_origins = "https://app.example, http://localhost:3000".into()
    });
    let addr = server.addr();
    let sse = SseClient::connect_with(addr, "/ev/o", "Origin: https://app.example\r\n");
    assert_eq!(
        sse.head.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(sse.head.header("vary"), Some("Origin"));
    let r = send(
        agent()
            .post(&url(addr, "/pub?id=o"))
            .set("Origin", "http://localhost:3000"),
        b"x",
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:3000")
    );
    // Not listed, or no Origin at all: no grant, but the answer still varies.
    for origin in [Some("https://evil.example"), None] {
        let mut req = agent().get(&url(addr, "/status"));
        if let Some(o) = origin {
            req = req.set("Origin", o);
        }
        let r = call(req);
        assert_eq!(r.status(), 200);
        assert_eq!(r.header("access-control-allow-origin"), None, "{origin:?}");
        assert_eq!(r.header("vary"), Some("Origin"));
    }
    let preflight = call(
        agent()
            .request("OPTIONS", &url(addr, "/pub?id=o"))
            .set("Origin", "https://app.example")
            .set("Access-Control-Request-Headers", "authorization"),
    );
    let allowed = preflight
        .header("access-control-allow-headers")
        .unwrap_or("")
        .to_ascii_lowercase();
    // The Fetch standard never lets `*` stand for Authorization: it is named.
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));

    let server = start_with(1, |c| c.allow_origins = String::new());
    let addr = server.addr();
    let sse = SseClient::connect_with(addr, "/ev/o", "Origin: https://app.example\r\n");
    assert_eq!(sse.head.header("access-control-allow-origin"), None);
}

#[test]
fn websocket_from_an_origin_not_listed_is_refused_before_101() {
    let server = start_with(1, |c| c.allow_origins = "https://app.example".into());
    let addr = server.addr();
    let handshake = |origin: Option<&str>| {
        let mut c = Conn::connect(addr);
        let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        c.write(
            format!(
                "GET /ws/o HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
            )
            .as_bytes(),
        );
        c.read_head()
    };
    let r = handshake(Some("https://evil.example"));
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(handshake(Some("https://APP.example")).status, 101);
    // A non-browser client sends no Origin and is not judged by it.
    assert_eq!(handshake(None).status, 101);
    let s = status(addr);
    assert_eq!(num(&s, "/denied/origin"), 1, "{s}");
}
