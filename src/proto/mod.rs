//! Wire codecs, pure functions without sockets: tested and fuzzed alone.

pub mod deflate;
pub mod handshake;
pub mod longpoll;
pub mod sse;
pub mod stream;
pub mod websocket;
