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
//! instead of the socket: one `write_vectored` call hands it every queued
//! chunk (up to 64), it seals them into as few records as fit (small
//! messages share a record) in one ciphertext buffer and writes that with
//! one syscall. At most [`SEAL_BATCH`] bytes of plaintext are sealed per
//! call, so a stalled reader's backlog stays in its `OutQueue`, where
//! `max-queued-bytes` counts it and the slow-consumer cut applies as for
//! plaintext; ciphertext waiting in `pending_out` is bounded by one batch.
//!
//! **kTLS seam.** Once a handshake completes ([`TlsSession::established`]),
//! the record layer could move into the kernel: rustls can hand over the
//! traffic secrets (`dangerous_into_kernel_connection`, with
//! `enable_secret_extraction`), after which the session would be dropped,
//! `ConnFlags::tls` cleared, and the plaintext path used unchanged. That is
//! the one place to add it (docs/TLS.md).

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    UnbufferedStatus, WriteTraffic,
};
use rustls::{AlertDescription, ServerConfig};
use std::io::{self, IoSlice, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::conn::{Conn, Role};
use super::outqueue::Flushed;
use super::timer::secs_to_ticks;
use super::Reactor;
use crate::status::{CloseCause, ConnKind, PeerGone, ReactorStats, TlsFailure};
use crate::tls::sniff::{self, Opening};

/// Most plaintext sealed by one write attempt. Large enough that a burst
/// (hundreds of small messages) leaves in one syscall, small enough that
/// ciphertext the socket refuses (held per connection until it drains)
/// stays a small, bounded addition to `max-queued-bytes`.
pub(super) const SEAL_BATCH: usize = 64 * 1024;

/// Largest TLS record payload (RFC 8446 §5.1).
const MAX_RECORD: usize = 16 * 1024;

/// Chunks at least this large are sealed straight from the shared message
/// bytes; smaller ones are copied together first so that a burst of small
/// messages costs one AEAD call per 16 KiB instead of one per message.
const DIRECT_SEAL: usize = 4 * 1024;

/// Record header plus the largest AEAD expansion rustls uses (TLS 1.2
/// AES-GCM: 8-byte explicit nonce and 16-byte tag), rounded up.
const RECORD_OVERHEAD: usize = 32;

/// An unfinished record never needs more (a record is at most 16 KiB plus
/// overhead; a handshake message being joined at most 64 KiB); more than
/// this kept from a peer is an attack or a bug, and closes the connection.
const MAX_PARTIAL_INPUT: usize = 80 * 1024;

/// Bounds the loops over rustls states that must settle at once (a
/// handshake message to encode, then its transmission).
const MAX_STATE_STEPS: usize = 16;

/// The answer to a plaintext HTTP request on a TLS port.
const PLAINTEXT_REFUSAL: &str = "this port speaks TLS: use https:// or wss://";

/// One TLS connection's session (see the module doc for what it holds).
pub(super) struct TlsSession {
    conn: UnbufferedServerConnection,
    /// Ciphertext of a record (or handshake flight) not yet complete.
    partial_in: Vec<u8>,
    /// Ciphertext sealed but not yet taken by the socket.
    pending_out: Vec<u8>,
    /// The handshake completed: application data flows.
    established: bool,
    /// The first byte was seen (and was not plaintext HTTP).
    opened: bool,
    /// A failure was counted already (not again when it closes).
    failed: bool,
    /// close_notify is sealed (sent once, after the last byte of output).
    close_notify_sent: bool,
    /// The `tls_connections` gauge this connection is counted under.
    kind: ConnKind,
}

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

/// How reading a batch of records ended.
enum ReadEnd {
    /// Everything complete was processed; the rest (if any) is kept.
    More,
    /// The peer sent close_notify: nothing more will come.
    PeerClosed,
    Failed(rustls::Error),
}

impl TlsSession {
    fn new(config: Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        Ok(TlsSession {
            conn: UnbufferedServerConnection::new(config)?,
            partial_in: Vec::new(),
            pending_out: Vec::new(),
            established: false,
            opened: false,
            failed: false,
            close_notify_sent: false,
            kind: ConnKind::Http,
        })
    }

    /// Whether the handshake completed (application data may flow).
    pub(super) fn established(&self) -> bool {
        self.established
    }

    /// Runs rustls over `buf` (the kept partial record followed by what was
    /// just read): handshake messages are answered into `pending_out`,
    /// application data is appended to `plain`, and an unfinished record is
    /// kept for the next read.
    fn read_records(&mut self, buf: &mut [u8], plain: &mut Vec<u8>) -> ReadEnd {
        let mut start = 0;
        let end = loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut buf[start..]);
            let mut discard = discard;
            let state = match state {
                Ok(s) => s,
                Err(e) => {
                    start += discard;
                    break ReadEnd::Failed(e);
                }
            };
            let mut stop = None;
            match state {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        match record {
                            Ok(r) => {
                                discard += r.discard;
                                plain.extend_from_slice(r.payload);
                            }
                            Err(e) => {
                                stop = Some(ReadEnd::Failed(e));
                                break;
                            }
                        }
                    }
                }
                ConnectionState::EncodeTlsData(mut e) => encode(&mut e, &mut self.pending_out),
                // Sent with this turn's writes (the reactor queues it).
                ConnectionState::TransmitTlsData(t) => t.done(),
                ConnectionState::BlockedHandshake => stop = Some(ReadEnd::More),
                ConnectionState::WriteTraffic(_) => {
                    self.established = true;
                    stop = Some(ReadEnd::More);
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    stop = Some(ReadEnd::PeerClosed)
                }
                // Early data is off (max_early_data_size 0), and later
                // states are not ours to handle.
                _ => stop = Some(ReadEnd::More),
            }
            start += discard;
            if let Some(end) = stop {
                break end;
            }
        };
        if let ReadEnd::Failed(_) = end {
            self.queue_alert();
        }
        let rest = &buf[start.min(buf.len())..];
        self.partial_in = if rest.is_empty() {
            Vec::new()
        } else {
            rest.to_vec()
        };
        end
    }

    /// After an error rustls has queued a fatal alert: encode it, so the
    /// peer learns why (best effort; the connection closes anyway).
    fn queue_alert(&mut self) {
        for _ in 0..MAX_STATE_STEPS {
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
            match state {
                Ok(ConnectionState::EncodeTlsData(mut e)) => encode(&mut e, &mut self.pending_out),
                Ok(ConnectionState::TransmitTlsData(t)) => t.done(),
                _ => return,
            }
        }
    }

    /// Calls `f` with the state that may encrypt application data, first
    /// encoding whatever handshake message rustls wants sent before it (a
    /// session ticket, a key update) into `pending_out`.
    fn with_write_traffic<R>(
        &mut self,
        f: impl FnOnce(&mut WriteTraffic<'_, ServerConnectionData>) -> R,
    ) -> Result<R, rustls::Error> {
        for _ in 0..MAX_STATE_STEPS {
            // Only the unfinished record kept from the last read may be
            // given: rustls may still refer to bytes of it.
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut self.partial_in);
            match state? {
                ConnectionState::WriteTraffic(mut w) => {
                    let r = f(&mut w);
                    self.partial_in.drain(..discard.min(self.partial_in.len()));
                    return Ok(r);
                }
                ConnectionState::EncodeTlsData(mut e) => encode(&mut e, &mut self.pending_out),
                ConnectionState::TransmitTlsData(t) => t.done(),
                ConnectionState::ReadTraffic(mut records) => {
                    // Cannot happen: a read hands on all its plaintext, and
                    // `partial_in` holds no complete record.
                    debug_assert!(false, "plaintext left in a TLS session");
                    while records.next_record().is_some() {}
                }
                other => {
                    return Err(rustls::Error::General(format!(
                        "cannot send application data in state {other:?}"
                    )))
                }
            }
            self.partial_in.drain(..discard.min(self.partial_in.len()));
        }
        Err(rustls::Error::General("TLS state did not settle".into()))
    }

    /// Seals plaintext from `bufs` (at most [`SEAL_BATCH`] bytes) into
    /// `sealed`; returns how many plaintext bytes it took.
    fn seal(
        &mut self,
        bufs: &[IoSlice<'_>],
        sealed: &mut Vec<u8>,
        staging: &mut Vec<u8>,
    ) -> io::Result<usize> {
        sealed.clear();
        staging.clear();
        let mut taken = 0;
        let result = self.with_write_traffic(|w| -> Result<(), EncryptError> {
            for b in bufs {
                let mut rest: &[u8] = b;
                while !rest.is_empty() && taken < SEAL_BATCH {
                    let piece = &rest[..rest.len().min(SEAL_BATCH - taken)];
                    if piece.len() >= DIRECT_SEAL {
                        encrypt_into(w, staging, sealed)?;
                        staging.clear();
                        encrypt_into(w, piece, sealed)?;
                    } else {
                        if staging.len() + piece.len() > MAX_RECORD {
                            encrypt_into(w, staging, sealed)?;
                            staging.clear();
                        }
                        staging.extend_from_slice(piece);
                    }
                    taken += piece.len();
                    rest = &rest[piece.len()..];
                }
                if taken == SEAL_BATCH {
                    break;
                }
            }
            encrypt_into(w, staging, sealed)
        });
        staging.clear();
        match result {
            Ok(Ok(())) => Ok(taken),
            Ok(Err(e)) => Err(io::Error::other(format!("TLS encrypt: {e}"))),
            Err(e) => Err(io::Error::other(format!("TLS: {e}"))),
        }
    }

    /// Seals a close_notify alert behind everything sent so far (once).
    fn seal_close_notify(&mut self) {
        if self.close_notify_sent || !self.established {
            return;
        }
        self.close_notify_sent = true;
        let mut alert = [0u8; 64];
        let n = self
            .with_write_traffic(|w| w.queue_close_notify(&mut alert))
            .ok()
            .and_then(Result::ok);
        if let Some(n) = n {
            self.pending_out.extend_from_slice(&alert[..n]);
        }
    }

    /// Moves the `tls_connections` gauge when the connection changed kind
    /// (became a subscriber, or a long-poll went back to HTTP). Checked on
    /// every write, and every change of kind is followed by one in the same
    /// loop turn (the response head, the poll's answer).
    fn track_kind(&mut self, now: ConnKind, stats: &ReactorStats) {
        if self.kind != now {
            stats.tls_connections[self.kind as usize].fetch_sub(1, Ordering::Relaxed);
            stats.tls_connections[now as usize].fetch_add(1, Ordering::Relaxed);
            self.kind = now;
        }
    }
}

/// Encodes a handshake message rustls wants sent onto the end of `out`.
fn encode(e: &mut EncodeTlsData<'_, ServerConnectionData>, out: &mut Vec<u8>) {
    let start = out.len();
    let mut need = 512;
    loop {
        out.resize(start + need, 0);
        match e.encode(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return;
            }
            Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                need = required_size;
            }
            Err(EncodeError::AlreadyEncoded) => {
                out.truncate(start);
                return;
            }
        }
    }
}

/// Encrypts `plain` (any length: rustls splits it into records) onto the
/// end of `out`.
fn encrypt_into(
    w: &mut WriteTraffic<'_, ServerConnectionData>,
    plain: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncryptError> {
    if plain.is_empty() {
        return Ok(());
    }
    let start = out.len();
    let mut need = plain.len() + (plain.len() / MAX_RECORD + 1) * RECORD_OVERHEAD;
    loop {
        out.resize(start + need, 0);
        match w.encrypt(plain, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size }))
                if required_size > need =>
            {
                need = required_size;
            }
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        }
    }
}

/// Writes `bytes` until done or until the socket refuses more; returns how
/// many it took. Errors other than `WouldBlock` mean the peer is gone.
fn write_some<W: Write>(w: &mut W, bytes: &[u8]) -> io::Result<usize> {
    let mut pos = 0;
    while pos < bytes.len() {
        match w.write(&bytes[pos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(pos)
}

/// Writes what the socket did not take last time. Emptied, the buffer is
/// freed: an idle connection keeps no ciphertext.
fn write_pending<W: Write>(w: &mut W, pending: &mut Vec<u8>) -> io::Result<(usize, Flushed)> {
    let n = write_some(w, pending)?;
    if n == pending.len() {
        *pending = Vec::new();
        Ok((n, Flushed::All))
    } else {
        pending.drain(..n);
        Ok((n, Flushed::Blocked))
    }
}

/// What `OutQueue::write_to` writes into for a TLS connection: each
/// vectored write seals the chunks it is given and writes the records with
/// one syscall (see the module doc).
struct Sealer<'a, W: Write> {
    session: &'a mut TlsSession,
    socket: &'a mut W,
    sealed: &'a mut Vec<u8>,
    staging: &'a mut Vec<u8>,
    /// Ciphertext bytes the socket took.
    written: usize,
}

impl<W: Write> Write for Sealer<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let s = &mut *self.session;
        if !s.pending_out.is_empty() {
            let (n, flushed) = write_pending(self.socket, &mut s.pending_out)?;
            self.written += n;
            if flushed == Flushed::Blocked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let taken = s.seal(bufs, self.sealed, self.staging)?;
        if !s.pending_out.is_empty() {
            // A handshake message (ticket, key update) goes first.
            s.pending_out.extend_from_slice(self.sealed);
            let (n, _) = write_pending(self.socket, &mut s.pending_out)?;
            self.written += n;
        } else {
            let n = write_some(self.socket, self.sealed)?;
            self.written += n;
            if n < self.sealed.len() {
                s.pending_out = self.sealed[n..].to_vec();
            }
        }
        // Keep the reactor's buffer from holding on to a huge message.
        if self.sealed.capacity() > 2 * SEAL_BATCH {
            *self.sealed = Vec::new();
        }
        // The plaintext is taken even if its records wait in `pending_out`:
        // the next call writes those first, or reports the socket blocked.
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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
            .is_some_and(|s| !s.established())
    }

    /// Whether connection `k` has sealed bytes the socket has not taken.
    pub(super) fn has_pending(&self, k: usize) -> bool {
        self.sessions
            .get(k)
            .and_then(|s| s.as_deref())
            .is_some_and(|s| !s.pending_out.is_empty())
    }

    /// Writes connection `c`'s output (its handshake messages, or its
    /// queue sealed into records) as far as the socket takes it; after the
    /// last byte of a closing connection, a close_notify. Returns the
    /// ciphertext bytes written and whether everything went out, like
    /// `OutQueue::write_to`.
    pub(super) fn write(
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
        if flushed == Flushed::All && c.flags.close_after_flush && !s.close_notify_sent {
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
                    c.flags.tls = true;
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
            let d = self.now + secs_to_ticks(self.shared.config.handshake_timeout);
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
            c.flags.tls = false;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `limit` bytes, then blocks.
    struct Tight {
        out: Vec<u8>,
        limit: usize,
    }

    impl Write for Tight {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let room = self.limit - self.out.len();
            if room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = room.min(buf.len());
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn pending_ciphertext_is_kept_then_freed() {
        let mut pending = b"0123456789".to_vec();
        let mut w = Tight {
            out: vec![],
            limit: 4,
        };
        assert_eq!(
            write_pending(&mut w, &mut pending).unwrap(),
            (4, Flushed::Blocked)
        );
        assert_eq!(pending, b"456789");
        w.limit = 100;
        assert_eq!(
            write_pending(&mut w, &mut pending).unwrap(),
            (6, Flushed::All)
        );
        assert_eq!(w.out, b"0123456789");
        assert_eq!(pending.capacity(), 0, "an empty buffer owns no heap");
    }

    /// A socket that records every write call.
    #[derive(Default)]
    struct Recorder {
        out: Vec<u8>,
        writes: usize,
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A server session and a rustls client, handshaken in memory over a
    /// throwaway certificate.
    fn handshaken() -> (TlsSession, rustls::ClientConnection) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "crier-tls-unit-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, leaf.pem()).unwrap();
        std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
        let ctx = crate::tls::TlsContext::load(&cert, &key).unwrap();
        let _ = std::fs::remove_dir_all(&dir);

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut client =
            rustls::ClientConnection::new(Arc::new(client_cfg), "localhost".try_into().unwrap())
                .unwrap();
        let mut server = TlsSession::new(ctx.config()).unwrap();
        for _ in 0..8 {
            let mut flight = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut flight).unwrap();
            }
            if !flight.is_empty() {
                let mut plain = Vec::new();
                if let ReadEnd::Failed(e) = server.read_records(&mut flight, &mut plain) {
                    panic!("server: {e}");
                }
                assert!(plain.is_empty());
            }
            deliver(&mut client, &std::mem::take(&mut server.pending_out));
            if server.established && !client.is_handshaking() {
                return (server, client);
            }
        }
        panic!("handshake did not complete");
    }

    /// Feeds server bytes to the client; returns the plaintext.
    fn deliver(client: &mut rustls::ClientConnection, mut bytes: &[u8]) -> Vec<u8> {
        let mut plain = Vec::new();
        while !bytes.is_empty() {
            client.read_tls(&mut bytes).unwrap();
            client.process_new_packets().unwrap();
            let _ = client.reader().read_to_end(&mut plain);
        }
        plain
    }

    use std::io::Read;

    /// Record lengths in a stream of TLS records.
    fn records(mut bytes: &[u8]) -> Vec<usize> {
        let mut lens = Vec::new();
        while bytes.len() >= 5 {
            let len = u16::from_be_bytes([bytes[3], bytes[4]]) as usize;
            lens.push(len);
            bytes = &bytes[5 + len..];
        }
        assert!(bytes.is_empty(), "a torn record");
        lens
    }

    #[test]
    fn after_the_handshake_a_session_holds_no_buffer() {
        let (server, _client) = handshaken();
        assert_eq!(server.partial_in.capacity(), 0);
        assert!(server.pending_out.is_empty());
    }

    #[test]
    fn queued_messages_are_sealed_into_one_record_and_one_write() {
        let (mut server, mut client) = handshaken();
        let mut q = super::super::outqueue::OutQueue::default();
        let mut want = Vec::new();
        for i in 0..60 {
            let m = format!("id: {i}\ndata: message {i}\n\n");
            want.extend_from_slice(m.as_bytes());
            q.push(bytes::Bytes::from(m));
        }
        let mut sock = Recorder::default();
        let (mut sealed, mut staging) = (Vec::new(), Vec::new());
        let mut sealer = Sealer {
            session: &mut server,
            socket: &mut sock,
            sealed: &mut sealed,
            staging: &mut staging,
            written: 0,
        };
        let (_, flushed) = q.write_to(&mut sealer).unwrap();
        assert_eq!(flushed, Flushed::All);
        assert_eq!(sealer.written, sock.out.len());
        assert_eq!(sock.writes, 1, "one write for every queued message");
        assert_eq!(records(&sock.out).len(), 1, "small messages share a record");
        assert_eq!(deliver(&mut client, &sock.out), want);
    }

    #[test]
    fn a_blocked_socket_leaves_the_backlog_in_the_queue() {
        let (mut server, mut client) = handshaken();
        let mut q = super::super::outqueue::OutQueue::default();
        let chunk = vec![b'z'; 1000];
        for _ in 0..300 {
            q.push(bytes::Bytes::from(chunk.clone()));
        }
        let mut sock = Tight {
            out: vec![],
            limit: 5000,
        };
        let (mut sealed, mut staging) = (Vec::new(), Vec::new());
        let mut sealer = Sealer {
            session: &mut server,
            socket: &mut sock,
            sealed: &mut sealed,
            staging: &mut staging,
            written: 0,
        };
        let (_, flushed) = q.write_to(&mut sealer).unwrap();
        assert_eq!(flushed, Flushed::Blocked);
        // One batch at most is sealed ahead of the socket; the rest is
        // still plaintext in the queue, where max-queued-bytes sees it.
        assert!(server.pending_out.len() <= SEAL_BATCH + 8 * RECORD_OVERHEAD);
        assert!(q.queued_bytes() >= 300_000 - SEAL_BATCH);
        sock.limit = usize::MAX;
        let mut sealer = Sealer {
            session: &mut server,
            socket: &mut sock,
            sealed: &mut sealed,
            staging: &mut staging,
            written: 0,
        };
        assert_eq!(q.write_to(&mut sealer).unwrap().1, Flushed::All);
        assert!(server.pending_out.is_empty() && server.pending_out.capacity() == 0);
        assert!(records(&sock.out).iter().all(|&l| l <= MAX_RECORD + 256));
        assert_eq!(deliver(&mut client, &sock.out), vec![b'z'; 300_000]);
    }

    #[test]
    fn client_records_split_across_reads_are_joined() {
        let (mut server, mut client) = handshaken();
        client
            .writer()
            .write_all(b"GET /ev/news HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        let mut plain = Vec::new();
        let (a, b) = wire.split_at(7);
        assert!(matches!(
            server.read_records(&mut a.to_vec(), &mut plain),
            ReadEnd::More
        ));
        assert!(plain.is_empty() && server.partial_in.len() == 7);
        let mut rest = std::mem::take(&mut server.partial_in);
        rest.extend_from_slice(b);
        assert!(matches!(
            server.read_records(&mut rest, &mut plain),
            ReadEnd::More
        ));
        assert_eq!(plain, b"GET /ev/news HTTP/1.1\r\n\r\n");
        assert_eq!(server.partial_in.capacity(), 0);
    }
}
