//! Start the server with glibc's per-thread cache (tcache) off.
//!
//! Why: under connection churn (subscribers connecting and leaving all day)
//! chunks parked in the tcache are never coalesced with their free
//! neighbours, so the heap keeps spreading over fresh pages although crier's
//! live allocations stay flat (heaptrack and `mallinfo2` agree): RSS grew
//! ~100 B per 1,000 connect/disconnect cycles and was still climbing after
//! five million of them. With the tcache off, churning connections leave RSS
//! flat (docs/PERFORMANCE.md, "Memory under churn"); delivery, publish and
//! connect CPU did not move, because the reactors' hot path allocates almost
//! nothing. jemalloc and mimalloc were measured too: both cost more memory
//! per idle subscriber, which is what crier is sized by.
//!
//! glibc reads this only from `GLIBC_TUNABLES` at process start (there is
//! no `mallopt` for the tcache), so the server re-executes itself once, in
//! place (same pid, same open files, before any thread or socket exists),
//! with the variable set. `CRIER_MALLOC_TUNING=off` keeps glibc's defaults;
//! a `GLIBC_TUNABLES` that already sets `glibc.malloc.tcache_count` is left
//! as the operator wrote it. Other C libraries and systems are left alone.

/// The environment variable that turns this off, and marks the re-executed process.
const SWITCH: &str = "CRIER_MALLOC_TUNING";
/// What the re-executed process runs with, appended to any tunables already set.
const TUNABLES: &str = "glibc.malloc.tcache_count=0";

/// What [`apply`] found, for the start-up log (logging is not set up yet when it runs).
pub enum Outcome {
    /// This process was re-executed with [`TUNABLES`].
    Applied,
    /// `CRIER_MALLOC_TUNING=off`.
    Off,
    /// `GLIBC_TUNABLES` already sets the tcache.
    OperatorsOwn,
    /// Re-executing failed; running with glibc's defaults.
    ExecFailed(std::io::Error),
    /// Not glibc on Linux: nothing to do.
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    NotGlibc,
}

/// Re-executes the process with [`TUNABLES`] unless that is off, done, or set by hand.
/// Returns only when it did not re-execute (or `exec` failed, which leaves the
/// defaults: a heap that settles more slowly, not an error).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn apply() -> Outcome {
    use std::os::unix::process::CommandExt;

    match std::env::var_os(SWITCH) {
        Some(v) if v == "off" => return Outcome::Off,
        Some(v) if v == "applied" => return Outcome::Applied,
        _ => {}
    }
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let Some(tunables) = merged(&current) else {
        return Outcome::OperatorsOwn;
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .env(SWITCH, "applied")
        .exec();
    Outcome::ExecFailed(err)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn apply() -> Outcome {
    Outcome::NotGlibc
}

impl Outcome {
    /// One line at start-up, so an operator can see which allocator settings run.
    pub fn log(&self) {
        // In-process `environ` holds glibc's full copy (/proc/PID/environ shows
        // only up to the first tunable: glibc cuts the original while parsing it).
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        match self {
            Outcome::Applied => log::info!(
                "allocator: glibc tcache off for flat memory under churn \
                 (GLIBC_TUNABLES={tunables}; {SWITCH}=off keeps glibc's defaults)"
            ),
            Outcome::Off => log::info!("allocator: glibc's defaults ({SWITCH}=off)"),
            Outcome::OperatorsOwn => {
                log::info!("allocator: GLIBC_TUNABLES={tunables} as given")
            }
            Outcome::ExecFailed(e) => log::warn!(
                "allocator: cannot re-execute with {TUNABLES} ({e}); glibc's defaults, \
                 memory settles more slowly under connection churn"
            ),
            #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
            Outcome::NotGlibc => {}
        }
    }
}

/// The `GLIBC_TUNABLES` value to run with, or None when the operator's own
/// value already sets the tcache.
fn merged(current: &str) -> Option<String> {
    let decided = current
        .split(':')
        .any(|kv| kv.split('=').next() == Some("glibc.malloc.tcache_count"));
    match (decided, current.is_empty()) {
        (true, _) => None,
        (false, true) => Some(TUNABLES.to_string()),
        (false, false) => Some(format!("{current}:{TUNABLES}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tunables_are_set_when_none_are() {
        assert_eq!(merged("").as_deref(), Some(TUNABLES));
    }

    #[test]
    fn other_tunables_are_kept_in_front() {
        assert_eq!(
            merged("glibc.malloc.arena_max=2").unwrap(),
            format!("glibc.malloc.arena_max=2:{TUNABLES}")
        );
    }

    #[test]
    fn an_operators_own_tcache_setting_wins() {
        assert_eq!(merged("glibc.malloc.tcache_count=7"), None);
        assert_eq!(
            merged("glibc.malloc.arena_max=1:glibc.malloc.tcache_count=2"),
            None
        );
    }
}
