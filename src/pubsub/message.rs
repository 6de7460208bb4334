//! A published message and its wire encodings, each built at most once.
//!
//! Fanout is the hot path: one message goes to up to a million sockets. So
//! the payload is never copied per subscriber. Each wire format is encoded
//! the first time any reactor needs it (`OnceLock`) and the resulting
//! `Bytes` is shared by reference by every subscriber's out queue.

use bytes::Bytes;
use std::sync::atomic::AtomicU32;
use std::sync::OnceLock;

use crate::proto::{deflate, sse, stream, websocket};
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
    /// One unmasked WebSocket frame (text, or binary for binary messages).
    WebSocket,
    /// A permessage-deflate frame compressed with this many window bits
    /// (8..=15); small or incompressible messages fall back to `WebSocket`.
    WebSocketDeflate(u8),
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
    sse: OnceLock<Bytes>,
    stream_chunked: OnceLock<Bytes>,
    stream_raw: OnceLock<Bytes>,
    websocket: OnceLock<Bytes>,
    /// Indexed by window bits - 8.
    websocket_deflate: [OnceLock<Bytes>; 8],
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
            sse: OnceLock::new(),
            stream_chunked: OnceLock::new(),
            stream_raw: OnceLock::new(),
            websocket: OnceLock::new(),
            websocket_deflate: Default::default(),
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
        let cell = match format {
            WireFormat::Sse => &self.sse,
            WireFormat::StreamChunked => &self.stream_chunked,
            WireFormat::StreamRaw => &self.stream_raw,
            WireFormat::WebSocket => &self.websocket,
            WireFormat::WebSocketDeflate(bits) => {
                if self.payload.len() < settings.deflate_min_size {
                    return self.encoded(WireFormat::WebSocket, settings);
                }
                &self.websocket_deflate[usize::from(bits.clamp(8, 15) - 8)]
            }
        };
        cell.get_or_init(|| self.encode(format, settings)).clone()
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
            WireFormat::WebSocket => return Bytes::from(self.websocket_frame()),
            WireFormat::WebSocketDeflate(bits) => {
                return match deflate::compress(&self.payload, bits) {
                    // Compression must pay for itself, else share the plain frame.
                    Some(c) if c.len() < self.payload.len() => {
                        Bytes::from(websocket::encode_frame(self.opcode(), true, &c))
                    }
                    _ => self.encoded(WireFormat::WebSocket, settings),
                };
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

    fn websocket_frame(&self) -> Vec<u8> {
        websocket::encode_frame(self.opcode(), false, &self.payload)
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
