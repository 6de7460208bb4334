//! The cross-reactor bus: how the hub hands work to a reactor thread.
//!
//! Each reactor owns one inbox (an unbounded crossbeam channel) and one
//! `mio::Waker`. Senders push and then wake the reactor only when it is not
//! already due to drain its inbox, so a burst of publishes costs one wake-up
//! syscall per reactor rather than one per message.

use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::pubsub::message::Message;

/// A channel's identity: its name plus an incarnation number, so that a
/// channel deleted and re-created under the same name is a different
/// channel to reactors and to late unsubscribes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelRef {
    /// Unique for the life of the process; never reused.
    pub id: u64,
    /// The channel id as clients spell it.
    pub name: Arc<str>,
}

/// Work for a reactor.
#[derive(Debug)]
pub enum Delivery {
    /// Queue this message for local subscribers of its channels.
    Message(Arc<Message>),
    /// The channel was deleted: tell and disconnect its local subscribers.
    ChannelDeleted(ChannelRef),
    /// Stop the reactor now.
    Shutdown,
    /// Stop accepting, send goodbyes, let requests finish; stop once every
    /// connection is gone or at this instant.
    Drain(std::time::Instant),
}

/// The sending half of a reactor's inbox, held by the hub.
pub struct ReactorLink {
    inbox: Sender<Delivery>,
    waker: mio::Waker,
    /// True while a wake-up is outstanding: the reactor clears it before it
    /// drains the inbox, so a message pushed after the drain wakes it again.
    wake_pending: AtomicBool,
}

impl ReactorLink {
    /// Creates the link and the receiving half that the reactor keeps.
    pub fn new(waker: mio::Waker) -> (ReactorLink, Receiver<Delivery>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let link = ReactorLink {
            inbox: tx,
            waker,
            wake_pending: AtomicBool::new(false),
        };
        (link, rx)
    }

    /// Queues `d` without waking the reactor; pair with [`wake`](Self::wake).
    pub fn push(&self, d: Delivery) {
        // The receiver lives as long as the reactor; after it stopped there is
        // nobody left to deliver to, so a failed send is not an error.
        let _ = self.inbox.send(d);
    }

    /// Wakes the reactor unless a wake-up is already outstanding.
    pub fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::warn!("cannot wake reactor: {e}");
            }
        }
    }

    /// Called by the reactor right before it drains its inbox.
    pub fn clear_wake(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }
}
