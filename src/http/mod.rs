//! HTTP/1.1: request heads, bodies, routing and responses. Parsing is pure
//! (bytes in, values out); routing knows the channel rules and nothing of
//! the hub or the reactors.

pub mod chunked;
pub mod error;
pub mod framing;
pub mod headers;
pub mod query;
pub mod request;
pub mod response;
pub mod route;
