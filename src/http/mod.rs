//! HTTP/1.1: request parsing, bodies, routing and responses.

pub mod chunked;
pub mod request;
pub mod response;
pub mod route;
