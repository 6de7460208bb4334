//! A reactor's own index: channel → the local connections subscribed to it.
//!
//! Owned by one reactor thread, so fanout walks it without any lock.
//! Removal is O(1): each subscription remembers its position in the
//! channel's list and `swap_remove` patches the one entry that moved.

use std::collections::HashMap;

use crate::pubsub::channel::ChannelRef;

/// A subscription as the connection remembers it: which local channel and
/// where in that channel's subscriber list the connection sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSub {
    pub channel: u32,
    pub pos: u32,
}

/// A connection's subscriptions: one inline (nearly every subscriber),
/// several in a boxed slice. 16 bytes per connection where a one-element
/// `SmallVec` takes 24; the list is fixed at subscribe time, only the
/// positions inside it change.
#[derive(Debug)]
pub enum SubList {
    One(LocalSub),
    Many(Box<[LocalSub]>),
}

impl Default for SubList {
    /// No subscriptions (an empty boxed slice does not allocate).
    fn default() -> Self {
        SubList::Many(Box::default())
    }
}

impl SubList {
    /// The subscriptions, in subscribe order.
    pub fn as_slice(&self) -> &[LocalSub] {
        match self {
            SubList::One(s) => std::slice::from_ref(s),
            SubList::Many(v) => v,
        }
    }

    /// The subscriptions, to patch a position after a swap-remove.
    pub fn as_mut_slice(&mut self) -> &mut [LocalSub] {
        match self {
            SubList::One(s) => std::slice::from_mut(s),
            SubList::Many(v) => v,
        }
    }
}

impl FromIterator<LocalSub> for SubList {
    fn from_iter<I: IntoIterator<Item = LocalSub>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        match (iter.next(), iter.next()) {
            (None, _) => SubList::default(),
            (Some(one), None) => SubList::One(one),
            (Some(a), Some(b)) => {
                let mut all = vec![a, b];
                all.extend(iter);
                SubList::Many(all.into_boxed_slice())
            }
        }
    }
}

/// The subscribers of one channel on this reactor.
#[derive(Debug)]
pub struct LocalChannel {
    pub channel: ChannelRef,
    /// Connection slab keys.
    pub subscribers: Vec<u32>,
}

/// Channel id → local subscribers.
#[derive(Debug, Default)]
pub struct LocalIndex {
    by_id: HashMap<u64, u32>,
    channels: slab::Slab<LocalChannel>,
}

impl LocalIndex {
    /// Adds connection `conn` to `channel`; returns its handle for removal.
    pub fn add(&mut self, channel: &ChannelRef, conn: u32) -> LocalSub {
        let idx = match self.by_id.get(&channel.id) {
            Some(i) => *i,
            None => {
                let i = self.channels.insert(LocalChannel {
                    channel: channel.clone(),
                    subscribers: Vec::new(),
                }) as u32;
                self.by_id.insert(channel.id, i);
                i
            }
        };
        let subs = &mut self.channels[idx as usize].subscribers;
        subs.push(conn);
        LocalSub {
            channel: idx,
            pos: (subs.len() - 1) as u32,
        }
    }

    /// Removes a subscription. Returns the connection that moved into the
    /// freed position, if any: it must update its `LocalSub::pos` for this
    /// channel. A channel left without local subscribers is freed.
    pub fn remove(&mut self, sub: LocalSub) -> Option<u32> {
        let ch = self.channels.get_mut(sub.channel as usize)?;
        let pos = sub.pos as usize;
        if pos >= ch.subscribers.len() {
            debug_assert!(false, "stale local subscription");
            return None;
        }
        ch.subscribers.swap_remove(pos);
        let moved = ch.subscribers.get(pos).copied();
        if ch.subscribers.is_empty() {
            let id = ch.channel.id;
            self.channels.remove(sub.channel as usize);
            self.by_id.remove(&id);
            return None;
        }
        if ch.subscribers.capacity() > 64 && ch.subscribers.len() < ch.subscribers.capacity() / 4 {
            ch.subscribers.shrink_to(ch.subscribers.len() * 2);
        }
        moved
    }

    /// The local channel slot for a hub channel id, if anyone here listens.
    pub fn slot_of(&self, channel_id: u64) -> Option<u32> {
        self.by_id.get(&channel_id).copied()
    }

    /// Subscribers of a local channel slot.
    pub fn subscribers(&self, slot: u32) -> &[u32] {
        self.channels
            .get(slot as usize)
            .map_or(&[], |c| &c.subscribers[..])
    }

    /// The hub channel behind a local slot.
    pub fn channel_of(&self, slot: u32) -> Option<&ChannelRef> {
        self.channels.get(slot as usize).map(|c| &c.channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ch(id: u64) -> ChannelRef {
        ChannelRef {
            id,
            name: Arc::from("c"),
        }
    }

    #[test]
    fn swap_remove_reports_the_moved_connection() {
        let mut ix = LocalIndex::default();
        let a = ix.add(&ch(1), 10);
        let _b = ix.add(&ch(1), 11);
        let _c = ix.add(&ch(1), 12);
        assert_eq!(ix.remove(a), Some(12));
        let slot = ix.slot_of(1).unwrap();
        assert_eq!(ix.subscribers(slot), &[12, 11]);
    }

    #[test]
    fn sub_list_keeps_order_inline_or_boxed() {
        let sub = |channel| LocalSub { channel, pos: 0 };
        assert!(SubList::from_iter([]).as_slice().is_empty());
        let one: SubList = [sub(3)].into_iter().collect();
        assert!(matches!(one, SubList::One(_)));
        let mut many: SubList = [sub(1), sub(2), sub(3)].into_iter().collect();
        many.as_mut_slice()[1].pos = 9;
        let got: Vec<_> = many.as_slice().iter().map(|s| (s.channel, s.pos)).collect();
        assert_eq!(got, [(1, 0), (2, 9), (3, 0)]);
        assert_eq!(std::mem::size_of::<SubList>(), 16);
    }

    #[test]
    fn last_subscriber_frees_the_channel() {
        let mut ix = LocalIndex::default();
        let a = ix.add(&ch(5), 1);
        assert_eq!(ix.remove(a), None);
        assert_eq!(ix.slot_of(5), None);
        assert!(ix.channels.is_empty());
    }
}
