//! Signed channel tokens: a JWT (RFC 7519) in JWS compact serialization,
//! HS256 only. docs/TOKENS.md is the specification backends mint against;
//! this file is its one implementation.
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

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

use crate::pubsub::channel::valid_channel_id;

type HmacSha256 = Hmac<Sha256>;

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

/// A channel pattern: an exact channel id (`news`), or a prefix followed by
/// `*` (`chat-*`, matching every channel that starts with `chat-`,
/// including `chat-` itself; `*` alone matches every channel). `*` is
/// allowed only as the last character, so matching is one comparison.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
}

/// A pattern that breaks the rule; says nothing about the text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternError;

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a channel pattern is a channel id (1-128 characters of A-Z a-z 0-9 _ . : @ -), \
             or such a prefix (possibly empty) followed by a final *",
        )
    }
}

impl std::error::Error for PatternError {}

impl Pattern {
    /// Parses a pattern. Exact ids follow the channel id rule; a prefix
    /// follows it too except that it may be empty (`*`).
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        match text.strip_suffix('*') {
            Some("") => Ok(Pattern::Prefix(String::new())),
            Some(prefix) if valid_channel_id(prefix) => Ok(Pattern::Prefix(prefix.to_string())),
            Some(_) => Err(PatternError),
            None if valid_channel_id(text) => Ok(Pattern::Exact(text.to_string())),
            None => Err(PatternError),
        }
    }

    /// Does this pattern cover `channel`?
    pub fn matches(&self, channel: &str) -> bool {
        match self {
            Pattern::Exact(id) => id == channel,
            Pattern::Prefix(prefix) => channel.starts_with(prefix.as_str()),
        }
    }
}

impl FromStr for Pattern {
    type Err = PatternError;
    fn from_str(text: &str) -> Result<Pattern, PatternError> {
        Pattern::parse(text)
    }
}

/// Writes the pattern as it is spelled in a token (`news`, `chat-*`).
impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Exact(id) => f.write_str(id),
            Pattern::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
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

/// An HMAC-SHA256 state keyed with `key`.
fn keyed_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed first), so this
    // cannot fail; the Result is the generic `KeyInit` signature.
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

/// The three base64url parts of a token, plus the text they sign.
struct Parts<'a> {
    header: &'a str,
    claims: &'a str,
    signature: &'a str,
    /// `header "." claims`, exactly as received: the signature covers the
    /// encoded text, not the decoded JSON, so no re-encoding can differ.
    signing_input: &'a str,
}

fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLong);
    }
    let mut it = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(TokenError::Malformed(
            "token is not three base64url parts separated by dots",
        ));
    };
    // Check the alphabet of every part now, the claims included, although
    // they are decoded only after the signature: a padded or mangled token
    // is malformed, whichever part the mistake is in, and the reason should
    // say so rather than "bad signature".
    for (text, part) in [
        (header, Part::Header),
        (claims, Part::Claims),
        (signature, Part::Signature),
    ] {
        if let Some(bad) = text.bytes().find(|&b| !is_base64url(b)) {
            return Err(if bad == b'=' {
                part.padded()
            } else {
                part.not_base64url()
            });
        }
    }
    Ok(Parts {
        header,
        claims,
        signature,
        signing_input: &token[..header.len() + 1 + claims.len()],
    })
}

/// Which part of a token is being decoded, for the reason texts.
#[derive(Debug, Clone, Copy)]
enum Part {
    Header,
    Claims,
    Signature,
}

impl Part {
    fn padded(self) -> TokenError {
        TokenError::Malformed(match self {
            Part::Header => "token header has base64 padding (=): use unpadded base64url",
            Part::Claims => "token claims have base64 padding (=): use unpadded base64url",
            Part::Signature => "token signature has base64 padding (=): use unpadded base64url",
        })
    }

    fn not_base64url(self) -> TokenError {
        TokenError::Malformed(match self {
            Part::Header => "token header is not base64url",
            Part::Claims => "token claims are not base64url",
            Part::Signature => "token signature is not base64url",
        })
    }

    fn not_object(self) -> TokenError {
        TokenError::Malformed(match self {
            Part::Header => "token header is not a JSON object",
            Part::Claims | Part::Signature => "token claims are not a JSON object",
        })
    }
}

/// The unpadded base64url alphabet (RFC 4648 §5). `=` is not in it:
/// padding gets its own reason, being the usual mistake (a backend using
/// the standard encoder).
fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Decodes a part [`split`] has checked. The strict decoder also refuses
/// an impossible length and non-canonical trailing bits (another spelling
/// of the same bytes).
fn decode_base64url(text: &str, part: Part) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| part.not_base64url())
}

/// Decodes one part as a JSON object. Goes through `T` directly (not a
/// generic map) so that a repeated member name is refused rather than
/// silently resolved, as RFC 7515 §4 allows.
fn decode_json<T: for<'de> Deserialize<'de>>(text: &str, part: Part) -> Result<T, TokenError> {
    let bytes = decode_base64url(text, part)?;
    // serde would also build a struct from a JSON array, positionally;
    // JWT parts are objects, so look at the first byte.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(part.not_object());
    }
    serde_json::from_slice(&bytes).map_err(|_| part.not_object())
}

/// Deserializes any value to `true`: for fields whose mere presence counts.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d)?;
    Ok(true)
}

/// The header fields we look at; all others (`kid`, …) are ignored.
#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    typ: Option<String>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

impl RawHeader {
    fn check(&self) -> Result<(), TokenError> {
        match self.alg.as_deref() {
            None => return Err(TokenError::Malformed("token header has no alg")),
            // Case-sensitive, as RFC 7515 §4.1.1 says: "hs256" is refused.
            Some("HS256") => {}
            Some(_) => return Err(TokenError::UnsupportedAlgorithm),
        }
        if self.crit {
            return Err(TokenError::UnsupportedHeader(
                "token header has crit: no extensions are supported",
            ));
        }
        match self.typ.as_deref() {
            None | Some("JWT") => Ok(()),
            Some(_) => Err(TokenError::UnsupportedHeader(
                "token typ must be JWT or absent",
            )),
        }
    }
}

/// The claims we look at, as sent; `iat`, `sub`, `jti` and unknown claims
/// are ignored. Times are kept as raw JSON so a float or a string gets a
/// precise reason instead of a generic "not an object".
#[derive(Deserialize)]
struct RawClaims {
    exp: Option<serde_json::Value>,
    nbf: Option<serde_json::Value>,
    channels: Option<serde_json::Value>,
    publish: Option<serde_json::Value>,
}

impl RawClaims {
    fn into_grant(self, now: u64) -> Result<Grant, TokenError> {
        let exp = match self.exp {
            None | Some(serde_json::Value::Null) => {
                return Err(TokenError::InvalidClaims("token has no exp claim"));
            }
            Some(v) => unix_seconds(&v).ok_or(TokenError::InvalidClaims(
                "token exp must be an integer number of Unix seconds",
            ))?,
        };
        let nbf = match self.nbf {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(unix_seconds(&v).ok_or(TokenError::InvalidClaims(
                "token nbf must be an integer number of Unix seconds",
            ))?),
        };
        let subscribe = match self.channels {
            None | Some(serde_json::Value::Null) => {
                return Err(TokenError::InvalidClaims("token has no channels claim"));
            }
            Some(v) => patterns(v, ListClaim::Channels)?,
        };
        let publish = match self.publish {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(v) => patterns(v, ListClaim::Publish)?,
        };
        // Expiry before nbf: of two reasons, "expired" is the one that
        // tells the client to fetch a new token.
        if now >= exp {
            return Err(TokenError::Expired);
        }
        if nbf.is_some_and(|nbf| now < nbf) {
            return Err(TokenError::NotYetValid);
        }
        Ok(Grant {
            expires_at: exp,
            subscribe,
            publish,
        })
    }
}

/// A JSON integer from 0 to 2^64-1. `1.0`, `1e9` and `"1"` are not: the
/// format says integer, and accepting floats invites rounding surprises.
fn unix_seconds(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// The two claims that hold patterns, for the reason texts.
#[derive(Debug, Clone, Copy)]
enum ListClaim {
    Channels,
    Publish,
}

impl ListClaim {
    fn not_strings(self) -> TokenError {
        TokenError::InvalidClaims(match self {
            ListClaim::Channels => "token channels must be an array of strings",
            ListClaim::Publish => "token publish must be an array of strings",
        })
    }

    fn too_many(self) -> TokenError {
        TokenError::InvalidClaims(match self {
            ListClaim::Channels => "token channels has more than 64 patterns",
            ListClaim::Publish => "token publish has more than 64 patterns",
        })
    }

    fn bad_pattern(self) -> TokenError {
        TokenError::InvalidClaims(match self {
            ListClaim::Channels => "token channels has an invalid pattern",
            ListClaim::Publish => "token publish has an invalid pattern",
        })
    }
}

/// An array of at most [`MAX_PATTERNS`] valid patterns.
fn patterns(v: serde_json::Value, claim: ListClaim) -> Result<Vec<Pattern>, TokenError> {
    let serde_json::Value::Array(items) = v else {
        return Err(claim.not_strings());
    };
    if items.len() > MAX_PATTERNS {
        return Err(claim.too_many());
    }
    items
        .iter()
        .map(|item| {
            let text = item.as_str().ok_or(claim.not_strings())?;
            Pattern::parse(text).map_err(|_| claim.bad_pattern())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "test-key-0123456789-0123456789-0123456789";
    const OTHER_KEY: &str = "other-key-0123456789-0123456789-012345678";
    const NOW: u64 = 1_700_000_000;

    /// An independently computed token (Python stdlib, not this code):
    /// python3 -c 'import base64,hashlib,hmac,json;e=lambda b:base64.urlsafe_b64encode(b).rstrip(b"=").decode();j=lambda o:e(json.dumps(o,separators=(",",":")).encode());s=j({"alg":"HS256","typ":"JWT"})+"."+j({"exp":2000000000,"iat":1700000000,"channels":["news","chat-*"],"publish":["chat-*"]});print(s+"."+e(hmac.new(b"crier-test-vector-key-0123456789abcdef",s.encode(),hashlib.sha256).digest()))'
    const VECTOR_KEY: &str = "crier-test-vector-key-0123456789abcdef";
    const VECTOR: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjIwMDAwMDAwMDAsImlhdCI6MTcwMDAwMDAwMCwiY2hhbm5lbHMiOlsibmV3cyIsImNoYXQtKiJdLCJwdWJsaXNoIjpbImNoYXQtKiJdfQ.q2UY9zIF7z-1yISMfVUON0Zlqd4BdHIhyjutxBsPMm8";

    fn keys() -> TokenKeys {
        TokenKeys::new([KEY]).unwrap()
    }

    fn pat(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    fn claims(exp: u64, channels: &[&str], publish: &[&str]) -> Claims {
        Claims {
            exp,
            nbf: None,
            iat: None,
            sub: None,
            channels: channels.iter().map(|c| pat(c)).collect(),
            publish: publish.iter().map(|c| pat(c)).collect(),
        }
    }

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Signs arbitrary header and claims JSON, to build tokens that
    /// [`mint`] refuses to write.
    fn sign(key: &str, header_json: &str, claims_json: &str) -> String {
        let input = format!("{}.{}", b64(header_json), b64(claims_json));
        sign_input(key, &input)
    }

    fn sign_input(key: &str, input: &str) -> String {
        let mut mac = keyed_mac(key.as_bytes());
        mac.update(input.as_bytes());
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    /// Verifies claims JSON signed with the right key under the usual header.
    fn verify_claims(claims_json: &str) -> Result<Grant, TokenError> {
        keys().verify(&sign(KEY, HEADER, claims_json), NOW)
    }

    /// Verifies a header JSON over valid claims, signed with the right key.
    fn verify_header(header_json: &str) -> Result<Grant, TokenError> {
        let claims = format!(r#"{{"exp":{},"channels":["a"]}}"#, NOW + 60);
        keys().verify(&sign(KEY, header_json, &claims), NOW)
    }

    // ---- the HMAC primitive and the fixed header

    #[test]
    fn hmac_sha256_matches_rfc4231_test_case_2() {
        let mut mac = keyed_mac(b"Jefe");
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn mint_header_is_the_documented_json() {
        assert_eq!(MINT_HEADER_B64, b64(HEADER));
    }

    // ---- valid tokens

    #[test]
    fn independent_vector_verifies_and_mint_reproduces_it() {
        let keys = TokenKeys::new([VECTOR_KEY]).unwrap();
        let grant = keys.verify(VECTOR, NOW).unwrap();
        assert_eq!(grant.expires_at, 2_000_000_000);
        assert_eq!(grant.subscribe, vec![pat("news"), pat("chat-*")]);
        assert_eq!(grant.publish, vec![pat("chat-*")]);
        let mut c = claims(2_000_000_000, &["news", "chat-*"], &["chat-*"]);
        c.iat = Some(1_700_000_000);
        assert_eq!(mint(VECTOR_KEY, &c), VECTOR);
    }

    #[test]
    fn round_trip() {
        let mut c = claims(NOW + 3600, &["news", "chat-*"], &["chat-42"]);
        c.nbf = Some(NOW - 10);
        c.iat = Some(NOW);
        c.sub = Some("user 7".into());
        let grant = keys().verify(&mint(KEY, &c), NOW).unwrap();
        assert_eq!(
            grant,
            Grant {
                expires_at: NOW + 3600,
                subscribe: vec![pat("news"), pat("chat-*")],
                publish: vec![pat("chat-42")],
            }
        );
        assert!(grant.may_subscribe("news"));
        assert!(grant.may_subscribe("chat-42"));
        assert!(!grant.may_subscribe("sport"));
        assert!(grant.may_publish("chat-42"));
        assert!(!grant.may_publish("chat-43"));
        assert!(!grant.may_publish("news"));
    }

    #[test]
    fn publish_absent_grants_no_publishing() {
        let token = mint(KEY, &claims(NOW + 60, &["*"], &[]));
        let claims_json = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap();
        assert!(!String::from_utf8(claims_json).unwrap().contains("publish"));
        let grant = keys().verify(&token, NOW).unwrap();
        assert!(grant.may_subscribe("anything"));
        assert!(grant.publish.is_empty());
        assert!(!grant.may_publish("anything"));
    }

    #[test]
    fn empty_channels_is_valid_and_grants_nothing() {
        let grant = verify_claims(&format!(r#"{{"exp":{},"channels":[]}}"#, NOW + 1)).unwrap();
        assert!(!grant.may_subscribe("a"));
    }

    #[test]
    fn unknown_and_ignored_claims_and_header_fields_are_accepted() {
        let claims = format!(
            r#"{{"exp":{},"iat":"whatever","sub":7,"jti":"x","aud":["y"],"channels":["a"],"publish":null,"nested":{{"k":[1,2]}}}}"#,
            NOW + 60
        );
        let token = sign(
            KEY,
            r#"{"alg":"HS256","kid":"k1","x5u":"ignored"}"#,
            &claims,
        );
        let grant = keys().verify(&token, NOW).unwrap();
        assert!(grant.may_subscribe("a"));
        assert!(grant.publish.is_empty());
    }

    #[test]
    fn json_whitespace_is_accepted() {
        let token = sign(
            KEY,
            " {\n\"alg\" : \"HS256\" } ",
            &format!("\t{{ \"exp\": {}, \"channels\": [ \"a\" ] }}\n", NOW + 5),
        );
        assert!(keys().verify(&token, NOW).is_ok());
    }

    #[test]
    fn typ_may_be_absent_or_jwt() {
        assert!(verify_header(r#"{"alg":"HS256"}"#).is_ok());
        assert!(verify_header(r#"{"typ":"JWT","alg":"HS256"}"#).is_ok());
    }

    #[test]
    fn rotation_any_configured_key_verifies() {
        let both = TokenKeys::new([KEY, OTHER_KEY]).unwrap();
        assert_eq!(both.key_count(), 2);
        let c = claims(NOW + 60, &["a"], &[]);
        assert!(both.verify(&mint(KEY, &c), NOW).is_ok());
        assert!(both.verify(&mint(OTHER_KEY, &c), NOW).is_ok());
        let third = "third-key-0123456789-0123456789-012345678";
        assert_eq!(
            both.verify(&mint(third, &c), NOW),
            Err(TokenError::BadSignature)
        );
        // Dropping the old key retires its tokens.
        let new_only = TokenKeys::new([OTHER_KEY]).unwrap();
        assert_eq!(
            new_only.verify(&mint(KEY, &c), NOW),
            Err(TokenError::BadSignature)
        );
    }

    // ---- time

    #[test]
    fn exp_boundary() {
        let token = mint(KEY, &claims(NOW, &["a"], &[]));
        assert!(keys().verify(&token, NOW - 1).is_ok());
        assert_eq!(keys().verify(&token, NOW), Err(TokenError::Expired));
        assert_eq!(keys().verify(&token, NOW + 1), Err(TokenError::Expired));
        assert_eq!(
            keys().verify(&mint(KEY, &claims(0, &["a"], &[])), 0),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn nbf_boundary() {
        let mut c = claims(NOW + 100, &["a"], &[]);
        c.nbf = Some(NOW);
        let token = mint(KEY, &c);
        assert_eq!(keys().verify(&token, NOW - 1), Err(TokenError::NotYetValid));
        assert!(keys().verify(&token, NOW).is_ok());
        assert!(keys().verify(&token, NOW + 99).is_ok());
        assert_eq!(keys().verify(&token, NOW + 100), Err(TokenError::Expired));
    }

    #[test]
    fn expired_wins_over_not_yet_valid() {
        let mut c = claims(NOW, &["a"], &[]);
        c.nbf = Some(NOW + 10);
        assert_eq!(
            keys().verify(&mint(KEY, &c), NOW + 5),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn largest_times_are_accepted() {
        let grant =
            verify_claims(r#"{"exp":18446744073709551615,"nbf":0,"channels":["a"]}"#).unwrap();
        assert_eq!(grant.expires_at, u64::MAX);
    }

    // ---- signature

    #[test]
    fn wrong_key_is_a_bad_signature() {
        let token = mint(OTHER_KEY, &claims(NOW + 60, &["a"], &[]));
        assert_eq!(keys().verify(&token, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_header_is_a_bad_signature() {
        let token = mint(KEY, &claims(NOW + 60, &["a"], &[]));
        let (_, rest) = token.split_once('.').unwrap();
        let forged = format!("{}.{rest}", b64(r#"{"alg":"HS256"}"#));
        assert_eq!(keys().verify(&forged, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_claims_are_a_bad_signature() {
        let token = mint(KEY, &claims(NOW + 60, &["a"], &[]));
        let parts: Vec<&str> = token.split('.').collect();
        for forged_claims in [
            format!(r#"{{"exp":{},"channels":["*"]}}"#, NOW + 60),
            format!(r#"{{"exp":{},"channels":["a"]}}"#, NOW + 999_999),
            format!(r#"{{"exp":{},"channels":["a"],"publish":["a"]}}"#, NOW + 60),
        ] {
            let forged = format!("{}.{}.{}", parts[0], b64(&forged_claims), parts[2]);
            assert_eq!(keys().verify(&forged, NOW), Err(TokenError::BadSignature));
        }
    }

    #[test]
    fn tampered_signature_is_a_bad_signature() {
        let token = mint(KEY, &claims(NOW + 60, &["a"], &[]));
        let (input, sig) = token.rsplit_once('.').unwrap();
        // Change a middle character: every one of its 6 bits is data, so
        // the decoded bytes differ (the last character has 2 spare bits).
        let mut sig: Vec<u8> = sig.bytes().collect();
        sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
        let forged = format!("{input}.{}", String::from_utf8(sig).unwrap());
        assert_eq!(keys().verify(&forged, NOW), Err(TokenError::BadSignature));
        // A genuine signature from another token does not fit these claims.
        let other = mint(KEY, &claims(NOW + 60, &["b"], &[]));
        let (_, other_sig) = other.rsplit_once('.').unwrap();
        let forged = format!("{input}.{other_sig}");
        assert_eq!(keys().verify(&forged, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn signature_of_the_wrong_length_is_malformed() {
        let token = mint(KEY, &claims(NOW + 60, &["a"], &[]));
        let (input, sig) = token.rsplit_once('.').unwrap();
        for bad in [
            String::new(),
            sig[..40].to_string(),
            URL_SAFE_NO_PAD.encode([0u8; 64]),
        ] {
            assert!(matches!(
                keys().verify(&format!("{input}.{bad}"), NOW),
                Err(TokenError::Malformed(_))
            ));
        }
    }

    // ---- header

    #[test]
    fn other_algorithms_are_refused() {
        for alg in [
            "none", "None", "HS512", "HS384", "RS256", "ES256", "hs256", "",
        ] {
            let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
            assert_eq!(
                verify_header(&header),
                Err(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn alg_none_with_an_empty_signature_is_refused_before_any_key() {
        let claims = format!(r#"{{"exp":{},"channels":["*"]}}"#, NOW + 60);
        let token = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&claims));
        assert_eq!(
            keys().verify(&token, NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn hs512_signed_token_is_refused() {
        // What a backend configured for HS512 sends: header says so, and the
        // signature is 64 bytes. The alg check refuses it first.
        let claims = format!(r#"{{"exp":{},"channels":["a"]}}"#, NOW + 60);
        let token = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"HS512","typ":"JWT"}"#),
            b64(&claims),
            URL_SAFE_NO_PAD.encode([7u8; 64])
        );
        assert_eq!(
            keys().verify(&token, NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn missing_or_non_string_alg_is_malformed() {
        for header in [
            r#"{"typ":"JWT"}"#,
            r#"{"alg":null}"#,
            r#"{"alg":256}"#,
            r#"{"alg":["HS256"]}"#,
        ] {
            assert!(
                matches!(verify_header(header), Err(TokenError::Malformed(_))),
                "{header}"
            );
        }
    }

    #[test]
    fn crit_is_refused_whatever_its_value() {
        for header in [
            r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"HS256","crit":null}"#,
        ] {
            assert!(
                matches!(verify_header(header), Err(TokenError::UnsupportedHeader(_))),
                "{header}"
            );
        }
    }

    #[test]
    fn typ_other_than_jwt_is_refused() {
        for header in [
            r#"{"alg":"HS256","typ":"JOSE"}"#,
            r#"{"alg":"HS256","typ":"jwt"}"#,
            r#"{"alg":"HS256","typ":"at+jwt"}"#,
        ] {
            assert!(
                matches!(verify_header(header), Err(TokenError::UnsupportedHeader(_))),
                "{header}"
            );
        }
        assert!(matches!(
            verify_header(r#"{"alg":"HS256","typ":1}"#),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn duplicate_members_are_refused() {
        assert!(matches!(
            verify_header(r#"{"alg":"none","alg":"HS256"}"#),
            Err(TokenError::Malformed(_))
        ));
        assert!(matches!(
            verify_claims(&format!(
                r#"{{"exp":{},"channels":["a"],"channels":["*"]}}"#,
                NOW + 60
            )),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn header_and_claims_must_be_json_objects() {
        for header in [r#"["HS256"]"#, "\"HS256\"", "null", "", "{", "{}x"] {
            assert_eq!(
                verify_header(header),
                Err(TokenError::Malformed("token header is not a JSON object")),
                "{header}"
            );
        }
        for claims in [
            format!(r#"[{},["a"]]"#, NOW + 60),
            "42".to_string(),
            "{\"exp\":1".to_string(),
            String::new(),
        ] {
            assert_eq!(
                verify_claims(&claims),
                Err(TokenError::Malformed("token claims are not a JSON object")),
                "{claims}"
            );
        }
    }

    #[test]
    fn non_utf8_json_is_malformed() {
        let header = b64(HEADER);
        let claims = URL_SAFE_NO_PAD.encode(b"{\"exp\":99999999999,\"channels\":[\"\xff\"]}");
        let token = sign_input(KEY, &format!("{header}.{claims}"));
        assert!(matches!(
            keys().verify(&token, NOW),
            Err(TokenError::Malformed(_))
        ));
    }

    // ---- encoding and shape

    #[test]
    fn wrong_number_of_parts_is_malformed() {
        let token = mint(KEY, &claims(NOW + 60, &["a"], &[]));
        let (input, _) = token.rsplit_once('.').unwrap();
        for bad in [
            String::new(),
            ".".to_string(),
            "..".to_string(),
            "...".to_string(),
            input.to_string(),
            format!("{token}."),
            format!("{token}.{}", b64("x")),
            format!(".{token}"),
        ] {
            assert!(
                matches!(keys().verify(&bad, NOW), Err(TokenError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn padding_is_refused_in_every_part() {
        // Whatever the part's length, an '=' anywhere is refused with the
        // padding reason.
        let token = mint(KEY, &claims(NOW + 60, &["a"], &[]));
        let parts: Vec<&str> = token.split('.').collect();
        for i in 0..3 {
            let mut padded: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            padded[i].push('=');
            let bad = padded.join(".");
            let err = keys().verify(&bad, NOW).unwrap_err();
            assert!(err.reason().contains("padding"), "part {i}: {err}");
        }
        // A padded standard encoding of a header (16 bytes: two `=`).
        let std_header = base64::engine::general_purpose::URL_SAFE.encode(r#"{"alg": "HS256"}"#);
        assert!(std_header.ends_with('='));
        let bad = format!("{std_header}.{}.{}", parts[1], parts[2]);
        assert!(keys()
            .verify(&bad, NOW)
            .unwrap_err()
            .reason()
            .contains("padding"));
    }

    #[test]
    fn non_base64url_characters_are_refused() {
        let token = mint(KEY, &claims(NOW + 60, &["a"], &[]));
        for (i, c) in [
            (3, '+'),
            (40, '/'),
            (50, ' '),
            (5, 'é'),
            (60, '%'),
            (70, '\n'),
        ] {
            let mut bad = token.clone();
            bad.replace_range(i..i + 1, &c.to_string());
            assert!(
                matches!(keys().verify(&bad, NOW), Err(TokenError::Malformed(_))),
                "{c:?} at {i}"
            );
        }
    }

    #[test]
    fn non_canonical_trailing_bits_are_refused() {
        // 32 signature bytes encode to 43 characters whose last carries 2
        // unused bits; setting them gives another spelling of the same
        // bytes, which a strict decoder refuses.
        let token = mint(KEY, &claims(NOW + 60, &["a"], &[]));
        let (input, sig) = token.rsplit_once('.').unwrap();
        let last = sig.as_bytes()[42];
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = ALPHABET.iter().position(|&c| c == last).unwrap();
        let twin = ALPHABET[index ^ 1] as char;
        let bad = format!("{input}.{}{twin}", &sig[..42]);
        assert!(matches!(
            keys().verify(&bad, NOW),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn size_limit_is_4096_bytes() {
        // Grow `sub` until the token is exactly the limit, which must pass,
        // then by one more byte-producing step, which must not.
        let mut c = claims(NOW + 60, &["a"], &[]);
        let mut exact = None;
        for n in 0..4096 {
            c.sub = Some("x".repeat(n));
            let token = mint(KEY, &c);
            if token.len() > MAX_TOKEN_BYTES {
                assert_eq!(keys().verify(&token, NOW), Err(TokenError::TooLong));
                break;
            }
            if token.len() == MAX_TOKEN_BYTES {
                exact = Some(token);
            }
        }
        let exact = exact.expect("some sub length lands on exactly 4096 bytes");
        assert!(keys().verify(&exact, NOW).is_ok());
        let huge = "A".repeat(1 << 20);
        assert_eq!(keys().verify(&huge, NOW), Err(TokenError::TooLong));
    }

    // ---- claims

    #[test]
    fn missing_required_claims_are_refused() {
        assert_eq!(
            verify_claims(r#"{"channels":["a"]}"#),
            Err(TokenError::InvalidClaims("token has no exp claim"))
        );
        assert_eq!(
            verify_claims(r#"{"exp":null,"channels":["a"]}"#),
            Err(TokenError::InvalidClaims("token has no exp claim"))
        );
        assert_eq!(
            verify_claims(&format!(r#"{{"exp":{}}}"#, NOW + 60)),
            Err(TokenError::InvalidClaims("token has no channels claim"))
        );
        assert_eq!(
            verify_claims("{}"),
            Err(TokenError::InvalidClaims("token has no exp claim"))
        );
    }

    #[test]
    fn non_integer_times_are_refused() {
        for exp in [
            "1.5",
            "2000000000.0",
            "2e9",
            "\"2000000000\"",
            "-1",
            "true",
            "[2000000000]",
            "18446744073709551616",
        ] {
            let claims = format!(r#"{{"exp":{exp},"channels":["a"]}}"#);
            assert!(
                matches!(verify_claims(&claims), Err(TokenError::InvalidClaims(r)) if r.contains("exp")),
                "exp {exp}"
            );
            let claims = format!(r#"{{"exp":{},"nbf":{exp},"channels":["a"]}}"#, NOW + 60);
            assert!(
                matches!(verify_claims(&claims), Err(TokenError::InvalidClaims(r)) if r.contains("nbf")),
                "nbf {exp}"
            );
        }
    }

    #[test]
    fn pattern_lists_must_be_arrays_of_strings() {
        for list in [r#""a""#, "{}", "[1]", r#"["a",null]"#, "true", r#"[["a"]]"#] {
            let c = format!(r#"{{"exp":{},"channels":{list}}}"#, NOW + 60);
            assert_eq!(
                verify_claims(&c),
                Err(TokenError::InvalidClaims(
                    "token channels must be an array of strings"
                )),
                "{list}"
            );
            let c = format!(
                r#"{{"exp":{},"channels":["a"],"publish":{list}}}"#,
                NOW + 60
            );
            assert_eq!(
                verify_claims(&c),
                Err(TokenError::InvalidClaims(
                    "token publish must be an array of strings"
                )),
                "{list}"
            );
        }
    }

    #[test]
    fn invalid_patterns_in_claims_are_refused() {
        for bad in [
            "",
            "a*b",
            "**",
            "*a",
            "a b",
            "a/b",
            "é",
            "a?",
            &"x".repeat(129),
        ] {
            let c = format!(r#"{{"exp":{},"channels":["ok","{bad}"]}}"#, NOW + 60);
            assert_eq!(
                verify_claims(&c),
                Err(TokenError::InvalidClaims(
                    "token channels has an invalid pattern"
                )),
                "{bad:?}"
            );
            let c = format!(
                r#"{{"exp":{},"channels":["ok"],"publish":["{bad}"]}}"#,
                NOW + 60
            );
            assert_eq!(
                verify_claims(&c),
                Err(TokenError::InvalidClaims(
                    "token publish has an invalid pattern"
                )),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn at_most_64_patterns_per_list() {
        let list = |n: usize| {
            let items: Vec<String> = (0..n).map(|i| format!("\"c{i}\"")).collect();
            format!("[{}]", items.join(","))
        };
        let ok = format!(
            r#"{{"exp":{},"channels":{},"publish":{}}}"#,
            NOW + 60,
            list(64),
            list(64)
        );
        let grant = verify_claims(&ok).unwrap();
        assert!(grant.may_subscribe("c63") && grant.may_publish("c63"));
        let c = format!(r#"{{"exp":{},"channels":{}}}"#, NOW + 60, list(65));
        assert_eq!(
            verify_claims(&c),
            Err(TokenError::InvalidClaims(
                "token channels has more than 64 patterns"
            ))
        );
        let c = format!(
            r#"{{"exp":{},"channels":["a"],"publish":{}}}"#,
            NOW + 60,
            list(65)
        );
        assert_eq!(
            verify_claims(&c),
            Err(TokenError::InvalidClaims(
                "token publish has more than 64 patterns"
            ))
        );
    }

    #[test]
    fn claims_are_checked_only_after_the_signature() {
        // Garbage claims under a wrong signature say "bad signature", not
        // what is wrong with the claims: nothing unauthenticated is parsed.
        let token = sign(OTHER_KEY, HEADER, r#"{"channels":"nope"}"#);
        assert_eq!(keys().verify(&token, NOW), Err(TokenError::BadSignature));
    }

    // ---- patterns

    #[test]
    fn pattern_parse() {
        assert_eq!(pat("news"), Pattern::Exact("news".into()));
        assert_eq!(pat("chat-*"), Pattern::Prefix("chat-".into()));
        assert_eq!(pat("*"), Pattern::Prefix(String::new()));
        assert_eq!(pat("A-z_0.9:@-"), Pattern::Exact("A-z_0.9:@-".into()));
        assert!(Pattern::parse(&"x".repeat(128)).is_ok());
        assert!(Pattern::parse(&format!("{}*", "x".repeat(128))).is_ok());
        for bad in [
            "",
            "a*b",
            "**",
            "*a",
            "a**",
            "a b",
            "a/b",
            "é",
            &"x".repeat(129),
        ] {
            assert_eq!(Pattern::parse(bad), Err(PatternError), "{bad:?}");
        }
        assert_eq!("chat-*".parse::<Pattern>(), Ok(pat("chat-*")));
    }

    #[test]
    fn pattern_display_round_trips() {
        for text in ["news", "chat-*", "*", "a.b:c@d"] {
            assert_eq!(pat(text).to_string(), text);
            assert_eq!(
                serde_json::to_string(&pat(text)).unwrap(),
                format!("\"{text}\"")
            );
        }
    }

    #[test]
    fn exact_pattern_matches_only_itself() {
        let p = pat("chat");
        assert!(p.matches("chat"));
        assert!(!p.matches("chat-1"));
        assert!(!p.matches("cha"));
        assert!(!p.matches("Chat"));
        assert!(!p.matches(""));
    }

    #[test]
    fn prefix_pattern_matches_what_starts_with_the_prefix() {
        let p = pat("chat-*");
        assert!(p.matches("chat-1"));
        assert!(p.matches("chat-room.42"));
        assert!(p.matches("chat-"));
        assert!(!p.matches("chat"));
        assert!(!p.matches("chatx"));
        assert!(!p.matches("a-chat-1"));
        assert!(!p.matches("CHAT-1"));
    }

    #[test]
    fn star_alone_matches_every_channel() {
        let p = pat("*");
        for channel in ["a", "news", "chat-1", &"z".repeat(128)] {
            assert!(p.matches(channel));
        }
    }

    // ---- keys and error texts

    #[test]
    fn key_rules() {
        assert_eq!(
            TokenKeys::new(Vec::<String>::new()).unwrap_err(),
            KeyError::NoKeys
        );
        assert_eq!(
            TokenKeys::new([KEY, "short"]).unwrap_err(),
            KeyError::TooShort { position: 2 }
        );
        assert!(TokenKeys::new(["x".repeat(MIN_KEY_BYTES)]).is_ok());
        assert!(TokenKeys::new(["x".repeat(MIN_KEY_BYTES - 1)]).is_err());
        // Long keys are hashed by HMAC first; they work like any other.
        let long = "k".repeat(200);
        let keys = TokenKeys::new([&long]).unwrap();
        assert!(keys
            .verify(&mint(&long, &claims(NOW + 1, &["a"], &[])), NOW)
            .is_ok());
    }

    #[test]
    fn keys_never_show_in_debug_or_errors() {
        let keys = TokenKeys::new([KEY, OTHER_KEY]).unwrap();
        let debug = format!("{keys:?}");
        assert!(
            !debug.contains(KEY) && !debug.contains(OTHER_KEY),
            "{debug}"
        );
        let err = TokenKeys::new(["a-secret-that-is-too-short"]).unwrap_err();
        assert!(!err.to_string().contains("a-secret"));
    }

    #[test]
    fn reasons_are_short_and_never_echo_the_token() {
        let token = mint(OTHER_KEY, &claims(NOW + 60, &["secret-channel"], &[]));
        let cases = [
            keys().verify(&token, NOW).unwrap_err(),
            keys().verify(&format!("{token}="), NOW).unwrap_err(),
            keys().verify(&token.replace('.', "!"), NOW).unwrap_err(),
            keys()
                .verify(&mint(KEY, &claims(1, &["secret-channel"], &[])), NOW)
                .unwrap_err(),
            TokenError::TooLong,
        ];
        for err in cases {
            let reason = err.reason();
            assert!(reason.len() < 80, "{reason}");
            assert!(!reason.contains("secret"), "{reason}");
            assert!(!reason.contains(&token[..10]), "{reason}");
            assert_eq!(err.to_string(), reason);
            assert!(!err.kind().is_empty());
        }
    }

    #[test]
    fn decode_unverified_shows_claims_without_checking() {
        let token = mint(OTHER_KEY, &claims(5, &["a"], &[]));
        let seen = decode_unverified(&token).unwrap();
        assert_eq!(seen.header["alg"], "HS256");
        assert_eq!(seen.claims["exp"], 5);
        assert!(decode_unverified("a.b").is_err());
    }
}
