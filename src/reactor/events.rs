//! Connection refusals and cuts: each is counted in `/status` and logged
//! once with its cause and peer, within the server-wide budget
//! (`log-events-per-second`, [`EventBudget`]), so a flood of bad clients
//! cannot fill a disk: what the budget drops is counted and reported in
//! one line. Clients that simply go away are counted, never logged.
//!
//! [`EventBudget`]: crate::logging::EventBudget

use std::net::SocketAddr;

use super::Reactor;
use crate::logging::budget::Verdict;
use crate::pubsub::hub::now_ms;
use crate::status::{CloseCause, Denied, Limit, TooLarge};

/// Something the server refused or cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnEvent {
    /// A connection refused by a limit as it arrived, or a request by one.
    Refused(Limit),
    /// A request refused by access control.
    Denied(Denied),
    /// A request or frame over a size limit.
    TooLarge(TooLarge),
    /// A connection the server closed.
    Cut(CloseCause),
}

impl ConnEvent {
    /// The log message and the cause label.
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            ConnEvent::Refused(l) => ("connection refused", l.label()),
            ConnEvent::Denied(d) => ("request denied", d.label()),
            ConnEvent::TooLarge(t) => ("over a size limit", t.label()),
            ConnEvent::Cut(c) => ("connection cut", c.label()),
        }
    }

    /// Warnings for what an operator acts on (the server full, clients too
    /// slow to keep up); the rest, bad clients included, is routine.
    fn level(self) -> log::Level {
        match self {
            ConnEvent::Refused(_)
            | ConnEvent::Cut(CloseCause::SlowConsumer)
            | ConnEvent::Cut(CloseCause::OverCapacity) => log::Level::Warn,
            // Shutdown and channel deletion close many connections at once
            // on purpose; one line per connection says nothing.
            ConnEvent::Cut(CloseCause::Shutdown) | ConnEvent::Cut(CloseCause::ChannelDeleted) => {
                log::Level::Debug
            }
            _ => log::Level::Info,
        }
    }
}

impl Reactor {
    /// Counts `event` and logs it if the budget allows. `k` is the
    /// connection, when it has one; `peer` its address when already known.
    pub(super) fn note(&self, k: Option<usize>, peer: Option<SocketAddr>, event: ConnEvent) {
        let stats = self.stats();
        match event {
            ConnEvent::Refused(l) => stats.refused(l),
            ConnEvent::Denied(d) => stats.denied(d),
            ConnEvent::TooLarge(t) => stats.too_large(t),
            ConnEvent::Cut(c) => stats.closed(c),
        }
        let level = event.level();
        if level > log::max_level() {
            return;
        }
        let dropped = match self.shared.events.take(now_ms()) {
            Verdict::Drop => return,
            Verdict::Log { dropped } => dropped,
        };
        report_dropped(dropped);
        let peer = peer
            .or_else(|| k.and_then(|k| self.conns.get(k)?.socket.peer_addr().ok()))
            .map_or_else(|| "-".to_string(), |p| p.to_string());
        let (message, cause) = event.describe();
        log::log!(target: "crier::events", level, cause = cause, peer = peer.as_str(); "{message}");
    }

    /// Once a second (reactor 0): reports events the budget dropped since
    /// the last line, so a flood that stopped is still accounted for.
    pub(super) fn report_dropped_events(&self) {
        report_dropped(self.shared.events.take_dropped());
    }
}

fn report_dropped(dropped: u64) {
    if dropped > 0 {
        log::warn!(
            target: "crier::events",
            dropped = dropped;
            "connection events not logged (over log-events-per-second)"
        );
    }
}
