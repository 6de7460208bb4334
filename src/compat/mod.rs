//! Drop-in compatibility with nginx-push-stream-module and Nchan
//! (`--compat push-stream|nchan`, docs/MIGRATING.md).
//!
//! Pure, like `http::route`: a request head goes in, a [`CompatRoute`]
//! comes out, described in crier's own terms (channels, a
//! [`Subscription`], a resume point) plus the [`Dialect`] its answers must
//! be written in. The reactor (`reactor/compat.rs`) carries it out with the
//! same hub, access checks and transports as crier's own API; the bytes of
//! the peers' replies are built by `proto::compat` and [`reply`].
//!
//! With `--compat off` nothing here runs: crier's router answers alone.

pub mod nchan;
pub mod push_stream;
pub mod reply;
pub mod settings;

use crate::http::request::RequestHead;
use crate::http::route::{Route, RouteError, RouteLimits, Subscription};
use crate::proto::compat::{nchan as nchan_wire, push_stream as ps_wire};
use crate::proto::WireFormat;
pub use settings::{Compat, FirstMessage, PublisherMode};

/// What a request asks for in a compatibility mode.
#[derive(Debug, Clone, PartialEq)]
pub enum CompatRoute {
    /// Publish the body to these channels; answer in the peer's format.
    Publish(Vec<String>),
    /// The figures of these channels (GET on the publisher location).
    Info(Vec<String>),
    /// Delete these channels.
    Delete(Vec<String>),
    /// push-stream's `/channels-stats`.
    Stats(StatsQuery),
    /// A subscription, and how its messages and answers are written.
    Subscribe(Subscription, SubDialect),
    /// Not a compatibility route: crier's own router answers it.
    Crier,
}

/// What `/channels-stats` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsQuery {
    /// No `id`: the server-wide summary.
    Summary,
    /// `id=ALL` (prefix "") or `id=prefix_*`: every matching channel.
    Prefix(String),
    /// `id=a/b`: these channels.
    Channels(Vec<String>),
}

/// Which peer's format the answers to one request are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    PushStream(ps_wire::InfoFormat),
    Nchan(nchan_wire::InfoFormat),
}

impl Dialect {
    /// The dialect of `compat` for a request with this `Accept` header;
    /// None when compatibility is off.
    pub fn of(compat: Compat, accept: Option<&str>) -> Option<Dialect> {
        match compat {
            Compat::Off => None,
            Compat::PushStream => Some(Dialect::PushStream(ps_wire::InfoFormat::negotiate(accept))),
            Compat::Nchan => Some(Dialect::Nchan(nchan_wire::InfoFormat::negotiate(accept))),
        }
    }
}

/// How a compatibility-mode subscriber gets its messages and answers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SubDialect {
    /// crier's own formats.
    #[default]
    Crier,
    PushStream(PushStreamSub),
    Nchan(NchanSub),
}

/// push-stream specifics of a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushStreamSub {
    /// `Last-Event-Id` (or `eventid=`): resume after the stored message
    /// published with this `Event-Id`; the reactor looks it up.
    pub event_id: Option<String>,
    /// `callback=`: answer the long-poll as JSONP.
    pub callback: Option<String>,
    /// `X-Nginx-PushStream-Mode: polling`: answer at once, 304 if nothing.
    pub polling: bool,
}

/// Nchan specifics of a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NchanSub {
    /// The client offered the `ws+meta.nchan` WebSocket subprotocol.
    pub ws_meta: bool,
}

/// The Nchan WebSocket subprotocol that carries message ids.
pub const NCHAN_WS_META: &str = "ws+meta.nchan";

impl SubDialect {
    /// The EventSource format of this dialect.
    pub fn sse_format(&self) -> WireFormat {
        match self {
            SubDialect::Crier => WireFormat::Sse,
            SubDialect::PushStream(_) => WireFormat::PushStreamSse,
            SubDialect::Nchan(_) => WireFormat::NchanSse,
        }
    }

    /// A long-poll that must be answered at once (push-stream polling).
    pub fn answers_at_once(&self) -> bool {
        matches!(self, SubDialect::PushStream(p) if p.polling)
    }
}

/// The locations a compatibility mode answers on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    pub compat: Compat,
    pub push_stream_publisher: PublisherMode,
    pub nchan_publish: String,
    pub nchan_subscribe: String,
}

/// Routes a request in compatibility mode `loc.compat`.
pub fn route(
    head: &RequestHead<'_>,
    limits: &RouteLimits,
    loc: &Locations,
) -> Result<CompatRoute, RouteError> {
    match loc.compat {
        Compat::Off => Ok(CompatRoute::Crier),
        Compat::PushStream => push_stream::route(head, limits, loc.push_stream_publisher),
        Compat::Nchan => nchan::route(head, limits, loc),
    }
}

/// crier's own subscription for a subscribe path (`/ev/`, `/ws/`, …).
fn crier_subscription(
    head: &RequestHead<'_>,
    limits: &RouteLimits,
) -> Result<Option<Subscription>, RouteError> {
    match crate::http::route::route(head, limits) {
        Ok(Route::Subscribe(sub)) => Ok(Some(sub)),
        Ok(_) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The event name and `Event-Id` a publish carries: crier's and
/// push-stream's `Event-Type` (and push-stream's `Event-Id`), Nchan's
/// `X-EventSource-Event`.
pub fn publish_headers(
    dialect: Option<Dialect>,
    h: &crate::http::headers::Headers<'_>,
) -> (Option<String>, Option<String>) {
    let own = |v: &Option<std::borrow::Cow<'_, str>>| v.as_deref().map(str::to_string);
    match dialect {
        None => (own(&h.event_type), None),
        Some(Dialect::PushStream(_)) => (own(&h.event_type), own(&h.event_id)),
        Some(Dialect::Nchan(_)) => (own(&h.eventsource_event), None),
    }
}
