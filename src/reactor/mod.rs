//! The event loop: one per core, owning its listener, its connections and
//! its local channel index outright.
//!
//! One loop turn: wait for readiness → accept / read / note writable →
//! drain the inbox (fanout: queue shared frames on local subscribers) →
//! answer long-polls → run due timers → write every reply, then a slice of
//! the subscribers with queued output (one `writev` each, however many
//! messages it holds; see `flush.rs`).
//!
//! The jobs live in their own files, all `impl Reactor`: `io.rs` (sockets:
//! accept, read, close), `flush.rs` (writing), `http.rs` (requests and publishing),
//! `subscribe.rs` (registration, replay, unsubscribe), `fanout.rs` (queueing
//! published messages), `websocket.rs`, `longpoll.rs`, `liveness.rs`
//! (deadlines, pings, goodbyes); the state they share is in `conn.rs`,
//! `local.rs`, `outqueue.rs` and `timer.rs`. TLS connections keep their
//! sessions beside the slab, in `tls/`.

mod access;
mod cluster;
mod compat;
mod conn;
mod events;
mod fanout;
mod flush;
mod http;
mod io;
mod latency;
mod liveness;
mod local;
mod longpoll;
mod outqueue;
mod per_ip;
mod settings;
mod sockopt;
mod subscribe;
pub mod timer;
mod tls;
mod websocket;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::Backplane;
use crate::http::route::STATUS_CHANNEL;
use crate::logging::EventBudget;
use crate::proto::signal::Pings;
use crate::proto::EncodeSettings;
use crate::pubsub::bus::{Delivery, Inbox};
use crate::pubsub::hub::Hub;
use crate::pubsub::message::{Message, Publication};
use crate::status::{render, ReactorStats, Snapshot, Stats};
use crate::tls::TlsContext;
use cluster::ClusterConns;
use conn::Conn;
use flush::FlushQueue;
use liveness::Jitter;
use local::LocalIndex;
pub use per_ip::PerIpConnections;
pub use settings::{LiveSettings, Settings};
use timer::{secs_to_ticks, Entry, TimerWheel, TICK, TICKS_PER_SEC};

/// Token of the listening socket.
pub const LISTENER: Token = Token(usize::MAX - 1);
/// Token of the cross-thread waker.
pub const WAKER: Token = Token(usize::MAX - 2);
/// Token of the second, TLS-only listening socket (`tls-listen`).
pub const TLS_LISTENER: Token = Token(usize::MAX - 3);

/// Wheel size: 1024 ticks of 250 ms, about four minutes per revolution.
const WHEEL_SLOTS: usize = 1024;

/// Most messages fanned out in one pass over the subscribers: enough to
/// touch each subscriber once per burst, few enough that the batch's
/// encodings stay in cache.
const MAX_FANOUT_BATCH: usize = 64;

/// State shared (read-only, or atomics) by every reactor.
pub struct Shared {
    /// What SIGHUP can change; each reactor keeps its own `Arc` of it.
    pub settings: LiveSettings,
    pub stats: Stats,
    /// Encodings shared by cached messages: fixed for the server's life.
    pub encode: EncodeSettings,
    pub pings: Pings,
    /// Open connections per address (`max-connections-per-ip`).
    pub per_ip: PerIpConnections,
    /// How many connection refusals and cuts get a log line.
    pub events: EventBudget,
    /// The Redis backplane, when `redis` is set.
    pub backplane: Option<Arc<Backplane>>,
    /// Open connections across all reactors (for `max-connections`).
    pub open_connections: AtomicUsize,
    /// Certificates and the rustls configuration, when TLS is on.
    pub tls: Option<Arc<TlsContext>>,
}

/// Everything a reactor thread needs, built before it starts.
pub struct ReactorSetup {
    pub id: usize,
    pub poll: Poll,
    pub listener: TcpListener,
    /// Whether `listener` serves TLS (cert and key given, no `tls-listen`).
    pub listener_tls: bool,
    /// The `tls-listen` socket, when there is one.
    pub tls_listener: Option<TcpListener>,
    pub inbox: Inbox,
    pub hub: Arc<Hub>,
    pub shared: Arc<Shared>,
}

/// One event loop.
pub struct Reactor {
    id: usize,
    poll: Poll,
    /// None once the reactor stopped accepting (draining).
    listener: Option<TcpListener>,
    listener_tls: bool,
    tls_listener: Option<TcpListener>,
    /// Sessions of this reactor's TLS connections, by slab key.
    tls: tls::TlsTable,
    inbox: Inbox,
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    /// The settings this reactor works with (refreshed once per turn).
    settings: Arc<Settings>,
    settings_version: u64,
    conns: Slab<Conn>,
    local: LocalIndex,
    scratch: Vec<u8>,
    /// Connections with output queued.
    flush: FlushQueue,
    /// Fanouts waiting for their writes (latency histograms).
    latency: latency::FanoutLatency,
    /// Backplane state of the connections that have any.
    cluster: ClusterConns,
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
}

impl ReactorSetup {
    /// Registers the listener for accept readiness; done before the thread
    /// starts so that `Server::start` reports a failure.
    pub fn register_listener(&mut self) -> std::io::Result<()> {
        self.poll
            .registry()
            .register(&mut self.listener, LISTENER, Interest::READABLE)?;
        if let Some(l) = &mut self.tls_listener {
            self.poll
                .registry()
                .register(l, TLS_LISTENER, Interest::READABLE)?;
        }
        Ok(())
    }
}

impl Reactor {
    /// Builds the reactor, on its own thread: connections hold
    /// thread-local `Rc`s (see `outqueue.rs`), so a reactor never moves.
    pub fn new(setup: ReactorSetup) -> Reactor {
        let (settings, settings_version) = setup.shared.settings.load();
        let cfg = &settings.config;
        let seed = Instant::now().elapsed().as_nanos() as u64 ^ crate::pubsub::hub::now_ms();
        Reactor {
            id: setup.id,
            poll: setup.poll,
            listener: Some(setup.listener),
            listener_tls: setup.listener_tls,
            tls_listener: setup.tls_listener,
            tls: tls::TlsTable::default(),
            inbox: setup.inbox,
            hub: setup.hub,
            conns: Slab::new(),
            local: LocalIndex::default(),
            scratch: vec![0; io::SCRATCH_BYTES],
            flush: FlushQueue::default(),
            latency: latency::FanoutLatency::default(),
            cluster: ClusterConns::default(),
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
            settings_version,
            settings: settings.clone(),
            jitter: Jitter::new(
                seed.wrapping_add((setup.id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            ),
            accept_paused_until: 0,
            drain_until: None,
            shared: setup.shared,
        }
    }

    fn stats(&self) -> &ReactorStats {
        &self.shared.stats.reactors[self.id]
    }

    /// Picks up settings a reload stored since the last turn.
    fn refresh_settings(&mut self) {
        if !self.shared.settings.changed_since(self.settings_version) {
            return;
        }
        let (settings, version) = self.shared.settings.load();
        self.ping_ticks = secs_to_ticks(settings.config.ping_interval);
        self.pong_ticks = secs_to_ticks(settings.config.pong_timeout);
        self.settings = settings;
        self.settings_version = version;
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
            let timeout = if self.more_to_read.is_empty() && !self.flush.has_backlog() {
                TICK
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                // A signal handler (SIGTERM) may interrupt the wait.
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("reactor {}: poll failed: {e}", self.id);
                    break;
                }
            }
            self.update_clock();
            self.refresh_settings();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_on(false),
                    TLS_LISTENER => self.accept_on(true),
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
            self.inbox.clear_wake();
            let stop = self.drain_inbox();
            self.finish_longpolls();
            self.run_timers();
            self.upkeep();
            self.flush_turn();
            if stop || self.drain_finished() {
                break;
            }
        }
        self.close_all();
        log::debug!("reactor {} stopped", self.id);
    }

    /// Drains the inbox. Returns true when the reactor must stop now.
    /// Consecutive messages to the same channels are fanned out as one
    /// batch (see [`fan_out`](Self::fan_out)); anything else ends a batch,
    /// so every delivery keeps its place in the order.
    fn drain_inbox(&mut self) -> bool {
        let mut stop = false;
        let mut batch: Vec<Arc<Message>> = Vec::new();
        while let Some(d) = self.inbox.try_recv() {
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
            Delivery::Published {
                key,
                generation,
                outcome,
            } => self.on_published(key, generation, outcome),
            Delivery::Replay {
                key,
                generation,
                part,
            } => self.on_replay(key, generation, part),
        }
        false
    }

    /// Reactor 0, about once a second: asks the hub to expire messages and
    /// collect idle channels (the hub has no thread of its own), and
    /// publishes the `/status` document on `$status` when anyone listens.
    fn upkeep(&mut self) {
        if self.id == 0 && self.now >= self.last_upkeep + TICKS_PER_SEC {
            self.last_upkeep = self.now;
            self.hub.maintain();
            self.publish_status();
            self.report_dropped_events();
        }
    }

    /// Every figure now, for `/status`, `/metrics` and `$status`.
    fn snapshot(&self) -> Snapshot {
        let backplane = self.shared.backplane.as_ref().map(|bp| bp.figures());
        Snapshot::take(&self.shared.stats, self.hub.totals(), backplane)
    }

    fn publish_status(&mut self) {
        let listening = self
            .hub
            .info(STATUS_CHANNEL)
            .is_some_and(|c| c.subscribers > 0);
        if !listening {
            return;
        }
        let snapshot = self.snapshot();
        let publication = Publication {
            payload: render::status_json(&snapshot).to_string().into(),
            event_type: Some("status".into()),
            content_type: Some("application/json".into()),
            event_id: None,
            system: true,
        };
        let _ = self
            .hub
            .publish(Some(self.id), &[STATUS_CHANNEL], publication);
    }

    fn drain_finished(&self) -> bool {
        match self.drain_until {
            Some(until) => self.conns.is_empty() || Instant::now() >= until,
            None => false,
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
