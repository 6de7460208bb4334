//! The WebSocket opening handshake (RFC 6455 §4.2), server side: header
//! checks, the accept key and the 101 response head. The HTTP parser lives
//! elsewhere; these functions take the already extracted header values.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 §1.3 appends to the client key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why an upgrade request is refused, as the HTTP status to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeError {
    /// 400 for a malformed request, 426 for an unsupported version (the
    /// caller then adds `Sec-WebSocket-Version: 13`).
    pub status: u16,
    /// A short explanation for the response body or the log.
    pub reason: &'static str,
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "websocket handshake refused ({}): {}",
            self.status, self.reason
        )
    }
}

impl std::error::Error for HandshakeError {}

/// Computes `Sec-WebSocket-Accept`, proving to the client we speak WebSocket.
pub fn accept_key(client_key: &str) -> String {
    let mut h = Sha1::new();
    h.update(client_key.trim().as_bytes());
    h.update(GUID.as_bytes());
    STANDARD.encode(h.finalize())
}

/// Whether a comma-separated header value contains `token` (case-insensitive).
fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Checks the request headers that make a valid upgrade (RFC 6455 §4.2.1), so
/// the caller answers with an HTTP error instead of switching protocols.
pub fn validate(
    upgrade: Option<&str>,
    connection: Option<&str>,
    key: Option<&str>,
    version: Option<&str>,
    method_is_get: bool,
) -> Result<(), HandshakeError> {
    let bad = |reason| {
        Err(HandshakeError {
            status: 400,
            reason,
        })
    };
    if !method_is_get {
        return bad("websocket upgrade requires GET");
    }
    if !has_token(upgrade, "websocket") {
        return bad("missing Upgrade: websocket");
    }
    if !has_token(connection, "upgrade") {
        return bad("missing Connection: upgrade");
    }
    if version.map(str::trim) != Some("13") {
        return Err(HandshakeError {
            status: 426,
            reason: "unsupported Sec-WebSocket-Version",
        });
    }
    match key.map(|k| STANDARD.decode(k.trim())) {
        Some(Ok(bytes)) if bytes.len() == 16 => Ok(()),
        _ => bad("invalid Sec-WebSocket-Key"),
    }
}

/// Picks the first subprotocol the client offers (in its order of preference)
/// that we support; `None` means we send no `Sec-WebSocket-Protocol`.
pub fn choose_subprotocol(
    offered: Option<&str>,
    supported: &[&'static str],
) -> Option<&'static str> {
    offered?
        .split(',')
        .map(str::trim)
        .find_map(|o| supported.iter().copied().find(|s| *s == o))
}

/// The complete `101 Switching Protocols` response head, ending with the blank line.
pub fn response_head(accept: &str, subprotocol: Option<&str>, extensions: Option<&str>) -> Vec<u8> {
    let mut s = String::with_capacity(160);
    s.push_str("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    s.push_str("Sec-WebSocket-Accept: ");
    s.push_str(accept);
    s.push_str("\r\n");
    if let Some(p) = subprotocol {
        s.push_str("Sec-WebSocket-Protocol: ");
        s.push_str(p);
        s.push_str("\r\n");
    }
    if let Some(e) = extensions {
        s.push_str("Sec-WebSocket-Extensions: ");
        s.push_str(e);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn rfc_sample_accept_key() {
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn validation() {
        let ok = |u, c, k, v, g| validate(u, c, k, v, g);
        assert_eq!(
            ok(
                Some("websocket"),
                Some("Upgrade"),
                Some(KEY),
                Some("13"),
                true
            ),
            Ok(())
        );
        assert_eq!(
            ok(
                Some("WebSocket"),
                Some("keep-alive, Upgrade"),
                Some(KEY),
                Some(" 13 "),
                true
            ),
            Ok(())
        );
        let status = |r: Result<(), HandshakeError>| r.unwrap_err().status;
        assert_eq!(
            status(ok(
                Some("websocket"),
                Some("Upgrade"),
                Some(KEY),
                Some("13"),
                false
            )),
            400
        );
        assert_eq!(
            status(ok(None, Some("Upgrade"), Some(KEY), Some("13"), true)),
            400
        );
        assert_eq!(
            status(ok(
                Some("h2c"),
                Some("Upgrade"),
                Some(KEY),
                Some("13"),
                true
            )),
            400
        );
        assert_eq!(
            status(ok(
                Some("websocket"),
                Some("close"),
                Some(KEY),
                Some("13"),
                true
            )),
            400
        );
        assert_eq!(
            status(ok(
                Some("websocket"),
                Some("upgrades"),
                Some(KEY),
                Some("13"),
                true
            )),
            400
        );
        assert_eq!(
            status(ok(
                Some("websocket"),
                Some("Upgrade"),
                None,
                Some("13"),
                true
            )),
            400
        );
        assert_eq!(
            status(ok(
                Some("websocket"),
                Some("Upgrade"),
                Some("c2hvcnQ="),
                Some("13"),
                true
            )),
            400
        );
        assert_eq!(
            status(ok(
                Some("websocket"),
                Some("Upgrade"),
                Some("!!!"),
                Some("13"),
                true
            )),
            400
        );
        assert_eq!(
            status(ok(
                Some("websocket"),
                Some("Upgrade"),
                Some(KEY),
                Some("8"),
                true
            )),
            426
        );
        assert_eq!(
            status(ok(
                Some("websocket"),
                Some("Upgrade"),
                Some(KEY),
                None,
                true
            )),
            426
        );
    }

    #[test]
    fn subprotocols() {
        let sup = ["chat", "superchat"];
        assert_eq!(
            choose_subprotocol(Some("superchat, chat"), &sup),
            Some("superchat")
        );
        assert_eq!(choose_subprotocol(Some("foo,chat"), &sup), Some("chat"));
        assert_eq!(choose_subprotocol(Some("foo"), &sup), None);
        assert_eq!(choose_subprotocol(None, &sup), None);
    }

    #[test]
    fn head() {
        let h = response_head("abc=", Some("chat"), Some("permessage-deflate"));
        let s = String::from_utf8(h).unwrap();
        assert!(s.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(s.contains("\r\nSec-WebSocket-Accept: abc=\r\n"));
        assert!(s.contains("\r\nSec-WebSocket-Protocol: chat\r\n"));
        assert!(s.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"));
        assert!(s.ends_with("\r\n\r\n"));
        let s = String::from_utf8(response_head("x", None, None)).unwrap();
        assert!(!s.contains("Protocol:") && !s.contains("Extensions:"));
    }
}
