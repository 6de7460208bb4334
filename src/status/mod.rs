//! Counters and their two renderings, `/status` (JSON) and `/metrics`
//! (Prometheus text), both from one typed [`Snapshot`].

pub mod counters;
pub mod histogram;
pub mod names;
pub mod render;
pub mod snapshot;

pub use counters::{
    CloseCause, ConnKind, Denied, Latency, Limit, PeerGone, ReactorStats, Stats, TlsFailure,
    TooLarge,
};
pub use snapshot::Snapshot;
