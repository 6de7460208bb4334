//! Token format: the HMAC primitive, signature tampering, the header,
//! base64url encoding, shape and size.

use super::*;

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
