#![cfg(all(target_os = "linux", target_env = "gnu"))]
//! The served process runs with glibc's tcache off (the churn
//! fix, src/bin/crier/malloc_tuning.rs): read back from the running
//! server's environment and its start-up log, as an operator would check.

mod common;

use common::ChildServer;

/// `GLIBC_TUNABLES` of the running process as /proc shows it (glibc cuts the
/// original at the end of the first tunable while parsing it).
fn first_tunable_of(server: &ChildServer) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{}/environ", server.pid())).expect("environ");
    environ
        .split(|&b| b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("GLIBC_TUNABLES="))
        .map(str::to_string)
}

/// The start-up line saying which allocator settings run.
fn allocator_line(server: &ChildServer) -> String {
    let log = server.log();
    log.lines()
        .find(|l| l.contains("allocator: "))
        .unwrap_or_else(|| panic!("no allocator line in:\n{log}"))
        .to_string()
}

#[test]
fn the_server_runs_with_the_tcache_off() {
    let server = ChildServer::spawn(&[]);
    // The process the test started (same pid) carries the variable, so it was
    // re-executed in place, and it serves.
    assert_eq!(
        first_tunable_of(&server).as_deref(),
        Some("glibc.malloc.tcache_count=0")
    );
    let line = allocator_line(&server);
    assert!(
        line.contains("GLIBC_TUNABLES=glibc.malloc.tcache_count=0;"),
        "{line}"
    );
    let status = ureq::get(&format!("http://{}/status", server.addr))
        .call()
        .expect("status");
    assert_eq!(status.status(), 200);
}

#[test]
fn the_operators_other_tunables_are_kept() {
    let server = ChildServer::spawn_env(&[], &[("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")]);
    let line = allocator_line(&server);
    assert!(
        line.contains("GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.tcache_count=0;"),
        "{line}"
    );
}

#[test]
fn an_operators_own_tcache_setting_is_left_alone() {
    let own = "glibc.malloc.tcache_count=7";
    let server = ChildServer::spawn_env(&[], &[("GLIBC_TUNABLES", own)]);
    assert_eq!(first_tunable_of(&server).as_deref(), Some(own));
    let line = allocator_line(&server);
    assert!(
        line.contains("GLIBC_TUNABLES=glibc.malloc.tcache_count=7 as given"),
        "{line}"
    );
}

#[test]
fn malloc_tuning_off_keeps_glibcs_defaults() {
    let server = ChildServer::spawn_env(&[], &[("CRIER_MALLOC_TUNING", "off")]);
    assert_eq!(first_tunable_of(&server), None);
    assert!(allocator_line(&server).contains("glibc's defaults"));
}
