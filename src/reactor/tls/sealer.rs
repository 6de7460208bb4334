//! Writing a TLS connection's output: the ciphertext the socket did not
//! take, and the [`Sealer`] that `OutQueue::write_to` writes into, which
//! turns every queued chunk of one call into records and one syscall.

use std::io::{self, IoSlice, Write};

use super::session::{TlsSession, SEAL_BATCH};
use crate::reactor::outqueue::Flushed;

/// Writes `bytes` until done or until the socket refuses more; returns how
/// many it took. Errors other than `WouldBlock` mean the peer is gone.
pub(super) fn write_some<W: Write>(w: &mut W, bytes: &[u8]) -> io::Result<usize> {
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
pub(super) fn write_pending<W: Write>(
    w: &mut W,
    pending: &mut Vec<u8>,
) -> io::Result<(usize, Flushed)> {
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
pub(super) struct Sealer<'a, W: Write> {
    pub(super) session: &'a mut TlsSession,
    pub(super) socket: &'a mut W,
    pub(super) sealed: &'a mut Vec<u8>,
    pub(super) staging: &'a mut Vec<u8>,
    /// Ciphertext bytes the socket took.
    pub(super) written: usize,
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
