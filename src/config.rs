//! Every setting, its default and its validation.
//!
//! A setting is declared once, in the `settings!` list below, and becomes at
//! the same time a field of [`Config`], a key of the TOML file (`--config`)
//! and a `--long-flag` (in [`Overrides`]). Flags override the file, the file
//! overrides the defaults. Durations are whole seconds, sizes are bytes.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;

/// Declares the settings table once so the struct, the TOML keys, the CLI
/// flags and the merge code cannot drift apart.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty = $default:expr ;)*) => {
        /// The resolved server configuration (defaults < config file < flags).
        #[derive(Debug, Clone, Deserialize)]
        #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
        pub struct Config {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $( $name: $default, )* }
            }
        }

        /// Command-line flags; each one, when given, overrides the file.
        #[derive(Debug, Default, clap::Args)]
        pub struct Overrides {
            $(
                $(#[doc = $doc])*
                #[arg(long, num_args = 0..=1, default_missing_value = "true")]
                pub $name: Option<$ty>,
            )*
        }

        impl Config {
            /// Applies the flags that were given on top of `self`.
            pub fn apply(&mut self, o: Overrides) {
                $( if let Some(v) = o.$name { self.$name = v; } )*
            }
        }
    };
}

settings! {
    /// Address to listen on [default: 127.0.0.1:8080].
    listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
    /// Reactor threads, one event loop each; 0 = one per CPU core [default: 0].
    workers: usize = 0;
    /// Listen backlog; large so a reconnect storm after a restart is not dropped [default: 4096].
    backlog: u32 = 4096;
    /// Log level: error, warn, info, debug or trace [default: info].
    log_level: String = "info".to_string();
    /// Value of Access-Control-Allow-Origin on every response; empty = header not sent [default: *].
    allow_origin: String = "*".to_string();
    /// Largest request head (request line + headers) in bytes; more → 431 [default: 8192].
    max_header_bytes: usize = 8192;
    /// Largest message: publish body (→ 413) and WebSocket message (→ close 1009) [default: 1048576].
    max_message_size: usize = 1 << 20;
    /// Bytes appended to each message on raw /sub streams so `curl -N` prints one per line; may be empty [default: "\n"].
    stream_separator: String = "\n".to_string();
    /// Messages kept per channel for resume and backtrack; 0 = none [default: 10].
    store_messages: usize = 10;
}

impl Config {
    /// Reads a TOML config file; unknown keys are an error so typos are caught.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("invalid config file {}: {e}", path.display()))
    }

    /// Checks values that parse but make no sense, so the server fails at
    /// start instead of misbehaving later.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_header_bytes < 256 {
            return Err("max-header-bytes must be at least 256".into());
        }
        if self.max_message_size == 0 {
            return Err("max-message-size must be at least 1".into());
        }
        if self.workers > 256 {
            return Err("workers must be at most 256".into());
        }
        if !matches!(
            self.log_level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace" | "off"
        ) {
            return Err(format!("unknown log-level {:?}", self.log_level));
        }
        if self.allow_origin.contains(['\r', '\n']) {
            return Err("allow-origin must be a single header value".into());
        }
        Ok(())
    }

    /// The number of reactor threads to run (resolves 0 to the core count).
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_are_kebab_case_and_unknown_keys_fail() {
        let cfg: Config = toml::from_str("workers = 3\nmax-message-size = 10").unwrap();
        assert_eq!(cfg.workers, 3);
        assert_eq!(cfg.max_message_size, 10);
        assert!(toml::from_str::<Config>("no-such-key = 1").is_err());
    }

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
    }
}
