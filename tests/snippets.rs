//! The publishing examples of docs/PUBLISHING.md (docs/examples/publish/),
//! run against the real binary with a publish secret: each publishes three
//! messages (one multi-line, one not ASCII) that an EventSource subscriber
//! receives in order under the ids the script printed, over as few
//! connections as the doc says (keep-alive), and the doc shows every file
//! as it is.
//!
//! The Python standard-library example must run: a missing python3 fails
//! the test. The others run when their tool is here and are skipped with a
//! note otherwise; `bash tests/deps.sh` (what CI runs) installs every one
//! of them (node, php with php-curl, Python's requests, Go, curl), so in CI
//! none is skipped.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const SECRET: &str = "snippets-test-publish-secret";
const MESSAGES: [&str; 3] = ["hello", "two\nlines", "café ✓ {\"json\": true}"];

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/publish")
}

/// Every example file; the doc must show each verbatim.
const FILES: [&str; 7] = [
    "publish.py",
    "publish_requests.py",
    "publish.mjs",
    "publish.go",
    "publish.php",
    "publish_stream.php",
    "publish.sh",
];

/// How many connections a run of three publishes may open.
#[derive(Debug, Clone, Copy)]
enum Connections {
    /// Exactly one: every publish over one kept-alive connection.
    One,
    /// Node's fetch (undici) opens a second one for the second request and
    /// reuses the two from then on.
    AtMostTwo,
    /// One per message (PHP's http:// stream cannot keep one alive).
    PerMessage,
}

/// Whether `program args` runs and exits 0 (to probe for a tool).
fn available(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn accepted(server: &ChildServer) -> u64 {
    let status = json_of(call(agent().get(&url(server.addr, "/status"))));
    status["accepted_connections"].as_u64().unwrap()
}

/// Runs `program [args] script CHANNEL MESSAGES…` against a fresh server
/// and checks delivery, ids and connection count.
fn run_example(program: &str, args: &[&str], script: &str, connections: Connections) {
    let server = ChildServer::spawn(&["--publish-secret", SECRET]);
    let channel = format!("snippet-{}", script.replace(['_', '.'], "-"));
    let mut sse = SseClient::connect(server.addr, &format!("/ev/{channel}"));
    let before = accepted(&server);

    let path = examples().join(script);
    let out = Command::new(program)
        .args(args)
        .arg(&path)
        .arg(&channel)
        .args(MESSAGES)
        // A trailing slash, as people write it: each example strips it.
        .env("CRIER_URL", format!("http://{}/", server.addr))
        .env("CRIER_PUBLISH_SECRET", SECRET)
        .current_dir(examples())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");

    // Each line is the id, or (publish.sh) the server's JSON reply.
    let ids: Vec<String> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            if line.trim_start().starts_with('{') {
                let reply: serde_json::Value = serde_json::from_str(line).unwrap();
                reply["id"].as_str().unwrap().to_string()
            } else {
                line.trim().to_string()
            }
        })
        .collect();
    assert_eq!(ids.len(), MESSAGES.len(), "{script} printed:\n{stdout}");
    for (message, id) in MESSAGES.iter().zip(&ids) {
        let event = sse.event();
        assert_eq!(event.data, *message, "{script}");
        assert_eq!(&event.last_id, id, "{script}");
    }

    // Minus the second /status read's own connection.
    let used = accepted(&server) - before - 1;
    let fine = match connections {
        Connections::One => used == 1,
        Connections::AtMostTwo => (1..=2).contains(&used),
        Connections::PerMessage => used == MESSAGES.len() as u64,
    };
    assert!(
        fine,
        "{script}: {used} connections for 3 messages, expected {connections:?}"
    );

    // Without the secret the server says 401 and the script fails.
    let out = Command::new(program)
        .args(args)
        .arg(&path)
        .arg(&channel)
        .arg("not delivered")
        .env("CRIER_URL", format!("http://{}", server.addr))
        .env_remove("CRIER_PUBLISH_SECRET")
        .current_dir(examples())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "{script} succeeded without the secret"
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("401"), "{script}: {all}");
}

fn skip(what: &str) {
    eprintln!("skipped: {what}");
}

#[test]
fn python_stdlib_example_publishes_over_one_connection() {
    assert!(
        available("python3", &["--version"]),
        "python3 not found: run bash tests/deps.sh"
    );
    run_example("python3", &[], "publish.py", Connections::One);
}

#[test]
fn python_requests_example_publishes_over_one_connection() {
    if !available("python3", &["-c", "import requests"]) {
        return skip("publish_requests.py: Python's requests is not installed");
    }
    run_example("python3", &[], "publish_requests.py", Connections::One);
}

#[test]
fn node_example_publishes() {
    if !available("node", &["--version"]) {
        return skip("publish.mjs: node not found (bash tests/deps.sh installs it)");
    }
    run_example("node", &[], "publish.mjs", Connections::AtMostTwo);
}

#[test]
fn php_curl_example_publishes_over_one_connection() {
    if !available(
        "php",
        &["-r", "exit(function_exists('curl_init') ? 0 : 1);"],
    ) {
        return skip("publish.php: php or its curl extension (php-curl) not found");
    }
    run_example("php", &[], "publish.php", Connections::One);
}

#[test]
fn php_stream_example_publishes() {
    if !available("php", &["--version"]) {
        return skip("publish_stream.php: php not found (bash tests/deps.sh installs it)");
    }
    run_example("php", &[], "publish_stream.php", Connections::PerMessage);
}

#[test]
fn shell_example_publishes_over_one_connection() {
    if !available("curl", &["--version"]) {
        return skip("publish.sh: curl not found");
    }
    run_example("bash", &[], "publish.sh", Connections::One);
}

#[test]
fn go_example_publishes_over_one_connection() {
    if !available("go", &["version"]) {
        return skip("publish.go: go not found (CI does not install it)");
    }
    run_example("go", &["run"], "publish.go", Connections::One);
}

#[test]
fn the_doc_shows_each_example_verbatim() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/PUBLISHING.md"))
            .expect("docs/PUBLISHING.md");
    for file in FILES {
        let code = std::fs::read_to_string(examples().join(file)).unwrap();
        assert!(
            doc.contains(&code),
            "docs/PUBLISHING.md must show docs/examples/publish/{file} as it is"
        );
    }
    let listed: Vec<String> = std::fs::read_dir(examples())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in &listed {
        assert!(
            FILES.contains(&name.as_str()),
            "{name} is not run by tests/snippets.rs"
        );
    }
}
