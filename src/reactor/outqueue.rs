//! A connection's unsent output: shared chunks plus an offset, flushed with
//! one vectored write per loop turn.
//!
//! A message encoded once is referenced, not copied, by every subscriber's
//! queue. Within one reactor the reference is an `Rc` ([`Chunk::Local`]):
//! an atomic reference count per subscriber would be a locked instruction
//! per delivery, which drains the store buffer and cost about a fifth of
//! the CPU of a burst fanout (docs/PERFORMANCE.md). The first chunk is
//! stored inline: the common case — one message (or one reply) per flush —
//! allocates nothing per connection, and an idle connection owns no heap.
//! Only a backlog of several chunks spills into a boxed ring, freed when it
//! drains.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// How many chunks go into one `writev`; Linux accepts up to 1024 (IOV_MAX).
const MAX_IOVECS: usize = 64;

/// One queued piece of output.
#[derive(Debug)]
pub enum Chunk {
    /// Bytes of this connection alone, or shared across threads.
    Owned(Bytes),
    /// A message encoding shared by this reactor's subscribers, counted
    /// with a plain (non-atomic) reference count.
    Local(Rc<Bytes>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(b) => b,
            Chunk::Local(b) => b,
        }
    }

    fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Drops the first `n` bytes (a partial write). A shared chunk becomes
    /// this connection's own slice of it: one atomic increment, only when a
    /// socket took part of a chunk.
    fn advance(&mut self, n: usize) {
        match self {
            Chunk::Owned(b) => b.advance(n),
            Chunk::Local(b) => *self = Chunk::Owned(b.slice(n..)),
        }
    }
}

/// Chunks queued behind the head, with their total size.
#[derive(Debug, Default)]
struct Backlog {
    chunks: VecDeque<Chunk>,
    bytes: usize,
}

/// Unsent bytes of one connection.
#[derive(Debug, Default)]
pub struct OutQueue {
    /// The oldest unsent chunk (partially written chunks are advanced).
    head: Option<Chunk>,
    /// Chunks after `head`, only while there are any. Boxed on purpose:
    /// 8 bytes inline instead of 40 on every one of a million connections.
    rest: Option<Box<Backlog>>,
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
    /// Appends bytes (a cheap reference-count increment for shared bytes).
    pub fn push(&mut self, bytes: Bytes) {
        self.push_chunk(Chunk::Owned(bytes));
    }

    /// Appends a message encoding shared within this reactor.
    pub fn push_local(&mut self, bytes: &Rc<Bytes>) {
        self.push_chunk(Chunk::Local(Rc::clone(bytes)));
    }

    fn push_chunk(&mut self, chunk: Chunk) {
        if chunk.len() == 0 {
            return;
        }
        if self.head.is_none() {
            self.head = Some(chunk);
        } else {
            let rest = self.rest.get_or_insert_with(Default::default);
            rest.bytes += chunk.len();
            rest.chunks.push_back(chunk);
        }
    }

    /// Appends bytes owned by this connection alone (replies, handshakes).
    pub fn push_vec(&mut self, bytes: Vec<u8>) {
        self.push(Bytes::from(bytes));
    }

    /// True when nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.head.as_ref().map_or(0, Chunk::len) + self.backlog_bytes()
    }

    /// Bytes queued behind the chunk being written: the backpressure
    /// measure. The chunk in progress is one message (or reply) at most, so
    /// a single large message never counts against the cap by itself.
    pub fn backlog_bytes(&self) -> usize {
        self.rest.as_ref().map_or(0, |r| r.bytes)
    }

    /// Drops everything queued (the connection is going away).
    pub fn clear(&mut self) {
        *self = OutQueue::default();
    }

    /// Writes as much as the socket takes, many chunks per syscall. Returns
    /// the bytes written and whether everything went out. Errors other than
    /// `WouldBlock` mean the peer is gone.
    pub fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<(usize, Flushed)> {
        let mut total = 0;
        while let Some(head) = &self.head {
            let result = match self.rest.as_deref() {
                None => w.write(head.bytes()),
                Some(rest) => {
                    // On the stack: this runs once per subscriber per turn.
                    let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                    slices[0] = IoSlice::new(head.bytes());
                    let mut count = 1;
                    for (slot, chunk) in slices[1..].iter_mut().zip(rest.chunks.iter()) {
                        *slot = IoSlice::new(chunk.bytes());
                        count += 1;
                    }
                    w.write_vectored(&slices[..count])
                }
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    total += n;
                    self.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((total, Flushed::Blocked))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok((total, Flushed::All))
    }

    fn consume(&mut self, mut n: usize) {
        while n > 0 {
            let Some(head) = self.head.as_mut() else {
                break;
            };
            if n < head.len() {
                head.advance(n);
                return;
            }
            n -= head.len();
            self.head = self.rest.as_mut().and_then(|r| {
                let next = r.chunks.pop_front()?;
                r.bytes -= next.len();
                Some(next)
            });
        }
        if self.rest.as_ref().is_some_and(|r| r.chunks.is_empty()) {
            // Free the ring as soon as it is not needed.
            self.rest = None;
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

    fn trickle(limit: usize, block_after: usize) -> Trickle {
        Trickle {
            out: vec![],
            limit,
            calls: 0,
            block_after,
        }
    }

    #[test]
    fn partial_writes_resume_at_the_right_offset() {
        let mut q = OutQueue::default();
        q.push(Bytes::from_static(b"hello "));
        q.push(Bytes::from_static(b"world"));
        let mut w = trickle(4, 2);
        let (n, f) = q.write_to(&mut w).unwrap();
        assert_eq!((n, f), (8, Flushed::Blocked));
        assert_eq!(q.queued_bytes(), 3);
        assert_eq!(q.backlog_bytes(), 0);
        w.block_after = usize::MAX;
        assert_eq!(q.write_to(&mut w).unwrap(), (3, Flushed::All));
        assert_eq!(w.out, b"hello world");
        assert!(q.is_empty());
        assert!(q.rest.is_none());
    }

    #[test]
    fn many_chunks_one_call() {
        let mut q = OutQueue::default();
        for _ in 0..10 {
            q.push(Bytes::from_static(b"abc"));
        }
        let mut w = trickle(1000, usize::MAX);
        q.write_to(&mut w).unwrap();
        assert_eq!(w.calls, 1);
        assert_eq!(w.out.len(), 30);
        assert!(q.is_empty() && q.rest.is_none());
    }

    #[test]
    fn a_single_chunk_needs_no_ring() {
        let mut q = OutQueue::default();
        q.push(Bytes::from_static(b"one"));
        assert!(q.rest.is_none());
        let mut w = trickle(2, usize::MAX);
        q.write_to(&mut w).unwrap();
        assert_eq!(w.out, b"one");
    }

    #[test]
    fn more_than_max_iovecs_chunks() {
        let mut q = OutQueue::default();
        for i in 0..200u8 {
            q.push(Bytes::from(vec![i]));
        }
        let mut w = trickle(usize::MAX / 2, usize::MAX);
        q.write_to(&mut w).unwrap();
        assert_eq!(w.out, (0..200u8).collect::<Vec<_>>());
        assert!(w.calls >= 4);
    }

    #[test]
    fn shared_chunks_survive_partial_writes_and_count_towards_the_backlog() {
        let shared = Rc::new(Bytes::from_static(b"message!"));
        let mut a = OutQueue::default();
        let mut b = OutQueue::default();
        for q in [&mut a, &mut b] {
            q.push_local(&shared);
            q.push_local(&shared);
        }
        assert_eq!(Rc::strong_count(&shared), 5);
        assert_eq!((a.queued_bytes(), a.backlog_bytes()), (16, 8));
        let mut w = trickle(3, 1);
        assert_eq!(a.write_to(&mut w).unwrap(), (3, Flushed::Blocked));
        // The partly written head is now a slice of its own.
        assert_eq!(Rc::strong_count(&shared), 4);
        w.block_after = usize::MAX;
        w.limit = usize::MAX / 2;
        a.write_to(&mut w).unwrap();
        assert_eq!(w.out, b"message!message!");
        drop(b);
        assert_eq!(Rc::strong_count(&shared), 1);
    }
}
