//! Load generator and comparison harness for crier.
//!
//! `cargo bench --bench loadgen -- <scenario> [options]`; see `benches/README.md`.
//!
//! One binary, three roles:
//! * harness (default): starts the server under test pinned to core 0, spawns client
//!   workers (pinned to core 1 like itself), publishes, measures, prints a table and a JSON line;
//! * `--client-worker SPEC`: holds up to ~19K subscriber sockets on one mio loop and reports
//!   counters and latency histograms as JSON lines on stdout; commands arrive on stdin;
//! * `--floor-server --listen ADDR`: the raw floor, a minimal single-threaded fan-out server
//!   that only writes pre-encoded bytes to subscriber sockets.
//!
//! This file only dispatches between the roles and drives the harness (cases × peers × runs);
//! the work lives in the modules below.

mod cli;
mod client;
mod conn_gauge;
mod floor;
mod harness;
mod hist;
mod peers;
mod publish;
mod report;
mod scenarios;
mod tls;
mod wire;

use std::env;
use std::thread;
use std::time::Duration;

use cli::Opts;
use peers::Peer;
use report::Summary;
use scenarios::{Case, Ctx};

type Res<T> = Result<T, String>;

fn main() {
    // `cargo bench` appends `--bench` to the arguments of harness = false benches.
    let args: Vec<String> = env::args().skip(1).filter(|a| a != "--bench").collect();
    harness::raise_nofile();
    let code = match args.first().map(String::as_str) {
        Some("--client-worker") => client::worker::entry(&args[1..]),
        Some("--floor-server") => floor::entry(&args[1..]),
        _ => harness_entry(&args),
    };
    std::process::exit(code);
}

fn harness_entry(args: &[String]) -> i32 {
    let o = match cli::parse_opts(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let machine = harness::machine_note(); // before pinning, which narrows available_parallelism
    if harness::ncpus() > 1 {
        harness::pin_to_core(1);
    }
    println!("# crier loadgen — {machine}");
    let epoch = harness::mono_ns();
    let mut all_ok = true;
    for &scenario in &o.scenarios {
        let transports = o
            .transports
            .clone()
            .unwrap_or_else(|| scenario.default_transports());
        for transport in transports {
            let case = Case {
                scenario,
                transport,
            };
            let sums: Vec<Summary> = o
                .peers
                .iter()
                .map(|&p| run_peer(&o, epoch, case, p))
                .collect();
            for s in &sums {
                report::print_summary(s, &machine);
                all_ok &= !s.runs.is_empty();
            }
            if sums.len() > 1 {
                report::print_comparison(&sums.iter().collect::<Vec<_>>());
            }
        }
    }
    i32::from(!all_ok)
}

/// Runs one case `--runs` times against one peer, a fresh server each time.
fn run_peer(o: &Opts, epoch: u64, case: Case, peer: Peer) -> Summary {
    let ctx = Ctx {
        opts: o,
        epoch,
        peer,
    };
    let label = case.label(o);
    let mut s = Summary {
        label: label.clone(),
        scenario: case.scenario,
        peer,
        names: Vec::new(),
        runs: Vec::new(),
        failures: Vec::new(),
    };
    if peer == Peer::Crier && o.target.is_none() && !o.crier_bin.exists() {
        s.failures.push(format!(
            "crier binary {} not found (cargo build --release)",
            o.crier_bin.display()
        ));
        return s;
    }
    for run in 1..=o.runs {
        eprintln!("[{}] {label}: run {run}/{}", peer.name(), o.runs);
        match scenarios::run_case(&ctx, case) {
            Ok(m) => {
                if s.names.is_empty() {
                    s.names = m.iter().map(|(k, _)| k.clone()).collect();
                }
                s.runs.push(m);
            }
            Err(e) => {
                eprintln!("  run {run} failed: {e}");
                s.failures.push(e);
            }
        }
        thread::sleep(Duration::from_millis(300));
    }
    s
}
