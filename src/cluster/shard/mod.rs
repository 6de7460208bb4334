//! One Redis shard's task: its two connections (commands, pub/sub), the
//! channels this node listens to there, publishing, replays for resuming
//! subscribers, and recovery after Redis was unreachable.
//!
//! The task's loop is the only reader of the shard's pub/sub stream, so it
//! hands messages to the hub in the shard's sequence order. Per channel it
//! remembers the last seq it handed on: after a reconnect it asks the
//! history for everything newer (so a subscriber that stayed connected
//! misses nothing Redis stored), and drops the copies pub/sub brings again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::timeout;

use super::stats::ShardStats;
use super::wire::{parse_envelope, Envelope, DELETED, MARKER_TTL_MS, PUBLISH_SCRIPT};
use super::{Context, PublishRequest, ReplayRequest, ReplyTo, Request};
use crate::pubsub::bus::Delivery;
use crate::pubsub::remote::{PublishOutcome, RemoteMessage, ReplayPart};

/// Longest wait for any Redis answer: past it the connection is presumed
mod history;
mod replies;

use history::fetch_replay;
use replies::{published, remote_message};
/// dead, publishes are answered 503 and the task reconnects.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Reconnect delays grow from the first to the last, each with full jitter
/// (a fleet that lost Redis does not come back in step).
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_LAST: Duration = Duration::from_secs(10);

/// How often the round trip is measured (and a silent death noticed).
const PING_EVERY: Duration = Duration::from_secs(1);

/// How long a broken session's pub/sub stream is read for what Redis had
/// already sent.
const DRAIN_GRACE: Duration = Duration::from_millis(100);

/// Most publishes sent in one pipeline.
const MAX_BATCH: usize = 64;

/// Most pub/sub messages handed to the hub under one lock.
const MAX_DELIVERY: usize = 256;

/// The answer given while Redis cannot take a publish.
const UNAVAILABLE: &str = "backplane unavailable: Redis is not reachable";

pub(super) struct ShardTask {
    index: u16,
    url: String,
    client: redis::Client,
    requests: UnboundedReceiver<Request>,
    ctx: Arc<Context>,
    stats: Arc<ShardStats>,
    /// Channels with local subscribers, and the last seq handed on for each.
    watched: HashMap<String, u64>,
    /// Replays asked for while Redis was unreachable.
    waiting: Vec<ReplayRequest>,
    /// A request taken out while batching publishes, handled next.
    next: Option<Request>,
    stopping: bool,
}

/// A live session's connections.
struct Session {
    cmd: MultiplexedConnection,
    pubsub: redis::aio::PubSub,
    sha: String,
}

impl ShardTask {
    pub fn new(
        index: u16,
        url: String,
        client: redis::Client,
        requests: UnboundedReceiver<Request>,
        ctx: Arc<Context>,
        stats: Arc<ShardStats>,
    ) -> ShardTask {
        ShardTask {
            index,
            url,
            client,
            requests,
            ctx,
            stats,
            watched: HashMap::new(),
            waiting: Vec::new(),
            next: None,
            stopping: false,
        }
    }

    /// Connects, serves, and reconnects with backoff until shut down.
    pub async fn run(mut self) {
        let mut delay = BACKOFF_FIRST;
        let mut connected_before = false;
        let mut reported_down = false;
        loop {
            match timeout(CALL_TIMEOUT, self.connect()).await {
                Ok(Ok(session)) => {
                    delay = BACKOFF_FIRST;
                    reported_down = false;
                    self.set_up(true);
                    if connected_before {
                        ShardStats::add(&self.stats.reconnects, 1);
                    }
                    connected_before = true;
                    log::info!("backplane: shard {} ({}) connected", self.index, self.url);
                    let why = self.session(session).await;
                    self.set_up(false);
                    if self.stopping {
                        return;
                    }
                    log::warn!("backplane: shard {} ({}) lost: {why}", self.index, self.url);
                }
                Ok(Err(e)) if !reported_down => {
                    log::warn!(
                        "backplane: shard {} ({}) unreachable: {e}",
                        self.index,
                        self.url
                    );
                    reported_down = true;
                }
                Err(_) if !reported_down => {
                    log::warn!(
                        "backplane: shard {} ({}) unreachable: timeout",
                        self.index,
                        self.url
                    );
                    reported_down = true;
                }
                _ => {}
            }
            if self.stopping {
                return;
            }
            let wait = jitter(delay);
            delay = (delay * 2).min(BACKOFF_LAST);
            let until = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    req = self.requests.recv() => match req {
                        Some(r) => self.while_down(r),
                        None => return,
                    },
                }
                if self.stopping {
                    return;
                }
            }
        }
    }

    fn set_up(&self, up: bool) {
        self.stats
            .up
            .store(up, std::sync::atomic::Ordering::Relaxed);
    }

    async fn connect(&self) -> redis::RedisResult<Session> {
        let mut cmd = self.client.get_multiplexed_async_connection().await?;
        let pubsub = self.client.get_async_pubsub().await?;
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(PUBLISH_SCRIPT)
            .query_async(&mut cmd)
            .await?;
        Ok(Session { cmd, pubsub, sha })
    }

    /// What a request gets while Redis is unreachable: publishes are
    /// refused (503), the rest is remembered for when it is back.
    fn while_down(&mut self, req: Request) {
        match req {
            Request::Publish(p) => {
                ShardStats::add(&self.stats.publishes_refused, 1);
                self.answer(p.reply, PublishOutcome::Unavailable(UNAVAILABLE));
            }
            Request::Watch(ch) => {
                self.watched.entry(ch).or_insert(0);
            }
            Request::Unwatch(ch) => {
                self.watched.remove(&ch);
            }
            Request::Replay(r) => self.waiting.push(r),
            Request::Delete(ch) => {
                log::warn!("backplane: delete of {ch:?} not sent, Redis unreachable")
            }
            Request::Shutdown => self.stopping = true,
        }
        self.count_channels();
    }

    fn count_channels(&self) {
        self.stats.channels.store(
            self.watched.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Serves one connected session; returns why it ended.
    async fn session(&mut self, session: Session) -> String {
        let Session {
            mut cmd,
            pubsub,
            sha,
        } = session;
        let (mut sink, mut stream) = pubsub.split();
        let why = self.serve(&mut cmd, &mut sink, &mut stream, &sha).await;
        self.drain(&mut stream).await;
        why
    }

    /// What Redis already sent before the session broke still counts: a
    /// message it published (and answered the publisher for) may sit in
    /// the pub/sub socket, and a Redis restarted without persistence has
    /// no history to recover it from. Bounded: a hung connection is given
    /// [`DRAIN_GRACE`] per message.
    async fn drain(&mut self, stream: &mut PubSubStream) {
        while let Ok(Some(msg)) = timeout(DRAIN_GRACE, stream.next()).await {
            self.take_messages(msg, stream);
        }
    }

    async fn serve(
        &mut self,
        cmd: &mut MultiplexedConnection,
        sink: &mut PubSubSink,
        stream: &mut PubSubStream,
        sha: &str,
    ) -> String {
        let names: Vec<String> = self.watched.keys().cloned().collect();
        for ch in &names {
            if let Err(e) = call(sink.subscribe(self.ctx.keys.pubsub(ch))).await {
                return e;
            }
        }
        if let Err(e) = self.recover(cmd).await {
            return e;
        }
        let (broken, mut broken_rx) = unbounded_channel::<String>();
        for r in std::mem::take(&mut self.waiting) {
            self.spawn_replay(cmd.clone(), r, broken.clone());
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            let req = match self.next.take() {
                Some(r) => Some(r),
                None => tokio::select! {
                    req = self.requests.recv() => match req {
                        Some(r) => Some(r),
                        None => return "shutting down".into(),
                    },
                    msg = stream.next() => {
                        let Some(msg) = msg else {
                            return "pub/sub connection closed".into();
                        };
                        self.take_messages(msg, stream);
                        None
                    }
                    _ = ping.tick() => {
                        self.spawn_ping(cmd.clone(), broken.clone());
                        None
                    }
                    why = broken_rx.recv() => return why.unwrap_or_default(),
                },
            };
            let Some(req) = req else {
                continue;
            };
            match req {
                Request::Publish(first) => {
                    let batch = self.gather_publishes(first);
                    self.spawn_publish(cmd.clone(), sha.to_string(), batch, broken.clone());
                }
                Request::Watch(ch) => {
                    if self.watched.contains_key(&ch) {
                        continue;
                    }
                    if let Err(e) = call(sink.subscribe(self.ctx.keys.pubsub(&ch))).await {
                        return e;
                    }
                    // Messages after this seq reach us over pub/sub from now on.
                    let seq: Option<u64> =
                        match call(redis::cmd("GET").arg(self.ctx.keys.seq()).query_async(cmd))
                            .await
                        {
                            Ok(s) => s,
                            Err(e) => return e,
                        };
                    self.watched.insert(ch, seq.unwrap_or(0));
                    self.count_channels();
                }
                Request::Unwatch(ch) => {
                    if self.watched.remove(&ch).is_some() {
                        if let Err(e) = call(sink.unsubscribe(self.ctx.keys.pubsub(&ch))).await {
                            return e;
                        }
                    }
                    self.count_channels();
                }
                Request::Replay(r) => self.spawn_replay(cmd.clone(), r, broken.clone()),
                Request::Delete(ch) => self.spawn_delete(cmd.clone(), ch),
                Request::Shutdown => {
                    self.stopping = true;
                    return "shutting down".into();
                }
            }
        }
    }

    /// Takes every publish already queued behind `first` (up to a batch);
    /// the first other request is kept for the loop, in order.
    fn gather_publishes(&mut self, first: PublishRequest) -> Vec<PublishRequest> {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match self.requests.try_recv() {
                Ok(Request::Publish(p)) => batch.push(p),
                Ok(other) => {
                    self.next = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        batch
    }

    /// Hands `first` and whatever else pub/sub has ready to the hub.
    fn take_messages(
        &mut self,
        first: redis::Msg,
        stream: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin),
    ) {
        let mut batch = Vec::new();
        self.take_message(first, &mut batch);
        while batch.len() < MAX_DELIVERY {
            match stream.next().now_or_never() {
                Some(Some(msg)) => self.take_message(msg, &mut batch),
                _ => break,
            }
        }
        ShardStats::add(&self.stats.messages_received, batch.len() as u64);
        if !batch.is_empty() {
            self.ctx.hub.deliver_remote(batch);
        }
    }

    fn take_message(&mut self, msg: redis::Msg, batch: &mut Vec<RemoteMessage>) {
        let Some(channel) = self.ctx.keys.channel_of(msg.get_channel_name()) else {
            return;
        };
        match parse_envelope(msg.get_payload_bytes()) {
            Some(Envelope::Deleted) => {
                // Keep the order: what came before the deletion goes first.
                self.ctx.hub.deliver_remote(std::mem::take(batch));
                self.ctx.hub.deleted_remotely(channel);
            }
            Some(Envelope::Message {
                seq,
                published_at_ms,
                event,
                content_type,
                payload,
            }) => {
                let Some(last) = self.watched.get_mut(channel) else {
                    return;
                };
                if seq <= *last {
                    return;
                }
                *last = seq;
                batch.push(remote_message(
                    channel,
                    self.index,
                    seq,
                    published_at_ms,
                    event,
                    content_type,
                    payload,
                ));
            }
            None => log::warn!("backplane: unreadable message on {channel:?}"),
        }
    }

    fn answer(&self, to: Option<ReplyTo>, outcome: PublishOutcome) {
        if let Some(to) = to {
            let link = &self.ctx.links[to.reactor];
            link.push(Delivery::Published {
                key: to.key,
                generation: to.generation,
                outcome,
            });
            link.wake();
        }
    }

    fn spawn_publish(
        &self,
        mut cmd: MultiplexedConnection,
        sha: String,
        batch: Vec<PublishRequest>,
        broken: UnboundedSender<String>,
    ) {
        let ctx = self.ctx.clone();
        let stats = self.stats.clone();
        let shard = self.index;
        tokio::spawn(async move {
            let keys = &ctx.keys;
            let store = ctx.store;
            let mut pipe = redis::pipe();
            for p in &batch {
                let c = pipe
                    .cmd("EVALSHA")
                    .arg(&sha)
                    .arg(1 + 4 * p.channels.len())
                    .arg(keys.seq());
                for ch in &p.channels {
                    c.arg(keys.history(ch))
                        .arg(keys.forgotten(ch))
                        .arg(keys.count(ch))
                        .arg(keys.pubsub(ch));
                }
                let pb = &p.publication;
                c.arg(store.per_channel)
                    .arg(store.ttl_ms)
                    .arg(MARKER_TTL_MS.max(store.ttl_ms))
                    .arg(pb.event_type.as_deref().unwrap_or("").as_bytes())
                    .arg(pb.content_type.as_deref().unwrap_or("").as_bytes())
                    .arg(&pb.payload[..]);
            }
            let result: Result<Vec<Value>, String> = call(pipe.query_async(&mut cmd)).await;
            let results = match result {
                Ok(r) => r,
                Err(e) => {
                    let _ = broken.send(format!("publish: {e}"));
                    Vec::new()
                }
            };
            let mut counted = 0;
            for (i, p) in batch.into_iter().enumerate() {
                let outcome = match results
                    .get(i)
                    .and_then(|v| published(v, &p.channels, shard))
                {
                    Some(channels) => {
                        ShardStats::add(&stats.publishes_forwarded, 1);
                        counted += u64::from(p.counts);
                        PublishOutcome::Accepted(channels)
                    }
                    None => {
                        ShardStats::add(&stats.publishes_refused, 1);
                        PublishOutcome::Unavailable(UNAVAILABLE)
                    }
                };
                if let Some(to) = p.reply {
                    let link = &ctx.links[to.reactor];
                    link.push(Delivery::Published {
                        key: to.key,
                        generation: to.generation,
                        outcome,
                    });
                    link.wake();
                }
            }
            if counted > 0 {
                ctx.hub.note_published(counted);
            }
        });
    }

    fn spawn_replay(
        &self,
        mut cmd: MultiplexedConnection,
        request: ReplayRequest,
        broken: UnboundedSender<String>,
    ) {
        let ctx = self.ctx.clone();
        let shard = self.index;
        tokio::spawn(async move {
            let part = match call(fetch_replay(&mut cmd, &ctx, shard, &request.channels)).await {
                Ok(part) => part,
                Err(e) => {
                    let _ = broken.send(format!("replay: {e}"));
                    // Nothing could be read: say so rather than resume
                    // silently from nothing.
                    ReplayPart {
                        shard,
                        messages: Vec::new(),
                        missed: true,
                        current: u64::MAX,
                    }
                }
            };
            let to = request.reply;
            let link = &ctx.links[to.reactor];
            link.push(Delivery::Replay {
                key: to.key,
                generation: to.generation,
                part,
            });
            link.wake();
        });
    }

    fn spawn_ping(&self, mut cmd: MultiplexedConnection, broken: UnboundedSender<String>) {
        let stats = self.stats.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let pong: Result<String, String> = call(redis::cmd("PING").query_async(&mut cmd)).await;
            match pong {
                Ok(_) => stats.rtt_us.store(
                    started.elapsed().as_micros() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                ),
                Err(e) => {
                    let _ = broken.send(format!("ping: {e}"));
                }
            }
        });
    }

    fn spawn_delete(&self, mut cmd: MultiplexedConnection, channel: String) {
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            let keys = &ctx.keys;
            let mut pipe = redis::pipe();
            pipe.cmd("DEL")
                .arg(keys.history(&channel))
                .arg(keys.forgotten(&channel))
                .arg(keys.count(&channel))
                .ignore()
                .cmd("PUBLISH")
                .arg(keys.pubsub(&channel))
                .arg(DELETED)
                .ignore();
            let done: Result<(), String> = call(pipe.query_async(&mut cmd)).await;
            if let Err(e) = done {
                log::warn!("backplane: delete of {channel:?} failed: {e}");
            }
        });
    }
}

/// Runs a Redis call with the call timeout; errors become their text.
async fn call<T>(f: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    match timeout(CALL_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer from Redis in time".into()),
    }
}

/// A delay in `0..=d` (full jitter).
fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let r = RandomState::new().hash_one(std::time::Instant::now());
    d.mul_f64((r % 10_000) as f64 / 10_000.0)
}
