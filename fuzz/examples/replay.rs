//! Runs saved inputs through a target's driver without AFL, timing each:
//!
//!     cargo run --release --example replay -- <target> <file or folder>... [--repeat N]
//!
//! For reproducing a crash with a plain backtrace, and for finding the
//! inputs that make a target slow (printed slowest first).

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn driver(target: &str) -> fn(&[u8]) {
    match target {
        "http_request" => crier::fuzz::http_request,
        "ws_frames" => crier::fuzz::ws_frames,
        "handshake" => crier::fuzz::handshake,
        "route" => crier::fuzz::route,
        "token" => crier::fuzz::token,
        other => panic!("unknown target {other:?}"),
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 1u32;
    if let Some(i) = args.iter().position(|a| a == "--repeat") {
        repeat = args[i + 1].parse().expect("--repeat N");
        args.drain(i..i + 2);
    }
    let run = driver(&args[0]);
    let mut files: Vec<PathBuf> = Vec::new();
    for arg in &args[1..] {
        let path = PathBuf::from(arg);
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(&path)
                .expect("readable folder")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.is_file())
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path);
        }
    }
    let mut times: Vec<(Duration, PathBuf)> = Vec::new();
    let mut total = Duration::ZERO;
    for file in files {
        let data = std::fs::read(&file).expect("readable input");
        let start = Instant::now();
        for _ in 0..repeat {
            run(&data);
        }
        let took = start.elapsed() / repeat;
        total += took;
        times.push((took, file));
    }
    times.sort_by(|a, b| b.0.cmp(&a.0));
    for (took, file) in times.iter().take(10) {
        println!("{:>10.1} µs  {}", took.as_secs_f64() * 1e6, file.display());
    }
    let n = times.len().max(1) as u32;
    println!(
        "{} inputs, mean {:.1} µs",
        times.len(),
        (total / n).as_secs_f64() * 1e6
    );
}
