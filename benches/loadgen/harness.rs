//! What the harness needs from the operating system: the shared clock, the open-files
//! limit, core pinning, readings from /proc, and starting child processes (servers, client
//! workers) so that they are pinned, cleaned up, and never outlive the harness.

use std::env;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::Res;

/// CLOCK_MONOTONIC in ns. It is system-wide, so a timestamp written into a payload by the
/// publisher (harness process) compares directly with receive times in worker processes.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The earlier of two `mono_ns` stamps, where 0 means "not yet" (so it never wins).
pub fn earliest(a: u64, b: u64) -> u64 {
    if b > 0 && (a == 0 || b < a) {
        b
    } else {
        a
    }
}

/// Soft open-files limit up to the hard limit; children (servers, workers) inherit it.
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Pin the calling thread (and every thread/process it creates later) to one core.
pub fn pin_to_core(core: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

pub fn ncpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn read_proc(pid: i32, file: &str) -> Res<String> {
    fs::read_to_string(format!("/proc/{pid}/{file}"))
        .map_err(|e| format!("read /proc/{pid}/{file}: {e}"))
}

pub fn proc_rss_bytes(pid: i32) -> Res<u64> {
    let s = read_proc(pid, "status")?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// utime + stime of a whole process (all threads), in seconds.
pub fn proc_cpu_secs(pid: i32) -> Res<f64> {
    let s = read_proc(pid, "stat")?;
    // The command name may contain spaces; the numeric fields start after the last ')'.
    let rest = s
        .rfind(')')
        .map(|i| &s[i + 1..])
        .ok_or("malformed /proc/PID/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state), so utime (field 14) is f[11] and stime (15) is f[12].
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    let (ut, st) = tick(11)
        .zip(tick(12))
        .ok_or("no utime/stime in /proc/PID/stat")?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ut + st) as f64 / hz)
}

/// CPU time of a whole process (all threads) in nanoseconds, from each thread's
/// `schedstat`: exact where `stat`'s utime/stime count 10 ms ticks.
pub fn proc_cpu_ns(pid: i32) -> Res<u64> {
    let dir = format!("/proc/{pid}/task");
    let tasks = fs::read_dir(&dir).map_err(|e| format!("read {dir}: {e}"))?;
    let mut total = 0;
    for t in tasks.flatten() {
        // A thread may exit between the listing and the read: it no longer counts.
        let Ok(s) = fs::read_to_string(t.path().join("schedstat")) else {
            continue;
        };
        total += s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

/// Write-family syscalls (write, writev, sendmsg…) a process has made, all threads
/// (`/proc/PID/io` syscw): how well a server coalesces its output.
pub fn proc_write_syscalls(pid: i32) -> Res<u64> {
    read_proc(pid, "io")?
        .lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no syscw in /proc/{pid}/io"))
}

/// Bytes the kernel still holds unsent or unacknowledged on established IPv4 sockets
/// whose local port is `port` (`/proc/net/tcp` tx_queue): 0 means the server at that
/// port has handed everything it wrote to its peers.
pub fn tcp_unsent_bytes(port: u16) -> Res<u64> {
    let s = fs::read_to_string("/proc/net/tcp").map_err(|e| format!("/proc/net/tcp: {e}"))?;
    let mut total = 0;
    for line in s.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(queues)) = (f.get(1), f.get(3), f.get(4)) else {
            continue;
        };
        let local_port = local
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok());
        if local_port != Some(port) || *state != "01" {
            continue;
        }
        let tx = queues.split(':').next().unwrap_or("0");
        total += u64::from_str_radix(tx, 16).unwrap_or(0);
    }
    Ok(total)
}

/// Kernel memory held by all TCP sockets (`/proc/net/sockstat` "TCP: ... mem N" pages).
pub fn sockstat_tcp_mem_bytes() -> Option<u64> {
    let s = fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = s.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    while let Some(w) = words.next() {
        if w == "mem" {
            return words.next()?.parse::<u64>().ok().map(|p| p * page);
        }
    }
    None
}

/// Slab bytes of the per-socket kernel objects (TCP sock, socket inode, epoll item), from
/// `/proc/slabinfo` (root only). Idle sockets hold no buffers, so this is their real cost.
pub fn kernel_socket_slab_bytes() -> Option<u64> {
    const CACHES: [&str; 3] = ["TCP", "sock_inode_cache", "eventpoll_epi"];
    let s = fs::read_to_string("/proc/slabinfo").ok()?;
    let mut total = 0;
    for line in s.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 3 && CACHES.contains(&f[0]) {
            let active: u64 = f[1].parse().ok()?;
            let size: u64 = f[3].parse().ok()?;
            total += active * size;
        }
    }
    Some(total)
}

pub fn machine_note() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} cores ({cpu}), Linux {}; server pinned to core 0, load to core 1",
        ncpus(),
        kernel.trim()
    )
}

static DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn temp_dir(tag: &str) -> Res<PathBuf> {
    let k = DIR_COUNTER.fetch_add(1, Ordering::Relaxed);
    let d = env::temp_dir().join(format!("crier-loadgen-{}-{tag}-{k}", std::process::id()));
    fs::create_dir_all(d.join("logs")).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
    Ok(d)
}

pub fn free_port() -> Res<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// `taskset -c 0 <program>` when taskset exists, so servers run on core 0.
pub fn pinned(program: &Path) -> Command {
    pinned_to(program, 1)
}

/// Pins to cores `0..cores` (a multi-reactor server gets one core each; on
/// a 2-core machine the second one is shared with the load).
pub fn pinned_to(program: &Path, cores: usize) -> Command {
    pinned_list(program, &first_cores(cores))
}

/// The `taskset -c` list of cores `0..cores` ("0" for one core or none).
pub fn first_cores(cores: usize) -> String {
    if cores <= 1 {
        "0".to_string()
    } else {
        format!("0-{}", cores - 1)
    }
}

/// `taskset -c <list> <program>` (a `taskset -c` core list, e.g. "0" or "0,2-3") when
/// taskset exists; several servers placed side by side (the cluster nodes and Redis).
pub fn pinned_list(program: &Path, list: &str) -> Command {
    if Path::new("/usr/bin/taskset").exists() {
        let mut c = Command::new("/usr/bin/taskset");
        c.arg("-c").arg(list).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// The child gets SIGTERM when the harness dies (even by SIGKILL), so an interrupted run
/// never leaves a server or client worker behind. Spawn from the main thread only: the
/// signal fires when the spawning thread exits.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        })
    }
}

/// Polls `child` until it exits or `end` passes; true if it exited. The caller decides what
/// to kill when it did not.
pub fn exited_by(child: &mut Child, end: Instant) -> bool {
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
    }
    !matches!(child.try_wait(), Ok(None))
}
