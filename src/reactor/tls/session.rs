//! One TLS connection's rustls session (the unbuffered API) and what the
//! reactor asks of it: run the records of a read, seal plaintext into
//! records, seal a close_notify. No sockets here: bytes in, bytes out.

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    UnbufferedStatus, WriteTraffic,
};
use rustls::ServerConfig;
use std::io::{self, IoSlice};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::status::{ConnKind, ReactorStats};

/// Most plaintext sealed by one write attempt. Large enough that a burst
/// (hundreds of small messages) leaves in one syscall, small enough that
/// ciphertext the socket refuses (held per connection until it drains)
/// stays a small, bounded addition to `max-queued-bytes`.
pub(super) const SEAL_BATCH: usize = 64 * 1024;

/// Largest TLS record payload (RFC 8446 §5.1).
pub(super) const MAX_RECORD: usize = 16 * 1024;

/// Chunks at least this large are sealed straight from the shared message
/// bytes; smaller ones are copied together first so that a burst of small
/// messages costs one AEAD call per 16 KiB instead of one per message.
const DIRECT_SEAL: usize = 4 * 1024;

/// Record header plus the largest AEAD expansion rustls uses (TLS 1.2
/// AES-GCM: 8-byte explicit nonce and 16-byte tag), rounded up.
pub(super) const RECORD_OVERHEAD: usize = 32;

/// Bounds the loops over rustls states that must settle at once (a
/// handshake message to encode, then its transmission).
const MAX_STATE_STEPS: usize = 16;

/// One TLS connection's session (see the module doc for what it holds).
pub(in crate::reactor) struct TlsSession {
    pub(super) conn: UnbufferedServerConnection,
    /// Ciphertext of a record (or handshake flight) not yet complete.
    pub(super) partial_in: Vec<u8>,
    /// Ciphertext sealed but not yet taken by the socket.
    pub(super) pending_out: Vec<u8>,
    /// The handshake completed: application data flows.
    pub(super) established: bool,
    /// The first byte was seen (and was not plaintext HTTP).
    pub(super) opened: bool,
    /// A failure was counted already (not again when it closes).
    pub(super) failed: bool,
    /// close_notify is sealed (sent once, after the last byte of output).
    pub(super) close_notify_sent: bool,
    /// The `tls_connections` gauge this connection is counted under.
    pub(super) kind: ConnKind,
}

/// How reading a batch of records ended.
pub(super) enum ReadEnd {
    /// Everything complete was processed; the rest (if any) is kept.
    More,
    /// The peer sent close_notify: nothing more will come.
    PeerClosed,
    Failed(rustls::Error),
}

impl TlsSession {
    pub(super) fn new(config: Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
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

    /// Runs rustls over `buf` (the kept partial record followed by what was
    /// just read): handshake messages are answered into `pending_out`,
    /// application data is appended to `plain`, and an unfinished record is
    /// kept for the next read.
    pub(super) fn read_records(&mut self, buf: &mut [u8], plain: &mut Vec<u8>) -> ReadEnd {
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
    pub(super) fn seal(
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
    pub(super) fn seal_close_notify(&mut self) {
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
    pub(super) fn track_kind(&mut self, now: ConnKind, stats: &ReactorStats) {
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
