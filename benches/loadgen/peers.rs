//! The servers under test ("peers"): crier, the raw floor, nginx + nchan, or a custom
//! command. Starts one pinned to core 0 on a free port, waits until it listens, finds the
//! process to measure, and stops it (and cleans its temp dir) afterwards. The cluster
//! scenario starts its crier nodes and its Redis the same way.

use std::env;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli::parse_list;
use crate::harness::{
    die_with_parent, exited_by, free_port, pinned, pinned_list, pinned_to, proc_cpu_secs, temp_dir,
};
use crate::scenarios::Ctx;
use crate::Res;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Peer {
    Crier,
    Floor,
    Nchan,
    /// `--target` or `--server-cmd`.
    Custom,
}

impl Peer {
    /// One name, a comma list, or "all".
    pub fn parse(s: &str) -> Res<Vec<Peer>> {
        if s.contains(',') {
            let lists = parse_list(s, Peer::parse)?;
            return Ok(lists.into_iter().flatten().collect());
        }
        match s {
            "crier" => Ok(vec![Peer::Crier]),
            "floor" => Ok(vec![Peer::Floor]),
            "nchan" => Ok(vec![Peer::Nchan]),
            "all" => Ok(vec![Peer::Crier, Peer::Floor, Peer::Nchan]),
            _ => Err(format!("unknown peer {s:?} (crier | floor | nchan | all)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Peer::Crier => "crier",
            Peer::Floor => "floor",
            Peer::Nchan => "nchan",
            Peer::Custom => "custom",
        }
    }
}

pub struct Server {
    pub addr: SocketAddr,
    child: Option<Child>,
    /// The process whose memory and CPU are measured (nginx: the worker, not the master).
    pid: Option<i32>,
    dir: Option<PathBuf>,
}

fn log_file(dir: &Path) -> Res<(Stdio, Stdio)> {
    let f = fs::File::create(dir.join("logs/server.log")).map_err(|e| e.to_string())?;
    let g = f.try_clone().map_err(|e| e.to_string())?;
    Ok((Stdio::from(f), Stdio::from(g)))
}

impl Server {
    pub fn start(ctx: &Ctx) -> Res<Server> {
        Server::start_node(ctx, &[], None)
    }

    /// The server of `ctx.peer`; for crier, `extra` arguments after the usual ones and,
    /// with `cores`, pinned to that `taskset -c` list instead of `0..--server-workers`.
    /// A cluster node is the crier peer started this way with `--redis URL`.
    pub fn start_node(ctx: &Ctx, extra: &[String], cores: Option<&str>) -> Res<Server> {
        if let Some(addr) = ctx.opts.target {
            return Ok(Server {
                addr,
                child: None,
                pid: ctx.opts.server_pid,
                dir: None,
            });
        }
        // With --tls the TLS port is the next one (see loadgen/tls.rs).
        let port = if ctx.opts.tls {
            crate::tls::free_port_pair()?
        } else {
            free_port()?
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = temp_dir(ctx.peer.name())?;
        let cmd = match ctx.peer {
            Peer::Crier => {
                let mut c = match cores {
                    Some(list) => pinned_list(&ctx.opts.crier_bin, list),
                    None => pinned_to(&ctx.opts.crier_bin, ctx.opts.server_workers),
                };
                c.arg("--listen").arg(addr.to_string());
                c.arg("--workers").arg(ctx.opts.server_workers.to_string());
                c.args(&ctx.opts.server_args);
                if ctx.opts.tls {
                    let pki = crate::tls::pki()?;
                    c.arg("--tls-cert").arg(&pki.cert);
                    c.arg("--tls-key").arg(&pki.key);
                    let tls_addr = crate::tls::subscriber_addr(addr, true);
                    c.arg("--tls-listen").arg(tls_addr.to_string());
                }
                c.args(extra);
                c
            }
            Peer::Floor if ctx.opts.tls => return Err("the floor has no TLS".into()),
            Peer::Floor => {
                let exe = env::current_exe().map_err(|e| e.to_string())?;
                let mut c = pinned(&exe);
                c.arg("--floor-server")
                    .arg("--listen")
                    .arg(addr.to_string());
                c
            }
            Peer::Nchan => nchan_command(ctx, &dir, port)?,
            Peer::Custom => {
                let line = ctx.opts.server_cmd.as_deref().unwrap_or_default();
                let line = line
                    .replace("{port}", &port.to_string())
                    .replace("{addr}", &addr.to_string());
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(format!("exec {line}"));
                c
            }
        };
        let mut s = Server::launch(cmd, ctx.peer.name(), addr, dir)?;
        if ctx.peer == Peer::Nchan {
            let master = s.pid()?;
            s.pid = Some(nginx_worker_pid(master)?);
        }
        Ok(s)
    }

    /// A fresh `redis-server` for the cluster scenario on a free loopback port, pinned to
    /// `cores`, persisting nothing (`--save '' --appendonly no`, its dir a temp dir);
    /// measured (`/proc/PID/stat`) and stopped (SIGTERM, then SIGKILL) like any server.
    /// `REDIS_SERVER=PATH` picks another binary.
    pub fn start_redis(cores: &str) -> Res<Server> {
        let bin = env::var_os("REDIS_SERVER")
            .map_or_else(|| PathBuf::from("/usr/bin/redis-server"), PathBuf::from);
        if !bin.exists() {
            return Err(format!(
                "{} not found (apt-get install redis-server, or REDIS_SERVER=PATH)",
                bin.display()
            ));
        }
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = temp_dir("redis")?;
        let mut c = pinned_list(&bin, cores);
        c.arg("--bind").arg("127.0.0.1");
        c.arg("--port").arg(port.to_string());
        c.args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
        c.arg("--dir").arg(&dir);
        Server::launch(c, "redis-server", addr, dir)
    }

    /// Spawns `cmd` (output to `dir`/logs/server.log, SIGTERM if the harness dies) and
    /// waits until it listens on `addr`.
    fn launch(mut cmd: Command, name: &str, addr: SocketAddr, dir: PathBuf) -> Res<Server> {
        let (out, err) = log_file(&dir)?;
        let child = die_with_parent(&mut cmd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start {name}: {e}"))?;
        let pid = child.id() as i32;
        let mut s = Server {
            addr,
            child: Some(child),
            pid: Some(pid),
            dir: Some(dir),
        };
        s.wait_listening()?;
        Ok(s)
    }

    fn wait_listening(&mut self) -> Res<()> {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("server exited ({status}): {}", self.log_tail()));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > end {
                return Err(format!(
                    "server not listening after 15 s: {}",
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let Some(d) = &self.dir else {
            return String::new();
        };
        let mut s = fs::read_to_string(d.join("logs/server.log")).unwrap_or_default();
        s.push_str(&fs::read_to_string(d.join("logs/error.log")).unwrap_or_default());
        let tail: Vec<&str> = s.lines().rev().take(8).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    pub fn pid(&self) -> Res<i32> {
        self.pid
            .ok_or_else(|| "no server pid (use --server-pid with --target)".into())
    }

    /// CPU seconds the measured process has used so far; None when its pid is unknown
    /// (`--target` without `--server-pid`).
    pub fn cpu_secs(&self) -> Res<Option<f64>> {
        self.pid.map(proc_cpu_secs).transpose()
    }

    /// SIGTERM, then SIGKILL after 5 s; only for a server this harness started.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        if !exited_by(&mut child, Instant::now() + Duration::from_secs(5)) {
            if let Some(w) = self.pid.filter(|&p| p != child.id() as i32) {
                // SAFETY: the nginx worker we started through its master.
                unsafe { libc::kill(w, libc::SIGKILL) };
            }
            let _ = child.kill();
        }
        let _ = child.wait();
        if let Some(d) = self.dir.take() {
            if env::var_os("LOADGEN_KEEP_LOGS").is_some() {
                eprintln!("  server logs kept in {}", d.display());
            } else {
                let _ = fs::remove_dir_all(d);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn nchan_command(ctx: &Ctx, dir: &Path, port: u16) -> Res<Command> {
    let nginx = Path::new("/usr/sbin/nginx");
    if !nginx.exists() {
        return Err("nginx not installed: run benches/setup-peers.sh".into());
    }
    let template = fs::read_to_string(&ctx.opts.nchan_conf)
        .map_err(|e| format!("read {}: {e}", ctx.opts.nchan_conf.display()))?;
    let mut conf = template
        .replace("{{PORT}}", &port.to_string())
        .replace("{{PREFIX}}", &dir.display().to_string());
    if ctx.opts.tls {
        let pki = crate::tls::pki()?;
        conf = conf
            .replace("{{TLS_PORT}}", &(port + 1).to_string())
            .replace("{{CERT}}", &pki.cert.display().to_string())
            .replace("{{KEY}}", &pki.key.display().to_string());
    }
    let conf_path = dir.join("nginx.conf");
    fs::write(&conf_path, conf).map_err(|e| format!("write nginx.conf: {e}"))?;
    let mut c = pinned(nginx);
    c.arg("-p").arg(dir).arg("-c").arg(&conf_path);
    c.arg("-e").arg(dir.join("logs/error.log"));
    Ok(c)
}

/// nginx runs one worker under its master; the worker does all the work.
fn nginx_worker_pid(master: i32) -> Res<i32> {
    let path = format!("/proc/{master}/task/{master}/children");
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let kids = fs::read_to_string(&path).unwrap_or_default();
        if let Some(pid) = kids.split_whitespace().find_map(|p| p.parse().ok()) {
            return Ok(pid);
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err("nginx worker process not found".into())
}
