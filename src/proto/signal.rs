//! Everything besides messages that a subscriber's stream carries, per
//! format: keepalive pings, the goodbye that asks it to come back later,
//! the slow-consumer cut, "channel deleted" and "messages were missed".
//!
//! Long-polls have no stream to carry these: they end with an HTTP answer
//! instead (`reactor/longpoll.rs`), so every function here gives them
//! nothing. Plain WebSocket and raw streams carry payloads only and have no
//! room for an in-band "missed" signal; clients that need gap detection
//! there use `?format=json` (documented in the README).

use bytes::Bytes;

use super::compat::push_stream as ps;
use super::envelope::{channel_deleted_json, missed_json};
use super::format::{EncodeSettings, WireFormat};
use super::ws::error::{CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_POLICY, CLOSE_TOKEN_EXPIRED};
use super::ws::frame::EMPTY_PING;
use super::ws::{encode_close, encode_frame, Opcode};
use super::{sse, stream};

/// Pre-encoded keepalive pings, built once per server and shared by every
/// connection.
#[derive(Debug, Clone)]
pub struct Pings {
    sse: Bytes,
    stream_chunked: Bytes,
    stream_raw: Bytes,
    websocket: Bytes,
}

impl Pings {
    /// Builds the static ping of every format; `stream_ping` is what raw
    /// streams get (a chunk of it on chunked streams).
    pub fn new(stream_ping: &[u8]) -> Pings {
        let mut sse_ping = Vec::new();
        sse::encode_comment("", &mut sse_ping);
        let mut chunk = Vec::new();
        stream::encode_chunk(stream_ping, b"", &mut chunk);
        Pings {
            sse: Bytes::from(sse_ping),
            stream_chunked: Bytes::from(chunk),
            stream_raw: Bytes::copy_from_slice(stream_ping),
            websocket: Bytes::from_static(&EMPTY_PING),
        }
    }

    /// The ping for `format`; `None` for long-polls, which are answered at
    /// their timeout instead.
    pub fn ping(&self, format: WireFormat) -> Option<&Bytes> {
        match format {
            WireFormat::Sse | WireFormat::PushStreamSse | WireFormat::NchanSse => Some(&self.sse),
            WireFormat::StreamChunked
            | WireFormat::StreamJson
            | WireFormat::PushStreamStream { chunked: true } => Some(&self.stream_chunked),
            WireFormat::StreamRaw | WireFormat::PushStreamStream { chunked: false } => {
                Some(&self.stream_raw)
            }
            WireFormat::WebSocket { .. }
            | WireFormat::NchanWsMeta { .. }
            | WireFormat::PushStreamWs { .. } => Some(&self.websocket),
            WireFormat::LongPoll | WireFormat::PushStreamText => None,
        }
    }
}

/// Asks the subscriber to reconnect later (drain, connection lifetime): SSE
/// gets `retry:` (so a restart does not bring every client back in the same
/// second), WebSocket a 1001 close, chunked streams their last chunk;
/// push-stream's streams get their footer first.
pub fn goodbye(format: WireFormat, retry_ms: u64, settings: &EncodeSettings) -> Vec<u8> {
    let mut out = push_stream_footer(format, settings);
    match format {
        WireFormat::Sse | WireFormat::PushStreamSse | WireFormat::NchanSse => {
            sse::encode_retry(retry_ms, &mut out)
        }
        WireFormat::StreamChunked
        | WireFormat::StreamJson
        | WireFormat::PushStreamStream { chunked: true } => {
            out.extend_from_slice(stream::LAST_CHUNK)
        }
        WireFormat::WebSocket { .. }
        | WireFormat::NchanWsMeta { .. }
        | WireFormat::PushStreamWs { .. } => {
            out.extend_from_slice(&encode_close(CLOSE_GOING_AWAY, "server going away"))
        }
        WireFormat::StreamRaw
        | WireFormat::PushStreamStream { chunked: false }
        | WireFormat::LongPoll
        | WireFormat::PushStreamText => {}
    }
    out
}

/// The last words to a subscriber dropped for not reading: a WebSocket gets
/// close 1008; the other streams simply end.
pub fn slow_consumer(format: WireFormat) -> Option<Vec<u8>> {
    format
        .is_websocket()
        .then(|| encode_close(CLOSE_POLICY, "slow consumer"))
}

/// Tells the subscriber the token it subscribed with expired; the
/// connection then closes (docs/TOKENS.md): SSE `event: token_expired`,
/// WebSocket close 4001, chunked streams a JSON line (JSON mode) and their
/// last chunk (push-stream's streams their footer first).
pub fn token_expired(format: WireFormat, settings: &EncodeSettings) -> Vec<u8> {
    let mut out = push_stream_footer(format, settings);
    match format {
        WireFormat::Sse | WireFormat::PushStreamSse | WireFormat::NchanSse => {
            sse::encode_event(None, Some("token_expired"), b"", &mut out)
        }
        WireFormat::StreamChunked | WireFormat::PushStreamStream { chunked: true } => {
            out.extend_from_slice(stream::LAST_CHUNK)
        }
        WireFormat::StreamJson => {
            stream::encode_chunk(br#"{"event":"token_expired"}"#, b"\n", &mut out);
            out.extend_from_slice(stream::LAST_CHUNK);
        }
        WireFormat::WebSocket { .. }
        | WireFormat::NchanWsMeta { .. }
        | WireFormat::PushStreamWs { .. } => {
            out.extend_from_slice(&encode_close(CLOSE_TOKEN_EXPIRED, "token expired"))
        }
        WireFormat::StreamRaw
        | WireFormat::PushStreamStream { chunked: false }
        | WireFormat::LongPoll
        | WireFormat::PushStreamText => {}
    }
    out
}

/// Tells the subscriber its channel was deleted; the connection then closes.
/// push-stream's formats get its "Channel deleted" message (id `-2`)
/// through the message template, then the footer.
pub fn channel_deleted(format: WireFormat, channel: &str, settings: &EncodeSettings) -> Vec<u8> {
    let mut out = Vec::new();
    let ps_message = || ps::channel_deleted_message(channel, &settings.push_stream.message);
    match format {
        WireFormat::Sse => {
            sse::encode_event(None, Some("channel_deleted"), channel.as_bytes(), &mut out)
        }
        WireFormat::StreamChunked => out.extend_from_slice(stream::LAST_CHUNK),
        WireFormat::StreamJson => {
            stream::encode_chunk(channel_deleted_json(channel).as_bytes(), b"\n", &mut out);
            out.extend_from_slice(stream::LAST_CHUNK);
        }
        WireFormat::WebSocket { .. } => out = encode_close(CLOSE_NORMAL, "channel deleted"),
        // What push-stream and Nchan send (src/proto/compat/).
        WireFormat::PushStreamSse => {
            sse::encode_event(None, None, &ps_message(), &mut out);
            out.extend_from_slice(&push_stream_footer(format, settings));
        }
        WireFormat::PushStreamStream { chunked } => {
            let text = ps_message();
            if chunked {
                stream::encode_chunk(&text, &settings.stream_separator, &mut out);
            } else {
                out.extend_from_slice(&text);
                out.extend_from_slice(&settings.stream_separator);
            }
            out.extend_from_slice(&push_stream_footer(format, settings));
            if chunked {
                out.extend_from_slice(stream::LAST_CHUNK);
            }
        }
        WireFormat::PushStreamWs { .. } => {
            out = encode_frame(Opcode::Text, false, &ps_message());
            out.extend_from_slice(&push_stream_footer(format, settings));
            out.extend_from_slice(&encode_close(CLOSE_NORMAL, "channel deleted"));
        }
        WireFormat::NchanSse => out.extend_from_slice(b":410: 410 Gone\n\n"),
        WireFormat::NchanWsMeta { .. } => out = encode_close(CLOSE_GOING_AWAY, "410 Gone"),
        WireFormat::StreamRaw | WireFormat::LongPoll | WireFormat::PushStreamText => {}
    }
    out
}

/// push-stream's header or footer template `text` as the stream of
/// `format` carries it: EventSource comment lines, a chunk (or the bare
/// text on HTTP/1.0), a WebSocket text frame. Nothing for other formats,
/// or when `text` is empty.
pub fn push_stream_text(format: WireFormat, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if text.is_empty() {
        return out;
    }
    match format {
        WireFormat::PushStreamSse => sse::encode_comment(text, &mut out),
        WireFormat::PushStreamStream { chunked: true } => {
            stream::encode_chunk(text.as_bytes(), b"", &mut out)
        }
        WireFormat::PushStreamStream { chunked: false } => out.extend_from_slice(text.as_bytes()),
        WireFormat::PushStreamWs { .. } => out = encode_frame(Opcode::Text, false, text.as_bytes()),
        _ => {}
    }
    out
}

/// The footer a push-stream stream ends with (empty for other formats).
fn push_stream_footer(format: WireFormat, settings: &EncodeSettings) -> Vec<u8> {
    push_stream_text(format, &settings.push_stream.footer)
}

/// Tells a resuming subscriber that history did not reach back to
/// `requested` (the id it resumed from, if any): SSE `event: missed`, the
/// JSON formats a `{"event":"missed"}` envelope.
pub fn missed(format: WireFormat, requested: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        WireFormat::Sse => {
            let id = requested.map(|s| s.to_string()).unwrap_or_default();
            sse::encode_event(None, Some("missed"), id.as_bytes(), &mut out)
        }
        WireFormat::StreamJson => {
            stream::encode_chunk(missed_json(requested).as_bytes(), b"\n", &mut out)
        }
        WireFormat::WebSocket { json: true, .. } => {
            out = encode_frame(Opcode::Text, false, missed_json(requested).as_bytes())
        }
        // push-stream and Nchan have no "missed" signal: their clients
        // would show it as a message.
        WireFormat::WebSocket { json: false, .. }
        | WireFormat::PushStreamStream { .. }
        | WireFormat::PushStreamWs { .. }
        | WireFormat::PushStreamText
        | WireFormat::StreamChunked
        | WireFormat::StreamRaw
        | WireFormat::LongPoll
        | WireFormat::PushStreamSse
        | WireFormat::NchanSse
        | WireFormat::NchanWsMeta { .. } => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: WireFormat = WireFormat::WebSocket {
        deflate: 0,
        json: false,
    };
    static S: std::sync::LazyLock<EncodeSettings> = std::sync::LazyLock::new(|| EncodeSettings {
        stream_separator: Bytes::from_static(b"\n"),
        deflate_min_size: 64,
        push_stream: Default::default(),
    });

    const WS_JSON: WireFormat = WireFormat::WebSocket {
        deflate: 15,
        json: true,
    };

    #[test]
    fn pings() {
        let p = Pings::new(b"\n");
        assert_eq!(&p.ping(WireFormat::Sse).unwrap()[..], b":\n\n");
        assert_eq!(
            &p.ping(WireFormat::StreamChunked).unwrap()[..],
            b"1\r\n\n\r\n"
        );
        assert_eq!(&p.ping(WireFormat::StreamRaw).unwrap()[..], b"\n");
        assert_eq!(&p.ping(WS).unwrap()[..], [0x89, 0]);
        assert!(p.ping(WireFormat::LongPoll).is_none());
    }

    #[test]
    fn goodbyes() {
        assert_eq!(goodbye(WireFormat::Sse, 4487, &S), b"retry: 4487\n\n");
        assert_eq!(goodbye(WireFormat::StreamJson, 1, &S), stream::LAST_CHUNK);
        assert_eq!(&goodbye(WS, 1, &S)[..4], [0x88, 19, 0x03, 0xE9]);
        assert!(goodbye(WireFormat::StreamRaw, 1, &S).is_empty());
        assert!(goodbye(WireFormat::LongPoll, 1, &S).is_empty());
        assert_eq!(&slow_consumer(WS).unwrap()[2..4], 1008u16.to_be_bytes());
        assert!(slow_consumer(WireFormat::Sse).is_none());
    }

    #[test]
    fn token_expired_signals() {
        assert_eq!(
            token_expired(WireFormat::Sse, &S),
            b"event: token_expired\ndata: \n\n"
        );
        assert_eq!(&token_expired(WS, &S)[2..4], 4001u16.to_be_bytes());
        assert!(token_expired(WireFormat::StreamJson, &S).ends_with(stream::LAST_CHUNK));
    }

    #[test]
    fn channel_deleted_and_missed() {
        assert_eq!(
            channel_deleted(WireFormat::Sse, "c", &S),
            b"event: channel_deleted\ndata: c\n\n"
        );
        assert_eq!(&channel_deleted(WS, "c", &S)[2..4], 1000u16.to_be_bytes());
        let json = channel_deleted(WireFormat::StreamJson, "c", &S);
        assert!(json.ends_with(stream::LAST_CHUNK));
        assert_eq!(
            missed(WireFormat::Sse, Some(3)),
            b"event: missed\ndata: 3\n\n"
        );
        assert_eq!(missed(WS_JSON, None)[0], 0x81);
        assert!(missed(WS, Some(3)).is_empty());
        assert!(missed(WireFormat::StreamChunked, Some(3)).is_empty());
    }

    #[test]
    fn push_stream_deleted_header_and_footer() {
        let sse = WireFormat::PushStreamSse;
        let chunked = WireFormat::PushStreamStream { chunked: true };
        let ws = WireFormat::PushStreamWs { deflate: 0 };
        // Default templates: the bare text, no footer.
        assert_eq!(channel_deleted(sse, "c", &S), b"data: Channel deleted\n\n");
        assert_eq!(
            channel_deleted(chunked, "c", &S),
            b"10\r\nChannel deleted\n\r\n0\r\n\r\n"
        );
        let mut s = S.clone();
        s.push_stream.message =
            super::super::compat::template::Template::parse("[~id~ ~channel~ ~text~]");
        s.push_stream.footer = "</body>".into();
        assert_eq!(
            channel_deleted(sse, "c", &s),
            b"data: [-2 c Channel deleted]\n\n: </body>\n\n"
        );
        let raw = WireFormat::PushStreamStream { chunked: false };
        assert_eq!(
            channel_deleted(raw, "c", &s),
            b"[-2 c Channel deleted]\n</body>"
        );
        let frames = channel_deleted(ws, "c", &s);
        assert!(frames.starts_with(b"\x81\x16[-2 c Channel deleted]\x81\x07</body>\x88"));
        assert_eq!(goodbye(chunked, 1, &s), b"7\r\n</body>\r\n0\r\n\r\n");
        assert_eq!(push_stream_text(ws, "<h>"), b"\x81\x03<h>");
        assert_eq!(push_stream_text(sse, "a\nb"), b": a\n: b\n\n");
        assert!(push_stream_text(WireFormat::StreamChunked, "x").is_empty());
        assert!(push_stream_text(chunked, "").is_empty());
        assert!(missed(ws, Some(1)).is_empty());
        assert!(Pings::new(b"\n").ping(WireFormat::PushStreamText).is_none());
    }
}
