//! The `crier` command: flags and config file, start, signals.
//!
//! `--check-host N` runs [`hostcheck`] instead of the server, `crier token
//! …` mints or checks a signed channel token ([`token`]), and `crier health
//! URL` checks a running server with a publish → subscribe round trip
//! ([`health`]); all live with the command, not in the library, because the
//! server never uses them. With no subcommand, `crier [flags]` serves, as
//! it always did, after [`malloc_tuning`] has set up glibc's allocator.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crier::{Config, Overrides, Server};

mod health;
mod hostcheck;
mod malloc_tuning;
mod token;

/// crier — a push-stream edge server. Publish with
/// `curl -d hello 'http://127.0.0.1:8080/pub?id=news'`, subscribe with
/// `curl -N http://127.0.0.1:8080/ev/news`.
#[derive(Parser, Debug)]
// args_conflicts_with_subcommands: server flags before `token` would be
// silently ignored, so refuse them instead.
#[command(name = "crier", version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML config file; keys are the long flag names (flags win).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Do not serve: report what stands between this host and N connections
    /// (open-files limits, backlogs, memory, tcp_mem, buffers, conntrack).
    #[arg(long, value_name = "N")]
    check_host: Option<u64>,
    #[command(flatten)]
    overrides: Overrides,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Mint a signed channel token, or check one (docs/TOKENS.md).
    ///
    /// Mint:  crier token --key KEY --channels 'news,chat-*' [--publish 'chat-*'] [--ttl 3600]
    /// Check: crier token --key KEY [--key OLD_KEY] --check TOKEN
    ///
    /// Minting prints the token alone on stdout. --check prints what the
    /// token says and "valid" (exit 0), or "refused: REASON" (exit 1).
    #[command(verbatim_doc_comment)]
    Token(token::TokenArgs),
    /// Check a running server: publish a nonce, receive it, print the time.
    ///
    /// crier health http://127.0.0.1:8080 [--channel crier-health] [--timeout 5] [--json]
    ///
    /// Subscribes to the channel over EventSource, publishes a unique
    /// message and waits for it. Prints "ok 0.4 ms" (exit 0), or
    /// "fail: STAGE: REASON" (exit 1: connection refused, HTTP error,
    /// timeout). The publish secret comes from --publish-secret or env
    /// CRIER_PUBLISH_SECRET and is never printed. http:// only for now.
    #[command(verbatim_doc_comment)]
    Health(health::HealthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Token(args)) => return token::run(args),
        Some(Command::Health(args)) => return health::run(args),
        None => {}
    }
    if let Some(n) = cli.check_host {
        return hostcheck::run(n);
    }
    // Serving: first settle the allocator, before any thread or socket exists.
    let allocator = malloc_tuning::apply();
    let config = match load_config(&cli.config, &cli.overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("crier: {e}");
            return ExitCode::from(2);
        }
    };
    crier::init_logging(&config.log_level, config.log_format);
    allocator.log();

    // Install the handlers before the server starts, so a signal during
    // start is recorded (and drains once it is up) instead of killing the
    // process. Nothing is blocked: signal-hook's handler, run on whichever
    // thread the kernel picks, only records the signal and writes to a
    // self-pipe, and the main thread reads it from the iterator below. A
    // reactor that ran the handler has its poll interrupted (epoll_wait is
    // never restarted, SA_RESTART or not), which is why the reactors retry
    // on EINTR. SIGHUP reloads (see `reload`) and the server goes on.
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crier: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    raise_open_files_limit();
    let handle = match Server::start(config) {
        Ok(h) => h,
        Err(e) => {
            log::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for sig in signals.forever() {
        if sig == signal_hook::consts::SIGHUP {
            reload(&handle, &cli.config, &cli.overrides);
            continue;
        }
        log::info!(
            "signal {sig}: draining (up to {:?}); send it again to stop at once",
            handle.drain_timeout()
        );
        break;
    }
    let drain_timeout = handle.drain_timeout();
    handle.begin_drain(drain_timeout);
    // Wait for the drain, or for a second signal to cut it short.
    let deadline = Instant::now() + drain_timeout + Duration::from_secs(2);
    'drain: while !handle.is_finished() && Instant::now() < deadline {
        for sig in signals.pending() {
            if sig != signal_hook::consts::SIGHUP {
                log::warn!("second signal: stopping now");
                break 'drain;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    handle.shutdown();
    log::info!("stopped");
    ExitCode::SUCCESS
}

/// The configuration as at start: the file (if any), then the environment,
/// then the flags; validated.
fn load_config(path: &Option<PathBuf>, overrides: &Overrides) -> Result<Config, String> {
    let mut config = match path {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply_env(|var| std::env::var(var).ok());
    config.apply(overrides.clone());
    config.validate()?;
    Ok(config)
}

/// SIGHUP: reads the configuration again as at start (file, environment,
/// flags) and applies what can change while running (README,
/// "Reloading"), then re-reads the TLS certificate and key. Connections
/// stay up; an invalid file changes nothing. Logs the names of the
/// settings that changed, never their values.
fn reload(handle: &crier::Handle, path: &Option<PathBuf>, overrides: &Overrides) {
    match load_config(path, overrides).and_then(|c| handle.reload(c)) {
        Ok(r) => {
            if r.applied.is_empty() {
                log::info!("SIGHUP: no setting changed");
            } else {
                log::info!("SIGHUP: reloaded {}", r.applied.join(", "));
            }
            if !r.need_restart.is_empty() {
                log::warn!(
                    "SIGHUP: changed but kept until a restart: {}",
                    r.need_restart.join(", ")
                );
            }
        }
        Err(e) => log::warn!("SIGHUP: configuration not reloaded, nothing changed: {e}"),
    }
    if handle.tls_enabled() {
        match handle.reload_tls() {
            Ok(()) => log::info!("SIGHUP: TLS certificate reloaded; new handshakes use it"),
            Err(e) => log::warn!("SIGHUP: TLS certificate not reloaded, the old one stays: {e}"),
        }
    }
}

/// Raises the soft open-files limit to the hard limit: every connection is
/// a descriptor, and distributions default the soft limit to 1024.
fn raise_open_files_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass; std
    // has no API for resource limits.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    if !ok {
        log::warn!("cannot read the open-files limit");
        return;
    }
    let soft = lim.rlim_cur;
    if soft < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            lim.rlim_cur = soft;
        }
    }
    log::info!(
        "open files limit: soft {} (was {soft}), hard {}",
        lim.rlim_cur,
        lim.rlim_max
    );
}
