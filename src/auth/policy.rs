//! Who may publish, read status and subscribe: the configured secrets,
//! source networks, token keys and private channels, and the decisions made
//! from them. Pure: the reactor hands in what a request carries (peer
//! address, bearer, `?token=`) and the time; out comes a permission or a
//! refusal with its HTTP status and a JSON-safe reason.
//!
//! The rules (README, "Security"):
//! - Publishing (and `DELETE`) is open until `publish-secret` or
//!   `publish-allow` is set. Then a request must come from an allowed
//!   network (if a list is set) and carry a publish secret (if any is set),
//!   or carry a signed token whose `publish` claim covers every channel.
//! - Status (`/status`, `/metrics`, `GET /pub`, the `$status` stream) is open
//!   to `status-allow` (loopback by default), or to a `status-secret`.
//! - Channels matching `private-channels` need a token whose `channels`
//!   claim covers every channel of the request.

use std::net::IpAddr;

use super::cidr::NetList;
use super::secret::{any_matches, Secret};
use super::token::{Grant, Pattern, TokenKeys};

/// What a request carries that can authorise it.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The connection's peer address.
    pub peer: IpAddr,
    /// `Authorization: Bearer …`.
    pub bearer: Option<&'a str>,
    /// `?token=…` (EventSource and browser WebSocket cannot set headers).
    pub token: Option<&'a str>,
}

impl Credentials<'_> {
    /// The credential given, bearer first.
    fn presented(&self) -> Option<&str> {
        self.bearer.or(self.token)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// No credential where one is required (401 with `WWW-Authenticate`).
    MissingCredential,
    /// A secret or token that is not valid (403).
    BadCredential,
    /// The peer is outside the allowed networks (403).
    SourceNotAllowed,
    /// A private channel and no token (403).
    TokenRequired,
    /// A token that does not verify: forged, malformed, expired (403).
    BadToken(&'static str),
    /// A valid token that does not cover a channel of the request (403).
    ChannelNotGranted,
}

impl Denial {
    /// The HTTP status of the refusal.
    pub fn status(self) -> u16 {
        match self {
            Denial::MissingCredential => 401,
            _ => 403,
        }
    }

    /// The JSON reason; never echoes a credential.
    pub fn reason(self) -> &'static str {
        match self {
            Denial::MissingCredential => "credentials required: send Authorization: Bearer",
            Denial::BadCredential => "invalid credentials",
            Denial::SourceNotAllowed => "not allowed from this address",
            Denial::TokenRequired => "a signed token is required for this channel",
            Denial::BadToken(reason) => reason,
            Denial::ChannelNotGranted => "the token does not allow this channel",
        }
    }

    /// The `/status` name of the refusal.
    pub fn kind(self) -> &'static str {
        match self {
            Denial::MissingCredential => "missing_credential",
            Denial::BadCredential => "bad_credential",
            Denial::SourceNotAllowed => "source_not_allowed",
            Denial::TokenRequired => "token_required",
            Denial::BadToken(_) => "bad_token",
            Denial::ChannelNotGranted => "channel_not_granted",
        }
    }
}

/// The access rules of one server.
#[derive(Debug, Default)]
pub struct AccessPolicy {
    pub publish_secrets: Vec<Secret>,
    pub publish_allow: NetList,
    pub status_secrets: Vec<Secret>,
    pub status_allow: NetList,
    pub tokens: Option<TokenKeys>,
    pub private: Vec<Pattern>,
}

impl AccessPolicy {
    /// Whether any publish restriction is configured.
    pub fn publish_restricted(&self) -> bool {
        !self.publish_secrets.is_empty() || !self.publish_allow.is_empty()
    }

    /// Whether `channel` needs a token.
    pub fn is_private(&self, channel: &str) -> bool {
        self.private.iter().any(|p| p.matches(channel))
    }

    /// May this request publish to (or delete) `channels`?
    pub fn check_publish(
        &self,
        cred: &Credentials<'_>,
        channels: &[&str],
        now: u64,
    ) -> Result<(), Denial> {
        if !self.publish_restricted() {
            return Ok(());
        }
        if self.publisher_by_secret(cred).is_ok() {
            return Ok(());
        }
        // A signed token whose publish claim covers every channel (browser
        // widgets cannot hold the secret).
        if let Some(grant) = self.token_grant(cred, now)? {
            return if channels.iter().all(|c| grant.may_publish(c)) {
                Ok(())
            } else {
                Err(Denial::ChannelNotGranted)
            };
        }
        self.publisher_by_secret(cred)
    }

    /// The backend path: an allowed network and the publish secret, each
    /// when configured.
    fn publisher_by_secret(&self, cred: &Credentials<'_>) -> Result<(), Denial> {
        if !self.publish_allow.is_empty() && !self.publish_allow.contains(cred.peer) {
            return Err(Denial::SourceNotAllowed);
        }
        if self.publish_secrets.is_empty() {
            return Ok(());
        }
        match cred.presented() {
            None => Err(Denial::MissingCredential),
            Some(c) if any_matches(&self.publish_secrets, c) => Ok(()),
            Some(_) => Err(Denial::BadCredential),
        }
    }

    /// The verified token the request carries, if token keys are set and it
    /// carries something that looks like one (three dot-separated parts).
    /// A token that does not verify is a refusal, not an absence.
    fn token_grant(&self, cred: &Credentials<'_>, now: u64) -> Result<Option<Grant>, Denial> {
        let Some(keys) = &self.tokens else {
            return Ok(None);
        };
        let Some(token) = [cred.token, cred.bearer]
            .into_iter()
            .flatten()
            .find(|t| t.split('.').count() == 3)
        else {
            return Ok(None);
        };
        keys.verify(token, now)
            .map(Some)
            .map_err(|e| Denial::BadToken(e.reason()))
    }

    /// May this request read status figures?
    pub fn check_status(&self, cred: &Credentials<'_>) -> Result<(), Denial> {
        if self.status_allow.contains(cred.peer) {
            return Ok(());
        }
        if self.status_secrets.is_empty() {
            return Err(Denial::SourceNotAllowed);
        }
        match cred.presented() {
            None => Err(Denial::MissingCredential),
            Some(c) if any_matches(&self.status_secrets, c) => Ok(()),
            Some(_) => Err(Denial::BadCredential),
        }
    }

    /// May this request subscribe to `channels`? Returns the token's grant
    /// when the request needed one (its expiry bounds the connection).
    pub fn check_subscribe(
        &self,
        cred: &Credentials<'_>,
        channels: &[&str],
        now: u64,
    ) -> Result<Option<Grant>, Denial> {
        let private = channels.iter().any(|c| self.is_private(c));
        let grant = self.token_grant(cred, now)?;
        if !private {
            return Ok(grant);
        }
        let Some(grant) = grant else {
            return Err(Denial::TokenRequired);
        };
        if channels.iter().all(|c| grant.may_subscribe(c)) {
            Ok(Some(grant))
        } else {
            Err(Denial::ChannelNotGranted)
        }
    }

    /// Which of a WebSocket's channels its client may publish to (with
    /// `ws-publish` on), decided at the handshake: all when publishing is
    /// unrestricted or the request passes the backend rules, else those the
    /// token's `publish` claim covers.
    pub fn ws_publish_rights(
        &self,
        cred: &Credentials<'_>,
        grant: Option<&Grant>,
        channels: &[&str],
    ) -> Vec<bool> {
        if !self.publish_restricted() || self.publisher_by_secret(cred).is_ok() {
            return vec![true; channels.len()];
        }
        channels
            .iter()
            .map(|c| grant.is_some_and(|g| g.may_publish(c)))
            .collect()
    }
}
