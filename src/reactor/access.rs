//! Access control at the reactor: what a request carries (peer address,
//! bearer, `?token=`), CORS for its answer, and how a refusal is answered
//! and counted. The decisions themselves are `auth::policy`'s.

use std::net::{IpAddr, Ipv4Addr};

use super::events::ConnEvent;
use super::Reactor;
use crate::auth::origin::CorsOrigin;
use crate::auth::policy::{Credentials, Denial};
use crate::http::query::query_param;
use crate::http::request::RequestHead;
use crate::http::response::{self, Cors, ReplyMode};
use crate::status::{CloseCause, Denied};

/// What a request carries that can authorise it, owned for the length of
/// its handling (the `?token=` value is decoded from the query).
pub(super) struct Presented<'a> {
    peer: IpAddr,
    bearer: Option<&'a str>,
    token: Option<String>,
}

impl Presented<'_> {
    /// The credentials as the policy takes them.
    pub fn credentials(&self) -> Credentials<'_> {
        Credentials {
            peer: self.peer,
            bearer: self.bearer,
            token: self.token.as_deref(),
        }
    }
}

impl Reactor {
    /// The CORS headers for an answer to a request from `origin`.
    pub(super) fn cors_for(&self, origin: Option<&str>) -> Cors {
        match self.settings.origins.cors_value(origin) {
            Some(CorsOrigin::Any) => Cors::any(),
            Some(CorsOrigin::Echo(o)) => Cors::echo(o),
            None => Cors::refused(),
        }
    }

    /// What request `head` on connection `k` presents.
    pub(super) fn presented<'a>(&self, k: usize, head: &'a RequestHead<'_>) -> Presented<'a> {
        let peer = self
            .conns
            .get(k)
            .and_then(|c| c.socket.peer_addr().ok())
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        Presented {
            peer,
            bearer: head.headers.bearer(),
            token: query_param(head.query, "token").filter(|t| !t.is_empty()),
        }
    }

    /// Answers a refusal: 401 (with `WWW-Authenticate: Bearer`) or 403, a
    /// JSON reason, counted by kind. The connection stays open for a
    /// request without a body; otherwise it closes after the answer, since
    /// the body was not read.
    pub(super) fn deny(&mut self, k: usize, denial: Denial, cors: &Cors, mode: ReplyMode) {
        self.note(Some(k), None, ConnEvent::Denied(denied_kind(denial)));
        let status = denial.status();
        let extra: &[&str] = if status == 401 {
            &["WWW-Authenticate: Bearer realm=\"crier\""]
        } else {
            &[]
        };
        let bytes = response::error(cors, status, denial.reason(), mode, extra);
        self.send(k, bytes);
        if !mode.keep_alive {
            self.close_after_flush(k, Some(CloseCause::Denied));
        }
    }

    /// Answers a browser origin that is not allowed (WebSocket handshake).
    pub(super) fn deny_origin(&mut self, k: usize, cors: &Cors) {
        self.note(Some(k), None, ConnEvent::Denied(Denied::Origin));
        let bytes = response::error(cors, 403, "origin not allowed", ReplyMode::CLOSE, &[]);
        self.send(k, bytes);
        self.close_after_flush(k, Some(CloseCause::Denied));
    }
}

/// The `/status` category of a policy refusal.
fn denied_kind(denial: Denial) -> Denied {
    match denial {
        Denial::MissingCredential => Denied::MissingCredential,
        Denial::BadCredential => Denied::BadCredential,
        Denial::SourceNotAllowed => Denied::SourceNotAllowed,
        Denial::TokenRequired => Denied::TokenRequired,
        Denial::BadToken(_) => Denied::BadToken,
        Denial::ChannelNotGranted => Denied::ChannelNotGranted,
    }
}
