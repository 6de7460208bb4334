//! The real `crier` binary as a child process, for what an in-process
//! server cannot give: signals (drain), resource limits (RLIMIT_NOFILE) and
//! an RSS figure that is the server's alone.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The `crier` binary running as a child process (for signals, resource
/// limits and a clean RSS figure). Killed on drop whatever happens.
pub struct ChildServer {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl ChildServer {
    /// Starts `crier --listen 127.0.0.1:0 ARGS` and waits for its
    /// "listening on" log line to learn the port.
    pub fn spawn(args: &[&str]) -> ChildServer {
        Self::spawn_with_nofile(args, None)
    }

    /// Like [`spawn`](Self::spawn), with RLIMIT_NOFILE (soft and hard, so
    /// the server cannot raise it) set to `nofile` in the child.
    pub fn spawn_with_nofile(args: &[&str], nofile: Option<u64>) -> ChildServer {
        Self::spawn_full(args, nofile, &[])
    }

    /// Like [`spawn`](Self::spawn), with extra environment variables.
    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> ChildServer {
        Self::spawn_full(args, None, env)
    }

    fn spawn_full(args: &[&str], nofile: Option<u64>, env: &[(&str, &str)]) -> ChildServer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crier"));
        cmd.args(["--listen", "127.0.0.1:0", "--log-level", "info"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(n) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: runs in the forked child before exec and calls only
            // setrlimit, which is async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn crier");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        if let Some(addr) = rest.split_whitespace().next() {
                            let _ = tx.send(addr.to_string());
                        }
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let mut server = ChildServer {
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(a) => server.addr = a.parse().expect("address in log line"),
            Err(_) => panic!("crier did not start; log:\n{}", server.log()),
        }
        server
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
