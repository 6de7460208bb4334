//! Unit tests of the hub: ordering, replay, the missed signal, limits and
//! channel collection, against real inboxes.

use super::*;
use crate::pubsub::bus::{inbox, Inbox};
use bytes::Bytes;

/// A hub with `reactors` inboxes (their Polls must outlive the wakers).
fn hub(reactors: usize, tweak: impl FnOnce(&mut HubSettings)) -> (Hub, Vec<Inbox>, Vec<mio::Poll>) {
    let mut settings = HubSettings {
        store: StoreLimits {
            per_channel: 10,
            ttl_ms: 0,
            max_bytes: usize::MAX,
        },
        channel_idle_ttl_ms: 300_000,
        max_channels: 0,
        max_subscribers_per_channel: 0,
        remote: false,
    };
    tweak(&mut settings);
    let mut links = Vec::new();
    let mut inboxes = Vec::new();
    let mut polls = Vec::new();
    for _ in 0..reactors {
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let (link, inbox) = inbox(waker);
        links.push(link);
        inboxes.push(inbox);
        polls.push(poll);
    }
    (Hub::new(links, settings), inboxes, polls)
}

fn publish(h: &Hub, names: &[&str], body: &'static str) -> u64 {
    let p = Publication {
        payload: Bytes::from_static(body.as_bytes()),
        ..Default::default()
    };
    h.publish(None, names, p).unwrap().id
}

fn req(name: &str, backtrack: usize) -> ChannelRequest {
    ChannelRequest {
        name: name.into(),
        backtrack,
    }
}

/// The message ids waiting in an inbox.
fn inbox_ids(inbox: &Inbox) -> Vec<u64> {
    std::iter::from_fn(|| inbox.try_recv())
        .filter_map(|d| match d {
            Delivery::Message(m) => Some(m.seq),
            _ => None,
        })
        .collect()
}

fn seqs(ms: &[Arc<Message>]) -> Vec<u64> {
    ms.iter().map(|m| m.seq).collect()
}

#[test]
fn ids_are_one_increasing_sequence_and_only_interested_reactors_get_messages() {
    let (h, inboxes, _polls) = hub(2, |_| {});
    h.subscribe(1, &[req("a", 0)], Resume::Live).unwrap();
    let a1 = publish(&h, &["a"], "1");
    let b1 = publish(&h, &["b"], "2");
    let a2 = publish(&h, &["a", "b"], "3");
    assert!(a1 < b1 && b1 < a2);
    assert!(inbox_ids(&inboxes[0]).is_empty(), "reactor 0 has nobody");
    assert_eq!(inbox_ids(&inboxes[1]), vec![a1, a2]);
    assert_eq!(h.info("a").unwrap().last_id, Some(a2));
    assert_eq!(h.totals().published_messages, 3);
}

#[test]
fn replay_is_in_id_order_without_duplicates() {
    let (h, _inboxes, _polls) = hub(1, |_| {});
    let first = publish(&h, &["a"], "1");
    let both = publish(&h, &["a", "b"], "2");
    let b_only = publish(&h, &["b"], "3");
    let s = h
        .subscribe(0, &[req("a", 0), req("b", 0)], Resume::AfterSeq(first - 1))
        .unwrap();
    assert_eq!(seqs(&s.replay), vec![first, both, b_only]);
    assert!(!s.missed);
    assert_eq!(s.last_seq, b_only);
    // Backtrack and a resume point asking for the same message: once.
    let s = h
        .subscribe(0, &[req("a", 2)], Resume::AfterSeq(first))
        .unwrap();
    assert_eq!(seqs(&s.replay), vec![first, both]);
    // Resuming at the newest id replays nothing.
    let s = h
        .subscribe(0, &[req("a", 0)], Resume::AfterSeq(both))
        .unwrap();
    assert!(s.replay.is_empty() && !s.missed);
}

#[test]
fn missed_when_history_does_not_reach_back_or_the_id_is_unknown() {
    let (h, _inboxes, _polls) = hub(1, |s| s.store.per_channel = 2);
    let ids: Vec<u64> = (0..5).map(|_| publish(&h, &["a"], "x")).collect();
    let s = h
        .subscribe(0, &[req("a", 0)], Resume::AfterSeq(ids[0]))
        .unwrap();
    assert!(s.missed, "ids[1] and ids[2] were pushed out");
    assert_eq!(seqs(&s.replay), vec![ids[3], ids[4]]);
    let s = h
        .subscribe(0, &[req("a", 0)], Resume::AfterSeq(ids[2]))
        .unwrap();
    assert!(!s.missed);
    assert_eq!(seqs(&s.replay), vec![ids[3], ids[4]]);
    // An id from the future (another run or node): the whole history, missed.
    let s = h
        .subscribe(0, &[req("a", 0)], Resume::AfterSeq(ids[4] + 100))
        .unwrap();
    assert!(s.missed);
    assert_eq!(seqs(&s.replay), vec![ids[3], ids[4]]);
    // An id from before this run started.
    let s = h
        .subscribe(0, &[req("new", 0)], Resume::AfterSeq(1))
        .unwrap();
    assert!(s.missed && s.replay.is_empty());
}

#[test]
fn since_replays_by_publish_time() {
    let (h, _inboxes, _polls) = hub(1, |_| {});
    let id = publish(&h, &["a"], "x");
    let s = h.subscribe(0, &[req("a", 0)], Resume::SinceMs(0)).unwrap();
    assert_eq!(seqs(&s.replay), vec![id]);
    let s = h
        .subscribe(0, &[req("a", 0)], Resume::SinceMs(now_ms() + 60_000))
        .unwrap();
    assert!(s.replay.is_empty());
}

#[test]
fn limits_refuse_with_the_limit_named() {
    let (h, _inboxes, _polls) = hub(1, |s| {
        s.max_channels = 2;
        s.max_subscribers_per_channel = 1;
    });
    publish(&h, &["a"], "x");
    publish(&h, &["b"], "x");
    let p = Publication::default();
    assert_eq!(
        h.publish(None, &["c"], p).unwrap_err(),
        LimitError::TooManyChannels
    );
    assert_eq!(
        h.subscribe(0, &[req("c", 0)], Resume::Live).unwrap_err(),
        LimitError::TooManyChannels
    );
    h.subscribe(0, &[req("a", 0)], Resume::Live).unwrap();
    assert_eq!(
        h.subscribe(0, &[req("a", 0)], Resume::Live).unwrap_err(),
        LimitError::TooManySubscribers("a".into())
    );
    assert_eq!(h.info("a").unwrap().subscribers, 1);
}

#[test]
fn idle_channels_are_collected_and_deleted_ones_are_told() {
    let (h, inboxes, _polls) = hub(1, |s| {
        s.store.per_channel = 0;
        s.channel_idle_ttl_ms = 0;
    });
    let s = h.subscribe(0, &[req("a", 0)], Resume::Live).unwrap();
    publish(&h, &["a"], "x");
    h.unsubscribe(0, &s.channels);
    assert!(h.info("a").is_none(), "collected at once with a zero ttl");
    assert_eq!(h.totals().channels_collected, 1);

    let old = h.subscribe(0, &[req("d", 0)], Resume::Live).unwrap();
    assert_eq!(h.delete("d").unwrap().subscribers, 1);
    let told: Vec<_> = std::iter::from_fn(|| inboxes[0].try_recv()).collect();
    assert!(matches!(&told[..], [.., Delivery::ChannelDeleted(c)] if *c == old.channels[0]));
    // A late unsubscribe of the deleted incarnation leaves a new one alone.
    let new = h.subscribe(0, &[req("d", 0)], Resume::Live).unwrap();
    assert_ne!(new.channels[0].id, old.channels[0].id);
    h.unsubscribe(0, &old.channels);
    assert_eq!(h.info("d").unwrap().subscribers, 1);
    assert_eq!(h.totals().subscribers, 1);
}

#[test]
fn a_channel_flipping_between_busy_and_idle_is_queued_for_collection_once() {
    let (h, _inboxes, _polls) = hub(1, |s| s.store.per_channel = 0);
    for _ in 0..1000 {
        let s = h.subscribe(0, &[req("a", 0)], Resume::Live).unwrap();
        h.unsubscribe(0, &s.channels);
    }
    assert_eq!(h.lock().idle_queue_len(), 1);
    // Collection still happens, once the channel has been idle long enough.
    h.lock().collect_idle(now_ms() + 300_000, 300_000);
    assert!(h.info("a").is_none());
    assert_eq!(h.lock().idle_queue_len(), 0);
}

#[test]
fn a_channel_busy_again_is_not_collected_and_leaves_the_queue() {
    let (h, _inboxes, _polls) = hub(1, |s| s.store.per_channel = 0);
    let s = h.subscribe(0, &[req("a", 0)], Resume::Live).unwrap();
    h.unsubscribe(0, &s.channels);
    let _busy = h.subscribe(0, &[req("a", 0)], Resume::Live).unwrap();
    h.lock().collect_idle(now_ms() + 300_000, 300_000);
    assert_eq!(h.info("a").unwrap().subscribers, 1);
    assert_eq!(h.lock().idle_queue_len(), 0);
}
