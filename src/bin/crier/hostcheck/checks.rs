//! The checks: facts and N in, findings out, measured against the
//! per-connection [`Budget`]. Pure (no I/O, no panics), so every rule is
//! tested against made-up hosts.

use super::facts::HostFacts;
use super::render::{bytes, group, limit_text};
use super::{
    Finding, BUFFER_DEFAULT_LIMIT, DEFAULT_BACKLOG, RECOMMENDED_CONNTRACK_MAX,
    RECOMMENDED_FILE_MAX, RECOMMENDED_NOFILE, RECOMMENDED_SOMAXCONN, RECOMMENDED_SYN_BACKLOG,
};

/// Share of memory the connection budget may use. The rest is for the
/// message history (`store-max-bytes`, 256 MiB by default), allocator
/// slack, the page cache and everything else on the host.
const MEMORY_USABLE_PERCENT: u64 = 90;

/// Per-connection memory costs used for the memory budget. The defaults
/// are crier's measured figures (see [`Budget::default`]); a deployment
/// with bigger subscriptions or a different kernel should measure its own
/// (`cargo bench --bench loadgen -- idle-memory`). [`check`] takes the
/// budget as an argument so the tests can try extreme ones; `--check-host`
/// uses the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// crier's user-space memory (RSS) per subscriber: connection slot,
    /// subscription, timer entry, index entries.
    pub user_bytes_per_conn: u64,
    /// Kernel memory per subscriber connection while a message is in
    /// flight to it: the socket objects (tcp_sock, inode, file, dentry,
    /// epoll item), which every connection holds even when idle, plus one
    /// page of socket buffer, which the kernel charges in whole pages to
    /// every socket that holds any queued data. A broadcast to every
    /// subscriber puts all of them in that state at once.
    pub kernel_bytes_per_conn: u64,
}

impl Default for Budget {
    /// Measured with crier's release build on Linux 6.18 (x86-64) by
    /// `cargo bench --bench loadgen -- idle-memory` at 19,000 subscribers:
    /// 213 B of RSS per idle SSE and 257 B per idle WebSocket subscriber,
    /// rounded up to 512 B for allocator slack and busy queues; socket
    /// objects 3.8 KiB per server-side socket (/proc/slabinfo: tcp_sock
    /// 2.3 KiB, sock_inode 0.8 KiB, filp, dentry, epoll item) with no buffer
    /// memory while idle; one queued 129-byte event charged exactly one
    /// 4 KiB page (`ss -m`: r961 + f3135). Hence 4 KiB + 4 KiB.
    fn default() -> Budget {
        Budget {
            user_bytes_per_conn: 512,
            kernel_bytes_per_conn: 8192,
        }
    }
}

/// Compares the host with what `connections` subscribers need and returns
/// one [`Finding`] per item, failures with their fix. Pure: no I/O, no
/// panics (all arithmetic saturates), so any N and any facts are safe.
///
/// Items, in order: open files (hard, soft, `fs.nr_open`, `fs.file-max`;
/// N + 10% + 1024), accept queues (`somaxconn`, `tcp_max_syn_backlog` ≥
/// crier's backlog of 4096), memory (N × (user + kernel) within 90% of
/// MemAvailable), `tcp_mem` high (≥ N × kernel bytes), `tcp_rmem`/`tcp_wmem`
/// defaults (≤ 16 KiB), the conntrack table if loaded, and two notes that
/// never fail: ephemeral ports (only outbound connections use them) and
/// connections per CPU. A value that cannot be read fails, since it cannot
/// be shown to be enough.
pub fn check(facts: &HostFacts, connections: u64, budget: &Budget) -> Vec<Finding> {
    let n = connections;
    let mut out = Vec::new();
    check_open_files(facts, n, &mut out);
    check_backlogs(facts, &mut out);
    check_memory(facts, n, budget, &mut out);
    check_tcp_mem(facts, n, budget, &mut out);
    check_buffer_default(
        "net.ipv4.tcp_rmem (default)",
        facts.tcp_rmem,
        "net.ipv4.tcp_rmem = 4096 16384 6291456",
        n,
        &mut out,
    );
    check_buffer_default(
        "net.ipv4.tcp_wmem (default)",
        facts.tcp_wmem,
        "net.ipv4.tcp_wmem = 4096 16384 4194304",
        n,
        &mut out,
    );
    check_conntrack(facts, n, &mut out);
    check_ports(facts, n, &mut out);
    check_cpus(facts, n, &mut out);
    out
}

/// Descriptors N connections need: one each, 10% more for subscribers that
/// vanished and reconnect before their old socket is reaped (within ping
/// interval plus TCP_USER_TIMEOUT) and for publishers, plus 1024 for
/// listeners, epoll and waker descriptors, logs and the like.
fn fd_need(n: u64) -> u64 {
    n.saturating_add(n / 10).saturating_add(1024)
}

/// The open-files value to recommend: the tuning/ figure, or the next
/// power of two above the need when N outgrows it.
fn nofile_recommendation(need: u64) -> u64 {
    RECOMMENDED_NOFILE.max(need.checked_next_power_of_two().unwrap_or(u64::MAX))
}

fn check_open_files(facts: &HostFacts, n: u64, out: &mut Vec<Finding>) {
    let need = fd_need(n);
    let rec = nofile_recommendation(need);
    let need_text = format!(">= {} (N + 10% + 1024)", group(need));
    let hard_fix = format!(
        "LimitNOFILE={rec} in tuning/crier.service (systemd ignores limits.conf); \
         `crier hard nofile {rec}` in tuning/limits.conf for login shells; both need fs.nr_open >= {rec}"
    );
    out.push(Finding {
        ok: facts.nofile_hard >= need,
        item: "open files, hard limit (RLIMIT_NOFILE)".into(),
        have: limit_text(facts.nofile_hard),
        need: need_text.clone(),
        fix: hard_fix,
    });
    let soft_ok = facts.nofile_soft >= need || facts.nofile_hard >= need;
    let soft_have = if facts.nofile_soft < need && facts.nofile_hard >= need {
        format!(
            "{} (crier raises it to hard)",
            limit_text(facts.nofile_soft)
        )
    } else {
        limit_text(facts.nofile_soft)
    };
    out.push(Finding {
        ok: soft_ok,
        item: "open files, soft limit".into(),
        have: soft_have,
        need: need_text,
        fix: "raise the hard limit (line above): crier raises its soft limit to the hard one at start"
            .into(),
    });
    out.push(at_least(
        "fs.nr_open",
        facts.nr_open,
        need,
        format!(">= {} (cap on any hard limit)", group(need)),
        format!("fs.nr_open = {rec} (tuning/sysctl.conf), then restart crier"),
    ));
    // The whole system's files: crier's need plus room for everything else.
    let sys_need = need.saturating_add(65_536);
    let sys_rec =
        RECOMMENDED_FILE_MAX.max(sys_need.checked_next_power_of_two().unwrap_or(u64::MAX));
    out.push(at_least(
        "fs.file-max",
        facts.file_max,
        sys_need,
        format!(">= {} (crier + 65536 for the rest)", group(sys_need)),
        format!("fs.file-max = {sys_rec} (tuning/sysctl.conf)"),
    ));
}

fn check_backlogs(facts: &HostFacts, out: &mut Vec<Finding>) {
    out.push(at_least(
        "net.core.somaxconn",
        facts.somaxconn,
        DEFAULT_BACKLOG,
        format!(">= {} (crier's backlog; reconnect storms)", group(DEFAULT_BACKLOG)),
        format!(
            "net.core.somaxconn = {RECOMMENDED_SOMAXCONN} (tuning/sysctl.conf); the kernel silently caps listen() at it"
        ),
    ));
    out.push(at_least(
        "net.ipv4.tcp_max_syn_backlog",
        facts.tcp_max_syn_backlog,
        DEFAULT_BACKLOG,
        format!(
            ">= {} (half-open during reconnect storms)",
            group(DEFAULT_BACKLOG)
        ),
        format!("net.ipv4.tcp_max_syn_backlog = {RECOMMENDED_SYN_BACKLOG} (tuning/sysctl.conf)"),
    ));
}

fn check_memory(facts: &HostFacts, n: u64, budget: &Budget, out: &mut Vec<Finding>) {
    let per_conn = budget
        .user_bytes_per_conn
        .saturating_add(budget.kernel_bytes_per_conn);
    let need = n.saturating_mul(per_conn);
    let need_text = format!(
        "{} = N x ({} B user + {} B kernel) <= {}% of available",
        bytes(need),
        budget.user_bytes_per_conn,
        budget.kernel_bytes_per_conn,
        MEMORY_USABLE_PERCENT
    );
    let item = "memory (MemAvailable)".to_string();
    let Some(avail) = facts.mem_available_bytes.or(facts.mem_total_bytes) else {
        out.push(Finding {
            ok: false,
            item,
            have: "unknown (no /proc/meminfo)".into(),
            need: need_text,
            fix: "run the check on the Linux host crier will run on".into(),
        });
        return;
    };
    let usable = avail / 100 * MEMORY_USABLE_PERCENT;
    let have = match facts.mem_total_bytes {
        Some(total) => format!("{} of {} total", bytes(avail), bytes(total)),
        None => bytes(avail),
    };
    let fits = usable.checked_div(per_conn).unwrap_or(u64::MAX);
    let total_usable = facts
        .mem_total_bytes
        .map_or(usable, |t| t / 100 * MEMORY_USABLE_PERCENT);
    let fix = if need > total_usable {
        format!(
            "a host with >= {} RAM, or fewer connections: this one fits about {} now",
            bytes((need / MEMORY_USABLE_PERCENT).saturating_mul(100)),
            group(fits)
        )
    } else {
        format!(
            "free memory: other processes hold {}; as it is, this host fits about {}",
            bytes(facts.mem_total_bytes.unwrap_or(avail).saturating_sub(avail)),
            group(fits)
        )
    };
    out.push(Finding {
        ok: need <= usable,
        item,
        have,
        need: need_text,
        fix,
    });
}

/// `tcp_mem` line for N, in pages of `page_bytes`: high covers N × kernel
/// bytes, pressure starts at three quarters of it, and below half of it the
/// kernel does not regulate. With 4 KiB pages the same formula gives the
/// table in tuning/sysctl.conf.
fn tcp_mem_recommendation(n: u64, budget: &Budget, page_bytes: u64) -> [u64; 3] {
    let high = n
        .saturating_mul(budget.kernel_bytes_per_conn)
        .div_ceil(page_bytes);
    [high / 2, high / 4 * 3, high]
}

/// `tcp_mem` high (pages × the host's page size) must cover N × kernel
/// bytes. tcp_mem counts socket buffers only, not socket objects, so with
/// the default budget this asks for two 4 KiB pages per connection: one
/// for a broadcast sitting on every subscriber socket until it is ACKed,
/// one of headroom for a second message, pings and publishers' receive
/// buffers. Over the high mark the kernel refuses socket memory and drops
/// packets.
fn check_tcp_mem(facts: &HostFacts, n: u64, budget: &Budget, out: &mut Vec<Finding>) {
    let need = n.saturating_mul(budget.kernel_bytes_per_conn);
    // read() never gives 0; made-up facts may, and must not divide by it.
    let page_bytes = facts.page_bytes.max(1);
    let rec = tcp_mem_recommendation(n, budget, page_bytes);
    let fix = format!(
        "net.ipv4.tcp_mem = {} {} {} (pages; tuning/sysctl.conf has the table by N)",
        rec[0], rec[1], rec[2]
    );
    let need_text = format!(
        "high >= {} = N x {} B kernel",
        bytes(need),
        budget.kernel_bytes_per_conn
    );
    let item = "net.ipv4.tcp_mem (high)".to_string();
    let Some(pages) = facts.tcp_mem_pages else {
        out.push(unknown(item, need_text, fix));
        return;
    };
    let high = pages[2].saturating_mul(page_bytes);
    out.push(Finding {
        ok: high >= need,
        item,
        have: format!(
            "{} {} {} pages (high {})",
            pages[0],
            pages[1],
            pages[2],
            bytes(high)
        ),
        need: need_text,
        fix,
    });
}

fn check_buffer_default(
    item: &str,
    value: Option<[u64; 3]>,
    fix_line: &str,
    n: u64,
    out: &mut Vec<Finding>,
) {
    let need = format!("default <= {}", group(BUFFER_DEFAULT_LIMIT));
    let fix = format!(
        "{fix_line} (tuning/sysctl.conf): idle sockets hold no buffers, but each may hold up to the default \
         once data queues; autotuning still grows busy sockets to the max"
    );
    let Some(v) = value else {
        out.push(unknown(item.into(), need, fix));
        return;
    };
    out.push(Finding {
        ok: v[1] <= BUFFER_DEFAULT_LIMIT,
        item: item.into(),
        have: format!(
            "{} {} {} (N x default = {})",
            v[0],
            v[1],
            v[2],
            bytes(n.saturating_mul(v[1]))
        ),
        need,
        fix,
    });
}

fn check_conntrack(facts: &HostFacts, n: u64, out: &mut Vec<Finding>) {
    let item = "net.netfilter.nf_conntrack_max".to_string();
    let need = fd_need(n);
    let Some(max) = facts.conntrack_max else {
        out.push(Finding {
            ok: true,
            item,
            have: "conntrack not loaded".into(),
            need: "none (nothing tracks connections)".into(),
            fix: String::new(),
        });
        return;
    };
    out.push(Finding {
        ok: max >= need,
        item,
        have: group(max),
        need: format!(">= {} if crier's port is tracked", group(need)),
        fix: format!(
            "exempt crier's port from conntrack (notrack rule in tuning/README.md), or \
             net.netfilter.nf_conntrack_max = {} (tuning/sysctl.conf); when full, new connections are dropped",
            RECOMMENDED_CONNTRACK_MAX.max(need.checked_next_power_of_two().unwrap_or(u64::MAX))
        ),
    });
}

fn check_ports(facts: &HostFacts, n: u64, out: &mut Vec<Finding>) {
    let item = "net.ipv4.ip_local_port_range".to_string();
    let Some((lo, hi)) = facts.port_range else {
        out.push(Finding {
            ok: true,
            item,
            have: "unknown".into(),
            need: "inbound: none; outbound proxies only".into(),
            fix: String::new(),
        });
        return;
    };
    let ports = hi.saturating_sub(lo).saturating_add(1);
    let sources = n.div_ceil(ports.max(1));
    out.push(Finding {
        // Inbound connections use no ephemeral ports: informative only.
        ok: true,
        item,
        have: format!("{lo}-{hi} ({} ports)", group(ports)),
        need: format!(
            "inbound: none; a proxy/LB in front needs >= {sources} source IPs per crier ip:port"
        ),
        fix: "on the proxy/LB host: net.ipv4.ip_local_port_range = 10000 65535 and several source \
              addresses (one address reaches one crier ip:port with at most one connection per port)"
            .into(),
    });
}

fn check_cpus(facts: &HostFacts, n: u64, out: &mut Vec<Finding>) {
    let cpus = facts.cpus.max(1) as u64;
    out.push(Finding {
        ok: true,
        item: "CPUs (one reactor each)".into(),
        have: facts.cpus.to_string(),
        need: format!(
            "note: {} connections per reactor; an idle one costs a ping per ping-interval",
            group(n.div_ceil(cpus))
        ),
        fix: String::new(),
    });
}

/// A finding for "the host's value must be at least `need`"; unreadable
/// values fail, because they cannot be shown to be enough.
fn at_least(item: &str, have: Option<u64>, need: u64, need_text: String, fix: String) -> Finding {
    match have {
        Some(v) => Finding {
            ok: v >= need,
            item: item.into(),
            have: group(v),
            need: need_text,
            fix,
        },
        None => unknown(item.into(), need_text, fix),
    }
}

fn unknown(item: String, need: String, fix: String) -> Finding {
    Finding {
        ok: false,
        item,
        have: "unknown (cannot read)".into(),
        need,
        fix: format!(
            "run the check on the host itself (not in a container hiding /proc/sys); {fix}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostcheck::facts::samples::{small_host, tuned_host, GIB};
    use crate::hostcheck::render::render;

    fn find<'a>(findings: &'a [Finding], item: &str) -> &'a Finding {
        match findings.iter().find(|f| f.item.starts_with(item)) {
            Some(f) => f,
            None => panic!("no finding {item:?} in {findings:#?}"),
        }
    }

    #[test]
    fn tuned_host_holds_a_million() {
        let findings = check(&tuned_host(), 1_000_000, &Budget::default());
        let failed: Vec<_> = findings.iter().filter(|f| !f.ok).collect();
        assert!(failed.is_empty(), "{failed:#?}");
        let text = render(&findings, 1_000_000);
        assert!(text.trim_end().ends_with("1,000,000 connections"), "{text}");
        assert!(text.contains("verdict: OK"), "{text}");
        assert!(!text.contains("fix:"), "{text}");
    }

    #[test]
    fn tuned_host_is_not_enough_for_five_million() {
        let findings = check(&tuned_host(), 5_000_000, &Budget::default());
        // 5M × 8.5 KiB = 40.5 GiB > 90% of 30 GiB, and tcp_mem is sized for 1M.
        assert!(!find(&findings, "memory").ok);
        let tcp_mem = find(&findings, "net.ipv4.tcp_mem");
        assert!(!tcp_mem.ok);
        assert!(
            tcp_mem
                .fix
                .contains("net.ipv4.tcp_mem = 5000000 7500000 10000000"),
            "{}",
            tcp_mem.fix
        );
        // Open files are sized for 5M already.
        assert!(find(&findings, "open files, hard").ok);
        assert!(find(&findings, "fs.nr_open").ok);
    }

    #[test]
    fn small_host_lists_every_obstacle() {
        let findings = check(&small_host(), 1_000_000, &Budget::default());
        for item in [
            "open files, hard",
            "open files, soft",
            "fs.nr_open",
            "fs.file-max",
            "net.core.somaxconn",
            "net.ipv4.tcp_max_syn_backlog",
            "memory",
            "net.ipv4.tcp_mem",
            "net.ipv4.tcp_rmem",
            "net.netfilter.nf_conntrack_max",
        ] {
            let f = find(&findings, item);
            assert!(!f.ok, "{item} should fail: {f:#?}");
            assert!(!f.fix.is_empty(), "{item} has no fix");
        }
        // wmem default is 16 KiB: fine. Ports and CPUs are notes.
        assert!(find(&findings, "net.ipv4.tcp_wmem").ok);
        assert!(find(&findings, "net.ipv4.ip_local_port_range").ok);
        assert!(find(&findings, "CPUs").ok);
        let hard = find(&findings, "open files, hard");
        assert!(hard.fix.contains("LimitNOFILE=8388608"), "{}", hard.fix);
        assert!(find(&findings, "net.core.somaxconn")
            .fix
            .contains("net.core.somaxconn = 65535"));
        let text = render(&findings, 1_000_000);
        assert!(
            text.contains("verdict: NOT READY, 10 items stand between this host and 1,000,000"),
            "{text}"
        );
        assert_eq!(text.matches("fix:").count(), 10, "{text}");
    }

    #[test]
    fn low_soft_limit_is_fine_when_the_hard_limit_suffices() {
        let mut host = tuned_host();
        host.nofile_soft = 1024;
        let findings = check(&host, 1_000_000, &Budget::default());
        let soft = find(&findings, "open files, soft");
        assert!(soft.ok);
        assert!(soft.have.contains("raises it to hard"), "{}", soft.have);
    }

    #[test]
    fn open_files_need_has_margin() {
        let mut host = tuned_host();
        host.nofile_soft = 1_000_000;
        host.nofile_hard = 1_000_000;
        let findings = check(&host, 1_000_000, &Budget::default());
        assert!(!find(&findings, "open files, hard").ok);
        assert_eq!(fd_need(1_000_000), 1_101_024);
    }

    #[test]
    fn unlimited_open_files_pass() {
        let mut host = tuned_host();
        host.nofile_soft = u64::MAX;
        host.nofile_hard = u64::MAX;
        let findings = check(&host, 1_000_000, &Budget::default());
        let hard = find(&findings, "open files, hard");
        assert!(hard.ok);
        assert_eq!(hard.have, "unlimited");
    }

    #[test]
    fn large_tracked_conntrack_passes_and_small_one_fails() {
        let mut host = tuned_host();
        host.conntrack_max = Some(2_000_000);
        assert!(
            find(
                &check(&host, 1_000_000, &Budget::default()),
                "net.netfilter"
            )
            .ok
        );
        host.conntrack_max = Some(262_144);
        let findings = check(&host, 1_000_000, &Budget::default());
        let ct = find(&findings, "net.netfilter");
        assert!(!ct.ok);
        assert!(ct.fix.contains("notrack"), "{}", ct.fix);
        assert!(ct.fix.contains("nf_conntrack_max = 8388608"), "{}", ct.fix);
    }

    #[test]
    fn memory_fix_distinguishes_small_host_from_busy_host() {
        // Too small in total: needs a bigger host.
        let small = check(&small_host(), 1_000_000, &Budget::default());
        assert!(find(&small, "memory").fix.starts_with("a host with"));
        // Big enough but memory is used by others: free it.
        let mut busy = tuned_host();
        busy.mem_available_bytes = Some(4 * GIB);
        let findings = check(&busy, 1_000_000, &Budget::default());
        let mem = find(&findings, "memory");
        assert!(!mem.ok);
        assert!(mem.fix.starts_with("free memory"), "{}", mem.fix);
    }

    #[test]
    fn unreadable_facts_fail_without_panicking() {
        let host = HostFacts::default();
        let findings = check(&host, 1_000_000, &Budget::default());
        for item in [
            "fs.nr_open",
            "fs.file-max",
            "net.core.somaxconn",
            "memory",
            "net.ipv4.tcp_mem",
            "net.ipv4.tcp_rmem",
        ] {
            let f = find(&findings, item);
            assert!(!f.ok, "{item}");
            assert!(f.have.starts_with("unknown"), "{item}: {}", f.have);
        }
        // No conntrack table means nothing to fill.
        assert!(find(&findings, "net.netfilter").ok);
        let _ = render(&findings, 1_000_000);
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let budget = Budget {
            user_bytes_per_conn: u64::MAX,
            kernel_bytes_per_conn: u64::MAX,
        };
        for n in [0, 1, u64::MAX] {
            let findings = check(&tuned_host(), n, &budget);
            let _ = render(&findings, n);
            let findings = check(&HostFacts::default(), n, &Budget::default());
            let _ = render(&findings, n);
        }
        let zero = Budget {
            user_bytes_per_conn: 0,
            kernel_bytes_per_conn: 0,
        };
        let _ = render(&check(&small_host(), 10, &zero), 10);
        let _ = render(&[], 0);
    }

    #[test]
    fn tcp_mem_recommendation_matches_sysctl_conf_table() {
        // The table is written for 4 KiB pages.
        let b = Budget::default();
        assert_eq!(
            tcp_mem_recommendation(1_000_000, &b, 4096),
            [1_000_000, 1_500_000, 2_000_000]
        );
        assert_eq!(
            tcp_mem_recommendation(2_000_000, &b, 4096),
            [2_000_000, 3_000_000, 4_000_000]
        );
        assert_eq!(
            tcp_mem_recommendation(5_000_000, &b, 4096),
            [5_000_000, 7_500_000, 10_000_000]
        );
    }

    #[test]
    fn tcp_mem_is_counted_in_the_hosts_pages() {
        // 1M x 8 KiB is 125,000 pages of 64 KiB; read as 4 KiB pages the
        // same figures would hold a sixteenth of it.
        let mut host = tuned_host();
        host.page_bytes = 65_536;
        host.tcp_mem_pages = Some([62_500, 93_750, 125_000]);
        let findings = check(&host, 1_000_000, &Budget::default());
        let tcp_mem = find(&findings, "net.ipv4.tcp_mem");
        assert!(tcp_mem.ok, "{tcp_mem:#?}");
        assert!(
            tcp_mem.fix.contains("tcp_mem = 62500 93750 125000"),
            "{}",
            tcp_mem.fix
        );
        host.page_bytes = 4096;
        let findings = check(&host, 1_000_000, &Budget::default());
        assert!(!find(&findings, "net.ipv4.tcp_mem").ok);
    }
}
