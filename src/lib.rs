//! crier: a push-stream edge server.
//!
//! Backends publish a message to a channel over HTTP; every subscriber of
//! that channel receives it at once over EventSource, WebSocket,
//! long-polling or a raw HTTP stream. One reactor thread per core serves
//! its own connections; a shared hub keeps channels, ids and history. See
//! docs/ARCHITECTURE.md for the module map.
//!
//! The public surface is [`Server`], [`Handle`] and [`Config`]; everything
//! else is internal (`pub(crate)`), so the compiler reports what is unused.

mod auth;
mod cluster;
mod compat;
mod config;
pub mod fuzz; // fuzz drivers, #![doc(hidden)]: not part of the API
mod http;
mod logging;
mod proto;
mod pubsub;
mod reactor;
mod server;
mod status;
mod tls;
mod web;

pub use config::{Compat, Config, FirstMessage, Overrides, PublisherMode, Secret, RELOADABLE};
pub use logging::init as init_logging;
pub use server::{Handle, Reloaded, Server};

/// What the benchmarks measure directly; not part of the API.
#[doc(hidden)]
pub mod bench {
    pub use crate::reactor::timer::{Entry, TimerWheel};
}

/// Signed channel tokens, for the `crier token` command; not part of the API.
#[doc(hidden)]
pub mod token_api {
    pub use crate::auth::token::*;
}
