//! WebSocket side of the reactor: the upgrade, client frames (pings,
//! pongs, close handshake, optional publishing) and protocol errors.
//! Frame parsing itself is the pure codec in `proto::websocket`.

use bytes::Bytes;

use super::conn::{Role, TransportState};
use super::fanout::NewSubscriber;
use super::http::{missed_json, wants_json};
use super::Reactor;
use crate::http::request::{Method, RequestHead};
use crate::proto::websocket::{encode_close, encode_frame, MessageReader, Opcode, WsEvent};
use crate::proto::{deflate, handshake};
use crate::pubsub::bus::Delivery;
use crate::pubsub::hub::{ChannelRequest, Resume};
use crate::pubsub::message::{Publication, WireFormat};
use crate::status::{CloseCause, ConnKind};

/// The subprotocol that selects JSON envelopes (same as `?format=json`).
pub const JSON_SUBPROTOCOL: &str = "crier.json";

/// Subprotocols we answer to; any other offer is not echoed (RFC 6455
/// §4.2.2: the server picks one it supports or none).
const SUBPROTOCOLS: &[&str] = &[JSON_SUBPROTOCOL];

/// Per-connection WebSocket state, boxed so SSE and stream subscribers do
/// not pay for it.
pub struct WsState {
    /// Incoming frame parser and message reassembly; owns no buffer while
    /// idle.
    pub reader: MessageReader,
    /// We sent a close frame: the connection ends once it is flushed.
    pub close_sent: bool,
    /// Tick by which our outstanding ping must be answered (0 = none).
    pub pong_due: u32,
}

impl Reactor {
    /// Completes the opening handshake and registers the subscriber, or
    /// answers 400/426 with a JSON reason.
    pub(super) fn accept_websocket(
        &mut self,
        k: usize,
        head: &RequestHead,
        requests: &[ChannelRequest],
        resume: Resume,
    ) {
        let h = &head.headers;
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
        let accept = handshake::accept_key(h.sec_websocket_key.as_deref().unwrap_or_default());
        let negotiated = if self.shared.config.ws_deflate {
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
        let subprotocol =
            handshake::choose_subprotocol(h.sec_websocket_protocol.as_deref(), SUBPROTOCOLS);
        let json = wants_json(head) || subprotocol == Some(JSON_SUBPROTOCOL);
        let (format, extension) = match negotiated {
            Some((params, response)) => (
                WireFormat::WebSocket {
                    deflate: params.server_max_window_bits,
                    json,
                },
                Some(response),
            ),
            None => (WireFormat::WebSocket { deflate: 0, json }, None),
        };
        let reader = MessageReader::new(self.shared.config.max_message_size, extension.is_some());
        let new = NewSubscriber {
            format,
            kind: ConnKind::WebSocket,
            state: Some(Box::new(TransportState::WebSocket(WsState {
                reader,
                close_sent: false,
                pong_due: 0,
            }))),
            head: handshake::response_head(&accept, subprotocol, extension.as_deref()),
        };
        let Some(subscribed) = self.register_subscriber(k, new, requests, resume) else {
            return;
        };
        if subscribed.missed && json {
            let signal = missed_json(resume);
            self.send(k, encode_frame(Opcode::Text, false, signal.as_bytes()));
        }
        self.queue_replay(k, format, &subscribed.replay);
    }

    /// Input from a WebSocket client; keeps an unfinished frame's bytes.
    pub(super) fn on_ws_input(&mut self, k: usize, data: &[u8]) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let (used, buf) = if c.pending_in.is_empty() {
            (self.process_ws(k, data), None)
        } else {
            let mut buf = c.pending_in.take();
            buf.extend_from_slice(data);
            (self.process_ws(k, &buf), Some(buf))
        };
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        if c.flags.close_after_flush {
            c.pending_in = Default::default();
            return;
        }
        c.pending_in.set(match buf {
            Some(mut b) => {
                b.drain(..used);
                b
            }
            None => data[used..].to_vec(),
        });
    }

    /// Handles every complete frame in `data`; returns the bytes consumed.
    fn process_ws(&mut self, k: usize, data: &[u8]) -> usize {
        let mut pos = 0;
        while pos < data.len() {
            let Some(c) = self.conns.get_mut(k) else {
                return data.len();
            };
            if c.flags.close_after_flush {
                return data.len();
            }
            let Role::Subscriber(sub) = &mut c.role else {
                return data.len();
            };
            let Some(ws) = sub.ws_mut() else {
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
                if let Some(Role::Subscriber(sub)) = self.conns.get_mut(k).map(|c| &mut c.role) {
                    if let Some(ws) = sub.ws_mut() {
                        ws.pong_due = 0;
                    }
                }
                self.rearm_subscriber(k);
            }
            // Echo the client's code (RFC 6455 §5.5.1), then close.
            WsEvent::Close(code, _reason) => {
                self.deliver_own_publications(k);
                match code {
                    Some(code) => self.ws_close(k, code, "", None),
                    None => {
                        self.send(k, vec![0x88, 0x00]);
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
        if let Role::Subscriber(sub) = &mut c.role {
            if let Some(ws) = sub.ws_mut() {
                if ws.close_sent {
                    return;
                }
                ws.close_sent = true;
            }
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
        if !self.shared.config.ws_publish {
            return;
        }
        let mut put_back = Vec::new();
        while let Ok(d) = self.inbox.try_recv() {
            match d {
                Delivery::Message(m) => {
                    self.fan_out(std::slice::from_ref(&m));
                    self.flush(k);
                }
                Delivery::ChannelDeleted(ch) => self.on_channel_deleted(&ch),
                other => put_back.push(other),
            }
        }
        if !put_back.is_empty() {
            let link = self.hub.link(self.id);
            for d in put_back {
                link.push(d);
            }
            link.wake();
        }
    }

    /// A client message: published to the connection's channels when
    /// `ws-publish` is on, ignored otherwise.
    fn ws_publish(&mut self, k: usize, payload: Vec<u8>, content_type: Option<String>) {
        if !self.shared.config.ws_publish {
            return;
        }
        let Some(Role::Subscriber(sub)) = self.conns.get(k).map(|c| &c.role) else {
            return;
        };
        let names: Vec<std::sync::Arc<str>> = sub
            .subs
            .as_slice()
            .iter()
            .filter_map(|s| self.local.channel_of(s.channel).map(|c| c.name.clone()))
            .collect();
        if names.is_empty() {
            return;
        }
        let names: Vec<&str> = names.iter().map(|n| &**n).collect();
        let publication = Publication {
            payload: Bytes::from(payload),
            event_type: None,
            content_type,
        };
        if let Err(limit) = self.hub.publish(Some(self.id), &names, publication) {
            // Over max-channels cannot happen for channels it is subscribed
            // to; keep the connection and drop the message.
            log::debug!("websocket publish refused: {}", limit.message());
        }
    }
}
