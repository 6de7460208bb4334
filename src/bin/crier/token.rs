//! `crier token`: mint a signed channel token, or check one.
//!
//! Minting is for operators and scripts (backends mint their own in a few
//! lines, docs/TOKENS.md); `--check` answers "why is my token refused" with
//! the same verifier the server runs, so the two can never disagree.
//!
//! Keys are secrets: they are never printed, not even in `{:?}` of the
//! parsed flags ([`Secret`]), and errors name a key by position only. The
//! check never prints the token either, only what it says.

use std::fmt;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use crier::token_api::{decode_unverified, mint, Claims, Grant, Pattern, TokenError, TokenKeys};

/// The flags of `crier token` (its help text is on `Command::Token`).
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// Signing key, the same as the server's --subscribe-key (at least 32
    /// bytes). With --check, repeat it to try every key the server has.
    #[arg(long = "key", value_name = "KEY", required = true, value_parser = parse_secret)]
    keys: Vec<Secret>,
    /// Channels the token may subscribe to: comma-separated channel ids or
    /// prefixes ending in * (news,chat-*; * alone = every channel).
    #[arg(
        long,
        value_name = "PATTERNS",
        value_delimiter = ',',
        required_unless_present = "check"
    )]
    channels: Vec<String>,
    /// Channels the token may publish to (WebSocket), same syntax; none if
    /// absent.
    #[arg(long, value_name = "PATTERNS", value_delimiter = ',')]
    publish: Vec<String>,
    /// Seconds from now until the token expires.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    ttl: u64,
    /// Subject (e.g. a user id): informational, shown by --check.
    #[arg(long, value_name = "TEXT")]
    sub: Option<String>,
    /// Do not mint: check TOKEN against the key(s) and print what it says,
    /// and why it is refused if it is (exit code 1).
    #[arg(long, value_name = "TOKEN", conflicts_with_all = ["channels", "publish", "sub"])]
    check: Option<String>,
}

/// A key from the command line, kept out of `Debug` output.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn parse_secret(text: &str) -> Result<Secret, String> {
    Ok(Secret(text.to_string()))
}

/// Runs the subcommand: 0 = minted or valid, 1 = the checked token is
/// refused, 2 = bad usage (short key, bad pattern).
pub fn run(args: TokenArgs) -> ExitCode {
    let now = unix_now();
    let keys = match TokenKeys::new(args.keys.iter().map(|k| k.0.as_str())) {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("crier token: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(token) = &args.check {
        let (text, valid) = check_report(&keys, token.trim(), now);
        print!("{text}");
        return if valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    match mint_token(&args, &keys, now) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crier token: {e}");
            ExitCode::from(2)
        }
    }
}

/// Mints with the one key given, then verifies the result with the same
/// verifier as the server, so a token this prints is one the server takes
/// (that is what enforces the size and pattern-count limits).
fn mint_token(args: &TokenArgs, keys: &TokenKeys, now: u64) -> Result<String, String> {
    let [key] = args.keys.as_slice() else {
        return Err("give exactly one --key to mint (several are for --check)".into());
    };
    let exp = now
        .checked_add(args.ttl)
        .ok_or_else(|| "--ttl is too large".to_string())?;
    let claims = Claims {
        exp,
        nbf: None,
        iat: Some(now),
        sub: args.sub.clone(),
        channels: parse_patterns(&args.channels, "--channels")?,
        publish: parse_patterns(&args.publish, "--publish")?,
    };
    let token = mint(&key.0, &claims);
    keys.verify(&token, now)
        .map_err(|e| format!("cannot mint this token: {e}"))?;
    Ok(token)
}

/// Parses comma-separated patterns; the operator's own text may be echoed.
fn parse_patterns(items: &[String], flag: &str) -> Result<Vec<Pattern>, String> {
    items
        .iter()
        .map(|item| Pattern::parse(item).map_err(|e| format!("{flag}: {item:?}: {e}")))
        .collect()
}

/// The text `--check` prints, and whether the token is valid. Pure (given
/// `now`) so its wording is unit-tested.
///
/// What the token says is shown even when it is refused, marked
/// unverified, because "expired 40 s ago" or "channels: news" is usually
/// the answer to why. JSON is re-serialized by serde_json, which escapes
/// control characters, so a hostile token cannot drive the terminal.
fn check_report(keys: &TokenKeys, token: &str, now: u64) -> (String, bool) {
    let mut out = String::new();
    let decoded = decode_unverified(token).ok();
    if let Some(d) = &decoded {
        out.push_str(&format!("header: {}\n", d.header));
        out.push_str(&format!("claims: {}\n", d.claims));
    }
    match keys.verify(token, now) {
        Ok(grant) => {
            out.push_str(&describe_grant(&grant, now));
            out.push_str("valid\n");
            (out, true)
        }
        Err(e) => {
            let claim_time = |name: &str| {
                decoded
                    .as_ref()
                    .and_then(|d| d.claims.get(name))
                    .and_then(|v| v.as_u64())
            };
            let detail = match e {
                TokenError::Expired => claim_time("exp").map(|exp| {
                    format!(" (exp {} was {} s ago)", utc(exp), now.saturating_sub(exp))
                }),
                TokenError::NotYetValid => claim_time("nbf")
                    .map(|nbf| format!(" (nbf {} is in {} s)", utc(nbf), nbf.saturating_sub(now))),
                TokenError::BadSignature => Some(format!(
                    " (tried {} key{}; claims above are unverified)",
                    keys.key_count(),
                    if keys.key_count() == 1 { "" } else { "s" }
                )),
                _ => None,
            };
            out.push_str(&format!(
                "refused: {}{} [{}]\n",
                e.reason(),
                detail.unwrap_or_default(),
                e.kind()
            ));
            (out, false)
        }
    }
}

fn describe_grant(grant: &Grant, now: u64) -> String {
    let list = |patterns: &[Pattern]| {
        if patterns.is_empty() {
            "(none)".to_string()
        } else {
            patterns
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    format!(
        "expires: {} (in {} s)\nsubscribe: {}\npublish: {}\n",
        utc(grant.expires_at),
        grant.expires_at - now,
        list(&grant.subscribe),
        list(&grant.publish)
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `1700000000 = 2023-11-14T22:13:20Z`: the raw claim and a date a person
/// can read, without a date crate (days to civil date: Howard Hinnant's
/// `civil_from_days`, proleptic Gregorian, UTC).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{secs} = {year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "cli-test-key-0123456789-0123456789-0123";
    const NOW: u64 = 1_700_000_000;

    fn keys() -> TokenKeys {
        TokenKeys::new([KEY]).unwrap()
    }

    fn claims(exp: u64) -> Claims {
        Claims {
            exp,
            nbf: None,
            iat: Some(NOW),
            sub: None,
            channels: vec![
                Pattern::parse("news").unwrap(),
                Pattern::parse("chat-*").unwrap(),
            ],
            publish: vec![],
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "0 = 1970-01-01T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "1700000000 = 2023-11-14T22:13:20Z");
        assert_eq!(utc(951_782_400), "951782400 = 2000-02-29T00:00:00Z");
        assert_eq!(utc(4_102_444_799), "4102444799 = 2099-12-31T23:59:59Z");
    }

    #[test]
    fn check_report_for_a_valid_token() {
        let (text, valid) = check_report(&keys(), &mint(KEY, &claims(NOW + 60)), NOW);
        assert!(valid);
        assert!(
            text.contains("\"channels\":[\"news\",\"chat-*\"]"),
            "{text}"
        );
        assert!(text.contains("expires: 1700000060 = 2023-11-14T22:14:20Z (in 60 s)"));
        assert!(text.contains("subscribe: news, chat-*\npublish: (none)\nvalid\n"));
    }

    #[test]
    fn check_report_for_refused_tokens() {
        let (text, valid) = check_report(&keys(), &mint(KEY, &claims(NOW - 40)), NOW);
        assert!(!valid);
        assert!(
            text.ends_with(
                "refused: token expired (exp 1699999960 = 2023-11-14T22:12:40Z was 40 s ago) [expired]\n"
            ),
            "{text}"
        );
        let other = "another-key-0123456789-0123456789-0123";
        let (text, valid) = check_report(&keys(), &mint(other, &claims(NOW + 60)), NOW);
        assert!(!valid);
        assert!(text.contains("claims: {"), "{text}");
        assert!(text.ends_with(
            "refused: token signature does not match any key (tried 1 key; claims above are unverified) [bad_signature]\n"
        ));
        let (text, valid) = check_report(&keys(), "not-a-token", NOW);
        assert!(!valid);
        assert_eq!(
            text,
            "refused: token is not three base64url parts separated by dots [malformed]\n"
        );
    }

    #[test]
    fn check_report_never_prints_the_token_or_the_key() {
        let token = mint(KEY, &claims(NOW + 60));
        let signature = token.rsplit('.').next().unwrap();
        for now in [NOW, NOW + 100] {
            let (text, _) = check_report(&keys(), &token, now);
            assert!(!text.contains(signature) && !text.contains(KEY), "{text}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Secret(KEY.to_string());
        assert!(!format!("{s:?}").contains(KEY));
    }
}
