//! Token contents: valid tokens, key rotation, times, claims,
//! patterns, keys and the error texts.

use super::*;

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
    let grant = verify_claims(r#"{"exp":18446744073709551615,"nbf":0,"channels":["a"]}"#).unwrap();
    assert_eq!(grant.expires_at, u64::MAX);
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
