//! The `crier` command: flags and config file, start, signals.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

use crier::config::{Config, Overrides};
use crier::{logging, Server};

/// crier — a push-stream edge server. Publish with
/// `curl -d hello 'http://127.0.0.1:8080/pub?id=news'`, subscribe with
/// `curl -N http://127.0.0.1:8080/ev/news`.
#[derive(Parser, Debug)]
#[command(name = "crier", version, about, long_about = None)]
struct Cli {
    /// TOML config file; keys are the long flag names (flags win).
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match &cli.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("crier: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    config.apply(cli.overrides);
    if let Err(e) = config.validate() {
        eprintln!("crier: {e}");
        return ExitCode::from(2);
    }
    logging::init(&config.log_level);

    // Block the signals before any thread starts so reactors inherit the
    // mask and only the iterator below sees them.
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crier: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = match Server::start(config) {
        Ok(h) => h,
        Err(e) => {
            log::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(sig) = signals.forever().next() {
        log::info!("signal {sig} received, shutting down");
    }
    handle.shutdown();
    log::info!("stopped");
    ExitCode::SUCCESS
}
