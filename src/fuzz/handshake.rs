//! Target `handshake`: the WebSocket upgrade decision (`validate`,
//! `accept_key`, `choose_subprotocol`, `deflate::negotiate`,
//! `response_head`) on header values from the input, the same values read
//! back through `parse_head`, and raw upgrade requests followed by frames.
//! Checked: both paths decide alike, an accepted upgrade really carries
//! what RFC 6455 requires, the negotiated extension is stable and the 101
//! is one well-formed head, so a client can never talk its way past it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::http::headers::trimmed_value;
use crate::http::request::{parse_head, BodyKind, Method};
use crate::http::route::{Route, SubTransport};
use crate::proto::ws::deflate;
use crate::proto::ws::handshake::{accept_key, choose_subprotocol, response_head, validate};

use super::ws::run_ws;
use super::{route_request, Input, Splits, DEFAULT_ROUTE_LIMITS, ROOMY_LIMITS};

/// The subprotocols the reactor answers to (`reactor/websocket.rs`).
const SUBPROTOCOLS: &[&str] = &["crier.json"];

/// The upgrade header values, as `Headers` holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Upgrade<'a> {
    upgrade: Option<&'a str>,
    connection: Option<&'a str>,
    key: Option<&'a str>,
    version: Option<&'a str>,
    protocol: Option<&'a str>,
    extensions: Option<&'a str>,
}

/// What the reactor's `accept_websocket` decides for these values, with
/// every invariant of the pieces checked; returns the 101 head, or the
/// refusal's status.
fn accept(u: &Upgrade<'_>, method_is_get: bool) -> Result<Vec<u8>, u16> {
    let verdict = validate(u.upgrade, u.connection, u.key, u.version, method_is_get);
    let key = u.key.unwrap_or_default();
    let accepted = accept_key(key);
    assert_eq!(accepted.len(), 28);
    assert_eq!(STANDARD.decode(&accepted).map(|d| d.len()), Ok(20));
    assert_eq!(
        accepted,
        accept_key(key.trim()),
        "accept key depends on spaces"
    );
    let sub = choose_subprotocol(u.protocol, SUBPROTOCOLS);
    if let Some(p) = sub {
        assert!(SUBPROTOCOLS.contains(&p));
        let offered = u.protocol.unwrap_or_default();
        assert!(offered.split(',').any(|o| o.trim() == p), "{p} not offered");
    }
    let negotiated = u.extensions.and_then(deflate::negotiate);
    if let Some((params, response)) = &negotiated {
        assert!((8..=15).contains(&params.server_max_window_bits));
        assert!(response.starts_with(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ));
        // What we answer is itself an offer we would accept, unchanged.
        let again = deflate::negotiate(response);
        assert_eq!(again.as_ref(), Some(&(*params, response.clone())));
    }
    if let Err(e) = verdict {
        assert!(matches!(e.status, 400 | 426), "status {}", e.status);
        assert!(!e.reason.is_empty());
        return Err(e.status);
    }
    assert!(method_is_get);
    // The handshake's token rule (any Unicode space trimmed) is wider than
    // `http::headers::has_token`'s (spaces and tabs); either way the token
    // must be there.
    let has = |v: Option<&str>, token: &str| {
        v.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    assert!(has(u.upgrade, "websocket"));
    assert!(has(u.connection, "upgrade"));
    assert_eq!(u.version.map(str::trim), Some("13"));
    assert_eq!(STANDARD.decode(key.trim()).map(|k| k.len()), Ok(16));
    let extension = negotiated.map(|(_, r)| r);
    let head = response_head(&accepted, sub, extension.as_deref());
    // The 101 must be one well-formed response head, nothing after it.
    let mut slots = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut slots);
    assert_eq!(
        resp.parse(&head),
        Ok(httparse::Status::Complete(head.len()))
    );
    assert_eq!(resp.code, Some(101));
    Ok(head)
}

/// The header fields of `u`, written as request header lines.
fn upgrade_lines(u: &Upgrade<'_>) -> String {
    let mut s = String::new();
    for (name, value) in [
        ("Upgrade", u.upgrade),
        ("Connection", u.connection),
        ("Sec-WebSocket-Key", u.key),
        ("Sec-WebSocket-Version", u.version),
        ("Sec-WebSocket-Protocol", u.protocol),
        ("Sec-WebSocket-Extensions", u.extensions),
    ] {
        if let Some(v) = value {
            s.push_str(&format!("{name}: {v}\r\n"));
        }
    }
    s
}

/// Handshake pieces over header values from the input, directly and through
/// `parse_head` of an upgrade request (which must agree), and a raw upgrade
/// request followed by frames as `io.rs` `on_input` hands them on.
///
/// Input: a mode byte, then `\n`-separated values (a presence bit each) or
/// a raw request.
pub fn handshake(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let limits = ROOMY_LIMITS;
    if mode & 0x80 != 0 {
        // A raw request: what the reactor does with an upgrade.
        let buf = input.rest();
        let Ok(Some((head, used))) = parse_head(buf, &limits) else {
            return;
        };
        let Ok(Route::Subscribe(sub)) = route_request(&head, &DEFAULT_ROUTE_LIMITS) else {
            return;
        };
        if sub.transport != SubTransport::WebSocket {
            return;
        }
        let h = &head.headers;
        let u = Upgrade {
            upgrade: h.upgrade.as_deref(),
            connection: h.connection.as_deref(),
            key: h.sec_websocket_key.as_deref(),
            version: h.sec_websocket_version.as_deref(),
            protocol: h.sec_websocket_protocol.as_deref(),
            extensions: h.sec_websocket_extensions.as_deref(),
        };
        // `reactor/websocket.rs` also refuses an HTTP/1.0 upgrade and one
        // with a body (which would be read as frames) after `validate`.
        let upgraded = accept(&u, head.method == Method::Get).is_ok()
            && head.minor_version == 1
            && head.body == BodyKind::None;
        if upgraded {
            // The client's first frames may follow the handshake in the same read.
            let deflate = u.extensions.and_then(deflate::negotiate).is_some();
            let frames = &buf[used..];
            let whole = run_ws(1 << 16, 1 << 16, deflate, frames, None);
            let split = run_ws(
                1 << 16,
                1 << 16,
                deflate,
                frames,
                Some(Splits::new(mode, frames.len())),
            );
            assert_eq!(whole, split);
        }
        return;
    }
    let presence = input.byte();
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    let mut fields = text.split('\n');
    let mut next = |bit: u8| {
        let v = fields.next().unwrap_or_default();
        (presence & bit != 0).then_some(v)
    };
    let direct = Upgrade {
        upgrade: next(1),
        connection: next(2),
        key: next(4),
        version: next(8),
        protocol: next(16),
        extensions: next(32),
    };
    let method_is_get = mode & 1 == 0;
    let verdict = accept(&direct, method_is_get);
    // The same values written into a request: what parse_head extracts
    // must lead to the same decision (values are trimmed, as headers are).
    let method = if method_is_get { "GET" } else { "POST" };
    let request = format!(
        "{method} /ws/chan HTTP/1.1\r\nHost: x\r\n{}\r\n",
        upgrade_lines(&direct)
    );
    if let Ok(Some((head, _))) = parse_head(request.as_bytes(), &limits) {
        let h = &head.headers;
        let parsed = Upgrade {
            upgrade: h.upgrade.as_deref(),
            connection: h.connection.as_deref(),
            key: h.sec_websocket_key.as_deref(),
            version: h.sec_websocket_version.as_deref(),
            protocol: h.sec_websocket_protocol.as_deref(),
            extensions: h.sec_websocket_extensions.as_deref(),
        };
        let trim = |v: Option<&'_ str>| v.map(|v| trimmed_value(v.as_bytes()).into_owned());
        for (a, b) in [
            (parsed.upgrade, direct.upgrade),
            (parsed.connection, direct.connection),
            (parsed.key, direct.key),
            (parsed.version, direct.version),
            (parsed.protocol, direct.protocol),
            (parsed.extensions, direct.extensions),
        ] {
            assert_eq!(
                a.map(str::to_string),
                trim(b),
                "header value changed in parsing"
            );
        }
        assert_eq!(accept(&parsed, head.method == Method::Get), verdict);
    }
}
