//! Target `token`: the subscriber-token verifier on raw tokens, on fuzzed
//! JSON signed with a configured key, on minted claims and on edited valid
//! tokens. Checked: only a token a configured key signed, unexpired and
//! granting valid bounded patterns is accepted; changed signatures and
//! edits never are; a minted token gets exactly the verdict its claims
//! deserve. A token is a client's word, so this is the access check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::token::{mint, Claims, Grant, Pattern, TokenError, TokenKeys, MAX_TOKEN_BYTES};
use crate::auth::token::{MAX_PATTERNS, MIN_KEY_BYTES};
use crate::pubsub::channel::valid_channel_id;

use super::Input;

/// The keys the token target verifies with (two, as during a rotation).
const KEY_A: &str = "fuzz-key-a-0123456789-0123456789-0123456789";
const KEY_B: &str = "fuzz-key-b-0123456789-0123456789-0123456789";
/// A key that is not configured.
const KEY_WRONG: &str = "fuzz-key-x-0123456789-0123456789-0123456789";
/// Around when the fuzzed clocks tick.
const NOW: u64 = 1_700_000_000;

fn token_keys() -> &'static TokenKeys {
    static KEYS: std::sync::OnceLock<TokenKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        assert!(KEY_A.len() >= MIN_KEY_BYTES && KEY_B.len() >= MIN_KEY_BYTES);
        TokenKeys::new([KEY_A, KEY_B]).expect("valid keys")
    })
}

/// HMAC-SHA256 of `input` under `key`, base64url: a signature computed
/// here, independently of the verifier, to sign arbitrary parts.
fn sign(key: &str, input: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Invariants of an accepted token: it is genuinely signed by a configured
/// key, not expired, and grants only valid, bounded patterns.
fn check_grant(token: &str, grant: &Grant, now: u64) {
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    assert!(
        sig == sign(KEY_A, input) || sig == sign(KEY_B, input),
        "accepted a token no key signed"
    );
    assert!(token.len() <= MAX_TOKEN_BYTES);
    assert!(grant.expires_at > now, "accepted an expired token");
    for list in [&grant.subscribe, &grant.publish] {
        assert!(list.len() <= MAX_PATTERNS);
        for p in list {
            match p {
                Pattern::Exact(id) => assert!(valid_channel_id(id), "{p:?}"),
                Pattern::Prefix(pre) => assert!(pre.is_empty() || valid_channel_id(pre), "{p:?}"),
            }
            assert_eq!(Pattern::parse(&p.to_string()).as_ref(), Ok(p));
        }
    }
}

/// Verifies, checks an acceptance, and checks that a token with changed
/// signature bytes is never accepted.
fn verify_and_tamper(token: &str, now: u64, flip: &[u8]) -> Result<Grant, TokenError> {
    let result = token_keys().verify(token, now);
    if let Ok(grant) = &result {
        check_grant(token, grant, now);
    }
    let Some((input, sig)) = token.rsplit_once('.') else {
        return result;
    };
    let Ok(mut bytes) = URL_SAFE_NO_PAD.decode(sig) else {
        return result;
    };
    let mut changed = false;
    for (b, f) in bytes.iter_mut().zip(flip) {
        *b ^= f;
        changed |= *f != 0;
    }
    if !changed {
        return result;
    }
    let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&bytes));
    let verdict = token_keys().verify(&forged, now);
    assert!(
        verdict.is_err(),
        "accepted a token with a changed signature"
    );
    // Once past the header checks, the signature is what fails it.
    let past_header = !matches!(
        result,
        Err(TokenError::TooLong
            | TokenError::Malformed(_)
            | TokenError::UnsupportedAlgorithm
            | TokenError::UnsupportedHeader(_))
    );
    if past_header && forged.len() == token.len() {
        assert_eq!(verdict, Err(TokenError::BadSignature), "{result:?}");
    }
    result
}

/// A pattern from fuzzed text, built directly so it may break the rule
/// (`mint` signs whatever it is given).
fn fuzzed_pattern(text: &str) -> Pattern {
    match text.strip_prefix('~') {
        Some(prefix) => Pattern::Prefix(prefix.to_string()),
        None => Pattern::Exact(text.to_string()),
    }
}

/// The token verifier on fuzzed tokens: raw text; fuzzed header and claims
/// JSON signed with a configured key; `mint`ed claims with fuzzed patterns
/// (checked against an independent expectation); and edited valid tokens,
/// which must never verify.
///
/// Input: a mode byte, a clock offset, signature flip bytes, then the data.
pub fn token(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let now = NOW
        .wrapping_add(u64::from(input.u16()))
        .wrapping_sub(1 << 15);
    let flip: Vec<u8> = input.take(4).to_vec();
    match mode & 3 {
        0 => {
            let token = String::from_utf8_lossy(input.rest());
            let _ = verify_and_tamper(&token, now, &flip);
        }
        1 => {
            // Fuzzed JSON under the right key: `header \n claims`.
            let text = String::from_utf8_lossy(input.rest());
            let (header, claims) = text
                .split_once('\n')
                .unwrap_or((r#"{"alg":"HS256"}"#, &text));
            let signing = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(claims)
            );
            let key = if mode & 4 != 0 { KEY_B } else { KEY_A };
            let token = format!("{signing}.{}", sign(key, &signing));
            let result = verify_and_tamper(&token, now, &flip);
            if token.len() > MAX_TOKEN_BYTES {
                assert_eq!(result, Err(TokenError::TooLong));
            }
            assert_ne!(result, Err(TokenError::BadSignature), "right key refused");
        }
        2 => token_minted(mode, now, &flip, input),
        _ => token_edited(now, input),
    }
}

/// Mode 2 of [`token`]: claims built from the input and minted; the verdict
/// must be what the claims deserve.
fn token_minted(mode: u8, now: u64, flip: &[u8], mut input: Input<'_>) {
    let exp = NOW
        .wrapping_add(u64::from(input.u16()))
        .wrapping_sub(1 << 15);
    let nbf_raw = input.u16();
    let nbf = (mode & 8 != 0).then(|| NOW.wrapping_add(u64::from(nbf_raw)).wrapping_sub(1 << 15));
    let text = String::from_utf8_lossy(input.rest()).into_owned();
    let mut lines = text.split('\n');
    let sub = lines.next().filter(|s| !s.is_empty()).map(str::to_string);
    let mut channels = Vec::new();
    let mut publish = Vec::new();
    for line in lines {
        match line.strip_prefix('+') {
            Some(p) => publish.push(fuzzed_pattern(p)),
            None => channels.push(fuzzed_pattern(line)),
        }
    }
    let claims = Claims {
        exp,
        nbf,
        iat: (mode & 16 != 0).then_some(NOW),
        sub,
        channels: channels.clone(),
        publish: publish.clone(),
    };
    let key = [KEY_A, KEY_B, KEY_WRONG][usize::from(mode >> 5) % 3];
    let token = mint(key, &claims);
    let result = verify_and_tamper(&token, now, flip);
    // The expectation, in the verifier's documented order.
    // A pattern reaches the verifier as its text, so what it grants is
    // that text parsed again (`Exact("a*")` is read as `Prefix("a")`).
    let reparse = |list: &[Pattern]| -> Option<Vec<Pattern>> {
        if list.len() > MAX_PATTERNS {
            return None;
        }
        list.iter()
            .map(|p| Pattern::parse(&p.to_string()).ok())
            .collect()
    };
    let (subscribe, publish) = (reparse(&channels), reparse(&publish));
    let expected_kind = if token.len() > MAX_TOKEN_BYTES {
        "too_long"
    } else if key == KEY_WRONG {
        "bad_signature"
    } else if subscribe.is_none() || publish.is_none() {
        "invalid_claims"
    } else if now >= exp {
        "expired"
    } else if nbf.is_some_and(|n| now < n) {
        "not_yet_valid"
    } else {
        "ok"
    };
    match &result {
        Ok(grant) => {
            assert_eq!(expected_kind, "ok");
            assert_eq!(grant.expires_at, exp);
            assert_eq!(Some(&grant.subscribe), subscribe.as_ref());
            assert_eq!(Some(&grant.publish), publish.as_ref());
        }
        Err(e) => assert_eq!(e.kind(), expected_kind, "{e:?}"),
    }
}

/// Mode 3 of [`token`]: a valid token edited at input-chosen places (a byte
/// replaced, inserted or removed); any change must be refused.
fn token_edited(now: u64, mut input: Input<'_>) {
    let claims = Claims {
        exp: NOW + (1 << 16),
        nbf: None,
        iat: Some(NOW),
        sub: Some("fuzz".into()),
        channels: vec![
            Pattern::Exact("news".into()),
            Pattern::Prefix("chat-".into()),
        ],
        publish: vec![Pattern::Prefix("chat-".into())],
    };
    let original = mint(KEY_A, &claims);
    let mut token = original.clone().into_bytes();
    while !input.data.is_empty() {
        let op = input.byte();
        let at = usize::from(input.u16()) % (token.len() + 1);
        let b = input.byte();
        match op % 3 {
            0 if at < token.len() => token[at] = b,
            1 => token.insert(at, b),
            _ if at < token.len() => {
                token.remove(at);
            }
            _ => {}
        }
    }
    let token = String::from_utf8_lossy(&token).into_owned();
    let result = token_keys().verify(&token, now);
    if token == original {
        if now < claims.exp {
            assert!(result.is_ok(), "{result:?}");
        }
    } else {
        assert!(result.is_err(), "accepted an edited token");
    }
}
