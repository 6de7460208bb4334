//! The reactor side of `--compat push-stream|nchan`: carries out what
//! `compat::route` decided with the same hub, access checks and transports
//! as crier's own API, and writes the answers in the peer's format
//! (`compat::reply`). The hooks into the rest of the reactor are one call
//! each: the request (`http.rs`), the publish reply, the long-poll answer.

use bytes::Bytes;

use super::conn::{LongPollWait, PendingPublish};
use super::longpoll::PollEnd;
use super::subscribe::SubscriberAccess;
use super::Reactor;
use crate::compat::reply::{self, PollEnd as CompatEnd};
use crate::compat::{self, CompatRoute, Dialect, FirstMessage, Locations, StatsQuery, SubDialect};
use crate::http::request::{BodyKind, Method, RequestHead};
use crate::http::response::{self, Cors, ReplyMode};
use crate::http::route::{SubTransport, Subscription};
use crate::proto::compat::push_stream as ps_wire;
use crate::pubsub::channel::{ChannelInfo, Resume};
use crate::pubsub::hub::now_ms;
use crate::pubsub::message::Publication;

impl Reactor {
    /// Handles `head` if it is a compatibility-mode request; false when
    /// crier's own router should (`--compat off`, or a path of crier's).
    pub(super) fn compat_request(&mut self, k: usize, head: &RequestHead<'_>) -> bool {
        let cfg = &self.settings.config;
        let Some(dialect) = Dialect::of(cfg.compat, head.headers.accept.as_deref()) else {
            return false;
        };
        let loc = Locations {
            compat: cfg.compat,
            push_stream_publisher: cfg.push_stream_publisher,
            nchan_publish: cfg.nchan_publish_location.clone(),
            nchan_subscribe: cfg.nchan_subscribe_location.clone(),
        };
        let draining = self.conns.get(k).is_some_and(|c| c.flags.draining());
        let head_only = head.method == Method::Head;
        let cors = self.cors_for(head.headers.origin.as_deref());
        let routed = match compat::route(head, &self.route_limits(), &loc) {
            Ok(CompatRoute::Crier) => return false,
            Ok(r) => r,
            Err(e) => {
                let mode = ReplyMode {
                    keep_alive: head.body == BodyKind::None && head.keep_alive && !draining,
                    head_only,
                };
                self.refuse_route(k, &e, mode, |mode, extra| {
                    reply::error(dialect, &cors, e.status, &e.message, mode, extra)
                });
                return true;
            }
        };
        let keep_alive = head.keep_alive
            && !draining
            && (head.body == BodyKind::None || matches!(routed, CompatRoute::Publish(_)));
        let mode = ReplyMode {
            keep_alive,
            head_only,
        };
        let deny_mode = ReplyMode {
            keep_alive: keep_alive && head.body == BodyKind::None,
            head_only,
        };
        let presented = self.presented(k, head);
        let cred = presented.credentials();
        let policy = &self.settings.policy;
        let now_secs = now_ms() / 1000;
        let allowed = match &routed {
            CompatRoute::Publish(ch) | CompatRoute::Delete(ch) => {
                policy.check_publish(&cred, &names_of(ch), now_secs)
            }
            CompatRoute::Info(_) | CompatRoute::Stats(_) => policy.check_status(&cred),
            CompatRoute::Subscribe(..) | CompatRoute::Crier => Ok(()),
        };
        if let Err(denial) = allowed {
            self.deny(k, denial, &cors, deny_mode);
            return true;
        }
        match routed {
            CompatRoute::Publish(channels) => {
                self.start_publish(k, head, channels, cors, Some(dialect))
            }
            CompatRoute::Info(channels) => self.compat_info(k, dialect, &channels, &cors, mode),
            CompatRoute::Delete(channels) => self.compat_delete(k, dialect, &channels, &cors, mode),
            CompatRoute::Stats(query) => self.compat_stats(k, dialect, &query, &cors, mode),
            CompatRoute::Subscribe(sub, sub_dialect) => {
                let names: Vec<&str> = sub.channels.iter().map(|c| c.name.as_str()).collect();
                match policy.check_subscribe(&cred, &names, now_secs) {
                    Ok(grant) => {
                        let publish_rights = (sub.transport == SubTransport::WebSocket)
                            .then(|| policy.ws_publish_rights(&cred, grant.as_ref(), &names));
                        let sub = self.compat_resume(sub, &sub_dialect);
                        let access = SubscriberAccess {
                            cors,
                            grant,
                            publish_rights,
                            dialect: sub_dialect,
                        };
                        self.start_subscription(k, head, sub, access);
                    }
                    Err(denial) => self.deny(k, denial, &cors, deny_mode),
                }
            }
            CompatRoute::Crier => return false,
        }
        true
    }

    /// `--first-message` for a subscription that named no resume point.
    pub(super) fn first_message(&self, mut sub: Subscription) -> Subscription {
        let cfg = &self.settings.config;
        let policy: FirstMessage = cfg.first_message.resolve(cfg.compat);
        let backtrack = sub.channels.iter().any(|c| c.backtrack > 0);
        sub.resume = policy.apply(sub.resume, backtrack);
        sub
    }

    /// push-stream's `Last-Event-Id` names an `Event-Id`: resume after the
    /// stored message that carries it (none found: the other resume
    /// headers, else live). Then `--first-message`.
    fn compat_resume(&self, mut sub: Subscription, dialect: &SubDialect) -> Subscription {
        if let SubDialect::PushStream(p) = dialect {
            let backtrack = sub.channels.iter().any(|c| c.backtrack > 0);
            if let (Some(event_id), false) = (&p.event_id, backtrack) {
                let names: Vec<&str> = sub.channels.iter().map(|c| c.name.as_str()).collect();
                if let Some(seq) = self.hub.find_event_id(&names, event_id) {
                    sub.resume = Resume::AfterSeq(seq);
                }
            }
        }
        self.first_message(sub)
    }

    /// Publishes a compatibility-mode body and answers in the peer's format.
    pub(super) fn compat_publish(
        &mut self,
        k: usize,
        req: PendingPublish,
        dialect: Dialect,
        mode: ReplyMode,
    ) {
        if matches!(dialect, Dialect::PushStream(_)) && req.body.is_empty() {
            let bytes = reply::error(
                dialect,
                &req.cors,
                400,
                compat::push_stream::EMPTY_POST,
                mode,
                &[],
            );
            return self.reply(k, bytes, mode);
        }
        let names: Vec<&str> = req.channels.iter().map(String::as_str).collect();
        let publication = Publication {
            payload: Bytes::from(req.body),
            event_type: req.event_type,
            content_type: req.content_type,
            event_id: req.event_id,
            system: false,
        };
        let receipt = match self.hub.publish(Some(self.id), &names, publication) {
            Ok(r) => r,
            Err(limit) => return self.refuse(k, &limit, &req.cors, Some(mode)),
        };
        match dialect {
            Dialect::PushStream(format) => {
                self.ps_channels_reply(k, format, &receipt.channels, &req.cors, mode)
            }
            Dialect::Nchan(format) => {
                // 201 when someone was listening, 202 when nobody was.
                let heard = receipt.channels.iter().any(|c| c.subscribers > 0);
                let status = if heard { 201 } else { 202 };
                let mut info = receipt.channels[0].clone();
                info.last_id = Some(receipt.id);
                let body = reply::nchan_channel(format, &info, now_ms());
                let bytes = response::full(
                    &req.cors,
                    status,
                    format.content_type(),
                    body.as_bytes(),
                    mode,
                    &[],
                );
                self.reply(k, bytes, mode);
            }
        }
    }

    fn ps_channels_reply(
        &mut self,
        k: usize,
        format: ps_wire::InfoFormat,
        infos: &[ChannelInfo],
        cors: &Cors,
        mode: ReplyMode,
    ) {
        let totals = self.hub.totals();
        let hostname = hostname();
        let time = ps_wire::iso_time(now_ms() / 1000);
        let head = ps_wire::GroupHead {
            hostname: &hostname,
            time: &time,
            channels: totals.channels,
            wildcard_channels: 0,
            uptime: self.uptime_secs(),
        };
        let body = reply::ps_channels(format, &head, infos);
        let bytes = response::full(cors, 200, format.content_type(), body.as_bytes(), mode, &[]);
        self.reply(k, bytes, mode);
    }

    fn compat_info(
        &mut self,
        k: usize,
        dialect: Dialect,
        channels: &[String],
        cors: &Cors,
        mode: ReplyMode,
    ) {
        let infos: Vec<ChannelInfo> = channels.iter().filter_map(|c| self.hub.info(c)).collect();
        if infos.is_empty() {
            let bytes = reply::error(dialect, cors, 404, "", mode, &[]);
            return self.reply(k, bytes, mode);
        }
        match dialect {
            Dialect::PushStream(format) => self.ps_channels_reply(k, format, &infos, cors, mode),
            Dialect::Nchan(format) => {
                let body = reply::nchan_channel(format, &infos[0], now_ms());
                let bytes =
                    response::full(cors, 200, format.content_type(), body.as_bytes(), mode, &[]);
                self.reply(k, bytes, mode);
            }
        }
    }

    fn compat_delete(
        &mut self,
        k: usize,
        dialect: Dialect,
        channels: &[String],
        cors: &Cors,
        mode: ReplyMode,
    ) {
        // Nchan answers with the figures the channel had when deleted.
        let before: Vec<ChannelInfo> = channels.iter().filter_map(|c| self.hub.info(c)).collect();
        let deleted = channels
            .iter()
            .filter(|c| self.hub.delete(c).is_some())
            .count();
        let bytes = match (deleted, dialect) {
            (0, _) => reply::error(dialect, cors, 404, "", mode, &[]),
            (_, Dialect::PushStream(_)) => {
                let explain = format!(
                    "X-Nginx-PushStream-Explain: {}",
                    compat::push_stream::CHANNEL_DELETED
                );
                response::full(cors, 200, "", b"", mode, &[&explain])
            }
            (_, Dialect::Nchan(format)) => {
                let body = reply::nchan_channel(format, &before[0], now_ms());
                response::full(cors, 200, format.content_type(), body.as_bytes(), mode, &[])
            }
        };
        self.reply(k, bytes, mode);
    }

    /// push-stream's `/channels-stats`.
    fn compat_stats(
        &mut self,
        k: usize,
        dialect: Dialect,
        query: &StatsQuery,
        cors: &Cors,
        mode: ReplyMode,
    ) {
        let Dialect::PushStream(format) = dialect else {
            return;
        };
        let infos = match query {
            StatsQuery::Summary => {
                let snapshot = self.snapshot();
                let hostname = hostname();
                let time = ps_wire::iso_time(now_ms() / 1000);
                let by_worker = snapshot
                    .reactors
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (i as u64, r.connections, snapshot.uptime_seconds))
                    .collect();
                let hub = snapshot.hub;
                let summary = ps_wire::Summary {
                    hostname: &hostname,
                    time: &time,
                    channels: hub.channels,
                    wildcard_channels: 0,
                    published_messages: hub.published_messages,
                    stored_messages: hub.stored_messages,
                    messages_in_trash: 0,
                    channels_in_delete: 0,
                    channels_in_trash: 0,
                    subscribers: hub.subscribers,
                    uptime: snapshot.uptime_seconds,
                    by_worker,
                };
                let body = ps_wire::summary(format, &summary);
                let bytes =
                    response::full(cors, 200, format.content_type(), body.as_bytes(), mode, &[]);
                return self.reply(k, bytes, mode);
            }
            StatsQuery::Prefix(prefix) => {
                // `ALL` and `prefix_*` always answer the group form.
                let infos = self.hub.channels_with_prefix(prefix);
                let totals = self.hub.totals();
                let hostname = hostname();
                let time = ps_wire::iso_time(now_ms() / 1000);
                let head = ps_wire::GroupHead {
                    hostname: &hostname,
                    time: &time,
                    channels: totals.channels,
                    wildcard_channels: 0,
                    uptime: self.uptime_secs(),
                };
                let figures: Vec<_> = infos.iter().map(reply::ps_figures).collect();
                let body = ps_wire::group(format, &head, &figures);
                let bytes =
                    response::full(cors, 200, format.content_type(), body.as_bytes(), mode, &[]);
                return self.reply(k, bytes, mode);
            }
            StatsQuery::Channels(channels) => channels
                .iter()
                .filter_map(|c| self.hub.info(c))
                .collect::<Vec<_>>(),
        };
        if infos.is_empty() {
            let bytes = reply::error(dialect, cors, 404, "", mode, &[]);
            return self.reply(k, bytes, mode);
        }
        self.ps_channels_reply(k, format, &infos, cors, mode);
    }

    /// The answer of a push-stream or Nchan long-poll; None for crier's.
    pub(super) fn compat_longpoll_answer(
        &self,
        lp: &LongPollWait,
        end: PollEnd,
        mode: ReplyMode,
    ) -> Option<Vec<u8>> {
        if lp.dialect == SubDialect::Crier {
            return None;
        }
        let end = match end {
            PollEnd::Answer if lp.messages.is_empty() => CompatEnd::Timeout {
                position: lp.position,
            },
            PollEnd::Answer => CompatEnd::Messages(&lp.messages),
            PollEnd::ChannelDeleted => CompatEnd::Deleted {
                channel: lp.deleted.as_deref().unwrap_or(""),
            },
            PollEnd::Shutdown { retry_after_secs } => CompatEnd::Shutdown { retry_after_secs },
            PollEnd::TokenExpired => CompatEnd::TokenExpired,
        };
        reply::longpoll(
            &lp.dialect,
            end,
            &lp.cors,
            mode,
            now_ms() / 1000,
            &self.shared.encode,
        )
    }

    fn uptime_secs(&self) -> u64 {
        self.snapshot().uptime_seconds
    }
}

fn names_of(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// This machine's name, for push-stream's stats (`hostname` field).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}
