//! Messages, channels and the hub that connects publishers to reactors.

pub mod bus;
pub mod hub;
pub mod message;
pub mod store;
