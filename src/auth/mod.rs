//! Access control: who may publish, read status and subscribe where
//! ([`policy`], from secrets, source networks and private channels), which
//! browser origins may call ([`origin`]), and signed tokens ([`token`]): a
//! backend that holds
//! a shared key mints a short-lived JWT listing the channels a browser may
//! use, and crier checks it without calling back to the backend. The code
//! here is pure (no clock, no I/O) so the request path can call it with the
//! reactor's `now` and tests can pin time; see docs/TOKENS.md for the format.

pub mod cidr;
pub mod origin;
pub mod policy;
pub mod secret;
pub mod token;
