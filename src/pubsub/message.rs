//! A published message and its wire encodings, each built at most once.
//!
//! Fanout is the hot path: one message goes to up to a million sockets. So
//! the payload is never copied per subscriber. Each wire format is encoded
//! the first time any reactor needs it (`OnceLock`) and the resulting
//! `Bytes` is shared by reference by every subscriber's out queue.

use bytes::Bytes;
use std::sync::atomic::AtomicU32;
use std::sync::Mutex;

use crate::proto::{deflate, longpoll, sse, stream, websocket};
use crate::pubsub::bus::ChannelRef;

/// How a subscriber's socket wants a message framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// EventSource event (`id:`, `event:`, `data:` lines).
    Sse,
    /// One HTTP/1.1 chunk per message (raw `/sub` stream).
    StreamChunked,
    /// Payload plus separator, for HTTP/1.0 streams without chunking.
    StreamRaw,
    /// One chunk per message holding a JSON line with id, channel and data
    /// (`/sub/CH?format=json`).
    StreamJson,
    /// One unmasked WebSocket frame (text, or binary for binary messages).
    /// `deflate` is the permessage-deflate window (8..=15), 0 when not
    /// negotiated; `json` wraps each message in a JSON envelope with its id
    /// (`/ws/CH?format=json`).
    WebSocket { deflate: u8, json: bool },
}

impl WireFormat {
    /// Number of distinct formats (see [`index`](Self::index)).
    pub const COUNT: usize = 4 + 2 * 9;

    /// A dense index per format, for per-message encoding caches.
    pub fn index(self) -> usize {
        match self {
            WireFormat::Sse => 0,
            WireFormat::StreamChunked => 1,
            WireFormat::StreamRaw => 2,
            WireFormat::StreamJson => 3,
            WireFormat::WebSocket { deflate, json } => {
                let window = if deflate == 0 {
                    0
                } else {
                    usize::from(deflate.clamp(8, 15) - 7)
                };
                4 + usize::from(json) * 9 + window
            }
        }
    }

    /// True for WebSocket formats.
    pub fn is_websocket(self) -> bool {
        matches!(self, WireFormat::WebSocket { .. })
    }
}

/// One message as published: immutable once created and shared by `Arc`
/// between the hub's history and every reactor.
#[derive(Debug)]
pub struct Message {
    /// Global publish sequence number; also the message id clients see.
    pub seq: u64,
    /// Channels the message was published to (usually one).
    pub channels: Box<[ChannelRef]>,
    /// Publish time, milliseconds since the Unix epoch.
    pub published_at_ms: u64,
    /// SSE `event:` name, from the publisher's `Event-Type` header.
    pub event_type: Option<Box<str>>,
    /// Publisher's `Content-Type`, kept for long-poll replies.
    pub content_type: Option<Box<str>>,
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
}

/// Settings the encoders need that are the same for every message.
#[derive(Debug, Clone)]
pub struct EncodeSettings {
    /// Appended to each message on raw streams.
    pub stream_separator: Bytes,
    /// Messages shorter than this are not compressed for WebSocket.
    pub deflate_min_size: usize,
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
            channels,
            published_at_ms,
            event_type: p.event_type.map(String::into_boxed_str),
            content_type: p.content_type.map(String::into_boxed_str),
            binary,
            payload: p.payload,
            stored_copies: AtomicU32::new(0),
            encodings: Mutex::new(Vec::new()),
        }
    }

    /// The message id as clients see it (opaque to them; see docs/API.md).
    pub fn id(&self) -> String {
        self.seq.to_string()
    }

    /// Approximate bytes this message keeps alive, for the store's budget.
    pub fn memory_cost(&self) -> usize {
        std::mem::size_of::<Message>()
            + self.payload.len()
            + self.channels.len() * std::mem::size_of::<ChannelRef>()
    }

    /// The message in `format`, encoded on first use and shared afterwards.
    pub fn encoded(&self, format: WireFormat, settings: &EncodeSettings) -> Bytes {
        let format = self.effective(format, settings);
        let index = format.index() as u8;
        if let Some(b) = self.cached(index) {
            return b;
        }
        // Encode outside the lock (deflate may take a while); if another
        // reactor raced us, keep its copy so every subscriber shares one.
        let bytes = self.encode(format, settings);
        let mut cache = self.encodings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, b)) = cache.iter().find(|(i, _)| *i == index) {
            return b.clone();
        }
        cache.push((index, bytes.clone()));
        bytes
    }

    fn cached(&self, index: u8) -> Option<Bytes> {
        let cache = self.encodings.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b.clone())
    }

    /// Small messages are not worth compressing: they share the plain frame.
    fn effective(&self, format: WireFormat, settings: &EncodeSettings) -> WireFormat {
        match format {
            WireFormat::WebSocket { deflate, json }
                if deflate != 0 && self.payload.len() < settings.deflate_min_size =>
            {
                WireFormat::WebSocket { deflate: 0, json }
            }
            f => f,
        }
    }

    fn encode(&self, format: WireFormat, settings: &EncodeSettings) -> Bytes {
        let mut out = Vec::with_capacity(self.payload.len() + 32);
        match format {
            WireFormat::Sse => {
                let id = self.id();
                let event = self.event_type.as_deref();
                if self.binary {
                    use base64::Engine;
                    let text = base64::engine::general_purpose::STANDARD.encode(&self.payload);
                    sse::encode_event(Some(&id), event, text.as_bytes(), &mut out);
                } else {
                    sse::encode_event(Some(&id), event, &self.payload, &mut out);
                }
            }
            WireFormat::StreamChunked => {
                stream::encode_chunk(&self.payload, &settings.stream_separator, &mut out)
            }
            WireFormat::StreamRaw => {
                out.extend_from_slice(&self.payload);
                out.extend_from_slice(&settings.stream_separator);
            }
            WireFormat::StreamJson => {
                let line = longpoll::message_json(self).to_string();
                stream::encode_chunk(line.as_bytes(), b"\n", &mut out)
            }
            WireFormat::WebSocket { deflate, json } => {
                let (opcode, payload) = if json {
                    let text = longpoll::message_json(self).to_string();
                    (websocket::Opcode::Text, Bytes::from(text.into_bytes()))
                } else {
                    (self.opcode(), self.payload.clone())
                };
                if deflate != 0 {
                    // Compression must pay for itself, else share the plain frame.
                    match deflate::compress(&payload, deflate) {
                        Some(c) if c.len() < payload.len() => {
                            return Bytes::from(websocket::encode_frame(opcode, true, &c))
                        }
                        _ => {
                            return self
                                .encoded(WireFormat::WebSocket { deflate: 0, json }, settings)
                        }
                    }
                }
                return Bytes::from(websocket::encode_frame(opcode, false, &payload));
            }
        }
        Bytes::from(out)
    }
}

impl Message {
    /// Text frames must carry UTF-8: a "text" message that is not valid
    /// UTF-8 goes out as a binary frame rather than break the connection.
    fn opcode(&self) -> websocket::Opcode {
        if self.binary || std::str::from_utf8(&self.payload).is_err() {
            websocket::Opcode::Binary
        } else {
            websocket::Opcode::Text
        }
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
        }
    }

    fn message(payload: &'static [u8], content_type: Option<&str>) -> Message {
        let p = Publication {
            payload: Bytes::from_static(payload),
            event_type: None,
            content_type: content_type.map(str::to_string),
        };
        let channel = ChannelRef {
            id: 1,
            name: std::sync::Arc::from("news"),
        };
        Message::new(7, vec![channel].into(), 0, p)
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
    fn stream_formats() {
        let m = message(b"hello", None);
        assert_eq!(
            &m.encoded(WireFormat::StreamChunked, &settings())[..],
            b"6\r\nhello\n\r\n"
        );
        assert_eq!(
            &m.encoded(WireFormat::StreamRaw, &settings())[..],
            b"hello\n"
        );
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
