//! The event loop: one per core, owning its listener, its connections and
//! its local channel index outright.
//!
//! One loop turn: wait for readiness → accept / read / note writable →
//! drain the inbox (fanout: queue shared frames on local subscribers) →
//! run due timers → flush every connection with queued output once (one
//! `writev` each, so a burst of messages costs one syscall per subscriber).

mod conn;
mod fanout;
mod http;
pub mod liveness;
pub mod local;
mod longpoll;
pub mod outqueue;
pub mod timer;
mod websocket;

use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::http::response::ResponseOptions;
use crate::pubsub::bus::Delivery;
use crate::pubsub::hub::Hub;
use crate::pubsub::message::{EncodeSettings, Message};
use crate::status::{CloseCause, ConnKind, PeerGone, ReactorStats, Stats};
use conn::{Conn, Role};
use liveness::{secs_to_ticks, Jitter, Pings, TICK};
use local::LocalIndex;
use outqueue::Flushed;
use timer::{Entry, TimerWheel};

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

/// Wheel size: 1024 ticks of 250 ms, about four minutes per revolution.
const WHEEL_SLOTS: usize = 1024;

/// Most messages fanned out in one pass over the subscribers: enough to
/// touch each subscriber once per burst, few enough that the batch's
/// encodings stay in cache.
const MAX_FANOUT_BATCH: usize = 64;

/// The answer to a connection over `max-connections`: fixed bytes, written
/// once without buffering.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 50\r\nConnection: close\r\nRetry-After: 5\r\n\r\n{\"error\":\"server at capacity\",\"status\":503}\n\n\n\n\n\n\n";

/// State shared (read-only, or atomics) by every reactor.
pub struct Shared {
    pub config: Config,
    pub stats: Stats,
    pub encode: EncodeSettings,
    pub responses: ResponseOptions,
    pub pings: Pings,
    /// Open connections across all reactors (for `max-connections`).
    pub open_connections: AtomicUsize,
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
    /// None once the reactor stopped accepting (draining).
    listener: Option<TcpListener>,
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
    /// Subscribers found over their queue cap during fanout.
    slow: Vec<usize>,
    /// Long-polls that received messages this turn (answered before flush).
    longpolls_ready: Vec<usize>,
    /// Tick of the last hub upkeep call (reactor 0 does it once a second).
    last_upkeep: u32,
    next_generation: u32,
    wheel: TimerWheel,
    due: Vec<Entry>,
    started: Instant,
    /// Current tick (250 ms units since the reactor started, from 1).
    now: u32,
    ping_ticks: u32,
    pong_ticks: u32,
    jitter: Jitter,
    /// accept() ran out of descriptors: retry at this tick, not before.
    accept_paused_until: u32,
    /// Set while draining: exit once every connection is gone or at this.
    drain_until: Option<Instant>,
    /// Answering a HEAD request: responses are sent without their body.
    omit_body: bool,
}

impl ReactorSetup {
    /// Registers the listener for accept readiness; done before the thread
    /// starts so that `Server::start` reports a failure.
    pub fn register_listener(&mut self) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut self.listener, LISTENER, Interest::READABLE)
    }
}

impl Reactor {
    /// Builds the reactor, on its own thread: connections hold
    /// thread-local `Rc`s (see `outqueue.rs`), so a reactor never moves.
    pub fn new(setup: ReactorSetup) -> Reactor {
        let cfg = &setup.shared.config;
        let seed = Instant::now().elapsed().as_nanos() as u64 ^ crate::pubsub::hub::now_ms();
        Reactor {
            id: setup.id,
            poll: setup.poll,
            listener: Some(setup.listener),
            inbox: setup.inbox,
            hub: setup.hub,
            conns: Slab::new(),
            local: LocalIndex::default(),
            scratch: vec![0; SCRATCH_BYTES],
            dirty: Vec::new(),
            more_to_read: Vec::new(),
            slow: Vec::new(),
            longpolls_ready: Vec::new(),
            last_upkeep: 0,
            next_generation: 0,
            wheel: TimerWheel::new(WHEEL_SLOTS),
            due: Vec::new(),
            started: Instant::now(),
            now: 1,
            ping_ticks: secs_to_ticks(cfg.ping_interval),
            pong_ticks: secs_to_ticks(cfg.pong_timeout),
            jitter: Jitter::new(
                seed.wrapping_add((setup.id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            ),
            accept_paused_until: 0,
            drain_until: None,
            omit_body: false,
            shared: setup.shared,
        }
    }

    fn stats(&self) -> &ReactorStats {
        &self.shared.stats.reactors[self.id]
    }

    fn update_clock(&mut self) {
        let ticks = self.started.elapsed().as_millis() / TICK.as_millis();
        self.now = (ticks as u32).saturating_add(1);
    }

    /// Runs until told to stop (and, when draining, until its connections
    /// are gone or the drain deadline passes).
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        log::debug!("reactor {} started", self.id);
        loop {
            let timeout = if self.more_to_read.is_empty() {
                TICK
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("reactor {}: poll failed: {e}", self.id);
                    break;
                }
            }
            self.update_clock();
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
                self.resume_reading(k);
            }
            if self.accept_paused_until != 0 && self.now >= self.accept_paused_until {
                self.accept_paused_until = 0;
                self.accept_all();
            }
            self.hub.link(self.id).clear_wake();
            let stop = self.drain_inbox();
            self.finish_longpolls();
            self.run_timers();
            self.upkeep();
            self.flush_dirty();
            if stop || self.drain_finished() {
                break;
            }
        }
        self.close_all();
        log::debug!("reactor {} stopped", self.id);
    }

    fn accept_all(&mut self) {
        let max = self.shared.config.max_connections;
        while let Some(listener) = &self.listener {
            match listener.accept() {
                Ok((mut socket, _peer)) => {
                    let open = self.shared.open_connections.fetch_add(1, Ordering::Relaxed);
                    if max > 0 && open >= max {
                        self.shared.open_connections.fetch_sub(1, Ordering::Relaxed);
                        // Fast, fixed answer; the socket buffer of a fresh
                        // connection always has room for it.
                        let _ = socket.write(OVER_CAPACITY);
                        ReactorStats::add(
                            &self.stats().closed_by_server[CloseCause::OverCapacity as usize],
                            1,
                        );
                        continue;
                    }
                    self.admit(socket);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let out_of_fds = matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE)
                            | Some(libc::ENFILE)
                            | Some(libc::ENOBUFS)
                            | Some(libc::ENOMEM)
                    );
                    if out_of_fds {
                        // Keep serving who we have; pending clients wait in
                        // the backlog. Retry after a tick, never busy-loop.
                        ReactorStats::add(&self.stats().accept_fd_errors, 1);
                        if self.accept_paused_until == 0 {
                            log::warn!("accept: {e}; pausing accepts for {TICK:?}");
                        }
                        self.accept_paused_until = self.now + 1;
                    } else {
                        log::warn!("accept failed: {e}");
                    }
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut socket: mio::net::TcpStream) {
        // Replies and pushes are small and latency matters.
        let _ = socket.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        // Readable and writable at once, edge triggered: no epoll_ctl is
        // needed later when a write blocks.
        if let Err(e) = self.poll.registry().register(
            &mut socket,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("cannot register connection: {e}");
            self.shared.open_connections.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        entry.insert(Conn::new(socket, self.next_generation));
        let st = self.stats();
        ReactorStats::add(&st.accepted, 1);
        st.connections[ConnKind::Http as usize].fetch_add(1, Ordering::Relaxed);
        let deadline = self.now + secs_to_ticks(self.shared.config.handshake_timeout);
        self.set_deadline(key, deadline);
    }

    fn on_writable(&mut self, k: usize) {
        if let Some(c) = self.conns.get_mut(k) {
            c.flags.write_blocked = false;
            if !c.out.is_empty() {
                mark_dirty(&mut self.dirty, k, c);
            }
        }
    }

    /// Continues a connection whose reading was cut short (read cap) or
    /// paused (replies not read), including input already buffered.
    fn resume_reading(&mut self, k: usize) {
        let buffered = self
            .conns
            .get(k)
            .is_some_and(|c| matches!(c.role, Role::Http(_)) && !c.pending_in.is_empty());
        if buffered {
            self.on_http_input(k, &[]);
        }
        self.on_readable(k);
    }

    /// Reads what the socket has (bounded) and hands it to the connection's
    /// role. Input is read into the shared scratch buffer; only leftovers of
    /// an unfinished request or frame are copied into the connection.
    fn on_readable(&mut self, k: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut reads = 0;
        while let Some(c) = self.conns.get_mut(k) {
            if c.flags.read_paused {
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
                    self.peer_gone(k, PeerGone::Eof);
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let how = if e.raw_os_error() == Some(libc::ETIMEDOUT) {
                        PeerGone::Timeout
                    } else {
                        PeerGone::Reset
                    };
                    self.peer_gone(k, how);
                    break;
                }
            };
            if c.flags.close_after_flush {
                // Closing: input is no longer interesting, only EOF is.
                continue;
            }
            match &c.role {
                Role::Http(_) => self.on_http_input(k, &scratch[..n]),
                Role::Subscriber(s) if s.is_ws() => self.on_ws_input(k, &scratch[..n]),
                // A request pipelined behind a waiting long-poll: kept (up
                // to one request head) and served after the answer.
                Role::Subscriber(s) if s.longpoll().is_some() => {
                    if c.pending_in.len() + n > self.shared.config.max_header_bytes {
                        c.flags.read_paused = true;
                    } else {
                        c.pending_in.extend_from_slice(&scratch[..n]);
                    }
                }
                // SSE and stream subscribers have nothing to say; we read
                // only to notice EOF or RST at once, and discard the rest.
                Role::Subscriber(_) => {}
            }
        }
        self.scratch = scratch;
    }

    /// Drains the inbox. Returns true when the reactor must stop now.
    /// Consecutive messages to the same channels are fanned out as one
    /// batch (see [`fan_out`](Self::fan_out)); anything else ends a batch,
    /// so every delivery keeps its place in the order.
    fn drain_inbox(&mut self) -> bool {
        let mut stop = false;
        let mut batch: Vec<Arc<Message>> = Vec::new();
        while let Ok(d) = self.inbox.try_recv() {
            let Delivery::Message(m) = d else {
                self.fan_out(&batch);
                batch.clear();
                stop |= self.handle_delivery(d);
                continue;
            };
            let fits = batch.len() < MAX_FANOUT_BATCH
                && batch.last().is_none_or(|prev| same_channels(prev, &m));
            if !fits {
                self.fan_out(&batch);
                batch.clear();
            }
            batch.push(m);
        }
        self.fan_out(&batch);
        for k in std::mem::take(&mut self.slow) {
            self.drop_slow_consumer(k);
        }
        stop
    }

    /// Handles one inbox delivery on its own. Returns true for `Shutdown`.
    fn handle_delivery(&mut self, d: Delivery) -> bool {
        match d {
            Delivery::Message(m) => self.fan_out(std::slice::from_ref(&m)),
            Delivery::ChannelDeleted(ch) => self.on_channel_deleted(&ch),
            Delivery::Shutdown => return true,
            Delivery::Drain(until) => self.start_drain(until),
        }
        false
    }

    /// Reactor 0 asks the hub to expire messages and collect idle channels
    /// about once a second (the hub has no thread of its own).
    fn upkeep(&mut self) {
        if self.id == 0 && self.now >= self.last_upkeep + liveness::TICKS_PER_SEC {
            self.last_upkeep = self.now;
            self.hub.maintain();
        }
    }

    /// Graceful shutdown: stop accepting, say goodbye to subscribers, close
    /// idle HTTP connections, let requests in progress finish.
    fn start_drain(&mut self, until: Instant) {
        if self.drain_until.is_some() {
            return;
        }
        self.drain_until = Some(until);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            match &c.role {
                Role::Subscriber(_) => self.say_goodbye(k, CloseCause::Shutdown),
                Role::Http(None) if c.pending_in.is_empty() && c.out.is_empty() => {
                    self.close(k, Some(CloseCause::Shutdown))
                }
                Role::Http(_) => c.flags.draining = true,
            }
        }
    }

    fn drain_finished(&self) -> bool {
        match self.drain_until {
            Some(until) => self.conns.is_empty() || Instant::now() >= until,
            None => false,
        }
    }

    /// Writes every dirty connection's queue once.
    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &k in &dirty {
            self.flush(k);
        }
        // Reuse the allocation for the next turn.
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
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
                if n > 0 {
                    c.last_write = self.now;
                }
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
            Err(_) => self.peer_gone(k, PeerGone::WriteError),
        }
    }

    /// Queues `bytes` on connection `k` and marks it for this turn's flush.
    fn send(&mut self, k: usize, mut bytes: Vec<u8>) {
        if self.omit_body {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                bytes.truncate(end + 4);
            }
        }
        if let Some(c) = self.conns.get_mut(k) {
            c.out.push_vec(bytes);
            mark_dirty(&mut self.dirty, k, c);
        }
    }

    /// Sends what is queued, then closes (used after a final response).
    fn close_after_flush(&mut self, k: usize, cause: Option<CloseCause>) {
        if let Some(c) = self.conns.get_mut(k) {
            if c.flags.close_after_flush {
                return;
            }
            c.flags.close_after_flush = true;
            mark_dirty(&mut self.dirty, k, c);
            if let Some(cause) = cause {
                ReactorStats::add(&self.stats().closed_by_server[cause as usize], 1);
            }
            self.unsubscribe_all(k);
        }
    }

    /// The peer went away (noticed as `how`): reap the connection.
    fn peer_gone(&mut self, k: usize, how: PeerGone) {
        let closing = self.conns.get(k).is_some_and(|c| c.flags.close_after_flush);
        if !closing {
            ReactorStats::add(&self.stats().peers_gone[how as usize], 1);
        }
        self.close(k, None);
    }

    /// Closes connection `k` now: unsubscribes it, deregisters, frees the
    /// slot. `cause` is counted when the server decided it.
    fn close(&mut self, k: usize, cause: Option<CloseCause>) {
        if !self.conns.contains(k) {
            return;
        }
        self.unsubscribe_all(k);
        let mut c = self.conns.remove(k);
        let _ = self.poll.registry().deregister(&mut c.socket);
        self.shared.open_connections.fetch_sub(1, Ordering::Relaxed);
        let st = &self.shared.stats.reactors[self.id];
        st.connections[c.kind() as usize].fetch_sub(1, Ordering::Relaxed);
        if let Some(cause) = cause {
            ReactorStats::add(&st.closed_by_server[cause as usize], 1);
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            // Best effort: push out what is queued (a goodbye) without waiting.
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            let _ = c.out.write_to(&mut c.socket);
            // A connection already closing was counted under its own cause.
            let cause = (!c.flags.close_after_flush).then_some(CloseCause::Shutdown);
            self.close(k, cause);
        }
    }
}

/// Whether two messages went to the same channels (so one fanout pass
/// serves both).
fn same_channels(a: &Message, b: &Message) -> bool {
    a.channels.len() == b.channels.len()
        && a.channels
            .iter()
            .zip(b.channels.iter())
            .all(|(x, y)| x.id == y.id)
}

fn mark_dirty(dirty: &mut Vec<usize>, k: usize, c: &mut Conn) {
    if !c.flags.dirty {
        c.flags.dirty = true;
        dirty.push(k);
    }
}
