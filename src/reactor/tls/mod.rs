//! TLS on the reactor: each TLS connection's handshake and record layer,
//! run by the same event loop as everything else (no thread per
//! connection, no blocking).
//!
//! **Where the state lives.** Not in `Conn` (128 bytes, a million of them):
//! a TLS connection has `ConnFlags::tls` set, and its rustls session sits in
//! this reactor's [`TlsTable`], indexed by slab key. A plaintext connection
//! pays one flag bit, and nothing at all on a server without TLS (the table
//! stays empty); a slot below a TLS connection's key costs 8 bytes.
//!
//! **rustls' unbuffered API**, so that we own every buffer: ciphertext is
//! read into the reactor's shared scratch buffer and decrypted there; a
//! session keeps bytes of its own only for an unfinished record
//! (`partial_in`) and for ciphertext the socket did not take
//! (`pending_out`), and frees both as soon as they empty. An idle TLS
//! subscriber holds the session and its keys, nothing else (the buffered
//! `ServerConnection` would keep a 4 KiB read buffer per connection).
//!
//! **Read path.** `io.rs` reads into the scratch buffer as for plaintext and
//! hands the bytes here ([`Reactor::on_tls_input`]): the first byte tells a
//! plaintext HTTP request from a handshake (`tls::sniff`), rustls runs the
//! handshake or decrypts, and the plaintext goes to `on_input` as if it had
//! come off a plaintext socket.
//!
//! **Write path.** Fanout still queues shared, encoded-once chunks in the
//! connection's `OutQueue`. `OutQueue::write_to` is given a [`Sealer`]
//! (`sealer.rs`) instead of the socket: one `write_vectored` call hands it every queued
//! chunk (up to 64), it seals them into as few records as fit (small
//! messages share a record) in one ciphertext buffer and writes that with
//! one syscall. At most `session::SEAL_BATCH` bytes of plaintext are sealed per
//! call, so a stalled reader's backlog stays in its `OutQueue`, where
//! `max-queued-bytes` counts it and the slow-consumer cut applies as for
//! plaintext; ciphertext waiting in `pending_out` is bounded by one batch.
//!
//! **kTLS seam.** Once a handshake completes (`Reactor::tls_established`),
//! the record layer could move into the kernel: rustls can hand over the
//! traffic secrets (`dangerous_into_kernel_connection`, with
//! `enable_secret_extraction`), after which the session would be dropped,
//! `ConnFlags::tls` cleared, and the plaintext path used unchanged: every
//! write of a connection's output already goes through
//! [`TlsTable::write_conn`], and every read through the `tls` flag in
//! `io.rs`, so nothing else would change (docs/TLS.md).

mod sealer;
mod session;
#[cfg(test)]
mod tests;

use rustls::AlertDescription;
use std::io;
use std::sync::atomic::Ordering;

use super::conn::{Conn, Role};
use super::outqueue::Flushed;
use super::timer::secs_to_ticks;
use super::Reactor;
use crate::status::{CloseCause, ConnKind, PeerGone, ReactorStats, TlsFailure};
use crate::tls::sniff::{self, Opening};
use sealer::{write_pending, Sealer};
use session::{ReadEnd, TlsSession};

/// An unfinished record never needs more (a record is at most 16 KiB plus
/// overhead; a handshake message being joined at most 64 KiB); more than
/// this kept from a peer is an attack or a bug, and closes the connection.
const MAX_PARTIAL_INPUT: usize = 80 * 1024;

/// The answer to a plaintext HTTP request on a TLS port.
const PLAINTEXT_REFUSAL: &str = "this port speaks TLS: use https:// or wss://";

/// This reactor's TLS sessions, by slab key, and the buffers every TLS
/// write on the reactor shares.
#[derive(Default)]
pub(super) struct TlsTable {
    sessions: Vec<Option<Box<TlsSession>>>,
    /// Ciphertext of one write attempt.
    sealed: Vec<u8>,
    /// Small chunks gathered into one record.
    staging: Vec<u8>,
    /// Plaintext decrypted from one read, handed on in one piece.
    plain: Vec<u8>,
}

impl TlsTable {
    fn session(&mut self, k: usize) -> Option<&mut TlsSession> {
        self.sessions.get_mut(k).and_then(|s| s.as_deref_mut())
    }

    fn take(&mut self, k: usize) -> Option<Box<TlsSession>> {
        self.sessions.get_mut(k).and_then(Option::take)
    }

    fn put(&mut self, k: usize, s: Box<TlsSession>) {
        if self.sessions.len() <= k {
            self.sessions.resize_with(k + 1, || None);
        }
        self.sessions[k] = Some(s);
    }

    /// Whether connection `k` is still in its handshake.
    pub(super) fn handshaking(&self, k: usize) -> bool {
        self.sessions
            .get(k)
            .and_then(|s| s.as_deref())
            .is_some_and(|s| !s.established)
    }

    /// Whether connection `k` has sealed bytes the socket has not taken.
    pub(super) fn has_pending(&self, k: usize) -> bool {
        self.sessions
            .get(k)
            .and_then(|s| s.as_deref())
            .is_some_and(|s| !s.pending_out.is_empty())
    }

    /// Writes connection `c`'s queued output to its socket: in plaintext,
    /// or through its TLS session. Every write of a connection's output
    /// goes through here (the place where kTLS would plug in).
    pub(super) fn write_conn(
        &mut self,
        k: usize,
        c: &mut Conn,
        stats: &ReactorStats,
    ) -> io::Result<(usize, Flushed)> {
        if c.flags.tls() {
            self.write(k, c, stats)
        } else {
            c.out.write_to(&mut c.socket)
        }
    }

    /// Writes connection `c`'s output (its handshake messages, or its
    /// queue sealed into records) as far as the socket takes it; after the
    /// last byte of a closing connection, a close_notify. Returns the
    /// ciphertext bytes written and whether everything went out, like
    /// `OutQueue::write_to`.
    fn write(
        &mut self,
        k: usize,
        c: &mut Conn,
        stats: &ReactorStats,
    ) -> io::Result<(usize, Flushed)> {
        let Some(s) = self.sessions.get_mut(k).and_then(|s| s.as_deref_mut()) else {
            // Never: the flag and the session come and go together.
            debug_assert!(false, "TLS connection without a session");
            return Err(io::Error::other("TLS session missing"));
        };
        s.track_kind(c.kind(), stats);
        let mut written = 0;
        if !s.pending_out.is_empty() {
            let (n, flushed) = write_pending(&mut c.socket, &mut s.pending_out)?;
            written += n;
            if flushed == Flushed::Blocked {
                return Ok((written, Flushed::Blocked));
            }
        }
        if !s.established {
            return Ok((written, Flushed::All));
        }
        let mut sealer = Sealer {
            session: s,
            socket: &mut c.socket,
            sealed: &mut self.sealed,
            staging: &mut self.staging,
            written: 0,
        };
        let result = c.out.write_to(&mut sealer);
        written += sealer.written;
        let (_, flushed) = result?;
        if flushed == Flushed::All && c.flags.close_after_flush() && !s.close_notify_sent {
            s.seal_close_notify();
            let (n, flushed) = write_pending(&mut c.socket, &mut s.pending_out)?;
            return Ok((written + n, flushed));
        }
        Ok((written, flushed))
    }

    /// Connection `k` is closing: forgets its session, counting a
    /// handshake that never completed (unless the server is stopping).
    pub(super) fn forget(&mut self, k: usize, cause: Option<CloseCause>, stats: &ReactorStats) {
        let Some(s) = self.take(k) else {
            return;
        };
        stats.tls_connections[s.kind as usize].fetch_sub(1, Ordering::Relaxed);
        if !s.established && !s.failed && cause != Some(CloseCause::Shutdown) {
            stats.tls_failed(TlsFailure::Eof);
        }
        // Release the tail of the table once the last high key is gone, so
        // a past peak of TLS connections does not keep its slots.
        while matches!(self.sessions.last(), Some(None)) {
            self.sessions.pop();
        }
        if self.sessions.capacity() > 2 * self.sessions.len() + 1024 {
            self.sessions.shrink_to_fit();
        }
    }
}

impl Reactor {
    /// A TLS connection was just admitted as slab key `k`: its handshake
    /// begins. Returns false when no session could be made (then the
    /// caller closes the connection).
    pub(super) fn open_tls(&mut self, k: usize) -> bool {
        let Some(ctx) = &self.shared.tls else {
            return false;
        };
        let st = &self.shared.stats.reactors[self.id];
        ReactorStats::add(&st.tls_handshakes_started, 1);
        match TlsSession::new(ctx.config()) {
            Ok(s) => {
                st.tls_connections[ConnKind::Http as usize].fetch_add(1, Ordering::Relaxed);
                self.tls.put(k, Box::new(s));
                if let Some(c) = self.conns.get_mut(k) {
                    c.flags.set_tls(true);
                }
                true
            }
            Err(e) => {
                log::warn!("cannot start a TLS session: {e}");
                st.tls_failed(TlsFailure::Protocol);
                false
            }
        }
    }

    /// Ciphertext read from TLS connection `k` (in the reactor's scratch
    /// buffer, decrypted in place): runs the handshake or decrypts, and
    /// hands the plaintext to [`on_input`](Self::on_input).
    pub(super) fn on_tls_input(&mut self, k: usize, data: &mut [u8]) {
        let Some(mut s) = self.tls.take(k) else {
            return;
        };
        if !s.opened && !data.is_empty() {
            s.opened = true;
            if sniff::opening(data[0]) == Opening::PlainHttp {
                return self.refuse_plaintext(k, s);
            }
        }
        let was_established = s.established;
        let mut joined;
        let buf: &mut [u8] = if s.partial_in.is_empty() {
            data
        } else {
            joined = std::mem::take(&mut s.partial_in);
            joined.extend_from_slice(data);
            &mut joined
        };
        let mut plain = std::mem::take(&mut self.tls.plain);
        let mut end = s.read_records(buf, &mut plain);
        if s.partial_in.len() > MAX_PARTIAL_INPUT {
            end = ReadEnd::Failed(rustls::Error::General("record too large".into()));
        }
        let completed = !was_established && s.established;
        let handshake_failed = !s.established && matches!(end, ReadEnd::Failed(_));
        if handshake_failed {
            s.failed = true;
        }
        let wants_write = !s.pending_out.is_empty();
        self.tls.put(k, s);
        if completed {
            self.tls_established(k);
        }
        if !plain.is_empty() {
            self.on_input(k, &plain);
        }
        plain.clear();
        if plain.capacity() <= super::io::SCRATCH_BYTES {
            self.tls.plain = plain;
        }
        match end {
            ReadEnd::More => {}
            ReadEnd::PeerClosed => return self.peer_gone(k, PeerGone::Eof),
            ReadEnd::Failed(e) => return self.tls_failed(k, &e, handshake_failed),
        }
        if wants_write {
            if let Some(c) = self.conns.get_mut(k) {
                self.flush.urgent(k, c);
            }
        }
    }

    /// The handshake of `k` completed: count it, and give the client
    /// `handshake-timeout` for its request head from now on.
    fn tls_established(&mut self, k: usize) {
        ReactorStats::add(&self.stats().tls_handshakes_completed, 1);
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        // Handshake bytes are not served output: timeouts and pings judge
        // the connection as one that has not been answered yet.
        c.last_write = 0;
        if matches!(c.role, Role::Http(None)) {
            let d = self.now + secs_to_ticks(self.settings.config.handshake_timeout);
            self.set_deadline(k, d);
        }
    }

    /// A TLS error from the peer: counted, the alert rustls prepared sent
    /// best effort, and the connection closed.
    fn tls_failed(&mut self, k: usize, e: &rustls::Error, in_handshake: bool) {
        if in_handshake {
            let why = match e {
                rustls::Error::AlertReceived(_) => TlsFailure::Alert,
                _ => TlsFailure::Protocol,
            };
            self.stats().tls_failed(why);
        }
        match e {
            rustls::Error::AlertReceived(AlertDescription::CloseNotify) => {}
            _ => log::debug!("TLS connection closed: {e}"),
        }
        if let (Some(c), Some(s)) = (self.conns.get_mut(k), self.tls.session(k)) {
            let _ = write_pending(&mut c.socket, &mut s.pending_out);
        }
        self.close(k, Some(CloseCause::BadInput));
    }

    /// A plaintext HTTP request on the TLS port: answered with a plaintext
    /// 400 that says so, then closed. The connection leaves TLS first, so
    /// the answer goes out through the plaintext path.
    fn refuse_plaintext(&mut self, k: usize, s: Box<TlsSession>) {
        let st = &self.shared.stats.reactors[self.id];
        st.tls_connections[s.kind as usize].fetch_sub(1, Ordering::Relaxed);
        st.tls_failed(TlsFailure::Plaintext);
        drop(s);
        if let Some(c) = self.conns.get_mut(k) {
            c.flags.set_tls(false);
        }
        self.fail(k, 400, PLAINTEXT_REFUSAL, &[]);
    }

    /// The handshake deadline of TLS connection `k` passed: a client that
    /// stalls mid-handshake holds its slot no longer than a slow request
    /// head would.
    pub(super) fn tls_handshake_timeout(&mut self, k: usize) {
        if let Some(s) = self.tls.session(k) {
            s.failed = true;
        }
        self.stats().tls_failed(TlsFailure::Timeout);
        self.close(k, Some(CloseCause::HandshakeTimeout));
    }
}
