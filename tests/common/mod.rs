//! Shared helpers for the end-to-end tests, one module per job. Every test
//! binary says `mod common; use common::*;` and gets all of them.
//!
//! Every socket has a read timeout and every wait a deadline, so a server
//! bug fails a test instead of hanging it.

// Each test binary compiles this whole module but uses only part of it.
#![allow(dead_code)]

mod child;
mod conn;
mod redis_server;
mod server;
mod sse;
mod status;
mod stream;
mod tls;
mod ws;

// A binary that uses nothing from one module would warn about its glob
// otherwise; the allow is on the re-export alone, so an unused `use`
// inside a module still warns.
#[allow(unused_imports)]
pub use self::{
    child::*, conn::*, redis_server::*, server::*, sse::*, status::*, stream::*, tls::*, ws::*,
};
