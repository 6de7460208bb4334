//! The settings a running server can change (SIGHUP, [`RELOADABLE`]): the
//! configuration and what is derived from it for checking requests.
//!
//! Each reactor holds an `Arc` of the current [`Settings`] and reads it
//! lock-free; a reload publishes a new one and bumps a version that every
//! reactor compares once per loop turn, so no hot path takes a lock and a
//! turn never sees half of a change.
//!
//! [`RELOADABLE`]: crate::config::RELOADABLE

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::auth::origin::AllowedOrigins;
use crate::auth::policy::AccessPolicy;
use crate::config::Config;

/// One consistent set of settings.
#[derive(Debug)]
pub struct Settings {
    pub config: Config,
    /// Browser origins allowed (CORS, WebSocket handshake).
    pub origins: AllowedOrigins,
    /// Who may publish, read status, subscribe.
    pub policy: AccessPolicy,
}

impl Settings {
    /// Derives the checks from `config` (already validated).
    pub fn new(config: Config) -> Result<Settings, String> {
        Ok(Settings {
            origins: AllowedOrigins::parse(&config.allow_origins)
                .map_err(|e| format!("allow-origins: {e}"))?,
            policy: config.access_policy()?,
            config,
        })
    }
}

/// The current settings, as every reactor reads them.
#[derive(Debug)]
pub struct LiveSettings {
    current: Mutex<Arc<Settings>>,
    version: AtomicU64,
}

impl LiveSettings {
    pub fn new(settings: Settings) -> LiveSettings {
        LiveSettings {
            current: Mutex::new(Arc::new(settings)),
            version: AtomicU64::new(0),
        }
    }

    /// The settings now, and their version.
    pub fn load(&self) -> (Arc<Settings>, u64) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        (current.clone(), self.version.load(Ordering::Acquire))
    }

    /// Whether settings newer than `version` were stored.
    pub fn changed_since(&self, version: u64) -> bool {
        self.version.load(Ordering::Relaxed) != version
    }

    /// Makes `settings` the current ones.
    pub fn store(&self, settings: Settings) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(settings);
        self.version.fetch_add(1, Ordering::Release);
    }
}
