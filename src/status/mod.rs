//! Counters and their two renderings, `/status` (JSON) and `/metrics`
//! (Prometheus text), both from one typed [`Snapshot`].

pub mod counters;
pub mod names;
pub mod render;
pub mod snapshot;

pub use counters::{
    CloseCause, ConnKind, Denied, Limit, PeerGone, ReactorStats, Stats, TlsFailure, TooLarge,
};
pub use snapshot::Snapshot;
