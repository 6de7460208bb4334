//! Redis' answers read into crier's terms (pure): numbers, publish
//! results, history entries, messages.

use bytes::Bytes;
use redis::Value;

use crate::cluster::wire::entry_seq;
use crate::pubsub::message::Publication;
use crate::pubsub::remote::{PublishedChannel, RemoteMessage};

pub(super) fn remote_message(
    channel: &str,
    shard: u16,
    seq: u64,
    published_at_ms: u64,
    event: Vec<u8>,
    content_type: Vec<u8>,
    payload: Vec<u8>,
) -> RemoteMessage {
    let text = |b: Vec<u8>| (!b.is_empty()).then(|| String::from_utf8_lossy(&b).into_owned());
    RemoteMessage {
        channel: channel.to_string(),
        shard,
        seq,
        published_at_ms,
        publication: Publication {
            payload: Bytes::from(payload),
            event_type: text(event),
            content_type: text(content_type),
            system: false,
            // push-stream's Event-Id stays on the node it was published
            // on (docs/MIGRATING.md).
            event_id: None,
        },
    }
}

pub(super) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

/// The publish script's answer, as the channels of a receipt.
pub(super) fn published(
    v: &Value,
    channels: &[String],
    shard: u16,
) -> Option<Vec<PublishedChannel>> {
    let Value::Array(items) = v else {
        return None;
    };
    let id = as_u64(items.first()?)?;
    let mut out = Vec::with_capacity(channels.len());
    for (i, ch) in channels.iter().enumerate() {
        let at = |k: usize| items.get(1 + 3 * i + k).and_then(as_u64);
        out.push(PublishedChannel {
            channel: ch.clone(),
            id,
            shard,
            nodes: at(0)?,
            published_messages: at(1)?,
            stored_messages: at(2)?,
        });
    }
    Some(out)
}

/// One history entry.
pub(super) struct Entry {
    pub(super) seq: u64,
    pub(super) t: u64,
    pub(super) e: Vec<u8>,
    pub(super) c: Vec<u8>,
    pub(super) d: Vec<u8>,
}

/// The entries of an XRANGE answer, oldest first.
pub(super) fn stream_entries(v: &Value) -> Vec<Entry> {
    let Value::Array(entries) = v else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(pair) = entry else { continue };
        let (Some(Value::BulkString(id)), Some(Value::Array(fields))) = (pair.first(), pair.get(1))
        else {
            continue;
        };
        let Some(seq) = std::str::from_utf8(id).ok().and_then(entry_seq) else {
            continue;
        };
        let mut e = Entry {
            seq,
            t: 0,
            e: Vec::new(),
            c: Vec::new(),
            d: Vec::new(),
        };
        for kv in fields.chunks(2) {
            let (Some(Value::BulkString(k)), Some(Value::BulkString(val))) =
                (kv.first(), kv.get(1))
            else {
                continue;
            };
            match k.as_slice() {
                b"t" => {
                    e.t = std::str::from_utf8(val)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0)
                }
                b"e" => e.e = val.clone(),
                b"c" => e.c = val.clone(),
                b"d" => e.d = val.clone(),
                _ => {}
            }
        }
        out.push(e);
    }
    out
}
