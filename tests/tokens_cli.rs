//! `crier token` and the minting examples of docs/TOKENS.md, end to end:
//! each example (Python, Node, PHP) mints a token that `crier token
//! --check` accepts, and what `crier token` mints checks too, while a
//! tampered, expired or wrongly keyed token is refused with its reason.
//! The examples must run here: a missing interpreter fails the test
//! (`bash tests/deps.sh` installs them) instead of skipping it, so CI
//! cannot pass without having tried them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY: &str = "tokens-cli-test-key-0123456789abcdef";
const OLD_KEY: &str = "tokens-cli-old-key-0123456789abcdef0";

fn crier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crier"))
        .args(args)
        .output()
        .expect("run crier")
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/tokens")
}

/// Runs an interpreter; a missing one is a failure with the fix in it.
fn interpreter(program: &str, args: &[&str]) -> Output {
    match Command::new(program).args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("{program} not found: run bash tests/deps.sh")
        }
        Err(e) => panic!("cannot run {program}: {e}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Mints with an example script: `program script KEY CHANNELS PUBLISH TTL`.
fn mint_with(
    program: &str,
    script: &str,
    key: &str,
    channels: &str,
    publish: &str,
    ttl: &str,
) -> String {
    let path = examples().join(script);
    let out = interpreter(
        program,
        &[path.to_str().unwrap(), key, channels, publish, ttl],
    );
    assert!(
        out.status.success(),
        "{program} {script} failed: {}",
        text(&out.stderr)
    );
    let token = text(&out.stdout).trim().to_string();
    assert!(token.split('.').count() == 3, "{program}: {token:?}");
    token
}

/// `crier token --key K… --check TOKEN`: (exit code, stdout).
fn check(keys: &[&str], token: &str) -> (i32, String) {
    let mut args = vec!["token"];
    for key in keys {
        args.extend(["--key", key]);
    }
    args.extend(["--check", token]);
    let out = crier(&args);
    let stdout = text(&out.stdout);
    for key in keys {
        assert!(!stdout.contains(key) && !text(&out.stderr).contains(key));
    }
    (out.status.code().expect("exit code"), stdout)
}

const SCRIPTS: [(&str, &str); 3] = [
    ("python3", "mint.py"),
    ("node", "mint.js"),
    ("php", "mint.php"),
];

#[test]
fn every_example_mints_a_token_crier_accepts() {
    for (program, script) in SCRIPTS {
        let token = mint_with(program, script, KEY, "news,chat-*", "chat-*", "3600");
        let (code, out) = check(&[KEY], &token);
        assert_eq!(code, 0, "{program}: {out}");
        assert!(
            out.contains("subscribe: news, chat-*\n"),
            "{program}: {out}"
        );
        assert!(out.contains("publish: chat-*\n"), "{program}: {out}");
        assert!(out.ends_with("valid\n"), "{program}: {out}");
        assert!(
            out.contains("(in 3600 s)") || out.contains("(in 3599 s)"),
            "{program}: {out}"
        );

        // No publish patterns: the claim is left out, nothing may publish.
        let token = mint_with(program, script, KEY, "user-7", "", "60");
        let (code, out) = check(&[KEY], &token);
        assert_eq!(code, 0, "{program}: {out}");
        assert!(!out.contains("\"publish\""), "{program}: {out}");
        assert!(
            out.contains("subscribe: user-7\npublish: (none)\n"),
            "{program}: {out}"
        );
    }
}

#[test]
fn every_example_is_refused_with_the_wrong_key_or_when_expired() {
    for (program, script) in SCRIPTS {
        let token = mint_with(program, script, OLD_KEY, "news", "", "60");
        let (code, out) = check(&[KEY], &token);
        assert_eq!(code, 1, "{program}: {out}");
        assert!(
            out.contains("refused: token signature does not match any key"),
            "{out}"
        );
        // Rotation: the server holds both keys, so the old one still works.
        assert_eq!(check(&[KEY, OLD_KEY], &token).0, 0, "{program}");

        let token = mint_with(program, script, KEY, "news", "", "-5");
        let (code, out) = check(&[KEY], &token);
        assert_eq!(code, 1, "{program}: {out}");
        assert!(
            out.contains("refused: token expired (exp "),
            "{program}: {out}"
        );
        assert!(out.contains("s ago) [expired]"), "{program}: {out}");
    }
}

#[test]
fn examples_agree_with_each_other_byte_for_byte() {
    // Same key, same claims, same second: the same token, whatever mints it
    // (retry once if the clock ticked between two of them).
    for _ in 0..2 {
        let tokens: Vec<String> = SCRIPTS
            .iter()
            .map(|(program, script)| mint_with(program, script, KEY, "a,b-*", "b-*", "600"))
            .collect();
        if tokens.iter().all(|t| *t == tokens[0]) {
            return;
        }
    }
    panic!("the three examples mint different tokens for the same input");
}

#[test]
fn the_doc_shows_each_example_verbatim() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/TOKENS.md"))
        .expect("docs/TOKENS.md");
    for (_, script) in SCRIPTS {
        let code = std::fs::read_to_string(examples().join(script)).unwrap();
        assert!(
            doc.contains(&code),
            "docs/TOKENS.md must show docs/examples/tokens/{script} as it is"
        );
    }
}

#[test]
fn crier_token_mints_what_check_accepts() {
    let out = crier(&[
        "token",
        "--key",
        KEY,
        "--channels",
        "news,chat-*",
        "--publish",
        "chat-1",
        "--ttl",
        "120",
        "--sub",
        "user 7",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    assert!(!token.contains(KEY));
    let (code, out) = check(&[KEY], &token);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"sub\":\"user 7\""), "{out}");
    assert!(
        out.contains("subscribe: news, chat-*\npublish: chat-1\nvalid\n"),
        "{out}"
    );
}

#[test]
fn a_tampered_token_is_refused() {
    let out = crier(&["token", "--key", KEY, "--channels", "news"]);
    let token = text(&out.stdout).trim().to_string();
    let parts: Vec<&str> = token.split('.').collect();

    // Claims swapped for a wider grant, signature kept.
    let wider = mint_with("python3", "mint.py", OLD_KEY, "*", "*", "3600");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        wider.split('.').nth(1).unwrap(),
        parts[2]
    );
    let (code, out) = check(&[KEY], &forged);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("refused: token signature does not match any key"),
        "{out}"
    );

    // One character of the signature changed.
    let mut sig: Vec<u8> = parts[2].bytes().collect();
    sig[5] = if sig[5] == b'x' { b'y' } else { b'x' };
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        String::from_utf8(sig).unwrap()
    );
    let (code, out) = check(&[KEY], &forged);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[bad_signature]"), "{out}");

    // alg none, unsigned.
    let none = format!("eyJhbGciOiJub25lIn0.{}.", parts[1]);
    let (code, out) = check(&[KEY], &none);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused: token alg must be HS256"), "{out}");

    // Not a token at all: the reason, nothing echoed.
    let (code, out) = check(&[KEY], "hello");
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "refused: token is not three base64url parts separated by dots [malformed]\n"
    );
}

#[test]
fn bad_usage_exits_2_without_printing_the_key() {
    let short = "short-secret-17ch";
    for args in [
        vec!["token", "--key", short, "--channels", "a"],
        vec!["token", "--key", KEY, "--channels", "a b"],
        vec!["token", "--key", KEY, "--key", OLD_KEY, "--channels", "a"],
        vec!["token", "--key", short, "--check", "x.y.z"],
    ] {
        let out = crier(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.starts_with("crier token: "), "{err}");
        assert!(
            !err.contains(short) && !err.contains(KEY) && !err.contains(OLD_KEY),
            "{err}"
        );
    }
}

#[test]
fn the_server_command_line_is_unchanged() {
    let out = crier(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(
        help.contains("--listen") && help.contains("--check-host"),
        "{help}"
    );
    assert!(help.contains("token"), "{help}");
    // Server flags in front of the subcommand are refused, not ignored.
    let out = crier(&["--workers", "2", "token", "--key", KEY, "--channels", "a"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}
