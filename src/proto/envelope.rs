//! The JSON envelope of a message, shared by every format that must carry
//! ids and metadata next to the payload: long-poll answers, `?format=json`
//! streams and WebSockets (or the `crier.json` subprotocol).
//!
//! `{"id","channel"[,"channels"],"event","content_type","data"[,"encoding":"base64"]}`:
//! text payloads are JSON strings; binary (or non-UTF-8) payloads are
//! base64 with `"encoding":"base64"`.

use base64::Engine;
use serde_json::{json, Map, Value};

/// What the codecs need of a published message. The hub's message lends
/// one, so codecs never see the hub.
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    /// The id the client sees (a number, or a composite of several).
    pub id: &'a str,
    /// Channels the message went to, in publish order (usually one).
    pub channels: &'a [&'a str],
    pub event_type: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// Published with a non-text content type.
    pub binary: bool,
    pub payload: &'a [u8],
    /// Publish time, ms since the Unix epoch (Nchan's `T:` of an id).
    pub published_at_ms: u64,
    /// The publisher's `Event-Id` (push-stream), if it gave one.
    pub event_id: Option<&'a str>,
}

/// One message as a JSON object.
pub fn message_json(m: &MessageView<'_>) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), json!(m.id));
    obj.insert("channel".into(), json!(m.channels.first()));
    if m.channels.len() > 1 {
        obj.insert("channels".into(), json!(m.channels));
    }
    if let Some(e) = m.event_type {
        obj.insert("event".into(), json!(e));
    }
    if let Some(ct) = m.content_type {
        obj.insert("content_type".into(), json!(ct));
    }
    match std::str::from_utf8(m.payload) {
        Ok(text) if !m.binary => {
            obj.insert("data".into(), json!(text));
        }
        _ => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(m.payload);
            obj.insert("data".into(), json!(b64));
            obj.insert("encoding".into(), json!("base64"));
        }
    }
    Value::Object(obj)
}

/// The "messages were missed" signal: `requested` is the id the client
/// resumed from (null when it resumed by time or backtrack).
pub fn missed_json(requested: Option<u64>) -> String {
    json!({ "event": "missed", "last_event_id": requested.map(|s| s.to_string()) }).to_string()
}

/// The "channel deleted" signal of the JSON stream.
pub fn channel_deleted_json(channel: &str) -> String {
    json!({ "event": "channel_deleted", "channel": channel }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(payload: &'a [u8], binary: bool, channels: &'a [&'a str]) -> MessageView<'a> {
        MessageView {
            id: "5",
            channels,
            event_type: Some("tick"),
            content_type: None,
            binary,
            payload,
            published_at_ms: 0,
            event_id: None,
        }
    }

    #[test]
    fn text_binary_and_multichannel() {
        let v = message_json(&view(b"hi", false, &["news"]));
        assert_eq!(v["id"], "5");
        assert_eq!(v["data"], "hi");
        assert_eq!(v["event"], "tick");
        assert_eq!(v["channel"], "news");
        assert!(v.get("channels").is_none() && v.get("encoding").is_none());
        let v = message_json(&view(b"\xff\x00", false, &["a", "b"]));
        assert_eq!(v["encoding"], "base64");
        assert_eq!(v["data"], "/wA=");
        assert_eq!(v["channels"], json!(["a", "b"]));
        let v = message_json(&view(b"ok", true, &["a"]));
        assert_eq!(v["encoding"], "base64");
    }

    #[test]
    fn signals() {
        let v: Value = serde_json::from_str(&missed_json(Some(9))).unwrap();
        assert_eq!(v, json!({"event": "missed", "last_event_id": "9"}));
        let v: Value = serde_json::from_str(&missed_json(None)).unwrap();
        assert!(v["last_event_id"].is_null());
        let v: Value = serde_json::from_str(&channel_deleted_json("c")).unwrap();
        assert_eq!(v["channel"], "c");
    }
}
