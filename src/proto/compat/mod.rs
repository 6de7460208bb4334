//! The wire formats of the servers crier can stand in for (`--compat`):
//! pure codecs like the rest of `proto`, used by `src/compat/` and by the
//! per-message encoder (`format.rs`).

pub mod httpdate;
pub mod nchan;
pub mod push_stream;
pub mod template;
