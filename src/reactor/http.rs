//! HTTP side of the reactor: reading requests (pipelined, with bodies),
//! routing them, publishing, and answering status queries.

use bytes::Bytes;

use super::conn::{PendingRequest, Role};
use super::fanout::NewSubscriber;
use super::Reactor;
use crate::http::chunked::BodyReader;
use crate::http::request::{parse_head, query_param, BodyKind, Limits, Method, RequestHead};
use crate::http::response;
use crate::http::route::{route, Route, SubTransport};
use crate::proto::{sse, stream};
use crate::pubsub::hub::{ChannelRequest, Resume};
use crate::pubsub::message::{Publication, WireFormat};
use crate::reactor::liveness::secs_to_ticks;
use crate::status::{self, CloseCause, ConnKind, ReactorStats};

/// A publisher whose unread replies exceed this is not read from until they
/// drain: pipelining faster than it reads replies must not grow memory.
const MAX_UNREAD_REPLIES: usize = 256 * 1024;

/// Most header fields in a request.
const MAX_HEADERS: usize = 64;

impl Reactor {
    /// New input for an HTTP connection; keeps what is not consumed yet.
    pub(super) fn on_http_input(&mut self, k: usize, data: &[u8]) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let had_partial = !c.pending_in.is_empty();
        let completed = if c.pending_in.is_empty() {
            let (used, completed) = self.process_http(k, data);
            self.keep_leftover(k, Vec::new(), &data[used..]);
            completed
        } else {
            let mut buf = c.pending_in.take();
            buf.extend_from_slice(data);
            let (used, completed) = self.process_http(k, &buf);
            buf.drain(..used);
            self.keep_leftover(k, buf, &[]);
            completed
        };
        self.rearm_http(k, had_partial, completed);
        // Frames a WebSocket client sent right behind its handshake.
        if let Some(c) = self.conns.get_mut(k) {
            if matches!(&c.role, Role::Subscriber(s) if s.is_ws()) && !c.pending_in.is_empty() {
                let early = c.pending_in.take();
                self.on_ws_input(k, &early);
            }
        }
    }

    /// HTTP deadlines: a request head must be complete within
    /// `handshake-timeout` of its first byte (dribbling does not extend it:
    /// slowloris), a body must make progress within `idle-timeout`, and a
    /// keep-alive connection may idle for `idle-timeout` between requests.
    fn rearm_http(&mut self, k: usize, had_partial: bool, completed: usize) {
        let cfg = &self.shared.config;
        let (handshake, idle) = (
            secs_to_ticks(cfg.handshake_timeout),
            secs_to_ticks(cfg.idle_timeout),
        );
        let Some(c) = self.conns.get(k) else {
            return;
        };
        if c.flags.close_after_flush {
            return;
        }
        let deadline = match &c.role {
            Role::Http(Some(_)) => self.now + idle,
            Role::Http(None) if !c.pending_in.is_empty() => {
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

    fn keep_leftover(&mut self, k: usize, mut buf: Vec<u8>, rest: &[u8]) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        if !matches!(c.role, Role::Http(_)) || c.flags.close_after_flush {
            return;
        }
        buf.extend_from_slice(rest);
        c.pending_in.set(buf);
    }

    fn limits(&self) -> Limits {
        Limits {
            max_header_bytes: self.shared.config.max_header_bytes,
            max_headers: MAX_HEADERS,
            max_body_bytes: self.shared.config.max_message_size,
        }
    }

    /// Handles as many complete requests in `data` as possible; returns the
    /// bytes consumed.
    /// Also returns how many requests were completed.
    fn process_http(&mut self, k: usize, data: &[u8]) -> (usize, usize) {
        let limits = self.limits();
        let mut pos = 0;
        let mut completed = 0;
        loop {
            let Some(c) = self.conns.get_mut(k) else {
                return (data.len(), completed);
            };
            if c.flags.close_after_flush {
                return (data.len(), completed);
            }
            if c.out.queued_bytes() > MAX_UNREAD_REPLIES {
                c.flags.read_paused = true;
                return (pos, completed);
            }
            match &mut c.role {
                Role::Http(Some(pending)) => {
                    let fed = pending.reader.feed(&data[pos..], &mut pending.body);
                    match fed {
                        Ok((used, done)) => {
                            pos += used;
                            if !done {
                                return (pos, completed);
                            }
                            completed += 1;
                            let Role::Http(slot) = &mut c.role else {
                                unreachable!()
                            };
                            if let Some(req) = slot.take() {
                                self.finish_publish(k, *req);
                            }
                        }
                        Err(e) => {
                            self.fail(k, e.status(), e.reason(), &[]);
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
                            ReactorStats::add(&self.shared.stats.reactors[self.id].requests, 1);
                            self.handle_request(k, head);
                        }
                        Err(e) => {
                            self.fail(k, e.status(), e.reason(), &[]);
                            return (data.len(), completed);
                        }
                    }
                }
                // Became a subscriber. WebSocket frames sent right behind
                // the handshake, and requests pipelined behind a long-poll,
                // are kept; anything else is ignored.
                Role::Subscriber(s) => {
                    if s.state.is_some() {
                        c.pending_in.set(data[pos..].to_vec());
                    }
                    return (data.len(), completed);
                }
            }
        }
    }

    /// Answers with an error and closes the connection once it is sent.
    pub(super) fn fail(&mut self, k: usize, status: u16, message: &str, extra: &[&str]) {
        let bytes = response::error(&self.shared.responses, status, message, false, extra);
        self.send(k, bytes);
        self.close_after_flush(k, Some(CloseCause::BadInput));
    }

    /// Queues a reply; closes after it unless the client keeps alive (and
    /// the server is not draining).
    fn reply(&mut self, k: usize, bytes: Vec<u8>, keep_alive: bool) {
        self.send(k, bytes);
        let draining = self.conns.get(k).is_some_and(|c| c.flags.draining);
        if !keep_alive || draining {
            self.close_after_flush(k, None);
        }
    }

    fn json(&mut self, k: usize, status: u16, body: &serde_json::Value, keep_alive: bool) {
        let bytes = response::json(&self.shared.responses, status, body, keep_alive);
        self.reply(k, bytes, keep_alive);
    }

    fn not_found_channel(&mut self, k: usize, keep_alive: bool) {
        let bytes = response::error(
            &self.shared.responses,
            404,
            "no such channel",
            keep_alive,
            &[],
        );
        self.reply(k, bytes, keep_alive);
    }

    fn handle_request(&mut self, k: usize, head: RequestHead) {
        // Responses to HEAD carry the head only (RFC 9110 §9.3.2).
        self.omit_body = head.method == Method::Head;
        self.route_request(k, head);
        self.omit_body = false;
    }

    fn route_request(&mut self, k: usize, head: RequestHead) {
        let max_channels = self.shared.config.max_channels_per_subscription;
        let route = match route(&head, max_channels) {
            Ok(r) => r,
            Err(e) => {
                let allow = e.allow.map(|a| format!("Allow: {a}"));
                let extra: Vec<&str> = allow.iter().map(String::as_str).collect();
                if head.body == BodyKind::None && head.keep_alive {
                    let bytes =
                        response::error(&self.shared.responses, e.status, &e.message, true, &extra);
                    self.send(k, bytes);
                } else {
                    self.fail(k, e.status, &e.message, &extra);
                }
                return;
            }
        };
        // Only publishes read a body; any other request carrying one is
        // answered and the connection closed, so the stream cannot desync.
        let draining = self.conns.get(k).is_some_and(|c| c.flags.draining);
        let keep_alive = head.keep_alive
            && !draining
            && (head.body == BodyKind::None || matches!(route, Route::Publish(_)));
        let hub = self.hub.clone();
        match route {
            Route::Publish(channels) => self.start_publish(k, head, channels),
            Route::ChannelInfo(id) => match hub.info(&id) {
                Some(info) => self.json(k, 200, &status::channel_json(&info), keep_alive),
                None => self.not_found_channel(k, keep_alive),
            },
            Route::DeleteChannel(id) => match hub.delete(&id) {
                Some(info) => self.json(k, 200, &status::channel_json(&info), keep_alive),
                None => self.not_found_channel(k, keep_alive),
            },
            Route::Status(None) => {
                let body = status::status_json(&self.shared.stats, &hub);
                self.json(k, 200, &body, keep_alive);
            }
            Route::Status(Some(id)) => match hub.info(&id) {
                Some(info) => self.json(k, 200, &status::channel_json(&info), keep_alive),
                None => self.not_found_channel(k, keep_alive),
            },
            Route::Metrics => {
                let text = status::metrics_text(&self.shared.stats, &hub);
                let bytes = response::full(
                    &self.shared.responses,
                    200,
                    "text/plain; version=0.0.4",
                    text.as_bytes(),
                    keep_alive,
                    &[],
                );
                self.reply(k, bytes, keep_alive);
            }
            Route::Preflight => {
                let bytes = response::preflight(&self.shared.responses, keep_alive);
                self.reply(k, bytes, keep_alive);
            }
            Route::Subscribe {
                transport,
                channels,
            } => {
                let requests: Vec<ChannelRequest> = channels.iter().map(Into::into).collect();
                self.subscribe(k, &head, transport, &requests);
            }
        }
    }

    fn start_publish(&mut self, k: usize, head: RequestHead, channels: Vec<String>) {
        let expect_continue = head.expect_continue && head.body != BodyKind::None;
        let reader = BodyReader::new(head.body, self.shared.config.max_message_size);
        let pending = PendingRequest {
            head,
            channels,
            reader,
            body: Vec::new(),
        };
        if let Some(c) = self.conns.get_mut(k) {
            c.role = Role::Http(Some(Box::new(pending)));
        }
        if expect_continue {
            self.send(k, response::CONTINUE.to_vec());
        }
    }

    fn finish_publish(&mut self, k: usize, req: PendingRequest) {
        let names: Vec<&str> = req.channels.iter().map(String::as_str).collect();
        let publication = Publication {
            payload: Bytes::from(req.body),
            event_type: req.head.headers.event_type.clone(),
            content_type: req.head.headers.content_type.clone(),
        };
        let receipt = match self.hub.publish(Some(self.id), &names, publication) {
            Ok(r) => r,
            Err(limit) => {
                let draining = self.conns.get(k).is_some_and(|c| c.flags.draining);
                let keep_alive = req.head.keep_alive && !draining;
                let bytes = response::error(
                    &self.shared.responses,
                    429,
                    &limit.message(),
                    keep_alive,
                    &[],
                );
                self.reply(k, bytes, keep_alive);
                return;
            }
        };
        let body = if receipt.channels.len() == 1 {
            let mut v = status::channel_json(&receipt.channels[0]);
            v["id"] = serde_json::Value::String(receipt.id.to_string());
            v
        } else {
            serde_json::json!({
                "id": receipt.id.to_string(),
                "channels": receipt.channels.iter().map(status::channel_json).collect::<Vec<_>>(),
            })
        };
        let draining = self.conns.get(k).is_some_and(|c| c.flags.draining);
        self.json(k, 200, &body, req.head.keep_alive && !draining);
    }

    /// Where a new subscriber starts, from `Last-Event-ID` (header, then
    /// query) or `since` (Unix seconds).
    fn resume_point(head: &RequestHead) -> Resume {
        let etag = head.headers.if_none_match.as_deref().map(|v| {
            v.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        });
        let last_id = head
            .headers
            .last_event_id
            .clone()
            .or_else(|| query_param(&head.query, "last_event_id"))
            .or(etag);
        if let Some(id) = last_id {
            // An id we cannot read is treated as very old: the client gets
            // the whole history and a "missed" signal.
            return Resume::AfterSeq(id.trim().parse().unwrap_or(0));
        }
        if let Some(since) = query_param(&head.query, "since") {
            if let Ok(secs) = since.trim().parse::<u64>() {
                return Resume::SinceMs(secs.saturating_mul(1000));
            }
        }
        Resume::Live
    }

    fn subscribe(
        &mut self,
        k: usize,
        head: &RequestHead,
        transport: SubTransport,
        requests: &[ChannelRequest],
    ) {
        let resume = Self::resume_point(head);
        let opts = &self.shared.responses;
        let new = match transport {
            SubTransport::EventSource => {
                let mut bytes = response::event_stream_head(opts);
                // Tells the browser how soon to reconnect after a drop, and
                // opens the stream at once for proxies.
                sse::encode_retry(self.shared.config.retry_ms, &mut bytes);
                NewSubscriber {
                    format: WireFormat::Sse,
                    kind: ConnKind::Sse,
                    head: bytes,
                    state: None,
                }
            }
            SubTransport::Stream => {
                let chunked = head.minor_version >= 1;
                let json = chunked && wants_json(head);
                let ct = if json {
                    "application/x-ndjson"
                } else {
                    "text/plain; charset=utf-8"
                };
                NewSubscriber {
                    format: if json {
                        WireFormat::StreamJson
                    } else if chunked {
                        WireFormat::StreamChunked
                    } else {
                        WireFormat::StreamRaw
                    },
                    kind: ConnKind::Stream,
                    head: response::stream_head(opts, ct, chunked),
                    state: None,
                }
            }
            SubTransport::WebSocket => {
                self.accept_websocket(k, head, requests, resume);
                return;
            }
            SubTransport::LongPoll => {
                self.start_longpoll(k, head, requests, resume);
                return;
            }
        };
        let format = new.format;
        let Some(subscribed) = self.register_subscriber(k, new, requests, resume) else {
            return;
        };
        if subscribed.missed {
            // The gap signal, in-band for the formats that carry ids; raw
            // streams have no room for it (docs/API.md).
            let mut bytes = Vec::new();
            match format {
                WireFormat::Sse => {
                    let requested = match resume {
                        Resume::AfterSeq(s) => s.to_string(),
                        _ => String::new(),
                    };
                    sse::encode_event(None, Some("missed"), requested.as_bytes(), &mut bytes)
                }
                WireFormat::StreamJson => {
                    stream::encode_chunk(missed_json(resume).as_bytes(), b"\n", &mut bytes)
                }
                _ => {}
            }
            self.send(k, bytes);
        }
        self.queue_replay(k, format, &subscribed.replay);
    }
}

/// `?format=json`: messages as JSON envelopes carrying their ids.
pub(super) fn wants_json(head: &RequestHead) -> bool {
    query_param(&head.query, "format").is_some_and(|f| f == "json")
}

/// The "messages were missed" signal of the JSON formats.
pub(super) fn missed_json(resume: Resume) -> String {
    let requested = match resume {
        Resume::AfterSeq(s) => Some(s.to_string()),
        _ => None,
    };
    serde_json::json!({ "event": "missed", "last_event_id": requested }).to_string()
}
