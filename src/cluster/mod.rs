//! The Redis backplane: several crier nodes share channels, ids and
//! history through Redis (docs/CLUSTER.md).
//!
//! One thread runs a small tokio runtime with one task per Redis shard;
//! reactors never block on Redis. They hand requests to a shard's task
//! through an unbounded queue and get answers in their inbox
//! (`Delivery::Published`, `Delivery::Replay`), woken like any other
//! delivery. Messages arriving over Redis pub/sub go through the hub to
//! the reactors with local subscribers, so fanout is the same code as on
//! a single node.
//!
//! A node listens (SUBSCRIBE) only to channels it has local subscribers
//! for: the hub tells the backplane through [`RemoteWatch`].

mod ids;
mod shard;
mod stats;
mod wire;

use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

pub use ids::{encode_positions, parse_positions, shard_of};
pub use stats::ShardFigures;

use crate::pubsub::bus::ReactorLink;
use crate::pubsub::hub::Hub;
use crate::pubsub::message::Publication;
use crate::pubsub::remote::RemoteWatch;
use crate::pubsub::store::StoreLimits;
use stats::ShardStats;
use wire::Keys;

/// Where the answer to a request goes: a connection of a reactor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    pub reactor: usize,
    pub key: usize,
    pub generation: u32,
}

/// A message to publish to channels of one shard.
#[derive(Debug)]
pub struct PublishRequest {
    pub channels: Vec<String>,
    pub publication: Publication,
    /// None: nobody waits for the answer (a WebSocket client's message).
    pub reply: Option<ReplyTo>,
    /// Counted in this node's `published_messages` once accepted: true on
    /// one part only of a message that spans shards.
    pub counts: bool,
}

/// Where one channel of a resuming subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStart {
    pub channel: String,
    /// Every stored message after this seq.
    pub after: Option<u64>,
    /// The last `backtrack` stored messages.
    pub backtrack: usize,
    /// Every stored message published at or after this time (ms).
    pub since_ms: Option<u64>,
    /// `--first-message`: every stored message but the oldest this many.
    pub all_but_oldest: Option<usize>,
}

/// History wanted from one shard for a subscriber.
#[derive(Debug)]
pub struct ReplayRequest {
    pub reply: ReplyTo,
    pub channels: Vec<ChannelStart>,
}

/// Work for a shard's task.
#[derive(Debug)]
enum Request {
    Publish(PublishRequest),
    Watch(String),
    Unwatch(String),
    Replay(ReplayRequest),
    Delete(String),
    Shutdown,
}

/// One shard as the rest of the server sees it.
struct Shard {
    url: String,
    queue: UnboundedSender<Request>,
    stats: Arc<ShardStats>,
}

/// What every shard task shares.
pub(crate) struct Context {
    pub hub: Arc<Hub>,
    pub links: Vec<ReactorLink>,
    pub keys: Keys,
    pub store: StoreLimits,
}

/// The backplane of one node.
pub struct Backplane {
    shards: Vec<Shard>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Certificates for `rediss://` shards (`redis-tls-*`), read at start.
#[derive(Debug, Default)]
pub struct RedisTls {
    /// PEM roots to trust instead of the system's.
    pub ca: Option<Vec<u8>>,
    /// PEM certificate and key for servers that check clients.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl RedisTls {
    /// Reads the files named by `redis-tls-ca`, `-cert` and `-key` (empty:
    /// not used).
    pub fn load(ca: &str, cert: &str, key: &str) -> io::Result<RedisTls> {
        let read = |what: &str, path: &str| {
            std::fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("{what} {path}: {e}")))
        };
        Ok(RedisTls {
            ca: (!ca.is_empty())
                .then(|| read("redis-tls-ca", ca))
                .transpose()?,
            client: match (cert.is_empty(), key.is_empty()) {
                (false, false) => {
                    Some((read("redis-tls-cert", cert)?, read("redis-tls-key", key)?))
                }
                _ => None,
            },
        })
    }

    /// A client for `url`: with these certificates for `rediss://`.
    fn client(&self, url: &str) -> io::Result<redis::Client> {
        let invalid = |e: redis::RedisError| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {e}", redact(url)))
        };
        if !url.starts_with("rediss://") || (self.ca.is_none() && self.client.is_none()) {
            return redis::Client::open(url).map_err(invalid);
        }
        let certs = redis::TlsCertificates {
            client_tls: self
                .client
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
            root_cert: self.ca.clone(),
        };
        redis::Client::build_with_tls(url, certs).map_err(invalid)
    }
}

/// `redis://user:secret@host:6379/0` without its credentials, for logs and
/// `/status`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl Backplane {
    /// Starts one task per shard URL; connecting happens in the background
    /// (a node whose Redis is down serves and reports, and retries).
    pub fn start(
        urls: &[&str],
        tls: &RedisTls,
        prefix: &str,
        store: StoreLimits,
        hub: Arc<Hub>,
        links: Vec<ReactorLink>,
    ) -> io::Result<Arc<Backplane>> {
        let ctx = Arc::new(Context {
            hub,
            links,
            keys: Keys::new(prefix),
            store,
        });
        let mut shards = Vec::new();
        let mut tasks = Vec::new();
        for (index, url) in urls.iter().enumerate() {
            let client = tls.client(url)?;
            let (queue, requests) = unbounded_channel();
            let stats = Arc::new(ShardStats::default());
            tasks.push(shard::ShardTask::new(
                index as u16,
                redact(url),
                client,
                requests,
                ctx.clone(),
                stats.clone(),
            ));
            shards.push(Shard {
                url: redact(url),
                queue,
                stats,
            });
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("crier-backplane".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let handles: Vec<_> =
                        tasks.into_iter().map(|t| tokio::spawn(t.run())).collect();
                    for h in handles {
                        let _ = h.await;
                    }
                })
            })?;
        Ok(Arc::new(Backplane {
            shards,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// How many shards channels are spread over.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard of `channel`.
    pub fn shard_of(&self, channel: &str) -> usize {
        shard_of(channel, self.shards.len())
    }

    /// Whether shard `shard` is connected.
    pub fn is_up(&self, shard: usize) -> bool {
        self.shards[shard]
            .stats
            .up
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts a publish answered 503 without reaching `shard`'s task, for
    /// the shard being down (the reactor refuses those itself).
    pub fn count_refused(&self, shard: usize) {
        ShardStats::add(&self.shards[shard].stats.publishes_refused, 1);
    }

    /// Publishes to channels that all live on `shard`.
    pub fn publish(&self, shard: usize, request: PublishRequest) {
        self.send(shard, Request::Publish(request));
    }

    /// Fetches history from `shard` for a resuming subscriber.
    pub fn replay(&self, shard: usize, request: ReplayRequest) {
        self.send(shard, Request::Replay(request));
    }

    /// Deletes a channel and its history fleet-wide.
    pub fn delete(&self, channel: &str) {
        self.send(self.shard_of(channel), Request::Delete(channel.into()));
    }

    fn send(&self, shard: usize, request: Request) {
        // The task lives as long as the backplane; after shutdown nothing
        // is listening and a lost request does not matter.
        let _ = self.shards[shard].queue.send(request);
    }

    /// Every shard's figures, for `/status`.
    pub fn figures(&self) -> Vec<ShardFigures> {
        self.shards
            .iter()
            .map(|s| s.stats.figures(&s.url))
            .collect()
    }

    /// Stops the tasks and waits for them (bounded: a task stuck on a
    /// Redis that does not answer is given up on).
    pub fn shutdown(&self) {
        for s in &self.shards {
            let _ = s.queue.send(Request::Shutdown);
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

impl RemoteWatch for Backplane {
    fn watch(&self, channel: &str) {
        self.send(self.shard_of(channel), Request::Watch(channel.into()));
    }

    fn unwatch(&self, channel: &str) {
        self.send(self.shard_of(channel), Request::Unwatch(channel.into()));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_never_show() {
        assert_eq!(
            super::redact("redis://:hunter2@10.0.0.1:6379/2"),
            "redis://10.0.0.1:6379/2"
        );
        assert_eq!(
            super::redact("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
