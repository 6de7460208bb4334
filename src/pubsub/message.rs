//! A published message and its wire encodings, each built at most once.
//!
//! Fanout is the hot path: one message goes to up to a million sockets. So
//! the payload is never copied per subscriber. Each wire format is encoded
//! (by the pure codecs in `proto`) the first time any reactor needs it, and
//! the resulting `Bytes` is shared by reference by every subscriber's out
//! queue.

use bytes::Bytes;
use std::sync::atomic::AtomicU32;
use std::sync::Mutex;
use std::time::Instant;

use crate::proto::format::{encode_message, EncodeSettings, Encoded, WireFormat};
use crate::proto::MessageView;
use crate::pubsub::channel::ChannelRef;
use crate::pubsub::remote::RemoteMessage;

/// One message as published: immutable once created and shared by `Arc`
/// between the hub's history and every reactor.
#[derive(Debug)]
pub struct Message {
    /// Publish sequence number; also the message id clients see. One
    /// global sequence on a single node; with a Redis backplane, the
    /// sequence of the shard that holds the channel.
    pub seq: u64,
    /// The Redis shard whose sequence `seq` belongs to (0 on a single node).
    pub shard: u16,
    /// Channels the message was published to (usually one).
    pub channels: Box<[ChannelRef]>,
    /// Publish time, milliseconds since the Unix epoch.
    pub published_at_ms: u64,
    /// When this node accepted it (or received it from Redis): where the
    /// publish → first write latency is measured from.
    pub accepted: Instant,
    /// SSE `event:` name, from the publisher's `Event-Type` header.
    pub event_type: Option<Box<str>>,
    /// Publisher's `Content-Type`, kept for long-poll replies.
    pub content_type: Option<Box<str>>,
    /// push-stream's `Event-Id`: the publisher's own id for the message,
    /// sent as the SSE `id:` and looked up on resume (`--compat push-stream`).
    pub event_id: Option<Box<str>>,
    /// True for non-text content types: WebSocket binary frames, base64 on SSE.
    pub binary: bool,
    /// The body exactly as published.
    pub payload: Bytes,
    /// In how many channel histories this message is stored; changed only
    /// under the hub's lock (atomic because messages are shared).
    pub stored_copies: AtomicU32,
    /// Encodings built so far, by `WireFormat::index`. A short list under
    /// a lock rather than one cell per format: it is read a few times per
    /// message (once per reactor and format), and a stored message should
    /// not carry room for twenty formats it will never use.
    encodings: Mutex<Vec<(u8, Bytes)>>,
}

/// What a publisher supplies; the hub adds the sequence number and time.
#[derive(Debug, Default, Clone)]
pub struct Publication {
    pub payload: Bytes,
    pub event_type: Option<String>,
    pub content_type: Option<String>,
    /// push-stream's `Event-Id` header (`--compat push-stream` only).
    pub event_id: Option<String>,
    /// Published by crier itself (the `$status` stream): not stored and not
    /// counted in the published totals, which are about what clients send.
    pub system: bool,
}

impl Message {
    /// Builds a message; called by the hub under its publish lock.
    pub fn new(
        seq: u64,
        channels: Box<[ChannelRef]>,
        published_at_ms: u64,
        p: Publication,
    ) -> Self {
        let binary = p
            .content_type
            .as_deref()
            .is_some_and(is_binary_content_type);
        Message {
            seq,
            shard: 0,
            channels,
            published_at_ms,
            accepted: Instant::now(),
            event_type: p.event_type.map(String::into_boxed_str),
            content_type: p.content_type.map(String::into_boxed_str),
            event_id: p.event_id.map(String::into_boxed_str),
            binary,
            payload: p.payload,
            stored_copies: AtomicU32::new(0),
            encodings: Mutex::new(Vec::new()),
        }
    }

    /// A message received from the backplane, bound to this node's channel.
    pub fn remote(m: &RemoteMessage, channel: ChannelRef) -> Self {
        let mut msg = Message::new(
            m.seq,
            vec![channel].into(),
            m.published_at_ms,
            m.publication.clone(),
        );
        msg.shard = m.shard;
        msg
    }

    /// Approximate bytes this message keeps alive, for the store's budget.
    pub fn memory_cost(&self) -> usize {
        std::mem::size_of::<Message>()
            + self.payload.len()
            + self.channels.len() * std::mem::size_of::<ChannelRef>()
            + self.event_id.as_deref().map_or(0, str::len)
    }

    /// The message in `format`, encoded on first use and shared afterwards.
    pub fn encoded(&self, format: WireFormat, settings: &EncodeSettings) -> Bytes {
        let format = format.effective(self.payload.len(), settings);
        let index = format.index() as u8;
        if let Some(b) = self.cached(index) {
            return b;
        }
        // Encode outside the lock (deflate may take a while); if another
        // reactor raced us, keep its copy so every subscriber shares one.
        // A stored message outlives the connections allocated around it, and
        // so would any slack in its blocks: encodings and the list of them
        // are kept at their exact size (the list's default room for four
        // was 120 B per message; under churn the heap settled ~110 KiB
        // lower per 1,000 stored messages, docs/PERFORMANCE.md).
        let bytes = match self.encode(format, settings, &self.seq.to_string()) {
            Encoded::Bytes(b) => Bytes::from(b.into_boxed_slice()),
            Encoded::SameAs(other) => return self.encoded(other, settings),
        };
        let mut cache = self.encodings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, b)) = cache.iter().find(|(i, _)| *i == index) {
            return b.clone();
        }
        cache.reserve_exact(1);
        cache.push((index, bytes.clone()));
        bytes
    }

    /// The message in `format` with id `id` instead of its own: for the
    /// rare subscriber whose ids are its own (composite ids of a sharded
    /// backplane, docs/CLUSTER.md). Not cached: nobody else shares it.
    pub fn encoded_with_id(
        &self,
        format: WireFormat,
        settings: &EncodeSettings,
        id: &str,
    ) -> Bytes {
        let format = format.effective(self.payload.len(), settings);
        match self.encode(format, settings, id) {
            Encoded::Bytes(b) => Bytes::from(b),
            Encoded::SameAs(other) => self.encoded_with_id(other, settings, id),
        }
    }

    fn encode(&self, format: WireFormat, settings: &EncodeSettings, id: &str) -> Encoded {
        let names: Vec<&str> = self.channels.iter().map(|c| &*c.name).collect();
        let view = MessageView {
            id,
            channels: &names,
            event_type: self.event_type.as_deref(),
            content_type: self.content_type.as_deref(),
            binary: self.binary,
            payload: &self.payload,
            published_at_ms: self.published_at_ms,
            event_id: self.event_id.as_deref(),
        };
        encode_message(format, &view, settings)
    }

    fn cached(&self, index: u8) -> Option<Bytes> {
        let cache = self.encodings.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b.clone())
    }
}

/// Text types (and no type) travel as text; anything else is binary.
/// `application/json`, `application/javascript`, `application/xml` and
/// `+json`/`+xml` suffixes are text because browsers expect strings.
pub fn is_binary_content_type(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime.is_empty() || mime.starts_with("text/") {
        return false;
    }
    let textual = [
        "application/json",
        "application/javascript",
        "application/xml",
        "application/x-www-form-urlencoded",
    ];
    !(textual.contains(&mime.as_str()) || mime.ends_with("+json") || mime.ends_with("+xml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EncodeSettings {
        EncodeSettings {
            stream_separator: Bytes::from_static(b"\n"),
            deflate_min_size: 16,
            push_stream: Default::default(),
        }
    }

    fn message(payload: &'static [u8], content_type: Option<&str>) -> Message {
        let p = Publication {
            payload: Bytes::from_static(payload),
            event_type: None,
            content_type: content_type.map(str::to_string),
            event_id: None,
            system: false,
        };
        let channel = ChannelRef {
            id: 1,
            name: std::sync::Arc::from("news"),
        };
        Message::new(7, vec![channel].into(), 0, p)
    }

    #[test]
    fn a_stored_message_keeps_no_room_for_formats_it_never_used() {
        let m = message(b"hi", None);
        m.encoded(WireFormat::Sse, &settings());
        assert_eq!(m.encodings.lock().unwrap().capacity(), 1);
        m.encoded(WireFormat::LongPoll, &settings());
        assert_eq!(m.encodings.lock().unwrap().capacity(), 2);
    }

    #[test]
    fn encodes_once_and_shares_the_bytes() {
        let m = message(b"hi", None);
        let a = m.encoded(WireFormat::Sse, &settings());
        let b = m.encoded(WireFormat::Sse, &settings());
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(&a[..], b"id: 7\ndata: hi\n\n");
    }

    #[test]
    fn deflate_that_does_not_pay_shares_the_plain_frame() {
        let m = message(
            b"\x5a\x13\xf0\x77\x01\xe2\x9c\x44\xb8\x3d\x61\xfe\x02\x8a\xc7\x19\x55",
            None,
        );
        let plain = m.encoded(
            WireFormat::WebSocket {
                deflate: 0,
                json: false,
            },
            &settings(),
        );
        let deflated = m.encoded(
            WireFormat::WebSocket {
                deflate: 15,
                json: false,
            },
            &settings(),
        );
        assert_eq!(plain.as_ptr(), deflated.as_ptr());
        // Too small to be worth compressing: the same frame, too.
        let small = message(b"tiny", None);
        let a = small.encoded(
            WireFormat::WebSocket {
                deflate: 0,
                json: false,
            },
            &settings(),
        );
        let b = small.encoded(
            WireFormat::WebSocket {
                deflate: 12,
                json: false,
            },
            &settings(),
        );
        assert_eq!(a.as_ptr(), b.as_ptr());
    }

    #[test]
    fn binary_is_base64_on_sse() {
        let m = message(b"\x00\x01", Some("application/octet-stream"));
        assert!(m.binary);
        assert_eq!(
            &m.encoded(WireFormat::Sse, &settings())[..],
            b"id: 7\ndata: AAE=\n\n"
        );
    }

    #[test]
    fn content_type_classes() {
        assert!(!is_binary_content_type("text/plain; charset=utf-8"));
        assert!(!is_binary_content_type("application/json"));
        assert!(!is_binary_content_type("application/ld+json"));
        assert!(is_binary_content_type("application/octet-stream"));
        assert!(is_binary_content_type("image/png"));
    }
}
