//! The stderr logger: one line per event, as text for people or as JSON
//! for log shippers (`--log-format`), with UTC timestamps. Operators read
//! it with journald, `kubectl logs` or a shipper, so nothing is buffered:
//! each line is one `write` and lines of several threads never interleave.
//!
//! Key-value fields (`log::warn!(cause = "slow_consumer"; "connection
//! cut")`) become ` cause=slow_consumer` in text and `"cause":
//! "slow_consumer"` in JSON. Connection events are rate-limited before they
//! get here ([`EventBudget`]).

pub mod budget;
mod line;

use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

pub use budget::EventBudget;
pub use line::LogFormat;

struct StderrLogger {
    format: LogFormat,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let line = line::render(self.format, now, record);
        // One write per line so lines from several threads do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger at `level` (error, warn, info, debug, trace, off)
/// writing `format`. A second call (tests start many servers) keeps the
/// first logger.
pub fn init(level: &str, format: LogFormat) {
    let filter = level.parse().unwrap_or(LevelFilter::Info);
    let logger = Box::leak(Box::new(StderrLogger { format }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(filter);
    }
}

/// Changes the level of the installed logger (SIGHUP).
pub fn set_level(level: &str) {
    log::set_max_level(level.parse().unwrap_or(LevelFilter::Info));
}
