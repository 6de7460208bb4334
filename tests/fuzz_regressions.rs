//! Replays every saved fuzz input through the driver the fuzzer ran it
//! with (`crier::fuzz`), so CI checks the fixes for what the fuzzers found
//! with a plain `cargo test`, without AFL++ installed:
//!
//! - `tests/fuzz_crashers/<target>/*`: each crash or hang input found, kept
//!   after its fix (the file name says what it was);
//! - `fuzz/corpus/<target>/*`: the minimised corpus, which reaches every
//!   path the fuzzer found and so doubles as a broad regression suite;
//! - `fuzz/seeds/<target>/*`: the hand-written seeds it grew from.
//!
//! A driver panics on a broken invariant, so a test passes when every file
//! runs through. Hangs are checked by time: no input may take more than a
//! few seconds even in a debug build.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest any one saved input may take (debug build, busy CI machine).
const SLOW: Duration = Duration::from_secs(10);

/// The files of `dir`, sorted so failures are reported in a stable order;
/// empty when the folder does not exist (no crasher found for a target).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable folder").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every saved input of `target` through `driver`; returns how many.
fn replay(target: &str, driver: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for dir in [
        root.join("tests/fuzz_crashers").join(target),
        root.join("fuzz/corpus").join(target),
        root.join("fuzz/seeds").join(target),
    ] {
        for file in files(&dir) {
            let data = std::fs::read(&file).expect("readable input");
            let start = Instant::now();
            let outcome = std::panic::catch_unwind(|| driver(&data));
            assert!(outcome.is_ok(), "{} fails", file.display());
            let took = start.elapsed();
            assert!(took < SLOW, "{} took {took:?}", file.display());
            count += 1;
        }
    }
    count
}

#[test]
fn http_request() {
    assert!(replay("http_request", crier::fuzz::http_request) > 0);
}

#[test]
fn ws_frames() {
    assert!(replay("ws_frames", crier::fuzz::ws_frames) > 0);
}

#[test]
fn handshake() {
    assert!(replay("handshake", crier::fuzz::handshake) > 0);
}

#[test]
fn route() {
    assert!(replay("route", crier::fuzz::route) > 0);
}

#[test]
fn token() {
    assert!(replay("token", crier::fuzz::token) > 0);
}
