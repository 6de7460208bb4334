//! Long-poll answer bodies (pure).
//!
//! One answer carries every pending message, so a client loop needs no
//! framing of its own:
//! `{"messages":[ENVELOPE, …], "last_event_id": "...", "missed": false}`.
//! Each envelope (see `envelope.rs`) is encoded once per message and shared
//! by every long-poll that answers with it; the body only joins them.

/// The body of a long-poll answer from already encoded envelopes.
pub fn encode_body<'a>(
    envelopes: impl IntoIterator<Item = &'a [u8]>,
    missed: bool,
    last_event_id: &str,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(128);
    body.extend_from_slice(b"{\"messages\":[");
    for (i, e) in envelopes.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(e);
    }
    body.extend_from_slice(b"],\"last_event_id\":\"");
    body.extend_from_slice(last_event_id.as_bytes());
    body.extend_from_slice(if missed {
        b"\",\"missed\":true}\n"
    } else {
        b"\",\"missed\":false}\n"
    });
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn body_is_json_with_every_envelope_in_order() {
        let a = br#"{"id":"5","data":"hi"}"#;
        let b = br#"{"id":"6","data":"/wA=","encoding":"base64"}"#;
        let body = encode_body([&a[..], &b[..]], false, "6");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["last_event_id"], "6");
        assert_eq!(v["messages"][0]["data"], "hi");
        assert_eq!(v["messages"][1]["encoding"], "base64");
        assert_eq!(v["missed"], false);
        let empty: Value = serde_json::from_slice(&encode_body([], true, "3-0")).unwrap();
        assert_eq!(empty["messages"].as_array().unwrap().len(), 0);
        assert_eq!(empty["last_event_id"], "3-0");
        assert_eq!(empty["missed"], true);
    }
}
