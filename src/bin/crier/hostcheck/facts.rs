//! Facts of this host and process: the only part of the host check that
//! touches the system (getrlimit, `/proc/sys`, `/proc/meminfo`), kept apart
//! so the checks stay pure and are tested with made-up [`HostFacts`].

/// Facts read from the host. A plain struct so [`check`] can be tested with
/// made-up hosts; `None` means the value could not be read (not Linux, a
/// container hiding `/proc/sys`, a module not loaded), which [`check`]
/// reports rather than guesses.
///
/// [`check`]: super::checks::check
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostFacts {
    /// Soft `RLIMIT_NOFILE` of this process. crier raises its soft limit to
    /// the hard one at start, so a low soft limit alone is harmless.
    pub nofile_soft: u64,
    /// Hard `RLIMIT_NOFILE` of this process: every connection is one file
    /// descriptor, so this caps the connections. `u64::MAX` = unlimited.
    pub nofile_hard: u64,
    /// `fs.nr_open`: the largest hard open-files limit any process may get;
    /// `LimitNOFILE=` above it makes the unit fail to start.
    pub nr_open: Option<u64>,
    /// `fs.file-max`: open files of the whole system.
    pub file_max: Option<u64>,
    /// `net.core.somaxconn`: cap on every listen() backlog.
    pub somaxconn: Option<u64>,
    /// `net.ipv4.tcp_max_syn_backlog`: half-open connections per listener.
    pub tcp_max_syn_backlog: Option<u64>,
    /// `net.ipv4.tcp_mem` in pages: low, pressure, high. Over pressure the
    /// kernel shrinks socket buffers; over high it refuses socket memory
    /// (drops, "out of memory -- consider tuning tcp_mem").
    pub tcp_mem_pages: Option<[u64; 3]>,
    /// Bytes per page, the unit of `tcp_mem`: 4 KiB on x86-64 and most
    /// arm64 kernels, 16 or 64 KiB on others, where a fixed 4096 would put
    /// the tcp_mem figures 4 or 16 times off. [`read`](Self::read) always
    /// gives one (see [`FALLBACK_PAGE_BYTES`]); the 0 of `Default` only
    /// appears in made-up facts. [`Budget::default`]'s kernel figure is a
    /// 4 KiB-page measurement and does not scale with it.
    ///
    /// [`Budget::default`]: super::checks::Budget::default
    pub page_bytes: u64,
    /// `net.ipv4.tcp_rmem` in bytes: min, default, max receive buffer.
    pub tcp_rmem: Option<[u64; 3]>,
    /// `net.ipv4.tcp_wmem` in bytes: min, default, max send buffer.
    pub tcp_wmem: Option<[u64; 3]>,
    /// `MemTotal` from /proc/meminfo, in bytes.
    pub mem_total_bytes: Option<u64>,
    /// `MemAvailable` from /proc/meminfo, in bytes: what can be had without
    /// swapping, which is what the connection budget competes for.
    pub mem_available_bytes: Option<u64>,
    /// CPUs this process may run on: crier runs one reactor per CPU.
    pub cpus: usize,
    /// `net.ipv4.ip_local_port_range`: ephemeral ports for outbound
    /// connections (a proxy on this host connecting to crier, load tests).
    pub port_range: Option<(u64, u64)>,
    /// `net.netfilter.nf_conntrack_max`; `None` when conntrack is not
    /// loaded (then nothing tracks connections and there is no limit).
    pub conntrack_max: Option<u64>,
}

impl HostFacts {
    /// Reads the facts of this host and process: the open-files limits
    /// from getrlimit, the sysctls from `/proc/sys`, memory from
    /// `/proc/meminfo` and the CPU count from `available_parallelism`.
    /// Never fails: what cannot be read is `None` (or 0 for the limits), and
    /// [`check`] reports it.
    ///
    /// The open-files limits are those of the process running the check.
    /// Under systemd the service gets the unit's `LimitNOFILE=` instead, so
    /// run the check the way crier runs (`systemd-run -p LimitNOFILE=...`,
    /// or as the crier user in a login shell that applied limits.conf).
    ///
    /// [`check`]: super::checks::check
    pub fn read() -> HostFacts {
        let (nofile_soft, nofile_hard) = read_nofile();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        HostFacts {
            nofile_soft,
            nofile_hard,
            nr_open: read_u64("/proc/sys/fs/nr_open"),
            file_max: read_u64("/proc/sys/fs/file-max"),
            somaxconn: read_u64("/proc/sys/net/core/somaxconn"),
            tcp_max_syn_backlog: read_u64("/proc/sys/net/ipv4/tcp_max_syn_backlog"),
            tcp_mem_pages: read_triple("/proc/sys/net/ipv4/tcp_mem"),
            page_bytes: read_page_bytes(),
            tcp_rmem: read_triple("/proc/sys/net/ipv4/tcp_rmem"),
            tcp_wmem: read_triple("/proc/sys/net/ipv4/tcp_wmem"),
            mem_total_bytes: meminfo_bytes(&meminfo, "MemTotal"),
            mem_available_bytes: meminfo_bytes(&meminfo, "MemAvailable"),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            port_range: std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
                .ok()
                .and_then(|s| parse_pair(&s)),
            conntrack_max: read_u64("/proc/sys/net/netfilter/nf_conntrack_max"),
        }
    }
}

/// Soft and hard `RLIMIT_NOFILE`; (0, 0) when getrlimit fails, which the
/// check then reports as too low.
fn read_nofile() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the rlimit struct we pass, which is a
    // valid, exclusively borrowed local; std has no API for resource limits.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 {
        return (0, 0);
    }
    // rlim_t is u64 on Linux; RLIM_INFINITY is already u64::MAX there, the
    // explicit mapping documents that "unlimited" reads as u64::MAX.
    let conv = |v: libc::rlim_t| -> u64 {
        if v == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            v
        }
    };
    (conv(lim.rlim_cur), conv(lim.rlim_max))
}

/// Page size assumed when sysconf cannot tell: the x86-64 one, which is
/// also what the tcp_mem table in tuning/sysctl.conf is written for.
const FALLBACK_PAGE_BYTES: u64 = 4096;

/// The kernel's page size; [`FALLBACK_PAGE_BYTES`] if sysconf fails (it
/// does not on Linux, where the value comes from the ELF auxiliary vector).
fn read_page_bytes() -> u64 {
    // SAFETY: sysconf reads a process-wide constant and touches no memory
    // of ours; for a name the system does not know it returns -1, which the
    // conversion below turns into the fallback. std has no page-size API.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(v)
        .ok()
        .filter(|&b| b > 0)
        .unwrap_or(FALLBACK_PAGE_BYTES)
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_triple(path: &str) -> Option<[u64; 3]> {
    parse_triple(&std::fs::read_to_string(path).ok()?)
}

/// Parses "a b c" (tabs or spaces), as in tcp_mem/tcp_rmem/tcp_wmem.
fn parse_triple(s: &str) -> Option<[u64; 3]> {
    let mut it = s.split_whitespace().map(|t| t.parse::<u64>().ok());
    let v = [it.next()??, it.next()??, it.next()??];
    it.next().is_none().then_some(v)
}

/// Parses "lo hi", as in ip_local_port_range.
fn parse_pair(s: &str) -> Option<(u64, u64)> {
    let mut it = s.split_whitespace().map(|t| t.parse::<u64>().ok());
    let v = (it.next()??, it.next()??);
    it.next().is_none().then_some(v)
}

/// A `Key:   123 kB` line of /proc/meminfo, in bytes.
fn meminfo_bytes(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let value: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") => value.checked_mul(1024),
            None => Some(value),
            Some(_) => None,
        }
    })
}

/// Made-up hosts for the tests of the checks: facts are plain data, so a
/// test states the host it means instead of depending on the one it runs on.
#[cfg(test)]
pub mod samples {
    use super::HostFacts;
    use crate::hostcheck::{
        RECOMMENDED_FILE_MAX, RECOMMENDED_NOFILE, RECOMMENDED_SOMAXCONN, RECOMMENDED_SYN_BACKLOG,
    };

    pub const GIB: u64 = 1 << 30;

    /// A host tuned with tuning/ for 1M connections: 32 GiB, sysctl.conf
    /// applied, crier.service limits, conntrack not loaded.
    pub fn tuned_host() -> HostFacts {
        HostFacts {
            nofile_soft: RECOMMENDED_NOFILE,
            nofile_hard: RECOMMENDED_NOFILE,
            nr_open: Some(RECOMMENDED_NOFILE),
            file_max: Some(RECOMMENDED_FILE_MAX),
            somaxconn: Some(RECOMMENDED_SOMAXCONN),
            tcp_max_syn_backlog: Some(RECOMMENDED_SYN_BACKLOG),
            tcp_mem_pages: Some([1_000_000, 1_500_000, 2_000_000]),
            page_bytes: 4096,
            tcp_rmem: Some([4096, 16384, 6_291_456]),
            tcp_wmem: Some([4096, 16384, 4_194_304]),
            mem_total_bytes: Some(32 * GIB),
            mem_available_bytes: Some(30 * GIB),
            cpus: 16,
            port_range: Some((10000, 65535)),
            conntrack_max: None,
        }
    }

    /// A stock distribution host: 4 GiB, 1024/4096 open files, kernel
    /// defaults, conntrack loaded with a small table.
    pub fn small_host() -> HostFacts {
        HostFacts {
            nofile_soft: 1024,
            nofile_hard: 4096,
            nr_open: Some(1_048_576),
            file_max: Some(400_000),
            somaxconn: Some(128),
            tcp_max_syn_backlog: Some(512),
            tcp_mem_pages: Some([45_000, 60_000, 90_000]),
            page_bytes: 4096,
            tcp_rmem: Some([4096, 131_072, 6_291_456]),
            tcp_wmem: Some([4096, 16384, 4_194_304]),
            mem_total_bytes: Some(4 * GIB),
            mem_available_bytes: Some(3 * GIB),
            cpus: 2,
            port_range: Some((32768, 60999)),
            conntrack_max: Some(65536),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(
            parse_triple("4096\t131072\t6291456\n"),
            Some([4096, 131_072, 6_291_456])
        );
        assert_eq!(parse_triple("1 2"), None);
        assert_eq!(parse_triple("1 2 3 4"), None);
        assert_eq!(parse_triple("1 x 3"), None);
        assert_eq!(parse_pair("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_pair("32768"), None);
        let meminfo = "MemTotal:       24684092 kB\nMemFree:  1 kB\nMemAvailable:   23855668 kB\nHugePages_Total:       0\n";
        assert_eq!(meminfo_bytes(meminfo, "MemTotal"), Some(24_684_092 * 1024));
        assert_eq!(
            meminfo_bytes(meminfo, "MemAvailable"),
            Some(23_855_668 * 1024)
        );
        assert_eq!(meminfo_bytes(meminfo, "HugePages_Total"), Some(0));
        assert_eq!(meminfo_bytes(meminfo, "Mem"), None);
        assert_eq!(meminfo_bytes("", "MemTotal"), None);
    }

    #[test]
    fn read_does_not_panic_and_sees_this_process() {
        let facts = HostFacts::read();
        assert!(facts.cpus >= 1);
        if cfg!(target_os = "linux") {
            assert!(facts.nofile_hard >= facts.nofile_soft);
            assert!(facts.nofile_soft > 0);
            assert!(facts.page_bytes >= 4096 && facts.page_bytes.is_power_of_two());
        }
    }
}
