//! `crier --check-host N`: what stands between this host and N connections.
//!
//! Holding a million mostly idle subscribers is rarely limited by crier
//! itself; it is limited by the host: the open-files limits, the listen
//! queues a reconnect storm lands in, memory for the sockets, the kernel's
//! TCP memory limit (`net.ipv4.tcp_mem`), per-socket buffer defaults and,
//! where loaded, the conntrack table. This module reads those facts
//! ([`facts`]), compares them with what N connections need ([`checks`])
//! and prints one line per item with the fix for each failure
//! ([`render`]). The fixes name the settings in `tuning/` (sysctl.conf,
//! limits.conf, crier.service), whose values the recommendations below
//! match.
//!
//! The files split along purity: only [`facts`] touches the system;
//! [`checks`] (facts in, findings out) and [`render`] (findings in, text
//! out) are pure, so they are tested with made-up hosts.
//!
//! A module of the binary, not of the library: the server never runs it.

use std::process::ExitCode;

mod checks;
mod facts;
mod render;

// The figures the checks hold the host to. Most mirror a file in tuning/ or
// a default of crier's config and must change with it; they live here
// rather than in checks.rs because the tests' sample hosts use them too.

/// crier's default listen backlog (`backlog` setting). The kernel silently
/// caps a listen() backlog at `net.core.somaxconn`, and half-open
/// connections at `net.ipv4.tcp_max_syn_backlog`, so both must be at least
/// this or a reconnect storm after a restart or a load-balancer failover
/// overflows the queues and clients retry after a 1 s, 3 s, 7 s... SYN
/// timeout.
const DEFAULT_BACKLOG: u64 = 4096;

/// Largest default (middle) value of `tcp_rmem`/`tcp_wmem` that does not
/// earn a warning. The defaults are the per-socket ceilings before
/// autotuning moves them: an idle socket with empty queues holds no buffer
/// memory at all, but each socket may hold about its default once data
/// is queued (a subscriber that stopped reading, unread input), so N times
/// the default is roughly what the kernel can be made to pin.
const BUFFER_DEFAULT_LIMIT: u64 = 16 * 1024;

/// Open-files limit recommended by `tuning/` (crier.service `LimitNOFILE=`,
/// limits.conf `nofile`, sysctl.conf `fs.nr_open`): room for 5M
/// connections plus margin, and a power of two so it reads as a round
/// number in `/proc/PID/limits`.
const RECOMMENDED_NOFILE: u64 = 8_388_608;

/// `fs.file-max` recommended by `tuning/sysctl.conf`: the whole system's
/// open files, so twice the per-process figure leaves room for the rest of
/// the host.
const RECOMMENDED_FILE_MAX: u64 = 16_777_216;

/// `net.core.somaxconn` recommended by `tuning/sysctl.conf`.
const RECOMMENDED_SOMAXCONN: u64 = 65_535;

/// `net.ipv4.tcp_max_syn_backlog` recommended by `tuning/sysctl.conf`.
const RECOMMENDED_SYN_BACKLOG: u64 = 65_536;

/// `net.netfilter.nf_conntrack_max` recommended by `tuning/sysctl.conf`
/// when crier's port cannot be exempted from tracking: 5M connections
/// plus margin.
const RECOMMENDED_CONNTRACK_MAX: u64 = 8_388_608;

/// One finding: an item that may stand between this host and N
/// connections, what the host has, what N connections need and how to fix
/// it. `have` and `need` are short (they are table cells); `fix` is the
/// concrete setting or file to change, so an operator can act on the line
/// without reading documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// True when the host already meets the need (or the item is only
    /// informative); false when it stands in the way or could not be read.
    pub ok: bool,
    /// What is checked, named as the operator would search for it (the
    /// sysctl key or limit name).
    pub item: String,
    /// The host's value, as read.
    pub have: String,
    /// The value N connections need, with the reason in brief.
    pub need: String,
    /// The concrete fix: a sysctl line or unit setting, and the file in
    /// `tuning/` that carries it.
    pub fix: String,
}

/// Runs the check for `connections` on this host and prints the report.
/// Exits 1 when anything stands in the way (or could not be read), so a
/// provisioning script can gate on `crier --check-host N`.
pub fn run(connections: u64) -> ExitCode {
    let facts = facts::HostFacts::read();
    let findings = checks::check(&facts, connections, &checks::Budget::default());
    print!("{}", render::render(&findings, connections));
    if findings.iter().all(|f| f.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
