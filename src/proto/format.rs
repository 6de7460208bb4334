//! How a subscriber's socket wants a message framed, and the one function
//! that frames a message in each format.
//!
//! Fanout encodes each message at most once per format and shares the bytes
//! with every subscriber of that format, so this is called once per message
//! and format, never per subscriber.

use base64::Engine;
use bytes::Bytes;

use super::compat::template::Templates;
use super::envelope::{message_json, MessageView};
use super::ws::{deflate, encode_frame, Opcode};
use super::{compat, sse, stream};

/// A subscriber's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// EventSource event (`id:`, `event:`, `data:` lines).
    Sse,
    /// One HTTP/1.1 chunk per message (raw `/sub` stream).
    StreamChunked,
    /// Payload plus separator, for HTTP/1.0 streams without chunking.
    StreamRaw,
    /// One chunk per message holding a JSON envelope line
    /// (`/sub/CH?format=json`).
    StreamJson,
    /// A waiting long-poll: messages are collected and answered as one JSON
    /// body of envelopes; the encoding is the envelope alone.
    LongPoll,
    /// One unmasked WebSocket frame (text, or binary for binary messages).
    /// `deflate` is the permessage-deflate window (8..=15), 0 when not
    /// negotiated; `json` wraps each message in its JSON envelope.
    WebSocket { deflate: u8, json: bool },
    /// push-stream's EventSource (`--compat push-stream`): `id:` is the
    /// publisher's `Event-Id`, absent without one.
    PushStreamSse,
    /// Nchan's EventSource (`--compat nchan`): `id: TIME:ID`.
    NchanSse,
    /// A WebSocket that chose Nchan's `ws+meta.nchan` subprotocol: each
    /// frame is `id:` and `content-type:` lines, a blank line, the message.
    NchanWsMeta { deflate: u8 },
    /// push-stream's stream (`/sub/` with `--compat push-stream`): each
    /// message through the message template, then `stream_separator`;
    /// one chunk each when `chunked` (HTTP/1.1).
    PushStreamStream { chunked: bool },
    /// push-stream's WebSocket: one frame per message, through the message
    /// template.
    PushStreamWs { deflate: u8 },
    /// A message through push-stream's message template and nothing else:
    /// the pieces a push-stream long-poll answer (or JSONP) joins.
    PushStreamText,
}

/// Settings the encoders need that are the same for every message.
#[derive(Debug, Clone)]
pub struct EncodeSettings {
    /// Appended to each message on raw streams.
    pub stream_separator: Bytes,
    /// Messages shorter than this are not compressed for WebSocket.
    pub deflate_min_size: usize,
    /// push-stream's templates, used by the push-stream formats only (the
    /// defaults send messages as published).
    pub push_stream: Templates,
}

/// What [`encode_message`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Encoded {
    /// The bytes of the message in the asked format.
    Bytes(Vec<u8>),
    /// The message looks the same in this other format (compression did not
    /// pay): share that encoding instead of making a second copy.
    SameAs(WireFormat),
}

impl WireFormat {
    /// Number of distinct formats (see [`index`](Self::index)).
    pub const COUNT: usize = 5 + 2 * 9 + 2 + 9 + 1 + 2 + 9;

    /// A dense index per format, for per-message encoding caches.
    pub fn index(self) -> usize {
        match self {
            WireFormat::Sse => 0,
            WireFormat::StreamChunked => 1,
            WireFormat::StreamRaw => 2,
            WireFormat::StreamJson => 3,
            WireFormat::LongPoll => 4,
            WireFormat::WebSocket { deflate, json } => {
                let window = if deflate == 0 {
                    0
                } else {
                    usize::from(deflate.clamp(8, 15) - 7)
                };
                5 + usize::from(json) * 9 + window
            }
            WireFormat::PushStreamSse => 23,
            WireFormat::NchanSse => 24,
            WireFormat::NchanWsMeta { deflate } => 25 + window_index(deflate),
            WireFormat::PushStreamText => 34,
            WireFormat::PushStreamStream { chunked } => 35 + usize::from(chunked),
            WireFormat::PushStreamWs { deflate } => 37 + window_index(deflate),
        }
    }

    /// The raw-stream format for a request: chunked for HTTP/1.1 (with JSON
    /// envelopes when asked), close-delimited for HTTP/1.0.
    pub fn stream(http11: bool, json: bool) -> WireFormat {
        match (http11, json) {
            (false, _) => WireFormat::StreamRaw,
            (true, true) => WireFormat::StreamJson,
            (true, false) => WireFormat::StreamChunked,
        }
    }

    /// True for WebSocket formats.
    pub fn is_websocket(self) -> bool {
        matches!(
            self,
            WireFormat::WebSocket { .. }
                | WireFormat::NchanWsMeta { .. }
                | WireFormat::PushStreamWs { .. }
        )
    }

    /// The format a message of `payload_len` bytes is really sent in: small
    /// messages are not worth compressing and share the plain frame.
    pub fn effective(self, payload_len: usize, settings: &EncodeSettings) -> WireFormat {
        match self {
            WireFormat::WebSocket { deflate, json }
                if deflate != 0 && payload_len < settings.deflate_min_size =>
            {
                WireFormat::WebSocket { deflate: 0, json }
            }
            WireFormat::NchanWsMeta { deflate }
                if deflate != 0 && payload_len < settings.deflate_min_size =>
            {
                WireFormat::NchanWsMeta { deflate: 0 }
            }
            WireFormat::PushStreamWs { deflate }
                if deflate != 0 && payload_len < settings.deflate_min_size =>
            {
                WireFormat::PushStreamWs { deflate: 0 }
            }
            f => f,
        }
    }
}

/// The cache slot of a deflate window: 0 uncompressed, 1..=8 for 8..=15.
fn window_index(deflate: u8) -> usize {
    if deflate == 0 {
        0
    } else {
        usize::from(deflate.clamp(8, 15) - 7)
    }
}

/// Frames message `m` in `format`.
pub fn encode_message(
    format: WireFormat,
    m: &MessageView<'_>,
    settings: &EncodeSettings,
) -> Encoded {
    let mut out = Vec::with_capacity(m.payload.len() + 32);
    match format {
        WireFormat::Sse => {
            if m.binary {
                // EventSource carries text only.
                let text = base64::engine::general_purpose::STANDARD.encode(m.payload);
                sse::encode_event(Some(m.id), m.event_type, text.as_bytes(), &mut out);
            } else {
                sse::encode_event(Some(m.id), m.event_type, m.payload, &mut out);
            }
        }
        WireFormat::StreamChunked => {
            stream::encode_chunk(m.payload, &settings.stream_separator, &mut out)
        }
        WireFormat::StreamRaw => {
            out.extend_from_slice(m.payload);
            out.extend_from_slice(&settings.stream_separator);
        }
        WireFormat::StreamJson => {
            let line = message_json(m).to_string();
            stream::encode_chunk(line.as_bytes(), b"\n", &mut out)
        }
        WireFormat::LongPoll => out = message_json(m).to_string().into_bytes(),
        WireFormat::WebSocket { deflate, json } => {
            let envelope;
            let (opcode, payload) = if json {
                envelope = message_json(m).to_string();
                (Opcode::Text, envelope.as_bytes())
            } else {
                (ws_opcode(m), m.payload)
            };
            if deflate == 0 {
                return Encoded::Bytes(encode_frame(opcode, false, payload));
            }
            // Compression must pay for itself, else share the plain frame.
            return match deflate::compress(payload, deflate) {
                Some(c) if c.len() < payload.len() => {
                    Encoded::Bytes(encode_frame(opcode, true, &c))
                }
                _ => Encoded::SameAs(WireFormat::WebSocket { deflate: 0, json }),
            };
        }
        WireFormat::PushStreamSse => {
            compat::push_stream::encode_sse(m, &settings.push_stream.message, &mut out)
        }
        WireFormat::PushStreamText => {
            compat::push_stream::render_message(m, &settings.push_stream.message, &mut out)
        }
        WireFormat::PushStreamStream { chunked } => {
            let mut text = Vec::with_capacity(m.payload.len() + 64);
            compat::push_stream::render_message(m, &settings.push_stream.message, &mut text);
            if chunked {
                stream::encode_chunk(&text, &settings.stream_separator, &mut out);
            } else {
                out = text;
                out.extend_from_slice(&settings.stream_separator);
            }
        }
        WireFormat::PushStreamWs { deflate } => {
            let mut text = Vec::with_capacity(m.payload.len() + 64);
            compat::push_stream::render_message(m, &settings.push_stream.message, &mut text);
            let opcode = if m.binary || std::str::from_utf8(&text).is_err() {
                Opcode::Binary
            } else {
                Opcode::Text
            };
            return deflated_frame(
                opcode,
                &text,
                deflate,
                WireFormat::PushStreamWs { deflate: 0 },
            );
        }
        WireFormat::NchanSse => compat::nchan::encode_sse(m, &mut out),
        WireFormat::NchanWsMeta { deflate } => {
            let payload = compat::nchan::ws_meta_payload(m);
            let opcode = if compat::nchan::ws_binary(m) {
                Opcode::Binary
            } else {
                Opcode::Text
            };
            if deflate == 0 {
                return Encoded::Bytes(encode_frame(opcode, false, &payload));
            }
            return match deflate::compress(&payload, deflate) {
                Some(c) if c.len() < payload.len() => {
                    Encoded::Bytes(encode_frame(opcode, true, &c))
                }
                _ => Encoded::SameAs(WireFormat::NchanWsMeta { deflate: 0 }),
            };
        }
    }
    Encoded::Bytes(out)
}

/// One frame of `payload`, compressed with window `deflate` when that
/// pays; else the frame of `plain` (the same format uncompressed) is
/// shared.
fn deflated_frame(opcode: Opcode, payload: &[u8], deflate: u8, plain: WireFormat) -> Encoded {
    if deflate == 0 {
        return Encoded::Bytes(encode_frame(opcode, false, payload));
    }
    match deflate::compress(payload, deflate) {
        Some(c) if c.len() < payload.len() => Encoded::Bytes(encode_frame(opcode, true, &c)),
        _ => Encoded::SameAs(plain),
    }
}

/// Text frames must carry UTF-8: a "text" message that is not valid UTF-8
/// goes out as a binary frame rather than break the connection.
fn ws_opcode(m: &MessageView<'_>) -> Opcode {
    if m.binary || std::str::from_utf8(m.payload).is_err() {
        Opcode::Binary
    } else {
        Opcode::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EncodeSettings {
        EncodeSettings {
            stream_separator: Bytes::from_static(b"\n"),
            deflate_min_size: 16,
            push_stream: Templates::default(),
        }
    }

    fn view(payload: &[u8], binary: bool) -> MessageView<'_> {
        MessageView {
            id: "7",
            channels: &["news"],
            event_type: None,
            content_type: None,
            binary,
            payload,
            published_at_ms: 0,
            event_id: None,
        }
    }

    fn bytes(e: Encoded) -> Vec<u8> {
        match e {
            Encoded::Bytes(b) => b,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_formats() {
        let s = settings();
        let m = view(b"hello", false);
        assert_eq!(
            bytes(encode_message(WireFormat::Sse, &m, &s)),
            b"id: 7\ndata: hello\n\n"
        );
        assert_eq!(
            bytes(encode_message(WireFormat::StreamChunked, &m, &s)),
            b"6\r\nhello\n\r\n"
        );
        assert_eq!(
            bytes(encode_message(WireFormat::StreamRaw, &m, &s)),
            b"hello\n"
        );
        let lp = bytes(encode_message(WireFormat::LongPoll, &m, &s));
        let v: serde_json::Value = serde_json::from_slice(&lp).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["data"].as_str()),
            (Some("7"), Some("hello"))
        );
    }

    #[test]
    fn binary_is_base64_on_sse_and_a_binary_frame_on_websocket() {
        let s = settings();
        let m = view(b"\x00\x01", true);
        assert_eq!(
            bytes(encode_message(WireFormat::Sse, &m, &s)),
            b"id: 7\ndata: AAE=\n\n"
        );
        let ws = WireFormat::WebSocket {
            deflate: 0,
            json: false,
        };
        assert_eq!(bytes(encode_message(ws, &m, &s)), [0x82, 2, 0, 1]);
        // Text that is not UTF-8 is sent as binary too.
        assert_eq!(
            bytes(encode_message(ws, &view(b"\xff", false), &s))[0],
            0x82
        );
    }

    #[test]
    fn deflate_only_when_it_pays() {
        let s = settings();
        let ws = WireFormat::WebSocket {
            deflate: 15,
            json: false,
        };
        let long = "abc".repeat(100);
        let framed = bytes(encode_message(ws, &view(long.as_bytes(), false), &s));
        assert_eq!(framed[0], 0xC1, "FIN + RSV1 + text");
        let random = [
            0x5a, 0x13, 0xf0, 0x77, 0x01, 0xe2, 0x9c, 0x44, 0xb8, 0x3d, 0x61, 0xfe, 0x02, 0x8a,
            0xc7, 0x19, 0x55,
        ];
        assert_eq!(
            encode_message(ws, &view(&random, true), &s),
            Encoded::SameAs(WireFormat::WebSocket {
                deflate: 0,
                json: false
            })
        );
        assert_eq!(
            ws.effective(3, &s),
            WireFormat::WebSocket {
                deflate: 0,
                json: false
            }
        );
        assert_eq!(ws.effective(16, &s), ws);
    }

    #[test]
    fn push_stream_formats_apply_the_message_template() {
        let mut s = settings();
        let m = view(b"hi", false);
        // The default template: the message as published, like crier's.
        assert_eq!(
            bytes(encode_message(
                WireFormat::PushStreamStream { chunked: true },
                &m,
                &s
            )),
            bytes(encode_message(WireFormat::StreamChunked, &m, &s))
        );
        s.push_stream.message = compat::template::Template::parse("<~id~:~text~>");
        assert_eq!(
            bytes(encode_message(
                WireFormat::PushStreamStream { chunked: true },
                &m,
                &s
            )),
            b"7\r\n<7:hi>\n\r\n"
        );
        assert_eq!(
            bytes(encode_message(
                WireFormat::PushStreamStream { chunked: false },
                &m,
                &s
            )),
            b"<7:hi>\n"
        );
        assert_eq!(
            bytes(encode_message(WireFormat::PushStreamText, &m, &s)),
            b"<7:hi>"
        );
        assert_eq!(
            bytes(encode_message(WireFormat::PushStreamSse, &m, &s)),
            b"data: <7:hi>\n\n"
        );
        let ws = bytes(encode_message(
            WireFormat::PushStreamWs { deflate: 0 },
            &m,
            &s,
        ));
        assert_eq!(ws, b"\x81\x06<7:hi>");
        // Deflate that does not pay shares the plain frame.
        assert_eq!(
            encode_message(WireFormat::PushStreamWs { deflate: 15 }, &m, &s),
            Encoded::SameAs(WireFormat::PushStreamWs { deflate: 0 })
        );
    }

    #[test]
    fn indexes_are_dense_and_distinct() {
        let mut all = vec![
            WireFormat::Sse,
            WireFormat::StreamChunked,
            WireFormat::StreamRaw,
            WireFormat::StreamJson,
            WireFormat::LongPoll,
        ];
        for json in [false, true] {
            all.push(WireFormat::WebSocket { deflate: 0, json });
            for w in 8..=15 {
                all.push(WireFormat::WebSocket { deflate: w, json });
            }
        }
        all.extend([WireFormat::PushStreamSse, WireFormat::NchanSse]);
        all.push(WireFormat::NchanWsMeta { deflate: 0 });
        all.push(WireFormat::PushStreamWs { deflate: 0 });
        for w in 8..=15 {
            all.push(WireFormat::NchanWsMeta { deflate: w });
            all.push(WireFormat::PushStreamWs { deflate: w });
        }
        all.push(WireFormat::PushStreamText);
        for chunked in [false, true] {
            all.push(WireFormat::PushStreamStream { chunked });
        }
        let mut seen: Vec<usize> = all.iter().map(|f| f.index()).collect();
        seen.sort();
        assert_eq!(seen, (0..WireFormat::COUNT).collect::<Vec<_>>());
    }
}
