//! `/metrics` passes `promtool check metrics` (Prometheus' own linter):
//! names, types, `_total` on counters, help text. promtool comes from
//! tests/deps.sh (target/test-tools/bin) or PATH.

mod common;

use common::*;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn promtool() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(target)
        .join("test-tools/bin/promtool");
    if local.exists() {
        return local;
    }
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok(),
        "promtool not found: run `bash tests/deps.sh` (or `bash tests/run.sh`)"
    );
    PathBuf::from("promtool")
}

#[test]
fn promtool_finds_nothing_to_report() {
    let server = start_with(2, |_| {});
    let addr = server.addr();
    // Traffic, so every family has samples with values.
    let mut sse = SseClient::connect(addr, "/ev/lint");
    publish(addr, "lint", b"hello");
    assert_eq!(sse.event().data, "hello");
    let text = call(agent().get(&url(addr, "/metrics")))
        .into_string()
        .unwrap();
    assert!(
        text.contains("crier_messages_published_total 1\n"),
        "{text}"
    );

    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool failed:\n{report}\n{text}");
    assert!(report.trim().is_empty(), "promtool reports:\n{report}");
}
