//! Starting and stopping a server: sockets, reactors, hub.

use bytes::Bytes;
use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::cluster::{Backplane, RedisTls};
use crate::config::{Config, RELOADABLE};
use crate::logging::EventBudget;
use crate::proto::signal::Pings;
use crate::proto::EncodeSettings;
use crate::pubsub::bus;
use crate::pubsub::hub::{Hub, HubSettings};
use crate::pubsub::store::StoreLimits;
use crate::reactor::{
    LiveSettings, PerIpConnections, Reactor, ReactorSetup, Settings, Shared, WAKER,
};
use crate::status::Stats;
use crate::tls::TlsContext;

/// Entry point for embedding and tests.
pub struct Server;

/// A running server: its address, and the way to stop it.
pub struct Handle {
    addr: SocketAddr,
    /// The `tls-listen` address, when TLS has a listener of its own.
    tls_addr: Option<SocketAddr>,
    tls: Option<Arc<TlsContext>>,
    hub: Arc<Hub>,
    backplane: Option<Arc<Backplane>>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// What [`Handle::reload`] did: setting names, kebab-case as in the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reloaded {
    /// Changed, and in effect from now on.
    pub applied: Vec<String>,
    /// Changed in the new configuration but kept as they are until a
    /// restart (config::RELOADABLE lists what can change).
    pub need_restart: Vec<String>,
}

/// One listening socket per reactor on the same address (SO_REUSEPORT):
/// the kernel spreads new connections over reactors with no shared accept
/// queue and no hand-over between threads.
fn listener(addr: SocketAddr, backlog: u32) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// Logs the certificate in use, with a warning when it runs out soon (a
/// renewal that keeps failing shows here weeks before clients notice).
fn log_certificate(tls: &TlsContext, loaded: &crate::tls::Loaded) {
    let now = crate::tls::unix_now();
    let line = loaded.describe(now);
    let path = tls.cert_path().display();
    match loaded.not_after {
        Some(t) if t - now < 14 * 86_400 => log::warn!("TLS certificate {path}: {line}"),
        _ => log::info!("TLS certificate {path}: {line}"),
    }
}

/// The listening sockets of one address, one per reactor; returns the
/// bound address (the port the kernel chose for port 0).
fn bind_all(
    at: SocketAddr,
    workers: usize,
    backlog: u32,
) -> io::Result<(SocketAddr, Vec<mio::net::TcpListener>)> {
    let first = listener(at, backlog)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..workers {
        all.push(listener(addr, backlog)?);
    }
    Ok((addr, all))
}

impl Server {
    /// Validates `config`, binds, and starts one reactor thread per worker.
    /// With port 0 the kernel picks a port: [`Handle::addr`] tells which.
    pub fn start(config: Config) -> io::Result<Handle> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let workers = config.worker_count();
        let tls_where = config
            .tls_addresses()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = match tls_where {
            None => None,
            Some(_) => {
                let (ctx, loaded) =
                    TlsContext::load(config.tls_cert.as_ref(), config.tls_key.as_ref())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                log_certificate(&ctx, &loaded);
                Some(Arc::new(ctx))
            }
        };
        let (addr, listeners) = bind_all(config.listen, workers, config.backlog)?;
        let (tls_addr, mut tls_listeners) = match tls_where.flatten() {
            Some(at) => {
                let (a, ls) = bind_all(at, workers, config.backlog)?;
                (Some(a), ls.into_iter().map(Some).collect())
            }
            None => (None, (0..workers).map(|_| None).collect::<Vec<_>>()),
        };
        let listener_tls = tls.is_some() && tls_addr.is_none();
        let mut polls = Vec::with_capacity(workers);
        let mut links = Vec::with_capacity(workers);
        let mut inboxes = Vec::with_capacity(workers);
        for _ in 0..workers {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), WAKER)?;
            let (link, inbox) = bus::inbox(waker);
            polls.push(poll);
            links.push(link);
            inboxes.push(inbox);
        }
        let store_limits = StoreLimits {
            per_channel: config.store_messages,
            ttl_ms: config.message_ttl.saturating_mul(1000),
            max_bytes: config.store_max_bytes,
        };
        let links_for_backplane = links.clone();
        let remote = !config.redis_urls().is_empty();
        let hub = Arc::new(Hub::new(
            links,
            HubSettings {
                // With a backplane the history lives in Redis.
                store: StoreLimits {
                    per_channel: if remote { 0 } else { store_limits.per_channel },
                    ..store_limits
                },
                channel_idle_ttl_ms: config.channel_idle_ttl.saturating_mul(1000),
                max_channels: config.max_channels,
                max_subscribers_per_channel: config.max_subscribers_per_channel,
                remote,
            },
        ));
        let backplane = match config.redis_urls().as_slice() {
            [] => None,
            urls => {
                let tls = RedisTls::load(
                    &config.redis_tls_ca,
                    &config.redis_tls_cert,
                    &config.redis_tls_key,
                )?;
                let bp = Backplane::start(
                    urls,
                    &tls,
                    &config.redis_prefix,
                    store_limits,
                    hub.clone(),
                    links_for_backplane,
                )?;
                hub.set_watcher(bp.clone());
                Some(bp)
            }
        };
        let shared = Arc::new(Shared {
            backplane: backplane.clone(),
            encode: EncodeSettings {
                stream_separator: Bytes::from(config.stream_separator.clone().into_bytes()),
                deflate_min_size: config.deflate_min_size,
                push_stream: config.push_stream_templates(),
            },
            pings: Pings::new(config.stream_ping.as_bytes()),
            open_connections: AtomicUsize::new(0),
            per_ip: PerIpConnections::new(config.max_connections_per_ip),
            events: EventBudget::new(config.log_events_per_second),
            tls: tls.clone(),
            stats: Stats::new(workers),
            settings: LiveSettings::new(
                Settings::new(config)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            ),
        });
        let mut threads = Vec::with_capacity(workers);
        for (id, ((poll, listener), inbox)) in
            polls.into_iter().zip(listeners).zip(inboxes).enumerate()
        {
            let mut setup = ReactorSetup {
                id,
                poll,
                listener,
                listener_tls,
                tls_listener: tls_listeners[id].take(),
                inbox,
                hub: hub.clone(),
                shared: shared.clone(),
            };
            setup.register_listener()?;
            let t = std::thread::Builder::new()
                .name(format!("crier-reactor-{id}"))
                .spawn(move || Reactor::new(setup).run())?;
            threads.push(t);
        }
        let tls_note = match (&tls, tls_addr) {
            (None, _) => String::new(),
            (Some(_), None) => " (TLS)".into(),
            (Some(_), Some(a)) => format!(", TLS on {a}"),
        };
        log::info!("crier listening on {addr} with {workers} reactor(s){tls_note}");
        Ok(Handle {
            addr,
            tls_addr,
            tls,
            hub,
            backplane,
            shared,
            threads,
        })
    }
}

impl Handle {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `tls-listen` address, when TLS is served on one of its own
    /// (with `listen` plaintext); `None` otherwise.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Whether this server speaks TLS (on `listen` or on `tls-listen`).
    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// Re-reads the certificate and key files and uses them for every new
    /// handshake; connections already up keep theirs, nothing is dropped.
    /// A certificate or key that cannot be read, or a key that does not
    /// match, is refused (the error says why, never with key material) and
    /// the current pair stays in use.
    pub fn reload_tls(&self) -> Result<(), String> {
        let Some(tls) = &self.tls else {
            return Err("TLS is off (no tls-cert and tls-key)".into());
        };
        let loaded = tls.reload()?;
        log_certificate(tls, &loaded);
        Ok(())
    }

    /// Applies what can change in a running server from `new` (limits,
    /// timeouts, secrets, access lists, origins, log level: see
    /// `config::RELOADABLE`). Every connection stays; each reactor takes the
    /// new settings at its next loop turn. An invalid `new` changes
    /// nothing. Secrets' values never appear in what it returns.
    pub fn reload(&self, new: Config) -> Result<Reloaded, String> {
        new.validate()?;
        let (current, _) = self.shared.settings.load();
        let mut next = current.config.clone();
        next.take_reloadable(&new);
        next.validate()?;
        let (applied, need_restart) = current
            .config
            .differences(&new)
            .into_iter()
            .partition(|name| RELOADABLE.contains(&name.replace('-', "_").as_str()));
        let settings = Settings::new(next)?;
        crate::logging::set_level(&settings.config.log_level);
        self.shared
            .per_ip
            .set_limit(settings.config.max_connections_per_ip);
        self.shared
            .events
            .set_rate(settings.config.log_events_per_second);
        self.shared.settings.store(settings);
        Ok(Reloaded {
            applied,
            need_restart,
        })
    }

    /// `drain-timeout` as now set (it can change on reload).
    pub fn drain_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shared.settings.load().0.config.drain_timeout)
    }

    /// Stops at once: closes every connection and waits for the reactors.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Graceful stop: reactors stop accepting, ask subscribers to reconnect
    /// later (jittered SSE `retry:`, WebSocket 1001), let requests in
    /// progress finish, and exit when their connections are gone or after
    /// `timeout`. Returns once every reactor has exited.
    pub fn drain(mut self, timeout: std::time::Duration) {
        self.hub.drain_all(std::time::Instant::now() + timeout);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(bp) = self.backplane.take() {
            bp.shutdown();
        }
    }

    /// Starts a drain without waiting (see [`drain`](Self::drain)); a later
    /// `shutdown` or drop still stops everything.
    pub fn begin_drain(&self, timeout: std::time::Duration) {
        self.hub.drain_all(std::time::Instant::now() + timeout);
    }

    /// Whether every reactor thread has exited.
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    fn stop_and_join(&mut self) {
        self.hub.shutdown_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(bp) = self.backplane.take() {
            bp.shutdown();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}
