//! Reading history back from a shard: the gap after a reconnect, and the
//! replay a resuming subscriber asks for.

use redis::aio::MultiplexedConnection;
use redis::Value;

use super::replies::{as_u64, remote_message, stream_entries, Entry};
use super::{call, ShardTask};
use crate::cluster::stats::ShardStats;
use crate::cluster::{ChannelStart, Context};
use crate::pubsub::hub::now_ms;
use crate::pubsub::remote::ReplayPart;

impl ShardTask {
    /// After a reconnect: everything stored since the last message handed
    /// on, for every channel listened to, in sequence order.
    pub(super) async fn recover(&mut self, cmd: &mut MultiplexedConnection) -> Result<(), String> {
        let keys = &self.ctx.keys;
        let channels: Vec<(String, u64)> = self
            .watched
            .iter()
            .map(|(c, last)| (c.clone(), *last))
            .collect();
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(keys.seq());
        for (ch, last) in &channels {
            pipe.cmd("XRANGE")
                .arg(keys.history(ch))
                .arg(format!("({last}-1"))
                .arg("+");
        }
        let replies: Vec<Value> = call(pipe.query_async(cmd)).await?;
        let current = replies.first().and_then(as_u64).unwrap_or(0);
        let mut found = Vec::new();
        for ((ch, last), reply) in channels.iter().zip(replies.iter().skip(1)) {
            if *last == 0 {
                // Watched while Redis was away: its subscribers resume
                // through their own replays; listen from here on.
                if let Some(l) = self.watched.get_mut(ch) {
                    *l = current;
                }
                continue;
            }
            for e in stream_entries(reply) {
                found.push(remote_message(ch, self.index, e.seq, e.t, e.e, e.c, e.d));
            }
        }
        found.sort_by_key(|m| m.seq);
        for m in &found {
            if let Some(l) = self.watched.get_mut(&m.channel) {
                *l = (*l).max(m.seq);
            }
        }
        ShardStats::add(&self.stats.messages_recovered, found.len() as u64);
        if !found.is_empty() {
            log::info!(
                "backplane: shard {} recovered {} messages published while away",
                self.index,
                found.len()
            );
            self.ctx.hub.deliver_remote(found);
        }
        Ok(())
    }
}

/// The replay a subscriber gets from this shard: for each channel, what
/// its start asks of the stored history, within `message-ttl`.
pub(super) async fn fetch_replay(
    cmd: &mut MultiplexedConnection,
    ctx: &Context,
    shard: u16,
    channels: &[ChannelStart],
) -> redis::RedisResult<ReplayPart> {
    let keys = &ctx.keys;
    let mut pipe = redis::pipe();
    pipe.cmd("GET").arg(keys.seq());
    for c in channels {
        pipe.cmd("GET").arg(keys.forgotten(&c.channel));
        pipe.cmd("XRANGE")
            .arg(keys.history(&c.channel))
            .arg("-")
            .arg("+");
    }
    let replies: Vec<Value> = pipe.query_async(cmd).await?;
    let current = replies.first().and_then(as_u64).unwrap_or(0);
    let oldest_kept = match ctx.store.ttl_ms {
        0 => 0,
        ttl => now_ms().saturating_sub(ttl),
    };
    let mut messages = Vec::new();
    let mut missed = false;
    for (i, start) in channels.iter().enumerate() {
        let forgotten = replies.get(1 + 2 * i).and_then(as_u64).unwrap_or(0);
        let entries = replies
            .get(2 + 2 * i)
            .map(stream_entries)
            .unwrap_or_default();
        let (kept, expired): (Vec<Entry>, Vec<Entry>) =
            entries.into_iter().partition(|e| e.t >= oldest_kept);
        let mut picked: Vec<&Entry> = Vec::new();
        if let Some(after) = start.after {
            // An id this shard never issued (Redis lost its data, another
            // fleet): the whole history, and a gap.
            let from_future = after > current;
            missed |= from_future || after < forgotten || expired.iter().any(|e| e.seq > after);
            picked.extend(kept.iter().filter(|e| from_future || e.seq > after));
        }
        if let Some(since) = start.since_ms {
            picked.extend(kept.iter().filter(|e| e.t >= since));
        }
        if start.backtrack > 0 {
            let skip = kept.len().saturating_sub(start.backtrack);
            picked.extend(kept.iter().skip(skip));
        }
        if let Some(skip) = start.all_but_oldest {
            picked.extend(kept.iter().skip(skip));
        }
        for e in picked {
            let m = remote_message(
                &start.channel,
                shard,
                e.seq,
                e.t,
                e.e.clone(),
                e.c.clone(),
                e.d.clone(),
            );
            if let Some(msg) = ctx.hub.remote_message(&m) {
                messages.push(msg);
            }
        }
    }
    messages.sort_by_key(|m| m.seq);
    messages.dedup_by_key(|m| m.seq);
    Ok(ReplayPart {
        shard,
        messages,
        missed,
        current,
    })
}
