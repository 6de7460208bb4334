//! One connection's state, kept small: a million of these live in slabs.
//!
//! Layout choices: input bytes are kept only while a request or frame is
//! unfinished (`pending_in` is 8 bytes and owns no heap otherwise);
//! the out queue owns no heap when empty; a subscription to one channel is
//! stored inline; WebSocket and long-poll state and request bodies being
//! received live behind a `Box`. 128 bytes in all (a test keeps it there).
//!
//! A leaf of the reactor: plain state and the questions one can ask of it,
//! no behaviour that reaches other connections.

use mio::net::TcpStream;
use std::sync::Arc;

use super::local::SubList;
use super::outqueue::OutQueue;
use super::per_ip::IpKey;
use super::timer::{TimerId, NO_TIMER};
use crate::compat::{Dialect, SubDialect};
use crate::http::chunked::BodyReader;
use crate::http::response::{Cors, ReplyMode};
use crate::proto::ws::MessageReader;
use crate::proto::WireFormat;
use crate::pubsub::message::Message;
use crate::status::ConnKind;

/// A connection in a reactor's slab.
pub struct Conn {
    pub socket: TcpStream,
    /// Distinguishes this occupant of a slab slot from earlier ones, so a
    /// stale reference (timer entry) cannot hit a new connection.
    pub generation: u32,
    pub role: Role,
    pub out: OutQueue,
    /// Unconsumed input (see `io.rs`, `on_input`).
    pub pending_in: PendingInput,
    /// Id of the newest message this connection has been sent; later
    /// deliveries at or below it are duplicates (see `Hub`).
    pub last_seq: u64,
    /// Tick at which this connection next needs attention (0 = never).
    /// Moving it later is a plain store; see `timer.rs`.
    pub deadline: u32,
    /// This connection's wheel entry, if any (see `timer.rs`).
    pub timer: TimerId,
    /// Tick of the last write to the socket (pings go to silent ones).
    pub last_write: u32,
    /// The peer's `max-connections-per-ip` key (0 = not counted).
    pub ip_key: IpKey,
    pub flags: ConnFlags,
}

/// Declares the per-connection flags as bits of one integer, with a getter
/// and a setter each: a million connections make every byte count (see
/// `conn_fits_in_two_cache_lines`).
macro_rules! flags {
    ($( $(#[doc = $doc:literal])* $get:ident / $set:ident = $bit:expr; )*) => {
        /// Small per-connection booleans, packed.
        #[derive(Debug, Default, Clone, Copy)]
        pub struct ConnFlags(u16);

        impl ConnFlags {
            $(
                $(#[doc = $doc])*
                pub fn $get(&self) -> bool {
                    self.0 & (1 << $bit) != 0
                }

                #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
                pub fn $set(&mut self, on: bool) {
                    if on {
                        self.0 |= 1 << $bit;
                    } else {
                        self.0 &= !(1 << $bit);
                    }
                }
            )*
        }
    };
}

flags! {
    /// In the reactor's sliced flush queue (see `flush.rs`).
    dirty / set_dirty = 0;
    /// In the reactor's urgent flush list for this turn.
    urgent / set_urgent = 1;
    /// Close as soon as the out queue is flushed.
    close_after_flush / set_close_after_flush = 2;
    /// The kernel refused bytes; wait for a writable event.
    write_blocked / set_write_blocked = 3;
    /// Reading paused: the peer is not reading our replies, or it sent more
    /// than one request behind a waiting long-poll.
    read_paused / set_read_paused = 4;
    /// Server is draining: finish the current request, then close.
    draining / set_draining = 5;
    /// The subscriber's `lifetime_end` is its token's expiry: it is told
    /// the token expired rather than asked to reconnect.
    token_expiry / set_token_expiry = 6;
    /// A cluster publish is out: read no further request until its answer
    /// (replies stay in order).
    awaiting_reply / set_awaiting_reply = 7;
    /// A resuming cluster subscriber whose history has not come back yet:
    /// live messages are held (`reactor/cluster.rs`).
    replay_pending / set_replay_pending = 8;
    /// Its channels span backplane shards: its ids are its own.
    composite_ids / set_composite_ids = 9;
    /// A TLS connection: its session is in the reactor's TLS table
    /// (`tls/`), and every byte goes through it.
    tls / set_tls = 10;
}

/// Input bytes not consumed yet. Boxed so that the common case, nothing
/// pending, costs 8 bytes per connection instead of a 24-byte `Vec`.
#[derive(Debug, Default)]
#[allow(clippy::box_collection)]
pub struct PendingInput(Option<Box<Vec<u8>>>);

impl PendingInput {
    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Takes the pending bytes out, leaving nothing.
    pub fn take(&mut self) -> Vec<u8> {
        self.0.take().map_or_else(Vec::new, |b| *b)
    }

    /// Replaces the pending bytes (an empty vector frees the box).
    pub fn set(&mut self, data: Vec<u8>) {
        self.0 = (!data.is_empty()).then(|| Box::new(data));
    }
}

/// What the connection is doing.
pub enum Role {
    /// Reading HTTP requests; `Some` while a publish body is being received.
    Http(Option<Box<PendingPublish>>),
    /// A subscriber receiving messages.
    Subscriber(Subscriber),
}

/// A publish whose head has been parsed and whose body is still arriving:
/// what of the head must outlive the read buffer it was parsed from.
pub struct PendingPublish {
    pub channels: Vec<String>,
    pub cors: Cors,
    pub event_type: Option<String>,
    pub content_type: Option<String>,
    /// push-stream's `Event-Id` (`--compat push-stream`).
    pub event_id: Option<String>,
    /// The peer whose reply format answers it (`--compat`), if any.
    pub dialect: Option<Dialect>,
    pub mode: ReplyMode,
    pub reader: BodyReader,
    pub body: Vec<u8>,
    /// When its head was read (the publish request duration histogram).
    pub started: std::time::Instant,
}

/// A subscriber: how to frame messages and where it is subscribed.
pub struct Subscriber {
    pub format: WireFormat,
    pub subs: SubList,
    /// Tick at which the subscriber is asked to reconnect (0 = never).
    pub lifetime_end: u32,
    /// WebSocket or long-poll state; `None` for SSE and streams, which pay
    /// 8 bytes for it.
    pub state: Option<Box<TransportState>>,
}

/// What a subscriber needs beyond a byte stream. The long-poll state is
/// boxed once more so that the box every idle WebSocket holds is the size
/// of its own state, not of a waiting poll's (CORS, messages, dialect).
pub enum TransportState {
    WebSocket(WsState),
    LongPoll(Box<LongPollWait>),
}

/// Per-connection WebSocket state.
pub struct WsState {
    /// Incoming frame parser and message reassembly; owns no buffer while
    /// idle.
    pub reader: MessageReader,
    /// We sent a close frame: the connection ends once it is flushed.
    pub close_sent: bool,
    /// Which of its channels the client may publish to (with `ws-publish`),
    /// decided at the handshake, in subscription order.
    pub may_publish: Box<[bool]>,
    /// Tick by which our outstanding ping must be answered (0 = none).
    pub pong_due: u32,
}

/// A waiting long-poll request.
#[derive(Debug)]
pub struct LongPollWait {
    /// The CORS headers of the answer (the request is gone by then).
    pub cors: Cors,
    /// Messages that arrived since the poll started (answered together).
    pub messages: Vec<Arc<Message>>,
    /// Already queued for an answer at the end of this loop turn.
    pub ready: bool,
    /// The client's request allows reusing the connection.
    pub keep_alive: bool,
    /// The client's position was older than the stored history.
    pub missed: bool,
    /// The id the poll waits after (reported back on timeout).
    pub position: u64,
    /// Tick at which the poll answers 304.
    pub deadline: u32,
    /// push-stream's or Nchan's answer format (`--compat`), or crier's.
    pub dialect: SubDialect,
    /// The channel whose deletion ended the poll (push-stream names it in
    /// its "Channel deleted" message).
    pub deleted: Option<std::sync::Arc<str>>,
}

impl Subscriber {
    /// WebSocket protocol state, if this is a WebSocket.
    pub fn ws(&self) -> Option<&WsState> {
        match self.state.as_deref() {
            Some(TransportState::WebSocket(ws)) => Some(ws),
            _ => None,
        }
    }

    /// WebSocket protocol state, mutably.
    pub fn ws_mut(&mut self) -> Option<&mut WsState> {
        match self.state.as_deref_mut() {
            Some(TransportState::WebSocket(ws)) => Some(ws),
            _ => None,
        }
    }

    /// The waiting poll, if this is a long-poll.
    pub fn longpoll(&self) -> Option<&LongPollWait> {
        match self.state.as_deref() {
            Some(TransportState::LongPoll(lp)) => Some(lp),
            _ => None,
        }
    }

    /// The waiting poll, mutably.
    pub fn longpoll_mut(&mut self) -> Option<&mut LongPollWait> {
        match self.state.as_deref_mut() {
            Some(TransportState::LongPoll(lp)) => Some(lp),
            _ => None,
        }
    }

    /// Ends the poll: takes its state out (None if not a waiting poll).
    pub fn take_longpoll(&mut self) -> Option<LongPollWait> {
        match self.state.take().map(|b| *b) {
            Some(TransportState::LongPoll(lp)) => Some(*lp),
            other => {
                self.state = other.map(Box::new);
                None
            }
        }
    }
}

impl Conn {
    /// A freshly accepted connection, waiting for its first request.
    pub fn new(socket: TcpStream, generation: u32) -> Conn {
        Conn {
            socket,
            generation,
            role: Role::Http(None),
            out: OutQueue::default(),
            pending_in: PendingInput::default(),
            last_seq: 0,
            deadline: 0,
            timer: NO_TIMER,
            last_write: 0,
            ip_key: 0,
            flags: ConnFlags::default(),
        }
    }

    /// The gauge this connection counts under, read off its state.
    pub fn kind(&self) -> ConnKind {
        match &self.role {
            Role::Http(_) => ConnKind::Http,
            Role::Subscriber(s) => match s.format {
                WireFormat::Sse | WireFormat::PushStreamSse | WireFormat::NchanSse => ConnKind::Sse,
                WireFormat::StreamChunked
                | WireFormat::StreamRaw
                | WireFormat::StreamJson
                | WireFormat::PushStreamStream { .. } => ConnKind::Stream,
                WireFormat::WebSocket { .. }
                | WireFormat::NchanWsMeta { .. }
                | WireFormat::PushStreamWs { .. } => ConnKind::WebSocket,
                WireFormat::LongPoll | WireFormat::PushStreamText => ConnKind::LongPoll,
            },
        }
    }

    /// The subscriber state, if this connection is one.
    pub fn subscriber(&self) -> Option<&Subscriber> {
        match &self.role {
            Role::Subscriber(s) => Some(s),
            Role::Http(_) => None,
        }
    }

    /// The subscriber state, mutably.
    pub fn subscriber_mut(&mut self) -> Option<&mut Subscriber> {
        match &mut self.role {
            Role::Subscriber(s) => Some(s),
            Role::Http(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A million of these live in slabs: every byte here is a megabyte there
    /// (docs/PERFORMANCE.md). Grow it only on purpose.
    #[test]
    fn conn_fits_in_two_cache_lines() {
        // mio's sockets carry a selector id in debug builds (its check that
        // a socket is registered with one Poll); release builds, which are
        // what runs, hold the descriptor alone.
        let debug_extra =
            std::mem::size_of::<TcpStream>() - std::mem::size_of::<std::os::fd::RawFd>();
        assert!(std::mem::size_of::<Conn>() - debug_extra <= 128);
        assert!(std::mem::size_of::<Role>() <= 32);
    }

    /// Every idle WebSocket holds one `TransportState` box: it must be the
    /// size of the WebSocket state alone, not of a waiting long-poll's
    /// (boxing `LongPollWait` inside took 144 B boxes, a 160 B heap chunk
    /// each, down to 64 B: docs/PERFORMANCE.md, "idle memory").
    #[test]
    fn an_idle_websocket_box_is_the_websocket_state_alone() {
        assert_eq!(
            std::mem::size_of::<TransportState>(),
            std::mem::size_of::<WsState>()
        );
        assert!(std::mem::size_of::<WsState>() <= 64);
    }
}
