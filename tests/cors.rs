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
fn configured_origin_and_disabled_cors() {
    let server = start_with(1, |c| c.allow_origin = "https://app.example".into());
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/o");
    assert_eq!(
        sse.head.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let r = send(agent().post(&url(addr, "/pub?id=o")), b"x");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );

    let server = start_with(1, |c| c.allow_origin = String::new());
    let addr = server.addr();
    let sse = SseClient::connect(addr, "/ev/o");
    assert_eq!(sse.head.header("access-control-allow-origin"), None);
    let r = send(agent().post(&url(addr, "/pub?id=o")), b"x");
    assert_eq!(r.header("access-control-allow-origin"), None);
}
