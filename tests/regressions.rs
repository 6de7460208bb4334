//! Regressions found by the end-to-end suite: each test names the
//! request, the expected and the earlier (wrong) behaviour.

mod common;

use common::*;

/// Regression: a channel named twice in a publish (`POST /pub?id=d/d`) gets the
/// message twice: its `published_messages` goes up by 2, the history holds
/// the same message twice (evicting an older one early), and the reply
/// lists the channel twice. Subscribe paths (`/ev/d/d`) already collapse
/// duplicates.
///
/// Expected: the duplicate is collapsed: published_messages 1,
/// stored_messages 1, one message in the store.
/// Actual: reply `{"channels":[{"channel":"d",..."published_messages":1,
/// "stored_messages":1},{"channel":"d",..."published_messages":2,
/// "stored_messages":2}],"id":...}`; /status stored_messages 2.
#[test]
fn duplicate_channel_in_publish_is_stored_once() {
    let server = start();
    let addr = server.addr();
    let mut sse = SseClient::connect(addr, "/ev/d");
    let reply = publish(addr, "d/d", b"x");
    // Delivered once (this part works).
    assert_eq!(sse.event().data, "x");
    let info = json_of(call(agent().get(&url(addr, "/pub?id=d"))));
    let st = status(addr);
    assert_eq!(
        (
            info["published_messages"].as_u64(),
            info["stored_messages"].as_u64(),
            st["stored_messages"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "reply {reply}\nchannel {info}\nstatus {st}"
    );
}

/// Regression: a HEAD request is answered with a body. `HEAD /status` (and any
/// HEAD) gets `405` with `Content-Length: 62` *and* the 62-byte JSON body,
/// on a keep-alive connection. A response to HEAD never has a body (RFC
/// 9110 §9.3.2, RFC 9112 §6.3), so a client reads those bytes as the start
/// of the next response and the connection desynchronises.
///
/// Expected: the head only (whether 200 or 405), then the reply to the
/// next pipelined request. Actual: `{"error":"method not allowed; use
/// GET, OPTIONS","status":405}\n` sits between the two responses.
#[test]
fn head_response_has_no_body() {
    let server = start();
    let addr = server.addr();
    let mut c = Conn::connect(addr);
    c.write(b"HEAD /status HTTP/1.1\r\nHost: t\r\n\r\nGET /status HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let head = c.read_head();
    assert!(
        head.status == 200 || head.status == 405,
        "HEAD /status: {head:?}"
    );
    // The next bytes must be the GET's status line.
    let next = c.exact(9);
    assert_eq!(
        String::from_utf8_lossy(&next),
        "HTTP/1.1 ",
        "bytes after the HEAD response head: {:?}",
        String::from_utf8_lossy(&c.read_to_eof())
    );
}
