//! Counters and their two renderings, `/status` (JSON) and `/metrics`
//! (Prometheus text), both from one typed [`Snapshot`].

pub mod counters;
pub mod names;
pub mod render;
pub mod snapshot;

pub use counters::{CloseCause, ConnKind, Limit, PeerGone, ReactorStats, Stats};
pub use snapshot::Snapshot;
