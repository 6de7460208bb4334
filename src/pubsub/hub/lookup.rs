//! Read-only questions the compatibility modes ask of the channel table
//! (src/compat/), kept apart from the hub's publish/subscribe path.

use super::Hub;

impl Hub {
    /// push-stream's `Last-Event-Id` resume: the id of the oldest stored
    /// message of `names` that was published with `Event-Id: event_id`,
    /// or None when no stored message carries it (push-stream then sends
    /// no old messages).
    pub fn find_event_id(&self, names: &[&str], event_id: &str) -> Option<u64> {
        let st = self.lock();
        names
            .iter()
            .filter_map(|n| st.channels.get(*n))
            .filter_map(|ch| {
                ch.history
                    .iter()
                    .find(|m| m.event_id.as_deref() == Some(event_id))
                    .map(|m| m.seq)
            })
            .min()
    }

    /// Channels whose name starts with `prefix` (all of them for ""), in
    /// name order, with their figures: push-stream's
    /// `/channels-stats?id=ALL` and `?id=prefix_*`.
    pub fn channels_with_prefix(&self, prefix: &str) -> Vec<crate::pubsub::channel::ChannelInfo> {
        let st = self.lock();
        let mut infos: Vec<_> = st
            .channels
            .iter()
            .filter(|(name, _)| name.starts_with(prefix) && !name.starts_with('$'))
            .map(|(_, ch)| ch.info())
            .collect();
        infos.sort_by(|a, b| a.channel.cmp(&b.channel));
        infos
    }
}
