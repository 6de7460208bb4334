//! Target `route`: the router and the channel-path syntax, on heads
//! parsed from raw requests or written around a fuzzed target and resume
//! headers, with input-chosen channel count and channel-id length limits.
//! Checked: every channel it hands on is valid, distinct, within both
//! limits; methods, statuses and `Allow` as documented; HEAD is GET except
//! on streams; a subscription's channels written back as a path route to
//! the same channels. The hub, the JSON and the logs rely on all of it.

use crate::http::request::{parse_head, Method, RequestHead};
use crate::http::route::{Route, RouteError, RouteLimit, RouteLimits, SubTransport};
use crate::pubsub::channel::{ChannelRequest, Resume, MAX_CHANNEL_ID};

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

/// Methods a fuzzed request line may use.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get",
];

/// Router and channel-path parser on heads parsed from the input.
///
/// Input: a setup byte (channel cap 1..=32 in bits 0-4, mode in bit 7), a
/// channel-id limit byte (128 less its low 7 bits: 1..=128, a zero byte
/// the default 128), then either a raw request head (mode bit set) or
/// `target \n last-event-id \n if-none-match` from which a request is
/// written (a method byte and a presence byte first).
pub fn route(data: &[u8]) {
    let mut input = Input::new(data);
    let setup = input.byte();
    let limits = RouteLimits {
        max_channels: 1 + usize::from(setup & 31),
        max_channel_id: MAX_CHANNEL_ID - usize::from(input.byte() & 127),
    };
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
        for (bit, name) in [(1, "Last-Event-ID"), (2, "If-None-Match")] {
            let value = fields.next().unwrap_or_default();
            if presence & bit != 0 {
                req.extend_from_slice(format!("{name}: ").as_bytes());
                req.extend_from_slice(value);
                req.extend_from_slice(b"\r\n");
            }
        }
        if presence & 4 != 0 {
            req.extend_from_slice(b"Content-Length: 0\r\n");
        }
        req.extend_from_slice(b"\r\n");
        req
    };
    if let Ok(Some((head, _))) = parse_head(&request, &ROOMY_LIMITS) {
        let routed = route_request(&head, &limits);
        check_route(&head, &routed, &limits);
    }
}
