//! What crier writes in Redis and reads back (pure apart from the script
//! text Redis runs): key names, the publish script, the envelope a message
//! travels in over pub/sub, and history entries.
//!
//! Per shard:
//! - `P:seq`: the shard's message sequence. Each publish takes
//!   max(seq + 1, Redis time in µs), so ids keep increasing even when Redis
//!   lost its data in a restart (as a single node's ids do across restarts).
//! - `P:h:CH`: the channel's history, a stream of its newest `store`
//!   messages, entry id `SEQ-1`, fields `t` (ms), `e`, `c`, `d`; expires
//!   `ttl` after its last publish.
//! - `P:f:CH`: the newest seq dropped from the history (a resume from
//!   before it missed messages); `P:n:CH`: messages published. Both live
//!   a week after the last publish.
//! - pub/sub channel `P:m:CH`: each message as an envelope (below), or
//!   `d\n` when the channel was deleted.

/// Seconds the per-channel marker keys outlive the last publish.
pub const MARKER_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// The publish script: one atomic step per message and shard, whatever
/// the number of its channels on that shard (one sequence number for
/// all of them, so a subscriber of several gets the message once).
///
/// KEYS: `P:seq`, then per channel `P:h:CH`, `P:f:CH`, `P:n:CH`, `P:m:CH`.
/// ARGV: store, ttl ms, marker ttl ms, event, content type, payload.
/// Returns: seq (as a string), then per channel: nodes reached, published
/// count, stored count.
pub const PUBLISH_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local seq = redis.call('INCR', KEYS[1])
if seq < now_us then
  seq = now_us
  redis.call('SET', KEYS[1], string.format('%.0f', seq))
end
local id = string.format('%.0f', seq)
local ms = string.format('%.0f', math.floor(now_us / 1000))
local store, ttl, marker_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local env = 'm ' .. id .. ' ' .. ms .. ' ' .. #ARGV[4] .. ' ' .. #ARGV[5] .. '\n'
  .. ARGV[4] .. ARGV[5] .. ARGV[6]
local out = {id}
for i = 0, (#KEYS - 1) / 4 - 1 do
  local h, f, n, ch = KEYS[2 + 4 * i], KEYS[3 + 4 * i], KEYS[4 + 4 * i], KEYS[5 + 4 * i]
  local published = redis.call('INCR', n)
  local stored = 0
  if store > 0 then
    local len = redis.call('XLEN', h)
    if len >= store then
      local old = redis.call('XRANGE', h, '-', '+', 'COUNT', len - store + 1)
      redis.call('SET', f, string.match(old[#old][1], '^(%d+)'))
    end
    redis.call('XADD', h, 'MAXLEN', store, id .. '-1', 't', ms, 'e', ARGV[4], 'c', ARGV[5], 'd', ARGV[6])
    stored = math.min(len + 1, store)
    if ttl > 0 then redis.call('PEXPIRE', h, ttl) end
  else
    redis.call('SET', f, id)
  end
  redis.call('PEXPIRE', f, marker_ttl)
  redis.call('PEXPIRE', n, marker_ttl)
  local nodes = redis.call('PUBLISH', ch, env)
  table.insert(out, nodes)
  table.insert(out, published)
  table.insert(out, stored)
end
return out
"#;

/// The key names of one fleet (`redis-prefix`).
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub fn seq(&self) -> String {
        format!("{}:seq", self.prefix)
    }

    pub fn history(&self, ch: &str) -> String {
        format!("{}:h:{ch}", self.prefix)
    }

    pub fn forgotten(&self, ch: &str) -> String {
        format!("{}:f:{ch}", self.prefix)
    }

    pub fn count(&self, ch: &str) -> String {
        format!("{}:n:{ch}", self.prefix)
    }

    pub fn pubsub(&self, ch: &str) -> String {
        format!("{}:m:{ch}", self.prefix)
    }

    /// The channel a pub/sub channel name stands for, if it is one of ours.
    pub fn channel_of<'a>(&self, pubsub: &'a str) -> Option<&'a str> {
        pubsub.strip_prefix(&self.prefix)?.strip_prefix(":m:")
    }
}

/// What arrived on a channel's pub/sub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Envelope {
    Message {
        seq: u64,
        published_at_ms: u64,
        event: Vec<u8>,
        content_type: Vec<u8>,
        payload: Vec<u8>,
    },
    /// The channel was deleted on some node.
    Deleted,
}

/// The envelope a deletion is announced with.
pub const DELETED: &[u8] = b"d\n";

/// Reads an envelope: `m SEQ MS ELEN CLEN\n` then the event, content type
/// and payload bytes; or `d\n`.
pub fn parse_envelope(bytes: &[u8]) -> Option<Envelope> {
    if bytes == DELETED {
        return Some(Envelope::Deleted);
    }
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(&bytes[..nl]).ok()?;
    let mut f = head.split(' ');
    if f.next()? != "m" {
        return None;
    }
    let mut num = || f.next()?.parse::<u64>().ok();
    let (seq, ms, elen, clen) = (num()?, num()?, num()? as usize, num()? as usize);
    let rest = &bytes[nl + 1..];
    if rest.len() < elen.checked_add(clen)? {
        return None;
    }
    Some(Envelope::Message {
        seq,
        published_at_ms: ms,
        event: rest[..elen].to_vec(),
        content_type: rest[elen..elen + clen].to_vec(),
        payload: rest[elen + clen..].to_vec(),
    })
}

/// The seq of a history entry id (`SEQ-1`).
pub fn entry_seq(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let bytes = b"m 17 1700 4 10\ntickapp/binary\x00\x01\n";
        assert_eq!(
            parse_envelope(bytes),
            Some(Envelope::Message {
                seq: 17,
                published_at_ms: 1700,
                event: b"tick".to_vec(),
                content_type: b"app/binary".to_vec(),
                payload: b"\x00\x01\n".to_vec(),
            })
        );
        assert_eq!(parse_envelope(b"d\n"), Some(Envelope::Deleted));
        for bad in [
            &b""[..],
            b"m 1 2 3\n",
            b"m 1 2 9 9\nshort",
            b"x 1 2 0 0\n",
            b"m a 2 0 0\n",
        ] {
            assert_eq!(parse_envelope(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys() {
        let k = Keys::new("crier");
        assert_eq!(k.pubsub("news"), "crier:m:news");
        assert_eq!(k.channel_of("crier:m:news"), Some("news"));
        assert_eq!(k.channel_of("other:m:news"), None);
        assert_eq!(entry_seq("1700000000000001-1"), Some(1_700_000_000_000_001));
    }
}
