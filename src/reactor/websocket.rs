//! WebSocket side of the reactor: the upgrade, client frames (pings,
//! pongs, close handshake, optional publishing) and protocol errors.
//! Frame parsing itself is the pure codec in `proto::ws`.

use bytes::Bytes;

use super::conn::{TransportState, WsState};
use super::events::ConnEvent;
use super::subscribe::NewSubscriber;
use super::subscribe::SubscriberAccess;
use super::Reactor;
use crate::compat::{SubDialect, NCHAN_WS_META};
use crate::http::request::{BodyKind, Method, RequestHead};
use crate::http::route::Subscription;
use crate::proto::ws::error::{SizeLimit, CLOSE_POLICY};
use crate::proto::ws::frame::EMPTY_CLOSE;
use crate::proto::ws::{deflate, encode_close, encode_frame, handshake};
use crate::proto::ws::{MessageReader, Opcode, WsEvent};
use crate::proto::{signal, WireFormat};
use crate::pubsub::bus::Delivery;
use crate::pubsub::message::Publication;
use crate::status::{CloseCause, Denied, TooLarge};

/// The subprotocol that selects JSON envelopes (same as `?format=json`).
pub const JSON_SUBPROTOCOL: &str = "crier.json";

/// Subprotocols we answer to; any other offer is not echoed (RFC 6455
/// §4.2.2: the server picks one it supports or none).
const SUBPROTOCOLS: &[&str] = &[JSON_SUBPROTOCOL];

impl Reactor {
    /// Completes the opening handshake and registers the subscriber, or
    /// answers 400/426 with a JSON reason.
    pub(super) fn accept_websocket(
        &mut self,
        k: usize,
        head: &RequestHead<'_>,
        sub: &Subscription,
        access: SubscriberAccess,
    ) {
        let h = &head.headers;
        // Browsers do not apply CORS to WebSocket: the server must refuse
        // pages from other origins itself, before the 101.
        if !self.settings.origins.allows(h.origin.as_deref()) {
            return self.deny_origin(k, &access.cors);
        }
        if let Err(e) = handshake::validate(
            h.upgrade.as_deref(),
            h.connection.as_deref(),
            h.sec_websocket_key.as_deref(),
            h.sec_websocket_version.as_deref(),
            head.method == Method::Get,
        ) {
            let extra: &[&str] = if e.status == 426 {
                &["Sec-WebSocket-Version: 13"]
            } else {
                &[]
            };
            self.fail(k, e.status, e.reason, extra);
            return;
        }
        // RFC 9110 §7.8: a server must ignore Upgrade in an HTTP/1.0
        // request (a 1.0 proxy may pass it on without understanding it),
        // and RFC 6455 §4.1 asks for HTTP/1.1.
        if head.minor_version == 0 {
            return self.fail(k, 400, "websocket upgrade requires HTTP/1.1", &[]);
        }
        // A body is not read: after the 101 it would be taken for frames.
        if head.body != BodyKind::None {
            return self.fail(k, 400, "websocket upgrade with a request body", &[]);
        }
        let accept = handshake::accept_key(h.sec_websocket_key.as_deref().unwrap_or_default());
        let negotiated = if self.settings.config.ws_deflate {
            h.sec_websocket_extensions
                .as_deref()
                .and_then(deflate::negotiate)
        } else {
            None
        };
        // `?format=json` or subprotocol `crier.json`: each message as a
        // JSON envelope with its id, so the client can resume with
        // `last_event_id`. Browsers cannot add headers but can offer a
        // subprotocol.
        // With --compat nchan, Nchan's `ws+meta.nchan` (ids in each frame).
        let supported = match &access.dialect {
            SubDialect::Nchan(_) => &[NCHAN_WS_META][..],
            _ => SUBPROTOCOLS,
        };
        let subprotocol =
            handshake::choose_subprotocol(h.sec_websocket_protocol.as_deref(), supported);
        let json = sub.json || subprotocol == Some(JSON_SUBPROTOCOL);
        let (window, extension) = match negotiated {
            Some((params, response)) => (params.server_max_window_bits, Some(response)),
            None => (0, None),
        };
        let cfg = &self.settings.config;
        let reader = MessageReader::new(cfg.max_message_size, extension.is_some())
            .with_max_frame(cfg.max_frame_size);
        let may_publish = match (&access.publish_rights, cfg.ws_publish) {
            (Some(rights), true) => rights.clone().into_boxed_slice(),
            _ => Box::default(),
        };
        let format = if subprotocol == Some(NCHAN_WS_META) {
            WireFormat::NchanWsMeta { deflate: window }
        } else if matches!(access.dialect, SubDialect::PushStream(_)) && !json {
            WireFormat::PushStreamWs { deflate: window }
        } else {
            WireFormat::WebSocket {
                deflate: window,
                json,
            }
        };
        let mut head = handshake::response_head(&accept, subprotocol, extension.as_deref());
        // push-stream's header template: the first frame.
        head.extend_from_slice(&signal::push_stream_text(
            format,
            &self.shared.encode.push_stream.header,
        ));
        let new = NewSubscriber {
            format,
            state: Some(Box::new(TransportState::WebSocket(WsState {
                reader,
                close_sent: false,
                pong_due: 0,
                may_publish,
            }))),
            head,
        };
        self.start_stream(k, new, sub, &access);
    }

    /// Handles every complete frame in `data`; returns the bytes consumed
    /// (the rest is an unfinished frame).
    pub(super) fn feed_ws(&mut self, k: usize, data: &[u8]) -> usize {
        let mut pos = 0;
        while pos < data.len() {
            let Some(c) = self.conns.get_mut(k) else {
                return data.len();
            };
            if c.flags.close_after_flush() {
                return data.len();
            }
            let Some(ws) = c.subscriber_mut().and_then(|s| s.ws_mut()) else {
                return data.len();
            };
            match ws.reader.read(&data[pos..]) {
                Ok((0, None)) => return pos,
                Ok((n, event)) => {
                    pos += n;
                    if let Some(event) = event {
                        self.on_ws_event(k, event);
                    }
                }
                Err(e) => {
                    if let Some(limit) = e.limit {
                        self.note(
                            Some(k),
                            None,
                            ConnEvent::TooLarge(match limit {
                                SizeLimit::Frame => TooLarge::Frame,
                                SizeLimit::Message => TooLarge::Message,
                                SizeLimit::Inflated => TooLarge::Inflated,
                            }),
                        );
                    }
                    self.deliver_own_publications(k);
                    self.ws_close(k, e.code, e.reason, Some(CloseCause::BadInput));
                    return data.len();
                }
            }
        }
        pos
    }

    fn on_ws_event(&mut self, k: usize, event: WsEvent) {
        match event {
            WsEvent::Text(payload) => self.ws_publish(k, payload, None),
            WsEvent::Binary(payload) => {
                self.ws_publish(k, payload, Some("application/octet-stream".into()))
            }
            WsEvent::Ping(payload) => self.send(k, encode_frame(Opcode::Pong, false, &payload)),
            WsEvent::Pong(_) => {
                if let Some(ws) = self
                    .conns
                    .get_mut(k)
                    .and_then(|c| c.subscriber_mut())
                    .and_then(|s| s.ws_mut())
                {
                    ws.pong_due = 0;
                }
                self.rearm_subscriber(k);
            }
            // Echo the client's code (RFC 6455 §5.5.1), then close.
            WsEvent::Close(code, _reason) => {
                self.deliver_own_publications(k);
                match code {
                    Some(code) => self.ws_close(k, code, "", None),
                    None => {
                        self.send(k, EMPTY_CLOSE.to_vec());
                        self.close_after_flush(k, None);
                    }
                }
            }
        }
    }

    /// Sends a close frame and ends the connection once it is out.
    pub(super) fn ws_close(
        &mut self,
        k: usize,
        code: u16,
        reason: &str,
        cause: Option<CloseCause>,
    ) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        if let Some(ws) = c.subscriber_mut().and_then(|s| s.ws_mut()) {
            if ws.close_sent {
                return;
            }
            ws.close_sent = true;
        }
        self.send(k, encode_close(code, reason));
        self.close_after_flush(k, cause);
    }

    /// With `ws-publish`, what a client published earlier in this same
    /// read is already in our inbox but not yet fanned out (that happens
    /// after all reads of this loop turn). Deliver it now, before a close
    /// or a protocol error ends the connection, so the client still gets
    /// the messages it sent before the close or the bad frame (as a client
    /// sending "message, close" expects; Autobahn 3.2, 4.x, 5.15, 7.1.6).
    /// Each message is flushed to `k` before the next one is queued, as if
    /// it had come in its own loop turn, so a burst of large echoes is not
    /// mistaken for a slow consumer. Lifecycle deliveries are put back for
    /// the loop to handle in order.
    fn deliver_own_publications(&mut self, k: usize) {
        if !self.settings.config.ws_publish {
            return;
        }
        let mut put_back = Vec::new();
        while let Some(d) = self.inbox.try_recv() {
            match d {
                Delivery::Message(m) => {
                    self.fan_out(std::slice::from_ref(&m));
                    self.write_out(k);
                }
                Delivery::ChannelDeleted(ch) => self.on_channel_deleted(&ch),
                other => put_back.push(other),
            }
        }
        for d in put_back {
            self.inbox.put_back(d);
        }
    }

    /// A client message: published to the connection's channels it may
    /// publish to when `ws-publish` is on, ignored when it is off. A client
    /// allowed none of its channels is closed with 1008, so a browser widget
    /// without the right token learns why nothing arrives.
    fn ws_publish(&mut self, k: usize, payload: Vec<u8>, content_type: Option<String>) {
        if !self.settings.config.ws_publish {
            return;
        }
        let Some(sub) = self.conns.get(k).and_then(|c| c.subscriber()) else {
            return;
        };
        let rights = sub.ws().map(|ws| &ws.may_publish[..]).unwrap_or_default();
        let names: Vec<std::sync::Arc<str>> = sub
            .subs
            .as_slice()
            .iter()
            .zip(rights)
            .filter(|(_, allowed)| **allowed)
            .filter_map(|(s, _)| self.local.channel_of(s.channel).map(|c| c.name.clone()))
            .collect();
        if names.is_empty() {
            self.note(Some(k), None, ConnEvent::Denied(Denied::ChannelNotGranted));
            self.ws_close(
                k,
                CLOSE_POLICY,
                "publishing not allowed",
                Some(CloseCause::Denied),
            );
            return;
        }
        let publication = Publication {
            payload: Bytes::from(payload),
            event_type: None,
            content_type,
            event_id: None,
            system: false,
        };
        if self.shared.backplane.is_some() {
            let names = names.iter().map(|n| n.to_string()).collect();
            return self.cluster_publish_unanswered(names, publication);
        }
        let names: Vec<&str> = names.iter().map(|n| &**n).collect();
        if let Err(limit) = self.hub.publish(Some(self.id), &names, publication) {
            // Over max-channels cannot happen for channels it is subscribed
            // to; keep the connection and drop the message.
            log::debug!("websocket publish refused: {}", limit.message());
        }
    }
}
