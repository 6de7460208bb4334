//! Unit tests of signed tokens: the shared keys, clock and token
//! builders here; the cases in `format` (encoding, header, signature,
//! size) and `claims` (valid tokens, times, claims, patterns, keys).

use super::*;

mod claims;
mod format;

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
