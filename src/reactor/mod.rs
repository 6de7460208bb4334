//! The event loop: one per core, owning its listener, its connections and
//! its local channel index outright.
//!
//! One loop turn: wait for readiness → accept / read / note writable →
//! drain the inbox (fanout: queue shared frames on local subscribers) →
//! flush every connection with queued output once (one `writev` each, so a
//! burst of messages costs one syscall per subscriber).

mod conn;
mod fanout;
mod http;
pub mod local;
pub mod outqueue;

use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::http::response::ResponseOptions;
use crate::pubsub::bus::Delivery;
use crate::pubsub::hub::Hub;
use crate::pubsub::message::EncodeSettings;
use crate::status::{CloseCause, ReactorStats, Stats};
use conn::{Conn, Role};
use local::LocalIndex;
use outqueue::Flushed;

/// Token of the listening socket.
pub const LISTENER: Token = Token(usize::MAX - 1);
/// Token of the cross-thread waker.
pub const WAKER: Token = Token(usize::MAX - 2);

/// Size of the per-reactor read buffer. Every connection reads into it, so
/// idle connections need no buffer of their own.
const SCRATCH_BYTES: usize = 64 * 1024;

/// At most this many reads per connection per readiness event, so one busy
/// publisher cannot starve the other connections of this reactor.
const MAX_READS_PER_EVENT: usize = 16;

/// State shared (read-only, or atomics) by every reactor.
pub struct Shared {
    pub config: Config,
    pub stats: Stats,
    pub encode: EncodeSettings,
    pub responses: ResponseOptions,
    pub stopping: AtomicBool,
}

/// Everything a reactor thread needs, built before it starts.
pub struct ReactorSetup {
    pub id: usize,
    pub poll: Poll,
    pub listener: TcpListener,
    pub inbox: Receiver<Delivery>,
    pub hub: Arc<Hub>,
    pub shared: Arc<Shared>,
}

/// One event loop.
pub struct Reactor {
    id: usize,
    poll: Poll,
    listener: TcpListener,
    inbox: Receiver<Delivery>,
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    conns: Slab<Conn>,
    local: LocalIndex,
    scratch: Vec<u8>,
    /// Connections with output queued this turn.
    dirty: Vec<usize>,
    /// Connections that still have unread input (read cap hit) — edge
    /// triggered readiness will not report them again.
    more_to_read: Vec<usize>,
    next_generation: u32,
}

impl Reactor {
    /// Builds the reactor and registers its listener.
    pub fn new(setup: ReactorSetup) -> io::Result<Reactor> {
        let mut listener = setup.listener;
        setup
            .poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Reactor {
            id: setup.id,
            poll: setup.poll,
            listener,
            inbox: setup.inbox,
            hub: setup.hub,
            shared: setup.shared,
            conns: Slab::new(),
            local: LocalIndex::default(),
            scratch: vec![0; SCRATCH_BYTES],
            dirty: Vec::new(),
            more_to_read: Vec::new(),
            next_generation: 0,
        })
    }

    fn stats(&self) -> &ReactorStats {
        &self.shared.stats.reactors[self.id]
    }

    /// Runs until the hub sends `Shutdown`.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        log::debug!("reactor {} started", self.id);
        loop {
            let timeout = if self.more_to_read.is_empty() {
                Duration::from_millis(1000)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("reactor {}: poll failed: {e}", self.id);
                break;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    Token(k) => {
                        if ev.is_writable() {
                            self.on_writable(k);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_readable(k);
                        }
                    }
                }
            }
            for k in std::mem::take(&mut self.more_to_read) {
                self.on_readable(k);
            }
            self.hub.link(self.id).clear_wake();
            let stop = self.drain_inbox();
            self.flush_dirty();
            if stop {
                break;
            }
        }
        self.close_all();
        log::debug!("reactor {} stopped", self.id);
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut socket, _peer)) => {
                    // Replies and pushes are small and latency matters.
                    let _ = socket.set_nodelay(true);
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    // Readable and writable at once, edge triggered: no
                    // epoll_ctl is needed later when a write blocks.
                    if let Err(e) = self.poll.registry().register(
                        &mut socket,
                        Token(key),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        log::warn!("cannot register connection: {e}");
                        continue;
                    }
                    self.next_generation = self.next_generation.wrapping_add(1);
                    entry.insert(Conn::new(socket, self.next_generation));
                    let st = self.stats();
                    ReactorStats::add(&st.accepted, 1);
                    st.connections[crate::status::ConnKind::Http as usize]
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn on_writable(&mut self, k: usize) {
        if let Some(c) = self.conns.get_mut(k) {
            c.flags.write_blocked = false;
            if !c.out.is_empty() {
                mark_dirty(&mut self.dirty, k, c);
            }
        }
    }

    /// Reads what the socket has (bounded) and hands it to the connection's
    /// role. Input is read into the shared scratch buffer; only leftovers of
    /// an unfinished request are copied into the connection.
    fn on_readable(&mut self, k: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut reads = 0;
        loop {
            let Some(c) = self.conns.get_mut(k) else {
                break;
            };
            if c.flags.read_paused || c.flags.close_after_flush {
                break;
            }
            if reads == MAX_READS_PER_EVENT {
                // Edge-triggered readiness will not report the rest again:
                // come back next turn, after everyone else had a go.
                self.more_to_read.push(k);
                break;
            }
            reads += 1;
            let n = match c.socket.read(&mut scratch) {
                Ok(0) => {
                    self.close(k, None);
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(k, None);
                    break;
                }
            };
            match c.role {
                Role::Http(_) => self.on_http_input(k, &scratch[..n]),
                // Subscribers have nothing to say; we read only to notice
                // EOF or RST at once, and discard anything else.
                Role::Subscriber(_) => {}
            }
        }
        self.scratch = scratch;
    }

    /// Drains the inbox. Returns true when the reactor must stop.
    fn drain_inbox(&mut self) -> bool {
        let mut stop = false;
        while let Ok(d) = self.inbox.try_recv() {
            match d {
                Delivery::Message(m) => self.fan_out(&m),
                Delivery::ChannelDeleted(ch) => self.on_channel_deleted(&ch),
                Delivery::Shutdown => stop = true,
            }
        }
        stop
    }

    /// Writes every dirty connection's queue once.
    fn flush_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &k in &dirty {
            self.flush(k);
        }
        // Reuse the allocation for the next turn.
        self.dirty = dirty;
        self.dirty.clear();
    }

    fn flush(&mut self, k: usize) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        c.flags.dirty = false;
        if c.flags.write_blocked {
            return;
        }
        match c.out.write_to(&mut c.socket) {
            Ok((n, flushed)) => {
                ReactorStats::add(&self.shared.stats.reactors[self.id].bytes_out, n as u64);
                match flushed {
                    Flushed::Blocked => c.flags.write_blocked = true,
                    Flushed::All => {
                        if c.flags.close_after_flush {
                            self.close(k, None);
                        } else if c.flags.read_paused {
                            c.flags.read_paused = false;
                            self.more_to_read.push(k);
                        }
                    }
                }
            }
            Err(_) => {
                ReactorStats::add(&self.stats().write_errors, 1);
                self.close(k, None);
            }
        }
    }

    /// Queues `bytes` on connection `k` and marks it for this turn's flush.
    fn send(&mut self, k: usize, bytes: Vec<u8>) {
        if let Some(c) = self.conns.get_mut(k) {
            c.out.push_vec(bytes);
            mark_dirty(&mut self.dirty, k, c);
        }
    }

    /// Sends what is queued, then closes (used after a final response).
    fn close_after_flush(&mut self, k: usize, cause: Option<CloseCause>) {
        if let Some(c) = self.conns.get_mut(k) {
            c.flags.close_after_flush = true;
            mark_dirty(&mut self.dirty, k, c);
            if let Some(cause) = cause {
                ReactorStats::add(&self.stats().closed_by_server[cause as usize], 1);
            }
            self.unsubscribe_all(k);
        }
    }

    /// Closes connection `k` now: unsubscribes it, deregisters, frees the
    /// slot. `cause` is set when the server decided it (None = the peer
    /// went away).
    fn close(&mut self, k: usize, cause: Option<CloseCause>) {
        if !self.conns.contains(k) {
            return;
        }
        self.unsubscribe_all(k);
        let mut c = self.conns.remove(k);
        let _ = self.poll.registry().deregister(&mut c.socket);
        let st = &self.shared.stats.reactors[self.id];
        st.connections[c.kind() as usize].fetch_sub(1, Ordering::Relaxed);
        match cause {
            Some(cause) => ReactorStats::add(&st.closed_by_server[cause as usize], 1),
            None if !c.flags.close_after_flush => ReactorStats::add(&st.closed_by_peer, 1),
            None => {}
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            // Best effort: push out what is queued (e.g. a stream's last
            // chunk) without waiting.
            if let Some(c) = self.conns.get_mut(k) {
                let _ = c.out.write_to(&mut c.socket);
            }
            self.close(k, Some(CloseCause::Shutdown));
        }
    }
}

fn mark_dirty(dirty: &mut Vec<usize>, k: usize, c: &mut Conn) {
    if !c.flags.dirty {
        c.flags.dirty = true;
        dirty.push(k);
    }
}
