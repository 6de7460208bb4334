//! Nchan's wire formats (pure): message ids, channel info in its four
//! formats, EventSource events and `ws+meta.nchan` WebSocket payloads.
//!
//! Nchan's message id is `TIME:TAG`, the publish second and a tag that
//! orders messages within it; long-poll clients carry the two halves in
//! `Last-Modified` / `Etag`. crier writes `TIME:ID`: the same second, and
//! crier's own message id as the tag. Clients treat the id as opaque text
//! and hand it back (`Last-Event-ID`, `?last_event_id=`, `If-None-Match`),
//! and crier reads its id back out of it.

use super::super::envelope::MessageView;
use super::super::sse;

/// A message id as Nchan clients see it: `TIME:ID`.
pub fn msg_id(published_at_ms: u64, id: impl std::fmt::Display) -> String {
    format!("{}:{}", published_at_ms / 1000, id)
}

/// crier's id out of a message id a client sent back: `TIME:ID`, or the
/// `Etag` half alone. None for anything else (Nchan's multiplexed
/// `T:[0],-` form, text).
pub fn parse_msg_id(text: &str) -> Option<u64> {
    let text = text.trim().trim_start_matches("W/").trim_matches('"');
    let tag = match text.split_once(':') {
        Some((time, tag)) if time.bytes().all(|b| b.is_ascii_digit()) => tag,
        Some(_) => return None,
        None => text,
    };
    tag.parse().ok()
}

/// The format of a channel-info reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoFormat {
    Plain,
    Json,
    Yaml,
    Xml,
}

impl InfoFormat {
    /// Nchan's choice: in each comma-separated `Accept` element, after
    /// `text/` or `application/`, the first of plain, json, x-json, yaml,
    /// x-yaml, xml the rest starts with; plain when none does.
    pub fn negotiate(accept: Option<&str>) -> InfoFormat {
        const SUBTYPES: [(&str, InfoFormat); 6] = [
            ("plain", InfoFormat::Plain),
            ("json", InfoFormat::Json),
            ("x-json", InfoFormat::Json),
            ("yaml", InfoFormat::Yaml),
            ("x-yaml", InfoFormat::Yaml),
            ("xml", InfoFormat::Xml),
        ];
        for element in accept.unwrap_or("").split(',') {
            let rest = ["text/", "application/"]
                .iter()
                .find_map(|p| element.find(p).map(|i| &element[i + p.len()..]));
            if let Some(rest) = rest {
                if let Some((_, f)) = SUBTYPES.iter().find(|(s, _)| rest.starts_with(s)) {
                    return *f;
                }
            }
        }
        InfoFormat::Plain
    }

    /// The reply's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            InfoFormat::Plain => "text/plain",
            InfoFormat::Json => "text/json",
            InfoFormat::Yaml => "text/yaml",
            InfoFormat::Xml => "text/xml",
        }
    }
}

/// A channel's figures as Nchan reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo<'a> {
    /// Stored ("queued") messages.
    pub messages: u64,
    /// Seconds since a subscriber last asked for the channel; -1 = never.
    pub requested: i64,
    pub subscribers: u64,
    /// `TIME:ID` of the newest message, `0:0` when there is none.
    pub last_message_id: &'a str,
}

/// The channel-info body in `format`.
pub fn channel_info(format: InfoFormat, c: &ChannelInfo<'_>) -> String {
    match format {
        InfoFormat::Plain => format!(
            "queued messages: {}\r\nlast requested: {} sec. ago\r\nactive subscribers: {}\r\nlast message id: {}",
            c.messages, c.requested, c.subscribers, c.last_message_id
        ),
        InfoFormat::Json => format!(
            "{{\"messages\": {}, \"requested\": {}, \"subscribers\": {}, \"last_message_id\": \"{}\" }}",
            c.messages, c.requested, c.subscribers, c.last_message_id
        ),
        InfoFormat::Yaml => format!(
            "---\r\nmessages: {}\r\nrequested: {}\r\nsubscribers: {}\r\nlast_message_id: \"{}\"\r\n\r\n",
            c.messages, c.requested, c.subscribers, c.last_message_id
        ),
        InfoFormat::Xml => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<channel>\r\n  <messages>{}</messages>\r\n  <requested>{}</requested>\r\n  <subscribers>{}</subscribers>\r\n  <last_message_id>{}</last_message_id>\r\n</channel>",
            c.messages, c.requested, c.subscribers, c.last_message_id
        ),
    }
}

/// One EventSource event: `id: TIME:ID`, `event:` from the publisher's
/// `X-EventSource-Event`, then the payload's lines.
pub fn encode_sse(m: &MessageView<'_>, out: &mut Vec<u8>) {
    let id = msg_id(m.published_at_ms, m.id);
    sse::encode_event(Some(&id), m.event_type, m.payload, out);
}

/// Whether Nchan sends a message as a binary WebSocket frame: only for
/// `application/octet-stream` (and crier adds: text that is not UTF-8).
pub fn ws_binary(m: &MessageView<'_>) -> bool {
    m.content_type
        .is_some_and(|ct| ct.eq_ignore_ascii_case("application/octet-stream"))
        || std::str::from_utf8(m.payload).is_err()
}

/// A `ws+meta.nchan` payload: `id: TIME:ID\n`, `content-type: CT\n` when
/// the message has one, a blank line, then the message.
pub fn ws_meta_payload(m: &MessageView<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.payload.len() + 64);
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(msg_id(m.published_at_ms, m.id).as_bytes());
    if let Some(ct) = m.content_type {
        out.extend_from_slice(b"\ncontent-type: ");
        out.extend_from_slice(ct.as_bytes());
    }
    out.extend_from_slice(b"\n\n");
    out.extend_from_slice(m.payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        assert_eq!(msg_id(1_796_149_147_123, 42), "1796149147:42");
        assert_eq!(parse_msg_id("1796149147:42"), Some(42));
        assert_eq!(parse_msg_id("42"), Some(42));
        assert_eq!(parse_msg_id("\"42\""), Some(42));
        assert_eq!(parse_msg_id("1796149165:[0],-"), None);
        assert_eq!(parse_msg_id("x:1"), None);
    }

    #[test]
    fn info_formats_are_nchans() {
        assert_eq!(InfoFormat::negotiate(None), InfoFormat::Plain);
        assert_eq!(InfoFormat::negotiate(Some("text/json")), InfoFormat::Json);
        assert_eq!(
            InfoFormat::negotiate(Some("application/json")),
            InfoFormat::Json
        );
        assert_eq!(
            InfoFormat::negotiate(Some("text/html, application/xml")),
            InfoFormat::Xml
        );
        assert_eq!(InfoFormat::negotiate(Some("*/*")), InfoFormat::Plain);
        let c = ChannelInfo {
            messages: 1,
            requested: -1,
            subscribers: 0,
            last_message_id: "1796148519:0",
        };
        assert_eq!(
            channel_info(InfoFormat::Plain, &c),
            "queued messages: 1\r\nlast requested: -1 sec. ago\r\nactive subscribers: 0\r\nlast message id: 1796148519:0"
        );
        assert_eq!(
            channel_info(InfoFormat::Json, &c),
            "{\"messages\": 1, \"requested\": -1, \"subscribers\": 0, \"last_message_id\": \"1796148519:0\" }"
        );
        assert_eq!(channel_info(InfoFormat::Yaml, &c).len(), 84);
    }

    #[test]
    fn events_and_meta_frames() {
        let m = MessageView {
            id: "7",
            channels: &["a"],
            event_type: None,
            content_type: Some("text/plain"),
            binary: false,
            payload: b"hi",
            published_at_ms: 5_000,
            event_id: None,
        };
        let mut out = Vec::new();
        encode_sse(&m, &mut out);
        assert_eq!(out, b"id: 5:7\ndata: hi\n\n");
        assert_eq!(
            ws_meta_payload(&m),
            b"id: 5:7\ncontent-type: text/plain\n\nhi"
        );
        assert!(!ws_binary(&m));
    }
}
