//! A connection's unsent output: shared chunks plus an offset, flushed with
//! one vectored write per loop turn.
//!
//! Entries are `Bytes`, so a message encoded once is referenced (not
//! copied) by every subscriber's queue. An empty queue owns no heap memory.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// How many chunks go into one `writev`; Linux accepts up to 1024 (IOV_MAX).
const MAX_IOVECS: usize = 64;

/// Unsent bytes of one connection.
#[derive(Debug, Default)]
pub struct OutQueue {
    chunks: VecDeque<Bytes>,
    queued: usize,
}

/// Result of a flush attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Everything was written.
    All,
    /// The kernel's send buffer is full; wait for writable readiness.
    Blocked,
}

impl OutQueue {
    /// Appends a chunk (a cheap reference-count increment for shared bytes).
    pub fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.queued += chunk.len();
        self.chunks.push_back(chunk);
    }

    /// Appends bytes owned by this connection alone (replies, handshakes).
    pub fn push_vec(&mut self, bytes: Vec<u8>) {
        self.push(Bytes::from(bytes));
    }

    /// True when nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Bytes waiting to be written (the backpressure measure).
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Drops everything queued (the connection is going away).
    pub fn clear(&mut self) {
        self.chunks = VecDeque::new();
        self.queued = 0;
    }

    /// Writes as much as the socket takes, many chunks per syscall. Returns
    /// the bytes written and whether everything went out. Errors other than
    /// `WouldBlock` mean the peer is gone.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<(usize, Flushed)> {
        let mut total = 0;
        while !self.chunks.is_empty() {
            let n = {
                // On the stack: this runs once per subscriber per loop turn.
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                for (slot, chunk) in slices.iter_mut().zip(self.chunks.iter()) {
                    *slot = IoSlice::new(chunk);
                    count += 1;
                }
                match w.write_vectored(&slices[..count]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Ok((total, Flushed::Blocked))
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            total += n;
            self.consume(n);
        }
        // Release the storage as soon as the queue drains: an idle
        // connection must own no heap (a kept 4-slot ring is 128 bytes per
        // connection, more than the rest of an idle subscriber). The cost
        // is one small allocation per write burst.
        self.chunks = VecDeque::new();
        Ok((total, Flushed::All))
    }

    fn consume(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `limit` bytes per call, then blocks.
    struct Trickle {
        out: Vec<u8>,
        limit: usize,
        calls: usize,
        block_after: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.calls == self.block_after {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls += 1;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.limit - n);
                self.out.extend_from_slice(&b[..take]);
                n += take;
                if n == self.limit {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_resume_at_the_right_offset() {
        let mut q = OutQueue::default();
        q.push(Bytes::from_static(b"hello "));
        q.push(Bytes::from_static(b"world"));
        let mut w = Trickle {
            out: vec![],
            limit: 4,
            calls: 0,
            block_after: 2,
        };
        let (n, f) = q.write_to(&mut w).unwrap();
        assert_eq!((n, f), (8, Flushed::Blocked));
        assert_eq!(q.queued_bytes(), 3);
        w.block_after = usize::MAX;
        assert_eq!(q.write_to(&mut w).unwrap(), (3, Flushed::All));
        assert_eq!(w.out, b"hello world");
        assert!(q.is_empty());
    }

    #[test]
    fn many_chunks_one_call() {
        let mut q = OutQueue::default();
        for _ in 0..10 {
            q.push(Bytes::from_static(b"abc"));
        }
        let mut w = Trickle {
            out: vec![],
            limit: 1000,
            calls: 0,
            block_after: usize::MAX,
        };
        q.write_to(&mut w).unwrap();
        assert_eq!(w.calls, 1);
        assert_eq!(w.out.len(), 30);
    }
}
