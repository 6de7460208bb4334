//! A real `redis-server` per test on a free loopback port (Debian's
//! package, installed by tests/deps.sh), and a redis-rs client to look at
//! what crier did in it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server; killed when dropped.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// `--tls-*` arguments when it serves TLS only.
    tls: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl RedisServer {
    /// Starts one without persistence on a free port.
    pub fn start() -> RedisServer {
        let mut r = RedisServer {
            port: free_port(),
            child: None,
            tls: Vec::new(),
        };
        r.spawn();
        r
    }

    /// Starts one that speaks TLS only, with `cert` and `key` (PEM files)
    /// and without asking clients for certificates.
    pub fn start_tls(cert: &std::path::Path, key: &std::path::Path) -> RedisServer {
        let port = free_port();
        let mut r = RedisServer {
            port,
            child: None,
            tls: [
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--tls-cert-file",
                &cert.display().to_string(),
                "--tls-key-file",
                &key.display().to_string(),
                "--tls-auth-clients",
                "no",
            ]
            .map(String::from)
            .to_vec(),
        };
        r.spawn();
        r
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let port = ["--port".to_string(), self.port.to_string()];
        let listen = if self.tls.is_empty() {
            &port[..]
        } else {
            &self.tls[..]
        };
        let child = Command::new("redis-server")
            .args(listen)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (run bash tests/deps.sh)");
        self.child = Some(child);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Shuts it down as an operator's restart does (`SHUTDOWN NOSAVE`:
    /// it finishes writing to its clients, then exits; its data is gone).
    pub fn shutdown(&mut self) {
        let _ = redis::cmd("SHUTDOWN")
            .arg("NOSAVE")
            .query::<()>(&mut self.client());
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// Kills it, as a crash does (its data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// A client connection.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to redis")
    }

    /// `PUBSUB CHANNELS *`, sorted.
    pub fn pubsub_channels(&self) -> Vec<String> {
        let mut chans: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg("*")
            .query(&mut self.client())
            .expect("PUBSUB CHANNELS");
        chans.sort();
        chans
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
