//! Channels, messages and the hub that connects publishers to reactors.
//!
//! The reactors use the hub's small interface (publish, subscribe,
//! unsubscribe, info, delete, totals) and receive work through their
//! inbox (`bus.rs`); the channel table, history and eviction stay inside.

pub mod bus;
pub mod channel;
pub mod hub;
pub mod message;
pub mod remote;
pub mod store;
