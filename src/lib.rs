//! crier: a push-stream edge server.
//!
//! Backends publish a message to a channel over HTTP; every subscriber of
//! that channel receives it at once over EventSource, a raw HTTP stream
//! (and, in later modules, WebSocket and long-polling). One reactor thread
//! per core serves its own connections; a shared [`pubsub::hub::Hub`] keeps
//! channels, ids and history. See docs/ARCHITECTURE.md.

pub mod config;
pub mod http;
pub mod logging;
pub mod proto;
pub mod pubsub;
pub mod reactor;
mod server;
pub mod status;

pub use config::Config;
pub use server::{Handle, Server};
