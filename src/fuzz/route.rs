//! Target `route`: the router and the channel-path syntax, on heads
//! parsed from raw requests or written around a fuzzed target and resume
//! headers, with input-chosen channel count and channel-id length limits.
//! Checked: every channel it hands on is valid, distinct, within both
//! limits; methods, statuses and `Allow` as documented; HEAD is GET except
//! on streams; a subscription's channels written back as a path route to
//! the same channels. The hub, the JSON and the logs rely on all of it.
//! The same holds in the compatibility modes (`--compat push-stream` with
//! either publisher mode, `--compat nchan` with separate or shared
//! locations), whose routers take the request first and hand crier's own
//! paths back (`CompatRoute::Crier`).

use crate::http::request::{parse_head, Method, RequestHead};
use crate::http::route::{Route, RouteError, RouteLimit, RouteLimits, SubTransport};
use crate::pubsub::channel::{ChannelRequest, Resume, MAX_CHANNEL_ID};

use crate::compat::{self, Compat, CompatRoute, Locations, PublisherMode, StatsQuery, SubDialect};
use crate::proto::compat::push_stream::valid_callback;

use super::{check_channel, route_request, Input, ROOMY_LIMITS};

/// A channel the router handed on: valid, and within the configured length.
fn check_limited_channel(id: &str, limits: &RouteLimits) {
    check_channel(id);
    assert!(
        id.len() <= limits.max_channel_id,
        "channel {id:?} over max_channel_id {}",
        limits.max_channel_id
    );
}

/// Invariants of a routing result: every channel valid, distinct and within
/// the count and length limits, methods as documented, errors with a status.
pub(super) fn check_route(
    head: &RequestHead<'_>,
    routed: &Result<Route, RouteError>,
    limits: &RouteLimits,
) {
    let max = limits.max_channels;
    let again = route_request(head, limits);
    assert_eq!(&again, routed, "route is not deterministic");
    // Limits only refuse: what routes within them routes the same with the
    // longest ids allowed, and a refusal for id length names that limit.
    if routed.is_ok() && limits.max_channel_id < MAX_CHANNEL_ID {
        let roomy = RouteLimits {
            max_channel_id: MAX_CHANNEL_ID,
            ..*limits
        };
        assert_eq!(
            &route_request(head, &roomy),
            routed,
            "a longer id limit routes differently"
        );
    }
    match routed {
        Ok(Route::Publish(channels)) => {
            assert!(matches!(head.method, Method::Post | Method::Put));
            assert!(
                !channels.is_empty() && channels.len() <= max,
                "{channels:?}"
            );
            for (i, c) in channels.iter().enumerate() {
                check_limited_channel(c, limits);
                assert!(!channels[..i].contains(c), "duplicate channel {c:?}");
            }
        }
        Ok(Route::ChannelInfo(c)) | Ok(Route::DeleteChannel(c)) | Ok(Route::Status(Some(c))) => {
            check_limited_channel(c, limits)
        }
        Ok(Route::Status(None)) | Ok(Route::Metrics) | Ok(Route::Preflight) => {}
        Ok(Route::StatusStream) | Ok(Route::Page(_)) => assert_eq!(head.method, Method::Get),
        Ok(Route::Subscribe(sub)) => {
            assert_eq!(head.method, Method::Get);
            let n = sub.channels.len();
            assert!(n >= 1 && n <= max, "{n} channels, max {max}");
            for (i, c) in sub.channels.iter().enumerate() {
                check_limited_channel(&c.name, limits);
                assert!(c.backtrack <= 999_999, "backtrack {}", c.backtrack);
                assert!(sub.channels[..i].iter().all(|o| o.name != c.name));
            }
            if let Resume::SinceMs(ms) = sub.resume {
                assert!(ms % 1000 == 0 || ms == u64::MAX, "since {ms} ms");
            }
            check_path_round_trip(head, sub.transport, &sub.channels, limits);
        }
        Err(e) => {
            assert!(matches!(e.status, 400 | 404 | 405), "status {}", e.status);
            assert_eq!(e.status == 405, e.allow.is_some());
            assert!(!e.message.is_empty());
            if e.limit.is_some() {
                assert_eq!(e.status, 400, "{e:?}");
            }
            if e.limit == Some(RouteLimit::ChannelId) {
                assert!(limits.max_channel_id < MAX_CHANNEL_ID || e.message.contains("128"));
            }
        }
    }
    // HEAD is GET without the body, except on subscribe paths.
    if head.method == Method::Head {
        let mut as_get = head.clone();
        as_get.method = Method::Get;
        match route_request(&as_get, limits) {
            Ok(Route::Subscribe(_)) | Ok(Route::StatusStream) => {
                assert_eq!(routed.as_ref().map_err(|e| e.status), Err(405))
            }
            get => assert_eq!(&get, routed, "HEAD routes unlike GET"),
        }
    }
}

/// A subscription's channels, written back as a path (`name.bN` each),
/// route to the same channels: the path syntax has one reading.
fn check_path_round_trip(
    head: &RequestHead<'_>,
    transport: SubTransport,
    channels: &[ChannelRequest],
    limits: &RouteLimits,
) {
    let prefix = match transport {
        SubTransport::EventSource => "/ev/",
        SubTransport::Stream => "/sub/",
        SubTransport::WebSocket => "/ws/",
        SubTransport::LongPoll => "/lp/",
    };
    let segments: Vec<String> = channels
        .iter()
        .map(|c| format!("{}.b{}", c.name, c.backtrack))
        .collect();
    let path = format!("{prefix}{}", segments.join("/"));
    let rebuilt = RequestHead {
        path: &path,
        query: "",
        headers: Default::default(),
        ..head.clone()
    };
    match route_request(&rebuilt, limits) {
        Ok(Route::Subscribe(sub)) => {
            assert_eq!(sub.transport, transport);
            assert_eq!(sub.channels, channels, "path {path:?} reads differently");
        }
        other => panic!("rebuilt path {path:?} routes to {other:?}"),
    }
}

/// Channels a compatibility route names: at least one, within both
/// limits, valid and distinct.
fn check_channel_list(channels: &[String], limits: &RouteLimits) {
    assert!(
        !channels.is_empty() && channels.len() <= limits.max_channels,
        "{channels:?}"
    );
    for (i, c) in channels.iter().enumerate() {
        check_limited_channel(c, limits);
        assert!(!channels[..i].contains(c), "duplicate channel {c:?}");
    }
}

/// Invariants of a compatibility-mode routing result: what `compat::route`
/// hands the reactor obeys the same channel rules as crier's own routes,
/// with the methods and statuses the mode documents; `Crier` hands the
/// request to crier's router, which is checked as without a mode.
fn check_compat_route(head: &RequestHead<'_>, limits: &RouteLimits, loc: &Locations) {
    let routed = compat::route(head, limits, loc);
    assert_eq!(
        compat::route(head, limits, loc),
        routed,
        "not deterministic"
    );
    let method = head.method;
    match &routed {
        Ok(CompatRoute::Crier) => {
            let own = route_request(head, limits);
            check_route(head, &own, limits);
        }
        Ok(CompatRoute::Publish(ch)) => {
            assert!(matches!(method, Method::Post | Method::Put));
            check_channel_list(ch, limits);
        }
        Ok(CompatRoute::Info(ch)) => {
            assert_eq!(method, Method::Get);
            check_channel_list(ch, limits);
        }
        Ok(CompatRoute::Delete(ch)) => {
            assert_eq!(method, Method::Delete);
            assert!(
                loc.compat != Compat::PushStream
                    || loc.push_stream_publisher == PublisherMode::Admin,
                "push-stream deletes only as admin"
            );
            check_channel_list(ch, limits);
        }
        Ok(CompatRoute::Stats(query)) => {
            assert_eq!(loc.compat, Compat::PushStream);
            assert_eq!(method, Method::Get);
            if let StatsQuery::Channels(ch) = query {
                check_channel_list(ch, limits);
            }
        }
        Ok(CompatRoute::Subscribe(sub, dialect)) => {
            assert_eq!(method, Method::Get);
            let n = sub.channels.len();
            assert!(n >= 1 && n <= limits.max_channels, "{n} channels");
            for (i, c) in sub.channels.iter().enumerate() {
                check_limited_channel(&c.name, limits);
                assert!(sub.channels[..i].iter().all(|o| o.name != c.name));
            }
            // A resume time is whole seconds (or saturated), in any mode.
            if let Resume::SinceMs(ms) = sub.resume {
                assert!(ms % 1000 == 0 || ms == u64::MAX, "since {ms} ms");
            }
            match (loc.compat, dialect) {
                (Compat::PushStream, SubDialect::PushStream(ps)) => {
                    assert!(ps.callback.as_deref().is_none_or(valid_callback));
                    assert!(!ps.polling || sub.transport == SubTransport::LongPoll);
                    assert!(ps.event_id.as_deref() != Some(""));
                }
                (Compat::Nchan, SubDialect::Nchan(n)) => {
                    assert!(!n.ws_meta || sub.transport == SubTransport::WebSocket);
                }
                other => panic!("subscription in the wrong dialect: {other:?}"),
            }
        }
        Err(e) => {
            assert!(
                matches!(e.status, 400 | 403 | 404 | 405),
                "status {}",
                e.status
            );
            assert_eq!(e.status == 405, e.allow.is_some());
            assert!(!e.message.is_empty());
            if e.limit.is_some() {
                assert_eq!(e.status, 400, "{e:?}");
            }
        }
    }
    if routed.is_ok() && limits.max_channel_id < MAX_CHANNEL_ID {
        let roomy = RouteLimits {
            max_channel_id: MAX_CHANNEL_ID,
            ..*limits
        };
        assert_eq!(
            compat::route(head, &roomy, loc),
            routed,
            "a longer id limit routes differently"
        );
    }
}

/// The compatibility mode of a run: `mode` 0 is none, 1 push-stream, 2
/// Nchan on `/pub` and `/sub`, 3 Nchan on one shared location `/ps`; `alt`
/// picks push-stream's admin publisher.
fn locations(mode: u8, alt: bool) -> Locations {
    let (compat, publish, subscribe) = match mode & 3 {
        0 => (Compat::Off, "/pub", "/sub"),
        1 => (Compat::PushStream, "/pub", "/sub"),
        2 => (Compat::Nchan, "/pub", "/sub"),
        _ => (Compat::Nchan, "/ps", "/ps"),
    };
    Locations {
        compat,
        push_stream_publisher: if alt {
            PublisherMode::Admin
        } else {
            PublisherMode::Normal
        },
        nchan_publish: publish.to_string(),
        nchan_subscribe: subscribe.to_string(),
    }
}

/// Request headers a written request may carry, one presence bit each, in
/// the order their values follow the target.
const WRITTEN_HEADERS: [&str; 8] = [
    "Last-Event-ID",
    "If-None-Match",
    "Content-Length",
    "Accept",
    "If-Modified-Since",
    "X-Nginx-PushStream-Mode",
    "Upgrade",
    "TE",
];

/// Methods a fuzzed request line may use.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get",
];

/// Router and channel-path parser on heads parsed from the input, without
/// a compatibility mode or in one.
///
/// Input: a setup byte (channel cap 1..=32 in bits 0-4, compatibility mode
/// in bits 5-6: see [`locations`], raw request in bit 7), a channel-id
/// limit byte (128 less its low 7 bits: 1..=128, a zero byte the default
/// 128; bit 7 the admin publisher), then either a raw request head or a
/// method byte, a presence byte and `target \n value \n value …` from
/// which a request is written ([`WRITTEN_HEADERS`]; `Content-Length` is
/// always 0).
pub fn route(data: &[u8]) {
    let mut input = Input::new(data);
    let setup = input.byte();
    let id_byte = input.byte();
    let limits = RouteLimits {
        max_channels: 1 + usize::from(setup & 31),
        max_channel_id: MAX_CHANNEL_ID - usize::from(id_byte & 127),
    };
    let loc = locations(setup >> 5, id_byte & 0x80 != 0);
    let request = if setup & 0x80 != 0 {
        input.rest().to_vec()
    } else {
        let method = METHODS[usize::from(input.byte() & 7)];
        let presence = input.byte();
        let mut fields = input.rest().split(|&b| b == b'\n');
        let target = fields.next().unwrap_or_default();
        let mut req = format!("{method} ").into_bytes();
        req.extend_from_slice(target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n");
        for (bit, name) in WRITTEN_HEADERS.iter().enumerate() {
            let value = fields.next().unwrap_or_default();
            if presence & (1 << bit) != 0 {
                let value = if *name == "Content-Length" {
                    b"0"
                } else {
                    value
                };
                req.extend_from_slice(format!("{name}: ").as_bytes());
                req.extend_from_slice(value);
                req.extend_from_slice(b"\r\n");
            }
        }
        req.extend_from_slice(b"\r\n");
        req
    };
    if let Ok(Some((head, _))) = parse_head(&request, &ROOMY_LIMITS) {
        if loc.compat == Compat::Off {
            let routed = route_request(&head, &limits);
            check_route(&head, &routed, &limits);
        } else {
            check_compat_route(&head, &limits, &loc);
        }
    }
}
