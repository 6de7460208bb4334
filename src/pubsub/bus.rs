//! The cross-reactor bus: how the hub (or any other thread) hands work to a
//! reactor thread.
//!
//! Each reactor owns one inbox (an unbounded crossbeam channel) and one
//! `mio::Waker`. Senders push and then wake the reactor only when it is not
//! already due to drain its inbox, so a burst of publishes costs one wake-up
//! syscall per reactor rather than one per message.

use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::pubsub::channel::ChannelRef;
use crate::pubsub::message::Message;
use crate::pubsub::remote::{PublishOutcome, ReplayPart};

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
    /// The backplane's answer to a publish made by connection `key`.
    Published {
        key: usize,
        generation: u32,
        outcome: PublishOutcome,
    },
    /// History from one shard for a resuming subscriber on connection `key`.
    Replay {
        key: usize,
        generation: u32,
        part: ReplayPart,
    },
}

/// The reactor's waker and whether a wake-up is outstanding.
struct Wake {
    waker: mio::Waker,
    /// True while a wake-up is outstanding: the reactor clears it before it
    /// drains the inbox, so a message pushed after the drain wakes it again.
    pending: AtomicBool,
}

/// The sending half of a reactor's inbox.
#[derive(Clone)]
pub struct ReactorLink {
    tx: Sender<Delivery>,
    wake: Arc<Wake>,
}

/// The receiving half, owned by the reactor.
pub struct Inbox {
    rx: Receiver<Delivery>,
    /// Our own sending half, to put deliveries back (see [`Inbox::put_back`]).
    link: ReactorLink,
}

/// Creates a reactor's inbox and the link that feeds it.
pub fn inbox(waker: mio::Waker) -> (ReactorLink, Inbox) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let link = ReactorLink {
        tx,
        wake: Arc::new(Wake {
            waker,
            pending: AtomicBool::new(false),
        }),
    };
    (link.clone(), Inbox { rx, link })
}

impl ReactorLink {
    /// Queues `d` without waking the reactor; pair with [`wake`](Self::wake).
    pub fn push(&self, d: Delivery) {
        // The receiver lives as long as the reactor; after it stopped there is
        // nobody left to deliver to, so a failed send is not an error.
        let _ = self.tx.send(d);
    }

    /// Wakes the reactor unless a wake-up is already outstanding.
    pub fn wake(&self) {
        if !self.wake.pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.wake.waker.wake() {
                log::warn!("cannot wake reactor: {e}");
            }
        }
    }
}

impl Inbox {
    /// Called right before the reactor drains its inbox: anything pushed
    /// from now on wakes it again.
    pub fn clear_wake(&self) {
        self.link.wake.pending.store(false, Ordering::Release);
    }

    /// The next delivery, if any, without blocking.
    pub fn try_recv(&self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }

    /// Requeues a delivery taken out early, for the next loop turn.
    pub fn put_back(&self, d: Delivery) {
        self.link.push(d);
        self.link.wake();
    }
}
