//! One connection's state, kept small: a million of these live in slabs.
//!
//! Layout choices: input bytes are kept only while a request or frame is
//! unfinished (`pending_in` is 8 bytes and owns no heap otherwise);
//! the out queue owns no heap when empty; a subscription to one channel is
//! stored inline; request bodies being received live behind a `Box`.

use mio::net::TcpStream;
use smallvec::SmallVec;

use crate::http::chunked::BodyReader;
use crate::http::request::RequestHead;
use crate::pubsub::message::WireFormat;
use crate::reactor::local::LocalSub;
use crate::reactor::longpoll::LongPollWait;
use crate::reactor::outqueue::OutQueue;
use crate::reactor::websocket::WsState;
use crate::status::ConnKind;

/// A connection in a reactor's slab.
pub struct Conn {
    pub socket: TcpStream,
    /// Distinguishes this occupant of a slab slot from earlier ones, so a
    /// stale reference (timer entry) cannot hit a new connection.
    pub generation: u32,
    pub role: Role,
    pub out: OutQueue,
    /// Unconsumed input (a partial request head or body).
    pub pending_in: PendingInput,
    /// Id of the newest message this connection has been sent; later
    /// deliveries at or below it are duplicates (see `Hub`).
    pub last_seq: u64,
    /// Tick at which this connection next needs attention (0 = never).
    /// Moving it later is a plain store; see `timer.rs`.
    pub deadline: u32,
    /// Tick of this connection's live wheel entry (0 = none).
    pub armed_at: u32,
    /// Tick of the last write to the socket (pings go to silent ones).
    pub last_write: u32,
    pub flags: ConnFlags,
}

/// Small per-connection booleans.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConnFlags {
    /// Already in the reactor's dirty list for this loop turn.
    pub dirty: bool,
    /// Close as soon as the out queue is flushed.
    pub close_after_flush: bool,
    /// The kernel refused bytes; wait for a writable event.
    pub write_blocked: bool,
    /// Reading paused because the peer is not reading our replies.
    pub read_paused: bool,
    /// Server is draining: finish the current request, then close.
    pub draining: bool,
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

    /// Bytes pending.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |v| v.len())
    }

    /// Appends bytes (allocating on the first).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.0
                .get_or_insert_with(Default::default)
                .extend_from_slice(data);
        }
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
    /// Reading HTTP requests; `Some` while a request body is being received.
    Http(Option<Box<PendingRequest>>),
    /// A subscriber receiving messages.
    Subscriber(Subscriber),
}

/// A request whose head has been parsed and whose body is still arriving.
pub struct PendingRequest {
    pub head: RequestHead,
    pub channels: Vec<String>,
    pub reader: BodyReader,
    pub body: Vec<u8>,
}

/// A subscriber: how to frame messages and where it is subscribed.
pub struct Subscriber {
    pub format: WireFormat,
    pub kind: ConnKind,
    pub subs: SmallVec<[LocalSub; 1]>,
    /// Tick by which an outstanding WebSocket ping must be answered (0 = none).
    pub pong_due: u32,
    /// Tick at which the subscriber is asked to reconnect (0 = never).
    pub lifetime_end: u32,
    /// WebSocket protocol state; `None` for SSE and streams (one pointer,
    /// so other transports pay 8 bytes for it).
    pub ws: Option<Box<WsState>>,
    /// Long-poll state; `None` for streaming transports.
    pub longpoll: Option<Box<LongPollWait>>,
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
            armed_at: 0,
            last_write: 0,
            flags: ConnFlags::default(),
        }
    }

    /// The gauge this connection counts under.
    pub fn kind(&self) -> ConnKind {
        match &self.role {
            Role::Http(_) => ConnKind::Http,
            Role::Subscriber(s) => s.kind,
        }
    }
}
