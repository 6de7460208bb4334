//! HTTP side of the reactor: the requests on a connection (pipelined, with
//! bodies), routing them, publishing, channel and status queries. Subscribe
//! requests are set up here and registered by `subscribe.rs`.

use bytes::Bytes;
use std::time::Instant;

use super::conn::{PendingPublish, Role};
use super::events::ConnEvent;
use super::subscribe::NewSubscriber;
use super::subscribe::SubscriberAccess;
use super::timer::secs_to_ticks;
use super::Reactor;
use crate::compat::{Dialect, SubDialect};
use crate::http::chunked::BodyReader;
use crate::http::request::{parse_head, BodyKind, HttpError, Limits, Method, RequestHead};
use crate::http::response::{self, Cors, ReplyMode};
use crate::http::route::{
    route, Route, RouteError, RouteLimit, RouteLimits, SubTransport, Subscription, STATUS_CHANNEL,
};
use crate::proto::{signal, sse, WireFormat};
use crate::pubsub::channel::{ChannelRequest, Resume};
use crate::pubsub::hub::{now_ms, LimitError};
use crate::pubsub::message::Publication;
use crate::status::{render, CloseCause, Latency, Limit, ReactorStats, TooLarge};

/// A publisher whose unread replies exceed this is not read from until they
/// drain: pipelining faster than it reads replies must not grow memory.
const MAX_UNREAD_REPLIES: usize = 256 * 1024;

impl Reactor {
    /// Answers a request the router refused (crier's or a compatibility
    /// mode's): counts a size limit it passed, sends what `error` builds
    /// (with an `Allow` line for a 405), and closes unless `mode` keeps the
    /// connection.
    pub(super) fn refuse_route(
        &mut self,
        k: usize,
        e: &RouteError,
        mode: ReplyMode,
        error: impl FnOnce(ReplyMode, &[&str]) -> Vec<u8>,
    ) {
        if let Some(limit) = e.limit {
            let passed = match limit {
                RouteLimit::Channels => TooLarge::Channels,
                RouteLimit::ChannelId => TooLarge::ChannelId,
            };
            self.note(Some(k), None, ConnEvent::TooLarge(passed));
        }
        let allow = e.allow.map(|a| format!("Allow: {a}"));
        let extra: Vec<&str> = allow.iter().map(String::as_str).collect();
        let bytes = error(mode, &extra);
        self.send(k, bytes);
        if !mode.keep_alive {
            self.close_after_flush(k, Some(CloseCause::BadInput));
        }
    }

    /// Handles the requests in `data`; returns the bytes consumed (the rest
    /// is an unfinished request, or belongs to what the connection became).
    /// `had_partial` says `data` starts with a request begun in an earlier
    /// read.
    pub(super) fn feed_http(&mut self, k: usize, data: &[u8], had_partial: bool) -> usize {
        let (used, completed) = self.process_http(k, data);
        self.rearm_http(k, had_partial, completed, used < data.len());
        used
    }

    /// HTTP deadlines: a request head must be complete within
    /// `handshake-timeout` of its first byte (dribbling does not extend it:
    /// slowloris), a body must make progress within `idle-timeout`, and a
    /// keep-alive connection may idle for `idle-timeout` between requests.
    fn rearm_http(&mut self, k: usize, had_partial: bool, completed: usize, unfinished: bool) {
        let cfg = &self.settings.config;
        let (handshake, idle) = (
            secs_to_ticks(cfg.handshake_timeout),
            secs_to_ticks(cfg.idle_timeout),
        );
        let Some(c) = self.conns.get(k) else {
            return;
        };
        if c.flags.close_after_flush() {
            return;
        }
        let deadline = match &c.role {
            Role::Http(Some(_)) => self.now + idle,
            Role::Http(None) if unfinished => {
                if completed == 0 && had_partial {
                    return;
                }
                self.now + handshake
            }
            Role::Http(None) if completed > 0 => self.now + idle,
            _ => return,
        };
        self.set_deadline(k, deadline);
    }

    fn limits(&self) -> Limits {
        let cfg = &self.settings.config;
        Limits {
            max_request_line: cfg.max_request_line,
            max_header_bytes: cfg.max_header_bytes,
            max_headers: cfg.max_headers,
            max_body_bytes: cfg.max_message_size,
        }
    }

    pub(super) fn route_limits(&self) -> RouteLimits {
        let cfg = &self.settings.config;
        RouteLimits {
            max_channels: cfg.max_channels_per_subscription,
            max_channel_id: cfg.max_channel_id,
        }
    }

    /// Answers a request that could not be read and closes the connection:
    /// the rest of its bytes cannot be framed.
    fn reject_input(&mut self, k: usize, e: &HttpError) {
        let limit = match e {
            HttpError::RequestLineTooLong => Some(TooLarge::RequestLine),
            HttpError::HeadersTooLarge => Some(TooLarge::HeaderBytes),
            HttpError::TooManyHeaders => Some(TooLarge::HeaderCount),
            HttpError::BodyTooLarge => Some(TooLarge::Body),
            HttpError::Malformed(_) | HttpError::UnsupportedTransferEncoding => None,
        };
        if let Some(limit) = limit {
            self.note(Some(k), None, ConnEvent::TooLarge(limit));
        }
        self.fail(k, e.status(), e.reason(), &[]);
    }

    /// Handles as many complete requests in `data` as possible; returns the
    /// bytes consumed and how many requests were completed.
    fn process_http(&mut self, k: usize, data: &[u8]) -> (usize, usize) {
        let limits = self.limits();
        let mut pos = 0;
        let mut completed = 0;
        loop {
            let Some(c) = self.conns.get_mut(k) else {
                return (data.len(), completed);
            };
            if c.flags.close_after_flush() {
                return (data.len(), completed);
            }
            if c.out.queued_bytes() > MAX_UNREAD_REPLIES {
                c.flags.set_read_paused(true);
                return (pos, completed);
            }
            if c.flags.awaiting_reply() {
                // Its publish is at the backplane: the next request waits.
                return (pos, completed);
            }
            match &mut c.role {
                Role::Http(Some(pending)) => {
                    match pending.reader.feed(&data[pos..], &mut pending.body) {
                        Ok((used, done)) => {
                            pos += used;
                            if !done {
                                return (pos, completed);
                            }
                            completed += 1;
                            if let Role::Http(slot) = &mut c.role {
                                if let Some(publish) = slot.take() {
                                    self.finish_publish(k, *publish);
                                }
                            }
                        }
                        Err(e) => {
                            self.reject_input(k, &e);
                            return (data.len(), completed);
                        }
                    }
                }
                Role::Http(None) => {
                    if pos == data.len() {
                        return (pos, completed);
                    }
                    match parse_head(&data[pos..], &limits) {
                        Ok(None) => return (pos, completed),
                        Ok(Some((head, used))) => {
                            pos += used;
                            if head.body == BodyKind::None {
                                completed += 1;
                            }
                            ReactorStats::add(&self.stats().requests, 1);
                            self.handle_request(k, head);
                        }
                        Err(e) => {
                            self.reject_input(k, &e);
                            return (data.len(), completed);
                        }
                    }
                }
                // It became a subscriber: the rest of the input is its.
                Role::Subscriber(_) => return (pos, completed),
            }
        }
    }

    /// Answers with an error and closes the connection once it is sent.
    /// Used where the request's `Origin` is not known (or not needed).
    pub(super) fn fail(&mut self, k: usize, status: u16, message: &str, extra: &[&str]) {
        let cors = self.cors_for(None);
        let bytes = response::error(&cors, status, message, ReplyMode::CLOSE, extra);
        self.send(k, bytes);
        self.close_after_flush(k, Some(CloseCause::BadInput));
    }

    /// Answers 429 for a limit that refused a request. A refused publish
    /// keeps its connection; a refused subscription closes it.
    pub(super) fn refuse(
        &mut self,
        k: usize,
        limit: &LimitError,
        cors: &Cors,
        mode: Option<ReplyMode>,
    ) {
        self.note(
            Some(k),
            None,
            ConnEvent::Refused(match limit {
                LimitError::TooManyChannels => Limit::Channels,
                LimitError::TooManySubscribers(_) => Limit::SubscribersPerChannel,
            }),
        );
        let mode = mode.unwrap_or(ReplyMode::CLOSE);
        let bytes = response::error(cors, 429, &limit.message(), mode, &[]);
        self.send(k, bytes);
        if !mode.keep_alive {
            self.close_after_flush(k, Some(CloseCause::Refused));
        }
    }

    /// Queues a reply; closes after it unless the client keeps alive (and
    /// the server is not draining).
    pub(super) fn reply(&mut self, k: usize, bytes: Vec<u8>, mode: ReplyMode) {
        self.send(k, bytes);
        let draining = self.conns.get(k).is_some_and(|c| c.flags.draining());
        if !mode.keep_alive || draining {
            self.close_after_flush(k, None);
        }
    }

    fn json(&mut self, k: usize, body: &serde_json::Value, cors: &Cors, mode: ReplyMode) {
        let bytes = response::json(cors, 200, body, mode, &[]);
        self.reply(k, bytes, mode);
    }

    fn channel_or_404(
        &mut self,
        k: usize,
        info: Option<serde_json::Value>,
        cors: &Cors,
        mode: ReplyMode,
    ) {
        match info {
            Some(v) => self.json(k, &v, cors, mode),
            None => {
                let bytes = response::error(cors, 404, "no such channel", mode, &[]);
                self.reply(k, bytes, mode);
            }
        }
    }

    fn handle_request(&mut self, k: usize, head: RequestHead<'_>) {
        // `--compat push-stream|nchan`: the peer's routes (reactor/compat.rs).
        if self.compat_request(k, &head) {
            return;
        }
        let draining = self.conns.get(k).is_some_and(|c| c.flags.draining());
        let head_only = head.method == Method::Head;
        let cors = self.cors_for(head.headers.origin.as_deref());
        let route = match route(&head, &self.route_limits()) {
            Ok(r) => r,
            Err(e) => {
                let mode = if head.body == BodyKind::None && head.keep_alive {
                    ReplyMode {
                        keep_alive: true,
                        head_only,
                    }
                } else {
                    ReplyMode::CLOSE
                };
                self.refuse_route(k, &e, mode, |mode, extra| {
                    response::error(&cors, e.status, &e.message, mode, extra)
                });
                return;
            }
        };
        // Only publishes read a body; any other request carrying one is
        // answered and the connection closed, so the stream cannot desync.
        let keep_alive = head.keep_alive
            && !draining
            && (head.body == BodyKind::None || matches!(route, Route::Publish(_)));
        let mode = ReplyMode {
            keep_alive,
            head_only,
        };
        // A refusal leaves an unread body behind: close after it.
        let deny_mode = ReplyMode {
            keep_alive: keep_alive && head.body == BodyKind::None,
            head_only,
        };
        let presented = self.presented(k, &head);
        let cred = presented.credentials();
        let policy = &self.settings.policy;
        let now_secs = now_ms() / 1000;
        let allowed = match &route {
            Route::Publish(channels) => {
                let names: Vec<&str> = channels.iter().map(String::as_str).collect();
                policy.check_publish(&cred, &names, now_secs)
            }
            Route::DeleteChannel(id) => policy.check_publish(&cred, &[id.as_str()], now_secs),
            Route::ChannelInfo(_) | Route::Status(_) | Route::Metrics | Route::StatusStream => {
                policy.check_status(&cred)
            }
            Route::Preflight | Route::Subscribe(_) | Route::Page(_) => Ok(()),
        };
        if let Err(denial) = allowed {
            return self.deny(k, denial, &cors, deny_mode);
        }
        let hub = self.hub.clone();
        match route {
            Route::Publish(channels) => self.start_publish(k, &head, channels, cors, None),
            Route::ChannelInfo(id) | Route::Status(Some(id)) => {
                self.channel_or_404(k, hub.info(&id).map(|i| i.to_json()), &cors, mode)
            }
            Route::DeleteChannel(id) => {
                if let Some(bp) = &self.shared.backplane {
                    // Fleet-wide: Redis drops the history and every node,
                    // this one included, disconnects its subscribers.
                    bp.delete(&id);
                    let info = hub.info(&id).map_or_else(
                        || serde_json::json!({"channel": id, "id": null, "subscribers": 0}),
                        |i| i.to_json(),
                    );
                    return self.json(k, &info, &cors, mode);
                }
                self.channel_or_404(k, hub.delete(&id).map(|i| i.to_json()), &cors, mode)
            }
            Route::Status(None) => {
                let snapshot = self.snapshot();
                self.json(k, &render::status_json(&snapshot), &cors, mode);
            }
            Route::Metrics => {
                let snapshot = self.snapshot();
                let text = render::metrics_text(&snapshot);
                let ct = "text/plain; version=0.0.4";
                let bytes = response::full(&cors, 200, ct, text.as_bytes(), mode, &[]);
                self.reply(k, bytes, mode);
            }
            Route::Preflight => {
                let bytes = response::preflight(&cors, mode);
                self.reply(k, bytes, mode);
            }
            Route::Page(page) => {
                let bytes = response::full(&cors, 200, page.content_type(), page.body(), mode, &[]);
                self.reply(k, bytes, mode);
            }
            Route::StatusStream => {
                let sub = Subscription {
                    transport: SubTransport::EventSource,
                    channels: vec![ChannelRequest {
                        name: STATUS_CHANNEL.into(),
                        backtrack: 0,
                    }],
                    resume: Resume::Live,
                    json: false,
                    resume_text: None,
                };
                let access = SubscriberAccess {
                    cors,
                    grant: None,
                    publish_rights: None,
                    dialect: SubDialect::Crier,
                };
                self.start_subscription(k, &head, sub, access);
            }
            Route::Subscribe(sub) => {
                let sub = self.first_message(sub);
                let names: Vec<&str> = sub.channels.iter().map(|c| c.name.as_str()).collect();
                match policy.check_subscribe(&cred, &names, now_secs) {
                    Ok(grant) => {
                        let access = SubscriberAccess {
                            cors,
                            grant,
                            publish_rights: None,
                            dialect: SubDialect::Crier,
                        };
                        let access = if sub.transport == SubTransport::WebSocket {
                            SubscriberAccess {
                                publish_rights: Some(policy.ws_publish_rights(
                                    &cred,
                                    access.grant.as_ref(),
                                    &names,
                                )),
                                ..access
                            }
                        } else {
                            access
                        };
                        self.start_subscription(k, &head, sub, access)
                    }
                    Err(denial) => self.deny(k, denial, &cors, deny_mode),
                }
            }
        }
    }

    pub(super) fn start_publish(
        &mut self,
        k: usize,
        head: &RequestHead<'_>,
        channels: Vec<String>,
        cors: Cors,
        dialect: Option<Dialect>,
    ) {
        let expect_continue = head.expect_continue && head.body != BodyKind::None;
        let (event_type, event_id) = crate::compat::publish_headers(dialect, &head.headers);
        let publish = PendingPublish {
            channels,
            cors,
            event_type,
            event_id,
            dialect,
            content_type: head.headers.content_type.as_deref().map(str::to_string),
            mode: ReplyMode::keep_alive(head.keep_alive),
            reader: BodyReader::new(head.body, self.settings.config.max_message_size),
            body: Vec::new(),
            started: Instant::now(),
        };
        if let Some(c) = self.conns.get_mut(k) {
            c.role = Role::Http(Some(Box::new(publish)));
        }
        if expect_continue {
            self.send(k, response::CONTINUE.to_vec());
        }
    }

    fn finish_publish(&mut self, k: usize, req: PendingPublish) {
        let draining = self.conns.get(k).is_some_and(|c| c.flags.draining());
        let mode = ReplyMode::keep_alive(req.mode.keep_alive && !draining);
        let started = req.started;
        if let Some(dialect) = req.dialect {
            self.compat_publish(k, req, dialect, mode);
            return self.observe_publish(started);
        }
        let publication = Publication {
            payload: Bytes::from(req.body),
            event_type: req.event_type,
            content_type: req.content_type,
            event_id: None,
            system: false,
        };
        if self.shared.backplane.is_some() {
            // Observed when Redis has answered (`on_published`).
            return self.cluster_publish(k, req.channels, publication, req.cors, mode, started);
        }
        let names: Vec<&str> = req.channels.iter().map(String::as_str).collect();
        let receipt = match self.hub.publish(Some(self.id), &names, publication) {
            Ok(r) => r,
            Err(limit) => {
                self.refuse(k, &limit, &req.cors, Some(mode));
                return self.observe_publish(started);
            }
        };
        let body = if receipt.channels.len() == 1 {
            let mut v = receipt.channels[0].to_json();
            v["id"] = serde_json::Value::String(receipt.id.to_string());
            v
        } else {
            serde_json::json!({
                "id": receipt.id.to_string(),
                "channels": receipt.channels.iter().map(|c| c.to_json()).collect::<Vec<_>>(),
            })
        };
        self.json(k, &body, &req.cors, mode);
        self.observe_publish(started);
    }

    /// A publish request answered: from its head read to now.
    pub(super) fn observe_publish(&self, started: Instant) {
        self.stats()
            .observe(Latency::PublishRequest, started.elapsed());
    }

    /// Sets up a subscription request for its transport.
    pub(super) fn start_subscription(
        &mut self,
        k: usize,
        head: &RequestHead<'_>,
        sub: Subscription,
        access: SubscriberAccess,
    ) {
        let cors = &access.cors;
        let push_stream = matches!(access.dialect, SubDialect::PushStream(_));
        let mut new = match sub.transport {
            SubTransport::EventSource => {
                let mut bytes = response::event_stream_head(cors);
                // Tells the browser how soon to reconnect after a drop, and
                // opens the stream at once for proxies.
                sse::encode_retry(self.settings.config.retry_ms, &mut bytes);
                NewSubscriber::stream(access.dialect.sse_format(), bytes)
            }
            SubTransport::Stream => {
                let http11 = head.minor_version >= 1;
                let format = if push_stream {
                    WireFormat::PushStreamStream { chunked: http11 }
                } else {
                    WireFormat::stream(http11, sub.json)
                };
                let ct = if format == WireFormat::StreamJson {
                    "application/x-ndjson"
                } else {
                    "text/plain; charset=utf-8"
                };
                let chunked = !matches!(
                    format,
                    WireFormat::StreamRaw | WireFormat::PushStreamStream { chunked: false }
                );
                NewSubscriber::stream(format, response::stream_head(cors, ct, chunked))
            }
            SubTransport::WebSocket => return self.accept_websocket(k, head, &sub, access),
            SubTransport::LongPoll => return self.start_longpoll(k, head, &sub, access),
        };
        // push-stream's header template opens the stream.
        let header = signal::push_stream_text(new.format, &self.shared.encode.push_stream.header);
        new.head.extend_from_slice(&header);
        self.start_stream(k, new, &sub, &access);
    }
}
