//! Every setting, its default and its validation.
//!
//! A setting is declared once, in the `settings!` list below, and becomes at
//! the same time a field of [`Config`], a key of the TOML file (`--config`)
//! and a `--long-flag` (in [`Overrides`]). Flags override the file, the file
//! overrides the defaults. Durations are whole seconds, sizes are bytes.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;

use crate::auth::cidr::NetList;
use crate::auth::origin::AllowedOrigins;
use crate::auth::policy::AccessPolicy;
pub use crate::auth::secret::Secret;
use crate::auth::token::{Pattern, TokenKeys};
pub use crate::compat::settings::{Compat, FirstMessage, PublisherMode};
pub use crate::logging::LogFormat;

/// Environment variables that may hold secrets, so they need not appear in
/// a command line (visible in the process list) or a config file.
const SECRET_ENV: [(&str, SecretSetting); 3] = [
    ("CRIER_PUBLISH_SECRET", SecretSetting::Publish),
    ("CRIER_STATUS_SECRET", SecretSetting::Status),
    ("CRIER_SUBSCRIBE_KEY", SecretSetting::SubscribeKey),
];

/// What SIGHUP changes in a running server (README, "Reloading"): limits,
/// timeouts, credentials, access lists, origins and the log level. Each is
/// read afresh where it is used, so the new value holds from the next
/// connection, request, frame or timer on; no connection is dropped.
/// Everything else (addresses, threads, the store, the backplane, wire
/// encodings shared by cached messages, compat modes, the TLS file paths)
/// needs a restart. The TLS certificate and key files themselves are
/// re-read on every SIGHUP.
pub const RELOADABLE: &[&str] = &[
    "log_level",
    "log_events_per_second",
    "allow_origins",
    "publish_secret",
    "publish_allow",
    "status_secret",
    "status_allow",
    "subscribe_key",
    "private_channels",
    "max_connections_per_ip",
    "max_request_line",
    "max_header_bytes",
    "max_headers",
    "max_message_size",
    "max_frame_size",
    "max_channel_id",
    "ws_publish",
    "max_channels_per_subscription",
    "longpoll_timeout",
    "retry_ms",
    "ping_interval",
    "pong_timeout",
    "tcp_keepalive",
    "tcp_user_timeout",
    "max_queued_bytes",
    "handshake_timeout",
    "idle_timeout",
    "max_connection_lifetime",
    "max_connections",
    "drain_timeout",
    "reconnect_spread",
];

/// The settings that hold secrets.
#[derive(Debug, Clone, Copy)]
enum SecretSetting {
    Publish,
    Status,
    SubscribeKey,
}

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
        #[derive(Debug, Default, Clone, clap::Args)]
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

            /// The settings (kebab-case names) whose values differ.
            pub fn differences(&self, other: &Config) -> Vec<String> {
                let mut out = Vec::new();
                $(
                    if self.$name != other.$name {
                        out.push(stringify!($name).replace('_', "-"));
                    }
                )*
                out
            }

            /// Takes from `other` every setting a running server can change
            /// ([`RELOADABLE`]); the rest stay as they are.
            pub fn take_reloadable(&mut self, other: &Config) {
                $(
                    if RELOADABLE.contains(&stringify!($name)) {
                        self.$name = other.$name.clone();
                    }
                )*
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
    /// Log lines as text (for people) or json (one object per line, for log shippers) [default: text].
    log_format: LogFormat = LogFormat::Text;
    /// Most connection refusals and cuts logged per second, across all reactors (bursts of five seconds' worth); the rest are counted and reported in one line. 0 = log none [default: 20].
    log_events_per_second: u64 = 20;
    /// Browser origins allowed: `*`, or a comma list (`https://a.example,http://localhost:3000`). Drives CORS on every response and the WebSocket Origin check (others → 403); empty = no browser origin [default: *].
    allow_origins: String = "*".to_string();
    /// Publish secret: publishing and DELETE need `Authorization: Bearer SECRET`. Repeat to rotate without downtime; also env CRIER_PUBLISH_SECRET (comma-separated) [default: none].
    publish_secret: Vec<Secret> = Vec::new();
    /// Networks allowed to publish and DELETE (`10.0.0.0/8,::1`); empty = any [default: empty].
    publish_allow: String = String::new();
    /// Secret that opens /status, /metrics, GET /pub and the $status stream from outside `status-allow` (Bearer or ?token=). Repeatable; also env CRIER_STATUS_SECRET [default: none].
    status_secret: Vec<Secret> = Vec::new();
    /// Networks that may read /status, /metrics, GET /pub and $status without a secret [default: 127.0.0.0/8,::1].
    status_allow: String = "127.0.0.0/8,::1".to_string();
    /// Key for signed subscriber tokens (HMAC-SHA256 JWT, docs/TOKENS.md), at least 32 bytes. Repeatable for rotation; also env CRIER_SUBSCRIBE_KEY [default: none].
    subscribe_key: Vec<Secret> = Vec::new();
    /// Channels that need a token covering them: comma list of names or `prefix*` (`*` = all); needs subscribe-key [default: empty].
    private_channels: String = String::new();
    /// Most open connections from one IP address; more get a fast 429; 0 = unlimited [default: 0].
    max_connections_per_ip: usize = 0;
    /// Longest request line (method, target, version) in bytes; more → 414 [default: 4096].
    max_request_line: usize = 4096;
    /// Largest request head (request line + headers) in bytes; more → 431 [default: 8192].
    max_header_bytes: usize = 8192;
    /// Most header fields in a request (at most 128); more → 431 [default: 64].
    max_headers: usize = 64;
    /// Largest message: publish body (→ 413) and WebSocket message, also after inflation (→ close 1009) [default: 1048576].
    max_message_size: usize = 1 << 20;
    /// Largest single WebSocket frame from a client (→ close 1009) [default: 1048576].
    max_frame_size: usize = 1 << 20;
    /// Longest channel id in bytes (at most 128); longer → 400 [default: 128].
    max_channel_id: usize = 128;
    /// Bytes appended to each message on raw /sub streams so `curl -N` prints one per line; may be empty [default: "\n"].
    stream_separator: String = "\n".to_string();
    /// Let WebSocket subscribers publish: their messages go to the channels they are subscribed to [default: false].
    ws_publish: bool = false;
    /// Offer permessage-deflate (RFC 7692) to WebSocket clients that ask for it [default: true].
    ws_deflate: bool = true;
    /// WebSocket messages shorter than this many bytes are sent uncompressed [default: 64].
    deflate_min_size: usize = 64;
    /// Messages kept per channel for resume and backtrack; 0 = none [default: 10].
    store_messages: usize = 10;
    /// Seconds a stored message is kept; 0 = until pushed out by newer ones [default: 3600].
    message_ttl: u64 = 3600;
    /// Memory budget of all stored messages together; the oldest are evicted first [default: 268435456].
    store_max_bytes: usize = 256 << 20;
    /// Seconds a channel with no subscribers and no stored messages lives on [default: 300].
    channel_idle_ttl: u64 = 300;
    /// Most channels in the hub; more → 429 on publish/subscribe; 0 = unlimited [default: 0].
    max_channels: usize = 0;
    /// Most subscribers of one channel; more → 429; 0 = unlimited [default: 0].
    max_subscribers_per_channel: usize = 0;
    /// Most channels one publish or subscription may name; more → 400 [default: 16].
    max_channels_per_subscription: usize = 16;
    /// Seconds a long-poll request waits for a message before 304 [default: 30].
    longpoll_timeout: u64 = 30;
    /// SSE `retry:` (ms) sent to each new EventSource subscriber [default: 3000].
    retry_ms: u64 = 3000;
    /// Seconds of silence after which a subscriber gets a keepalive ping; 0 = off [default: 30].
    ping_interval: u64 = 30;
    /// Seconds a WebSocket has to answer a ping with a pong before it is closed [default: 10].
    pong_timeout: u64 = 10;
    /// Bytes sent as a keepalive ping on raw /sub streams [default: "\n"].
    stream_ping: String = "\n".to_string();
    /// TCP keepalive idle seconds on subscriber sockets; 0 = off [default: 60].
    tcp_keepalive: u64 = 60;
    /// TCP_USER_TIMEOUT seconds: unacknowledged data this old kills the connection; 0 = kernel default [default: 30].
    tcp_user_timeout: u64 = 30;
    /// Most unsent bytes queued behind the message being written; a subscriber over it is a slow consumer and is disconnected [default: 262144].
    max_queued_bytes: usize = 256 << 10;
    /// Seconds a client has to send a complete request head (slowloris guard) [default: 10].
    handshake_timeout: u64 = 10;
    /// Seconds an idle keep-alive HTTP connection is kept [default: 60].
    idle_timeout: u64 = 60;
    /// Seconds after which a subscriber is asked to reconnect (±10% jitter); 0 = never [default: 0].
    max_connection_lifetime: u64 = 0;
    /// Most open connections; over it new connections get a fast 503; 0 = limited by open files only [default: 0].
    max_connections: usize = 0;
    /// Redis backplane: `redis://[:PASSWORD@]HOST:PORT[/DB]`, comma-separated for several independent shards (channels are spread by a stable hash); also env CRIER_REDIS, which keeps a password out of the process list. Empty = single node with in-memory history (docs/CLUSTER.md) [default: empty].
    redis: String = String::new();
    /// Prefix of every Redis key and pub/sub channel crier uses, so several fleets can share a Redis [default: crier].
    redis_prefix: String = "crier".to_string();
    /// For rediss:// shards: PEM file of the CA that signed the Redis servers' certificates, instead of the system's roots [default: none].
    redis_tls_ca: String = String::new();
    /// For rediss:// shards that require client certificates: this node's PEM certificate (with redis-tls-key) [default: none].
    redis_tls_cert: String = String::new();
    /// Its PEM private key; never logged [default: none].
    redis_tls_key: String = String::new();
    /// Seconds a graceful shutdown (SIGTERM/SIGINT) waits for connections to finish [default: 10].
    drain_timeout: u64 = 10;
    /// On shutdown, SSE clients are told to reconnect after a random delay of up to this many seconds [default: 10].
    reconnect_spread: u64 = 10;
    /// Speak another server's HTTP API as well as crier's, for clients written against it: off, push-stream or nchan (docs/MIGRATING.md) [default: off].
    compat: Compat = Compat::Off;
    /// Where a new subscriber without a resume point starts: live (= newest: only new messages), oldest (every stored one), N (from the Nth stored), -N (the newest N), or auto (live; oldest with --compat nchan) [default: auto].
    first_message: FirstMessage = FirstMessage::Auto;
    /// With --compat push-stream: the publisher location's mode, normal (DELETE answers 405) or admin (DELETE deletes channels) [default: normal].
    push_stream_publisher: PublisherMode = PublisherMode::Normal;
    /// With --compat push-stream: push_stream_message_template, applied to every message on every push-stream transport. Placeholders ~text~, ~id~, ~tag~ (crier's message id), ~time~ (HTTP date of the publish second), ~channel~, ~event-id~, ~event-type~, ~size~; the text goes in unescaped, as push-stream does. pushstream.js wants '{"id":~id~,"channel":"~channel~","text":"~text~","tag":"~tag~","time":"~time~","eventid":"~event-id~"}' (docs/MIGRATING.md) [default: ~text~].
    push_stream_message_template: String = "~text~".to_string();
    /// With --compat push-stream: push_stream_header_template, sent when a stream, EventSource (as comments) or WebSocket subscriber arrives and at the start of a long-poll answer with messages [default: empty].
    push_stream_header_template: String = String::new();
    /// With --compat push-stream: push_stream_footer_template, sent before a stream or WebSocket ends (channel deleted, connection lifetime, shutdown) and at the end of a long-poll answer with messages [default: empty].
    push_stream_footer_template: String = String::new();
    /// With --compat nchan: the nchan_publisher location; publish, GET and DELETE at PATH/CH or PATH?id=CH [default: /pub].
    nchan_publish_location: String = "/pub".to_string();
    /// With --compat nchan: the nchan_subscriber location; every transport at PATH/CH or PATH?id=CH (the same path as the publisher's = nchan_pubsub) [default: /sub].
    nchan_subscribe_location: String = "/sub".to_string();
    /// PEM certificate chain (leaf first); with tls-key, `listen` serves TLS, or `tls-listen` does. Re-read on SIGHUP (docs/TLS.md) [default: none].
    tls_cert: String = String::new();
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of tls-cert; never logged [default: none].
    tls_key: String = String::new();
    /// A second address that serves TLS while `listen` stays plaintext (needs tls-cert and tls-key) [default: none].
    tls_listen: String = String::new();
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
        if self.max_channels_per_subscription == 0 {
            return Err("max-channels-per-subscription must be at least 1".into());
        }
        if self.pong_timeout == 0 && self.ping_interval > 0 {
            return Err("pong-timeout must be at least 1".into());
        }
        if self.handshake_timeout == 0 || self.idle_timeout == 0 {
            return Err("handshake-timeout and idle-timeout must be at least 1".into());
        }
        if self.max_queued_bytes < 1024 {
            return Err("max-queued-bytes must be at least 1024".into());
        }
        if self.max_headers == 0 || self.max_headers > crate::http::request::MAX_HEADER_SLOTS {
            return Err("max-headers must be between 1 and 128".into());
        }
        // A request line longer than max-header-bytes is refused by that
        // limit anyway (431); this one only gives the clearer 414 earlier.
        if self.max_request_line < 64 {
            return Err("max-request-line must be at least 64".into());
        }
        if self.max_frame_size == 0 {
            return Err("max-frame-size must be at least 1".into());
        }
        if self.max_channel_id == 0 || self.max_channel_id > crate::pubsub::channel::MAX_CHANNEL_ID
        {
            return Err("max-channel-id must be between 1 and 128".into());
        }
        for (name, path) in [
            ("nchan-publish-location", &self.nchan_publish_location),
            ("nchan-subscribe-location", &self.nchan_subscribe_location),
        ] {
            if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') {
                return Err(format!(
                    "{name} must be a path like /pub (starts with /, does not end with /)"
                ));
            }
        }
        self.tls_addresses()?;
        self.access_policy()?;
        for url in self.redis_urls() {
            redis::Client::open(url)
                .map_err(|e| format!("redis: {}: {e}", crate::cluster::redact(url)))?;
        }
        if self.redis_tls_cert.is_empty() != self.redis_tls_key.is_empty() {
            return Err("redis-tls-cert and redis-tls-key go together".into());
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains([' ', '\r', '\n']) {
            return Err("redis-prefix must be a non-empty word".into());
        }
        AllowedOrigins::parse(&self.allow_origins).map_err(|e| format!("allow-origins: {e}"))?;
        Ok(())
    }

    /// Takes secrets from the environment (`lookup` is `std::env::var`):
    /// each variable, when set, replaces what the file said; flags applied
    /// afterwards still win. Values are comma-separated.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        for (var, setting) in SECRET_ENV {
            let Some(value) = lookup(var) else {
                continue;
            };
            let secrets: Vec<Secret> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Secret::new)
                .collect();
            match setting {
                SecretSetting::Publish => self.publish_secret = secrets,
                SecretSetting::Status => self.status_secret = secrets,
                SecretSetting::SubscribeKey => self.subscribe_key = secrets,
            }
        }
        // Redis URLs may carry a password.
        if let Some(urls) = lookup("CRIER_REDIS") {
            self.redis = urls;
        }
    }

    /// The access rules these settings describe.
    pub fn access_policy(&self) -> Result<AccessPolicy, String> {
        let nets =
            |name: &str, list: &str| NetList::parse(list).map_err(|e| format!("{name}: {e}"));
        let tokens = if self.subscribe_key.is_empty() {
            None
        } else {
            let keys = self.subscribe_key.iter().map(Secret::expose);
            Some(TokenKeys::new(keys).map_err(|e| format!("subscribe-key: {e}"))?)
        };
        let private = self
            .private_channels
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                Pattern::parse(p).map_err(|_| {
                    format!("private-channels: {p:?} is not a channel id or prefix* pattern")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !private.is_empty() && tokens.is_none() {
            return Err(
                "private-channels needs subscribe-key (tokens cannot be checked without it)".into(),
            );
        }
        for (name, list) in [
            ("publish-secret", &self.publish_secret),
            ("status-secret", &self.status_secret),
        ] {
            if list.iter().any(|s| s.expose().is_empty()) {
                return Err(format!("{name} must not be empty"));
            }
        }
        Ok(AccessPolicy {
            publish_secrets: self.publish_secret.clone(),
            publish_allow: nets("publish-allow", &self.publish_allow)?,
            status_secrets: self.status_secret.clone(),
            status_allow: nets("status-allow", &self.status_allow)?,
            tokens,
            private,
        })
    }

    /// push-stream's templates as the encoders use them.
    pub fn push_stream_templates(&self) -> crate::proto::compat::template::Templates {
        crate::proto::compat::template::Templates {
            message: crate::proto::compat::template::Template::parse(
                &self.push_stream_message_template,
            ),
            header: self.push_stream_header_template.clone(),
            footer: self.push_stream_footer_template.clone(),
        }
    }

    /// The Redis shard URLs (empty: single node).
    pub fn redis_urls(&self) -> Vec<&str> {
        self.redis
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect()
    }

    /// Where TLS is served: `None` when TLS is off; otherwise the second
    /// address (`tls-listen`), or `None` inside when `listen` itself
    /// serves TLS. Checks that cert and key come together.
    pub fn tls_addresses(&self) -> Result<Option<Option<SocketAddr>>, String> {
        match (self.tls_cert.is_empty(), self.tls_key.is_empty()) {
            (true, true) if self.tls_listen.is_empty() => return Ok(None),
            (true, true) => return Err("tls-listen needs tls-cert and tls-key".into()),
            (false, true) => return Err("tls-cert needs tls-key".into()),
            (true, false) => return Err("tls-key needs tls-cert".into()),
            (false, false) => {}
        }
        if self.tls_listen.is_empty() {
            return Ok(Some(None));
        }
        let addr: SocketAddr = self
            .tls_listen
            .parse()
            .map_err(|_| format!("tls-listen: {:?} is not an address", self.tls_listen))?;
        if addr == self.listen && addr.port() != 0 {
            return Err("tls-listen must differ from listen".into());
        }
        Ok(Some(Some(addr)))
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
    fn redis_urls_come_from_the_environment_too() {
        let mut cfg = Config::default();
        cfg.apply_env(|v| (v == "CRIER_REDIS").then(|| "redis://:pw@a:1,redis://b:2".into()));
        assert_eq!(cfg.redis_urls(), ["redis://:pw@a:1", "redis://b:2"]);
    }

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn secrets_come_from_file_env_and_flags_and_never_print() {
        let mut cfg: Config =
            toml::from_str("publish-secret = [\"from-file-1\", \"from-file-2\"]").unwrap();
        assert_eq!(cfg.publish_secret.len(), 2);
        cfg.apply_env(|v| (v == "CRIER_STATUS_SECRET").then(|| "s1, s2".to_string()));
        assert_eq!(
            cfg.publish_secret.len(),
            2,
            "unset variables change nothing"
        );
        assert_eq!(
            cfg.status_secret,
            vec![Secret::new("s1"), Secret::new("s2")]
        );
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("from-file") && !shown.contains("s1"),
            "{shown}"
        );
        cfg.validate().unwrap();
    }

    #[test]
    fn access_settings_are_checked_at_start() {
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.publish_allow = "10.0.0.0/33".into()).contains("publish-allow"));
        assert!(bad(|c| c.private_channels = "a*".into()).contains("subscribe-key"));
        assert!(bad(|c| c.subscribe_key = vec![Secret::new("short")]).contains("subscribe-key"));
        assert!(bad(|c| c.allow_origins = "example.com".into()).contains("allow-origins"));
        assert!(bad(|c| c.max_headers = 500).contains("max-headers"));
        let ok = Config {
            subscribe_key: vec![Secret::new("k".repeat(32))],
            private_channels: "private-*, user:*".into(),
            ..Default::default()
        };
        let policy = ok.access_policy().unwrap();
        assert!(policy.is_private("private-x") && !policy.is_private("news"));
    }

    #[test]
    fn tls_settings_come_in_pairs() {
        let tls = |cert: &str, key: &str, listen: &str| Config {
            tls_cert: cert.into(),
            tls_key: key.into(),
            tls_listen: listen.into(),
            ..Default::default()
        };
        assert_eq!(tls("", "", "").tls_addresses(), Ok(None));
        assert_eq!(tls("c.pem", "k.pem", "").tls_addresses(), Ok(Some(None)));
        let second = tls("c.pem", "k.pem", "127.0.0.1:8443").tls_addresses();
        assert_eq!(second, Ok(Some(Some("127.0.0.1:8443".parse().unwrap()))));
        assert!(tls("c.pem", "", "")
            .validate()
            .unwrap_err()
            .contains("tls-key"));
        assert!(tls("", "k.pem", "")
            .validate()
            .unwrap_err()
            .contains("tls-cert"));
        assert!(tls("", "", "127.0.0.1:1").validate().is_err());
        assert!(tls("c", "k", "nonsense")
            .validate()
            .unwrap_err()
            .contains("tls-listen"));
        let cfg: Config =
            toml::from_str("tls-cert = \"/etc/crier/cert.pem\"\ntls-key = \"/etc/crier/key.pem\"")
                .unwrap();
        assert_eq!(cfg.tls_addresses(), Ok(Some(None)));
    }
}
