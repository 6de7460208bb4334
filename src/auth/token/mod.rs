//! Signed channel tokens: a JWT (RFC 7519) in JWS compact serialization,
//! HS256 only. docs/TOKENS.md is the specification backends mint against;
//! this module is its one implementation.
//!
//! Why a JWT: every backend language has HMAC-SHA256, base64 and JSON in
//! its standard library, and the standard JWT libraries produce the same
//! bytes, so nobody needs a crier SDK to mint. Why HS256 only: the key is a
//! secret shared with the backend, verification is one HMAC per key, and
//! refusing every other `alg` closes the classic JWT holes (`"none"`, and
//! RS256/HS256 confusion) instead of configuring them away.
//!
//! Pure on purpose (no clock, no I/O): [`TokenKeys::verify`] takes `now`,
//! so the reactor passes its own coarse clock and tests pin time exactly.
//! Errors are values whose reason is a static string: it goes into JSON
//! error bodies and logs, so it can never echo the token or a key.
//!
//! Laid out by job: this file holds the public surface (limits, errors,
//! keys and [`TokenKeys::verify`], [`Grant`], [`Claims`] and [`mint`]);
//! `pattern` the channel patterns a token grants; `jws` the compact
//! serialization (splitting, base64url, the JSON of header and claims).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::Serialize;
use std::fmt;

mod jws;
mod pattern;
#[cfg(test)]
mod tests;

use jws::{
    decode_base64url, decode_json, keyed_mac, split, HmacSha256, Part, RawClaims, RawHeader,
};
pub use pattern::{Pattern, PatternError};

/// Longest token accepted, in bytes. Tokens travel in URLs (`?token=`) and
/// request heads, both bounded; 4 KiB holds 64 long patterns with room to
/// spare, and caps the work an unauthenticated peer can make us do.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Most patterns in `channels`, and separately in `publish`. Matching is a
/// linear scan per channel of a request; this keeps it trivially cheap.
pub const MAX_PATTERNS: usize = 64;

/// Shortest key accepted. RFC 7518 §3.2: an HS256 key MUST be at least as
/// long as the hash output (256 bits); shorter ones are guessable offline
/// from any one token.
pub const MIN_KEY_BYTES: usize = 32;

/// HMAC-SHA256 output length; any other signature length is malformed.
const SIGNATURE_BYTES: usize = 32;

/// `base64url({"alg":"HS256","typ":"JWT"})`, the header [`mint`] writes.
/// Fixed, so every token crier mints starts with the same 36 characters.
const MINT_HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Why a token was refused. Each kind maps to one outcome on the request
/// path (a 401, a WebSocket close, a counter); [`TokenError::reason`] is the
/// text for the JSON error body and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_BYTES`]; nothing else was looked at.
    TooLong,
    /// Not `header.claims.signature` in unpadded base64url, or a part that
    /// is not the JSON object it must be. The text says which.
    Malformed(&'static str),
    /// The header's `alg` is not exactly `HS256` (`none`, `HS512`, `RS256`…).
    UnsupportedAlgorithm,
    /// A header field we must not ignore: `crit` (RFC 7515 §4.1.11 says a
    /// verifier that does not understand it must refuse), or a `typ` other
    /// than `JWT`.
    UnsupportedHeader(&'static str),
    /// No configured key produced this signature: wrong key, or the header
    /// or claims were changed after signing.
    BadSignature,
    /// `now >= exp`.
    Expired,
    /// `now < nbf`.
    NotYetValid,
    /// Correctly signed, but the claims break the rules (missing `exp` or
    /// `channels`, a non-integer time, a bad pattern, too many patterns):
    /// the minting backend has a bug. The text says which.
    InvalidClaims(&'static str),
}

impl TokenError {
    /// Short, fixed, safe for a JSON error body: never contains the token,
    /// a claim value or a key.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::TooLong => "token longer than 4096 bytes",
            TokenError::Malformed(why)
            | TokenError::UnsupportedHeader(why)
            | TokenError::InvalidClaims(why) => why,
            TokenError::UnsupportedAlgorithm => "token alg must be HS256",
            TokenError::BadSignature => "token signature does not match any key",
            TokenError::Expired => "token expired",
            TokenError::NotYetValid => "token not valid yet (nbf)",
        }
    }

    /// A stable snake_case name for the kind, for counters and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            TokenError::TooLong => "too_long",
            TokenError::Malformed(_) => "malformed",
            TokenError::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenError::UnsupportedHeader(_) => "unsupported_header",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::InvalidClaims(_) => "invalid_claims",
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for TokenError {}

/// A configured key set cannot be used. Says which key by position only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Tokens were asked for but no key was given.
    NoKeys,
    /// The key at this 1-based position is shorter than [`MIN_KEY_BYTES`].
    TooShort { position: usize },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NoKeys => f.write_str("no token key given"),
            KeyError::TooShort { position } => write!(
                f,
                "token key #{position} is shorter than {MIN_KEY_BYTES} bytes \
                 (HS256 needs 256 bits; e.g. `openssl rand -hex 32`)"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// The keys a token may be signed with. Several at once so a key can be
/// rotated without a flag day: add the new one, move the backends over,
/// drop the old one once its last token has expired.
#[derive(Clone)]
pub struct TokenKeys {
    /// One HMAC state per key, already keyed: verifying clones it instead of
    /// re-deriving the inner and outer pads from the key every time.
    macs: Vec<HmacSha256>,
}

impl TokenKeys {
    /// Checks and loads the keys (each used as its UTF-8 bytes, exactly as
    /// given: no trimming, no decoding).
    pub fn new<I, K>(keys: I) -> Result<TokenKeys, KeyError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        let mut macs = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            let key = key.as_ref().as_bytes();
            if key.len() < MIN_KEY_BYTES {
                return Err(KeyError::TooShort { position: i + 1 });
            }
            macs.push(keyed_mac(key));
        }
        if macs.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(TokenKeys { macs })
    }

    /// How many keys are configured.
    pub fn key_count(&self) -> usize {
        self.macs.len()
    }

    /// Checks `token` at `now_unix_secs` and returns what it grants.
    ///
    /// The order is chosen so that nothing an unauthenticated peer sent is
    /// interpreted beyond the header before the signature has been checked:
    /// size, shape and encoding, header (`alg` first, so `none` never gets
    /// near a key), signature, and only then the claims and the clock.
    pub fn verify(&self, token: &str, now_unix_secs: u64) -> Result<Grant, TokenError> {
        let parts = split(token)?;
        let header: RawHeader = decode_json(parts.header, Part::Header)?;
        header.check()?;
        let signature = decode_base64url(parts.signature, Part::Signature)?;
        if signature.len() != SIGNATURE_BYTES {
            return Err(TokenError::Malformed(
                "token signature is not 32 bytes (HS256)",
            ));
        }
        let signed = parts.signing_input.as_bytes();
        // verify_slice compares in constant time, so the time taken says
        // nothing about how many leading bytes of a forgery were right.
        let genuine = self.macs.iter().any(|mac| {
            let mut mac = mac.clone();
            mac.update(signed);
            mac.verify_slice(&signature).is_ok()
        });
        if !genuine {
            return Err(TokenError::BadSignature);
        }
        let claims: RawClaims = decode_json(parts.claims, Part::Claims)?;
        claims.into_grant(now_unix_secs)
    }
}

/// Never prints the keys, so a `{:?}` of a config in a log is safe.
impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKeys")
            .field("keys", &self.macs.len())
            .finish_non_exhaustive()
    }
}

/// What a valid token allows, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The `exp` claim (Unix seconds): the first second the token is no
    /// longer valid. Connections opened with it are closed then.
    pub expires_at: u64,
    /// The `channels` claim: where the bearer may subscribe.
    pub subscribe: Vec<Pattern>,
    /// The `publish` claim (empty when absent): where the bearer may
    /// publish, e.g. a chat widget over WebSocket.
    pub publish: Vec<Pattern>,
}

impl Grant {
    /// May the bearer subscribe to `channel`?
    pub fn may_subscribe(&self, channel: &str) -> bool {
        self.subscribe.iter().any(|p| p.matches(channel))
    }

    /// May the bearer publish to `channel`? Publishing does not imply
    /// subscribing, nor the other way round: each has its own list.
    pub fn may_publish(&self, channel: &str) -> bool {
        self.publish.iter().any(|p| p.matches(channel))
    }
}

/// The claims [`mint`] signs. Patterns are typed, so a minted token never
/// carries one the verifier would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Not valid before, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, Unix seconds; informational only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Who the token is for; informational only (shown by `--check`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Where the bearer may subscribe.
    pub channels: Vec<Pattern>,
    /// Where the bearer may publish; left out of the token when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<Pattern>,
}

/// Signs `claims` with `key` (its UTF-8 bytes) and returns the token, with
/// the header `{"alg":"HS256","typ":"JWT"}`. For `crier token` and tests;
/// backends mint with their own few lines (docs/TOKENS.md). Checks nothing:
/// the caller verifies the result if it wants the size and count limits.
pub fn mint(key: &str, claims: &Claims) -> String {
    // Serializing plain integers, strings and patterns cannot fail.
    let claims_json = serde_json::to_vec(claims).expect("claims serialize");
    let mut token = String::with_capacity(MINT_HEADER_B64.len() + claims_json.len() * 2 + 45);
    token.push_str(MINT_HEADER_B64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(claims_json, &mut token);
    let mut mac = keyed_mac(key.as_bytes());
    mac.update(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut token);
    token
}

/// What a token says, decoded but NOT verified: for `crier token --check`
/// to show an operator what a refused token contains. Never grant anything
/// from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    pub header: serde_json::Value,
    pub claims: serde_json::Value,
}

/// Decodes a token's header and claims without checking the signature or
/// any rule beyond the encoding. See [`Unverified`].
pub fn decode_unverified(token: &str) -> Result<Unverified, TokenError> {
    let parts = split(token)?;
    Ok(Unverified {
        header: decode_json(parts.header, Part::Header)?,
        claims: decode_json(parts.claims, Part::Claims)?,
    })
}
