//! Long-poll response bodies (pure).
//!
//! One response carries every message that was pending, as JSON, so a
//! client loop needs no framing of its own:
//! `{"messages":[{"id","channel","event","content_type","data"[,"encoding":"base64"]}],
//!   "last_event_id": "...", "missed": false}`.
//! Text payloads are JSON strings; binary (or non-UTF-8) payloads are
//! base64 with `"encoding":"base64"`.

use base64::Engine;
use serde_json::{json, Map, Value};
use std::sync::Arc;

use crate::pubsub::message::Message;

/// One message as a JSON object (also used by the WebSocket JSON mode).
pub fn message_json(m: &Message) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), json!(m.id()));
    obj.insert(
        "channel".into(),
        json!(m.channels.first().map(|c| c.name.to_string())),
    );
    if m.channels.len() > 1 {
        let all: Vec<String> = m.channels.iter().map(|c| c.name.to_string()).collect();
        obj.insert("channels".into(), json!(all));
    }
    if let Some(e) = &m.event_type {
        obj.insert("event".into(), json!(e));
    }
    if let Some(ct) = &m.content_type {
        obj.insert("content_type".into(), json!(ct));
    }
    match std::str::from_utf8(&m.payload) {
        Ok(text) if !m.binary => {
            obj.insert("data".into(), json!(text));
        }
        _ => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&m.payload);
            obj.insert("data".into(), json!(b64));
            obj.insert("encoding".into(), json!("base64"));
        }
    }
    Value::Object(obj)
}

/// The body of a long-poll answer.
pub fn encode_body(messages: &[Arc<Message>], missed: bool, last_event_id: u64) -> Vec<u8> {
    let list: Vec<Value> = messages.iter().map(|m| message_json(m)).collect();
    let mut body = json!({
        "messages": list,
        "last_event_id": last_event_id.to_string(),
        "missed": missed,
    })
    .to_string();
    body.push('\n');
    body.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::bus::ChannelRef;
    use crate::pubsub::message::Publication;

    fn msg(seq: u64, payload: &'static [u8], ct: Option<&str>) -> Arc<Message> {
        let ch = ChannelRef {
            id: 1,
            name: Arc::from("news"),
        };
        let p = Publication {
            payload: bytes::Bytes::from_static(payload),
            event_type: Some("tick".into()),
            content_type: ct.map(str::to_string),
        };
        Arc::new(Message::new(seq, vec![ch].into(), 0, p))
    }

    #[test]
    fn text_and_binary_messages() {
        let body = encode_body(
            &[msg(5, b"hi", None), msg(6, b"\xff\x00", Some("image/png"))],
            false,
            6,
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["last_event_id"], "6");
        assert_eq!(v["messages"][0]["data"], "hi");
        assert_eq!(v["messages"][0]["event"], "tick");
        assert_eq!(v["messages"][0]["channel"], "news");
        assert_eq!(v["messages"][1]["encoding"], "base64");
        assert_eq!(v["messages"][1]["data"], "/wA=");
        assert_eq!(v["missed"], false);
    }
}
