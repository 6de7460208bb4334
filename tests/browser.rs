//! The browser suite: `clients/js/crier.js` and the `web/` pages in
//! headless Chromium (Debian's `chromium`, driven by `playwright-core`)
//! against the real crier binary. The cases live in
//! `tests/browser/run.mjs` (node's test runner); this test starts crier on
//! a free loopback port, runs them, restarts crier when a case asks, and
//! fails with node's output when any case fails.
//!
//! A second crier runs with `--redis` on a `redis-server` of its own (free
//! loopback port, no persistence), for the dashboard's backplane case:
//! `CRIER_BACKPLANE_ADDR` is that crier, `BACKPLANE_REDIS_URL` its Redis.
//!
//! Restarts go through a control port (`CRIER_CONTROL`): a line
//! `restart term` (SIGTERM, the graceful drain of a rolling restart) or
//! `restart kill` (SIGKILL, a crash) brings the first crier back on the
//! same port; `redis stop` kills the redis-server and `redis start` starts
//! it again on its port. Each is answered `ok` once done. Keeping the
//! children here, not in node, means a crashed node run can never leave a
//! crier or a redis-server behind.

mod common;

use common::RedisServer;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Flags of the crier under test. Drain figures are small so a graceful
/// restart takes about a second: `retry-ms` and `reconnect-spread` set the
/// `Retry-After` a draining long-poll gets, `drain-timeout` bounds the exit.
const CRIER_ARGS: &[&str] = &[
    "--workers",
    "1",
    "--ws-publish",
    "--store-messages",
    "100",
    "--retry-ms",
    "500",
    "--reconnect-spread",
    "1",
    "--drain-timeout",
    "2",
    "--log-level",
    "warn",
];

/// The suite takes ~40 s; past this node is killed and the test fails.
const SUITE_DEADLINE: Duration = Duration::from_secs(240);

const DEPS_HINT: &str = "run `bash tests/deps.sh` (installs Debian's chromium and \
     redis-server, and runs `npm ci` in tests/browser)";

/// crier as a child process on a fixed address, so a restart comes back
/// where the browsers reconnect to.
struct Crier {
    child: Child,
    addr: String,
    /// Flags besides `CRIER_ARGS` (`--redis URL`).
    extra: Vec<String>,
    log: PathBuf,
}

impl Crier {
    fn start(addr: &str, extra: &[String], log: &Path) -> Result<Crier, String> {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("open {}: {e}", log.display()))?;
        let child = Command::new(env!("CARGO_BIN_EXE_crier"))
            .args(["--listen", addr])
            .args(CRIER_ARGS)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn crier: {e}"))?;
        let mut crier = Crier {
            child,
            addr: addr.to_string(),
            extra: extra.to_vec(),
            log: log.to_path_buf(),
        };
        crier.wait_ready()?;
        Ok(crier)
    }

    /// Waits until `GET /status` answers 200.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(format!(
                    "crier exited at start ({st}); log:\n{}",
                    self.log()
                ));
            }
            if status_ok(&self.addr) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "crier did not answer on {}; log:\n{}",
            self.addr,
            self.log()
        ))
    }

    /// Stops crier: drains it with SIGTERM when `graceful`, else SIGKILL.
    fn stop(&mut self, graceful: bool) -> Result<(), String> {
        if graceful {
            // SAFETY: kill(2) on our own child's pid.
            let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            if rc != 0 {
                return Err(format!("SIGTERM: {}", std::io::Error::last_os_error()));
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return Ok(());
                }
                thread::sleep(Duration::from_millis(10));
            }
            return Err(format!(
                "crier did not drain within 10 s; log:\n{}",
                self.log()
            ));
        }
        self.child.kill().map_err(|e| format!("SIGKILL: {e}"))?;
        self.child.wait().map_err(|e| format!("wait: {e}"))?;
        Ok(())
    }

    fn restart(&mut self, graceful: bool) -> Result<(), String> {
        self.stop(graceful)?;
        *self = Crier::start(&self.addr, &self.extra, &self.log)?;
        Ok(())
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Crier {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
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

/// Every child process of the suite, owned here (see the module comment).
struct Children {
    /// The crier of the suite (no backplane).
    crier: Crier,
    /// A crier with `--redis` on `redis`.
    backplane: Crier,
    redis: RedisServer,
}

impl Children {
    /// Stops every child; returns the two criers' logs.
    fn stop(&mut self) -> (String, String) {
        let _ = self.crier.stop(false);
        let _ = self.backplane.stop(false);
        self.redis.stop();
        (self.crier.log(), self.backplane.log())
    }
}

/// `RedisServer` panics when redis-server does not come up; here that is
/// an answer to the node runner, not a dead control thread.
fn redis_start(redis: &mut RedisServer) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| redis.restart())).map_err(|e| {
        let why = e
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| e.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        format!("redis-server did not start: {why}")
    })
}

/// Serves restart requests from the node runner until the process ends.
fn serve_control(listener: TcpListener, children: Arc<Mutex<Children>>) {
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            if BufReader::new(&conn).read_line(&mut line).is_err() {
                continue;
            }
            // A panic elsewhere must not take the children's lock with it.
            let mut c = children.lock().unwrap_or_else(|e| e.into_inner());
            let answer = match line.trim() {
                "restart term" => c.crier.restart(true),
                "restart kill" => c.crier.restart(false),
                "redis stop" => {
                    c.redis.stop();
                    Ok(())
                }
                "redis start" => redis_start(&mut c.redis),
                other => Err(format!("unknown command {other:?}")),
            };
            drop(c);
            let reply = match answer {
                Ok(()) => "ok\n".to_string(),
                Err(e) => format!("error {}\n", e.replace('\n', " | ")),
            };
            let _ = conn.write_all(reply.as_bytes());
        }
    });
}

/// Everything the suite needs besides cargo, or a message saying how to
/// get it: the suite must fail, never pass, when it cannot run.
fn check_tools(root: &Path) -> Result<(), String> {
    let chromium = std::env::var("CRIER_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("{chromium} is missing: {DEPS_HINT}"));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err(format!("node is missing: {DEPS_HINT}"));
    }
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err(format!("redis-server is missing: {DEPS_HINT}"));
    }
    let playwright = root.join("tests/browser/node_modules/playwright-core/package.json");
    if !playwright.exists() {
        return Err(format!("{} is missing: {DEPS_HINT}", playwright.display()));
    }
    Ok(())
}

/// Reads a child's pipe to the end on a thread of its own, so neither
/// pipe can fill up and stall node.
fn collect(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut out = String::new();
        let _ = pipe.read_to_string(&mut out);
        out
    })
}

#[test]
fn browser_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Err(e) = check_tools(root) {
        panic!("browser suite cannot run: {e}");
    }
    // Screenshots and crier's log go to target/browser/.
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("browser");
    fs::create_dir_all(&artifacts).expect("create target/browser");
    let log = artifacts.join("crier.log");
    let backplane_log = artifacts.join("crier-backplane.log");
    let _ = fs::remove_file(&log);
    let _ = fs::remove_file(&backplane_log);

    let addr = free_addr();
    let crier = Crier::start(&addr, &[], &log).unwrap_or_else(|e| panic!("{e}"));
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let backplane_addr = free_addr();
    let backplane = Crier::start(
        &backplane_addr,
        &["--redis".into(), redis_url.clone()],
        &backplane_log,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let children = Arc::new(Mutex::new(Children {
        crier,
        backplane,
        redis,
    }));
    let control = TcpListener::bind("127.0.0.1:0").expect("bind control port");
    let control_addr = control.local_addr().unwrap().to_string();
    serve_control(control, children.clone());

    let started = Instant::now();
    let mut node = Command::new("node")
        .arg("tests/browser/run.mjs")
        .current_dir(root)
        .env("CRIER_ADDR", &addr)
        .env("CRIER_CONTROL", &control_addr)
        .env("CRIER_BACKPLANE_ADDR", &backplane_addr)
        .env("BACKPLANE_REDIS_URL", &redis_url)
        .env("CRIER_ARTIFACTS", &artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let stdout = collect(node.stdout.take().unwrap());
    let stderr = collect(node.stderr.take().unwrap());
    let status = loop {
        if let Some(st) = node.try_wait().expect("wait for node") {
            break Some(st);
        }
        if started.elapsed() > SUITE_DEADLINE {
            let _ = node.kill();
            let _ = node.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let output = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    // cargo shows this only when the test fails (or with --nocapture).
    println!("{output}");
    println!("browser suite: {:.1} s", started.elapsed().as_secs_f64());
    // The control thread holds the other reference until the process
    // ends, which runs no destructors: stop the children here.
    let (crier_log, backplane_log) = children.lock().unwrap_or_else(|e| e.into_inner()).stop();
    match status {
        Some(st) if st.success() => {}
        Some(st) => panic!(
            "browser suite failed ({st}):\n{output}\ncrier log:\n{crier_log}\n\
             crier --redis log:\n{backplane_log}"
        ),
        None => panic!(
            "browser suite still running after {} s; killed:\n{output}",
            SUITE_DEADLINE.as_secs()
        ),
    }
}
