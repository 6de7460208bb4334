//! Wire codecs, pure functions without sockets: tested and fuzzed alone.

pub mod sse;
pub mod stream;
