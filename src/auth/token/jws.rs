//! The JWS compact serialization (RFC 7515 §7.1) of a token: the keyed
//! HMAC, splitting into `header.claims.signature`, strict unpadded
//! base64url, and decoding header and claims from JSON into what the
//! verifier checks. The order the checks run in is `TokenKeys::verify`'s.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use sha2::Sha256;

use super::{Grant, Pattern, TokenError, MAX_PATTERNS, MAX_TOKEN_BYTES};

pub(super) type HmacSha256 = Hmac<Sha256>;

/// An HMAC-SHA256 state keyed with `key`.
pub(super) fn keyed_mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed first), so this
    // cannot fail; the Result is the generic `KeyInit` signature.
    HmacSha256::new_from_slice(key).expect("HMAC accepts any key length")
}

/// The three base64url parts of a token, plus the text they sign.
pub(super) struct Parts<'a> {
    pub(super) header: &'a str,
    pub(super) claims: &'a str,
    pub(super) signature: &'a str,
    /// `header "." claims`, exactly as received: the signature covers the
    /// encoded text, not the decoded JSON, so no re-encoding can differ.
    pub(super) signing_input: &'a str,
}

pub(super) fn split(token: &str) -> Result<Parts<'_>, TokenError> {
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
pub(super) enum Part {
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
pub(super) fn decode_base64url(text: &str, part: Part) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| part.not_base64url())
}

/// Decodes one part as a JSON object. Goes through `T` directly (not a
/// generic map) so that a repeated member name is refused rather than
/// silently resolved, as RFC 7515 §4 allows.
pub(super) fn decode_json<T: for<'de> Deserialize<'de>>(
    text: &str,
    part: Part,
) -> Result<T, TokenError> {
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
pub(super) struct RawHeader {
    alg: Option<String>,
    typ: Option<String>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

impl RawHeader {
    pub(super) fn check(&self) -> Result<(), TokenError> {
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
pub(super) struct RawClaims {
    exp: Option<serde_json::Value>,
    nbf: Option<serde_json::Value>,
    channels: Option<serde_json::Value>,
    publish: Option<serde_json::Value>,
}

impl RawClaims {
    pub(super) fn into_grant(self, now: u64) -> Result<Grant, TokenError> {
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
