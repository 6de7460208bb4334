//! The compatibility modes in a real browser: `tests/browser/compat.mjs`
//! (node's test runner driving Debian's headless Chromium through
//! `playwright-core`) runs clients written against nginx-push-stream-module's
//! and Nchan's documented behaviour, and the peers' own browser clients
//! from npm (pushstream.js, NchanSubscriber.js), against crier in the
//! matching mode.
//!
//! This test starts the release binary twice on free loopback ports —
//! `--compat push-stream` with push-stream's JSON message template, and
//! `--compat nchan` — runs node with their addresses, and fails with
//! node's output when a case fails. It owns both children (and node): they
//! are killed when it ends, however it ends.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// push-stream's own template (its misc/nginx.conf), the one pushstream.js
/// parses.
const PS_TEMPLATE: &str = r#"{"id":~id~,"channel":"~channel~","text":"~text~","tag":"~tag~","time":"~time~","eventid":"~event-id~"}"#;

/// Flags both criers share: one reactor, room for every message of a case
/// in history, and a short EventSource `retry:` so browsers come back
/// quickly after a drop.
const COMMON_ARGS: &[&str] = &[
    "--workers",
    "1",
    "--store-messages",
    "100",
    "--retry-ms",
    "300",
    "--log-level",
    "warn",
];

/// The cases take a few seconds; past this node is killed.
const SUITE_DEADLINE: Duration = Duration::from_secs(120);

const DEPS_HINT: &str = "run `bash tests/deps.sh` (installs Debian's chromium and \
     runs `npm ci` in tests/browser)";

/// A child process killed (and reaped) when dropped.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// One crier under test, its stderr in `log`.
struct Crier {
    child: Owned,
    addr: String,
    log: PathBuf,
}

impl Crier {
    fn start(args: &[&str], log: PathBuf) -> Result<Crier, String> {
        let addr = free_addr();
        let stderr = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(env!("CARGO_BIN_EXE_crier"))
            .args(["--listen", &addr])
            .args(COMMON_ARGS)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn crier: {e}"))?;
        let mut crier = Crier {
            child: Owned(child),
            addr,
            log,
        };
        crier.wait_ready()?;
        Ok(crier)
    }

    /// Waits until `GET /status` answers 200.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.0.try_wait() {
                return Err(format!("crier exited at start ({st}): {}", self.log()));
            }
            if status_ok(&self.addr) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "crier did not answer on {}: {}",
            self.addr,
            self.log()
        ))
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn status_ok(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}

/// A loopback port nobody listens on right now.
fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").to_string()
}

/// Chromium, node and the npm packages, or how to get them: the suite
/// must fail, never pass, when it cannot run.
fn check_tools(root: &Path) -> Result<(), String> {
    let chromium = std::env::var("CRIER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("{chromium} is missing: {DEPS_HINT}"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err(format!("node is missing: {DEPS_HINT}"));
    }
    for file in [
        "playwright-core/package.json",
        "nchan/NchanSubscriber.js",
        "pushstreamjs/src/pushstream.js",
    ] {
        let p = root.join("tests/browser/node_modules").join(file);
        if !p.exists() {
            return Err(format!("{} is missing: {DEPS_HINT}", p.display()));
        }
    }
    Ok(())
}

/// Reads a child's pipe to the end on a thread of its own.
fn collect(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut out = String::new();
        let _ = pipe.read_to_string(&mut out);
        out
    })
}

#[test]
fn compat_modes_in_a_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Err(e) = check_tools(root) {
        panic!("browser compat suite cannot run: {e}");
    }
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("browser");
    fs::create_dir_all(&artifacts).expect("create target/browser");
    let start = |args: &[&str], log: &str| {
        Crier::start(args, artifacts.join(log)).unwrap_or_else(|e| panic!("{e}"))
    };
    let ps = start(
        &[
            "--compat",
            "push-stream",
            "--push-stream-message-template",
            PS_TEMPLATE,
        ],
        "crier-compat-push-stream.log",
    );
    let nchan = start(&["--compat", "nchan"], "crier-compat-nchan.log");

    let started = Instant::now();
    let mut node = Owned(
        Command::new("node")
            .arg("tests/browser/compat.mjs")
            .current_dir(root)
            .env("CRIER_PS_ADDR", &ps.addr)
            .env("CRIER_NCHAN_ADDR", &nchan.addr)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node"),
    );
    let stdout = collect(node.0.stdout.take().unwrap());
    let stderr = collect(node.0.stderr.take().unwrap());
    let status = loop {
        if let Some(st) = node.0.try_wait().expect("wait for node") {
            break Some(st);
        }
        if started.elapsed() > SUITE_DEADLINE {
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    drop(node);
    let output = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    println!("{output}");
    println!(
        "browser compat suite: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let logs = format!(
        "push-stream crier log:\n{}\nnchan crier log:\n{}",
        ps.log(),
        nchan.log()
    );
    match status {
        Some(st) if st.success() => {}
        Some(st) => panic!("browser compat suite failed ({st}):\n{output}\n{logs}"),
        None => panic!(
            "browser compat suite still running after {} s; killed:\n{output}\n{logs}",
            SUITE_DEADLINE.as_secs()
        ),
    }
}
