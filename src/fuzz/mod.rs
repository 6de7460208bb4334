//! Fuzz drivers: one function per target in `fuzz/` (see fuzz/README.md).
//! Each takes the fuzzer's bytes, drives one parser the way the reactor
//! does, and panics when an invariant the reactor relies on breaks; the
//! fuzzer reports a panic as a crash.
//!
//! Why the drivers live in the crate rather than in `fuzz/`: the parsers
//! are internal, and with the drivers here `tests/fuzz_regressions.rs`
//! replays every saved crasher and the committed corpus through exactly
//! the code the fuzzer ran, under plain `cargo test` on stable, without a
//! fuzzer installed. Always compiled (it costs the server nothing: nothing
//! calls it) and without dependencies of its own.
//!
//! Every driver reads a few control bytes off the front of its input (sizes,
//! modes, how to split a stream) and treats the rest as the data. Streams
//! are fed twice, whole and in input-chosen pieces, because a socket may
//! deliver any split and the reactor's result must not depend on it.
//!
//! One file per target: [`http_request`] (`http.rs`), [`route`]
//! (`route.rs`), [`ws_frames`] (`ws.rs`), [`handshake`] (`handshake.rs`),
//! [`token`] (`token.rs`); this file holds what they share (the control
//! byte reader, the piece splitter, the channel rule).

// Not part of the API: hidden from the docs, like `bench` and `token_api`.
#![doc(hidden)]

mod handshake;
mod http;
mod route;
mod token;
mod ws;

pub use handshake::handshake;
pub use http::http_request;
pub use route::route;
pub use token::token;
pub use ws::ws_frames;

use crate::http::request::{Limits, RequestHead};
use crate::http::route::{self as router, Route, RouteError, RouteLimits};
use crate::pubsub::channel::{valid_channel_id, MAX_CHANNEL_ID};

/// The router with these limits (the one call every driver makes).
fn route_request(head: &RequestHead<'_>, limits: &RouteLimits) -> Result<Route, RouteError> {
    router::route(head, limits)
}

/// The limits the reactor routes with by default: 16 channels a request,
/// the longest channel ids the contract allows.
const DEFAULT_ROUTE_LIMITS: RouteLimits = RouteLimits {
    max_channels: 16,
    max_channel_id: MAX_CHANNEL_ID,
};

/// Request limits generous enough that only the target under test decides
/// (the handshake and route drivers parse with these).
const ROOMY_LIMITS: Limits = Limits {
    max_request_line: 8192,
    max_header_bytes: 8192,
    max_headers: 64,
    max_body_bytes: 1 << 20,
};

/// Control values read off the front of an input; past its end every read
/// yields zero, so any input, even empty, is a valid one.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `n` bytes.
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Piece sizes for feeding a stream in pieces, as a socket would deliver
/// it: a seed byte picks the largest piece (1 byte at a time up to 4 KiB)
/// and a small PRNG the sizes, so the fuzzer explores splits without
/// spending input bytes on each one.
struct Splits {
    state: u32,
    max: usize,
}

impl Splits {
    /// Splits for a stream of `len` bytes. Pieces are at least `len / 1024`
    /// bytes at most, so a long stream is cut into about a thousand pieces,
    /// not a byte at a time: one execution stays in microseconds, and where
    /// the splits fall matters more than how many there are.
    fn new(seed: u8, len: usize) -> Self {
        const MAX: [usize; 8] = [1, 2, 3, 7, 16, 64, 512, 4096];
        Splits {
            state: 0x9E37_79B9 ^ u32::from(seed).wrapping_mul(0x0101_0101),
            max: MAX[usize::from(seed & 7)].max(len / 1024),
        }
    }

    /// The next piece size, 1..=max.
    fn next(&mut self) -> usize {
        // xorshift32: cheap, deterministic, never zero from a non-zero state.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + self.state as usize % self.max
    }
}

/// Calls `each` with the pieces of `stream`: the whole of it at once when
/// `splits` is `None`.
fn for_each_piece(stream: &[u8], mut splits: Option<Splits>, mut each: impl FnMut(&[u8]) -> bool) {
    let mut at = 0;
    while at < stream.len() {
        let n = match splits.as_mut() {
            Some(s) => s.next().min(stream.len() - at),
            None => stream.len() - at,
        };
        if !each(&stream[at..at + n]) {
            return;
        }
        at += n;
    }
}

/// Every channel the router hands on must pass the channel id rule: the
/// hub, the JSON, the SSE lines and the logs all take that for granted.
fn check_channel(id: &str) {
    assert!(
        valid_channel_id(id),
        "route produced invalid channel {id:?}"
    );
}
