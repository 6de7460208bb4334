//! WebSocket failures as values: each maps to the one close code we send
//! (RFC 6455 §7.4.1), so the reactor needs no mapping table.

use std::fmt;

/// Close code for a normal closure; what we answer to a client's clean close.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code for protocol violations (bad framing, bad sequencing, bad close codes).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code for payloads inconsistent with their type (invalid UTF-8, corrupt deflate data).
pub const CLOSE_INVALID_DATA: u16 = 1007;
/// Close code for messages larger than we agreed to buffer.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// Why the connection must be failed; `code` goes verbatim into the close
/// frame we send (see [`super::frame::encode_close`]) and `reason` can be its reason text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsError {
    /// The RFC 6455 §7.4.1 close code to send.
    pub code: u16,
    /// A short human readable explanation, safe to put in the close frame.
    pub reason: &'static str,
    /// For 1009: which size limit was passed (counted apart in `/status`).
    pub limit: Option<SizeLimit>,
}

/// The size limits a client's frames are held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLimit {
    /// One frame over the frame limit.
    Frame,
    /// A (reassembled) message over the message limit.
    Message,
    /// A compressed message that inflates past the message limit.
    Inflated,
}

impl WsError {
    /// Any close code, for callers that need one not covered below.
    pub const fn new(code: u16, reason: &'static str) -> Self {
        WsError {
            code,
            reason,
            limit: None,
        }
    }

    /// A 1002 error: the peer broke the framing or sequencing rules.
    pub const fn protocol(reason: &'static str) -> Self {
        Self::new(CLOSE_PROTOCOL_ERROR, reason)
    }

    /// A 1007 error: a payload is not what its type promises.
    pub const fn invalid_data(reason: &'static str) -> Self {
        Self::new(CLOSE_INVALID_DATA, reason)
    }

    /// A 1009 error: `limit` was passed.
    pub const fn too_big(limit: SizeLimit, reason: &'static str) -> Self {
        WsError {
            code: CLOSE_TOO_BIG,
            reason,
            limit: Some(limit),
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "websocket error {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for WsError {}
/// Close code for a server going away (drain, connection lifetime).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a policy violation; we use it for slow consumers and for
/// publishing without the right to.
pub const CLOSE_POLICY: u16 = 1008;
/// Close code (application range, RFC 6455 §7.4.2) for "the token this
/// connection subscribed with expired", as Centrifugo does.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
