//! `--compat push-stream`: nginx-push-stream-module's HTTP API on crier's
//! paths (which are push-stream's usual locations and pushstream.js's
//! defaults: `/pub`, `/channels-stats`, `/sub/`, `/ev/`, `/ws/`, `/lp/`).
//!
//! - `/pub?id=CH` (also `a/b`): POST/PUT publish, GET figures, DELETE
//!   (admin publisher only); `ALL` and ids with `*` are refused (403).
//! - `/channels-stats`: summary, `?id=ALL`, `?id=prefix_*`, `?id=a/b`.
//! - Subscriptions resume as push-stream's do: `.bN`, `Last-Event-Id`
//!   (an `Event-Id` the publisher set), `If-Modified-Since` +
//!   `If-None-Match` (or `time=` / `tag=` / `eventid=`); `callback=` makes
//!   a long-poll answer JSONP, `X-Nginx-PushStream-Mode` picks polling or
//!   long-polling on stream and EventSource paths.
//!
//! Position: push-stream tags a message with its publish second and a
//! counter; crier's replies carry `Last-Modified` = the publish second and
//! `Etag: W/ID` with crier's message id as the tag, so an echoed
//! `If-None-Match` resumes exactly. A tag crier did not issue (0, what
//! push-stream sends after a timeout and pushstream.js starts with) falls
//! back to the time: every message published from that second on.

use super::{
    crier_subscription, CompatRoute, PublisherMode, PushStreamSub, StatsQuery, SubDialect,
};
use crate::http::query::query_param;
use crate::http::request::{Method, RequestHead};
use crate::http::route::{RouteError, RouteLimits, SubTransport};
use crate::proto::compat::{httpdate, push_stream as ps_wire};
use crate::pubsub::channel::Resume;

/// push-stream's explain texts (`X-Nginx-PushStream-Explain`).
pub const NO_CHANNEL_ID: &str = "No channel id provided.";
pub const NOT_AUTHORIZED: &str = "Channel id not authorized for this method.";
pub const EMPTY_POST: &str = "Empty post requests are not allowed.";
pub const CHANNEL_DELETED: &str = "Channel deleted.";

/// Tags below this cannot be crier message ids (those start at the
/// server's start time in microseconds): they are push-stream's own small
/// counters, so the time decides.
const FIRST_CRIER_ID: u64 = 1_000_000_000_000_000;

/// Routes a push-stream request; `CompatRoute::Crier` for everything that
/// is crier's own (`/status`, `/metrics`, pages).
pub fn route(
    head: &RequestHead<'_>,
    limits: &RouteLimits,
    publisher: PublisherMode,
) -> Result<CompatRoute, RouteError> {
    let method = head.method;
    if method == Method::Options || method == Method::Head {
        return Ok(CompatRoute::Crier);
    }
    match head.path {
        "/pub" => publisher_route(head, limits, publisher),
        "/channels-stats" => {
            if method != Method::Get {
                return Err(RouteError::method("GET"));
            }
            stats_query(head, limits).map(CompatRoute::Stats)
        }
        p if ["/ev/", "/sub/", "/ws/", "/lp/"]
            .iter()
            .any(|x| p.starts_with(x)) =>
        {
            match crier_subscription(head, limits)? {
                Some(sub) => subscription(head, sub),
                None => Ok(CompatRoute::Crier),
            }
        }
        _ => Ok(CompatRoute::Crier),
    }
}

fn publisher_route(
    head: &RequestHead<'_>,
    limits: &RouteLimits,
    publisher: PublisherMode,
) -> Result<CompatRoute, RouteError> {
    let allow = match publisher {
        PublisherMode::Admin => "GET, POST, PUT, DELETE",
        PublisherMode::Normal => "GET, POST, PUT",
    };
    let allowed = match head.method {
        Method::Get | Method::Post | Method::Put => true,
        Method::Delete => publisher == PublisherMode::Admin,
        _ => false,
    };
    if !allowed {
        return Err(RouteError::method(allow));
    }
    let raw = query_param(head.query, "id").unwrap_or_default();
    if raw.is_empty() {
        return Err(RouteError::new(400, NO_CHANNEL_ID));
    }
    if raw.split('/').any(|id| id == "ALL" || id.contains('*')) {
        return Err(RouteError::new(403, NOT_AUTHORIZED));
    }
    let channels = limits.channel_list(&raw)?;
    Ok(match head.method {
        Method::Get => CompatRoute::Info(channels),
        Method::Delete => CompatRoute::Delete(channels),
        _ => CompatRoute::Publish(channels),
    })
}

fn stats_query(head: &RequestHead<'_>, limits: &RouteLimits) -> Result<StatsQuery, RouteError> {
    let Some(raw) = query_param(head.query, "id").filter(|id| !id.is_empty()) else {
        return Ok(StatsQuery::Summary);
    };
    if raw == "ALL" {
        return Ok(StatsQuery::Prefix(String::new()));
    }
    if let Some(star) = raw.find('*') {
        return Ok(StatsQuery::Prefix(raw[..star].to_string()));
    }
    limits.channel_list(&raw).map(StatsQuery::Channels)
}

/// A subscription with push-stream's resume rules, JSONP and modes.
fn subscription(
    head: &RequestHead<'_>,
    mut sub: crate::http::route::Subscription,
) -> Result<CompatRoute, RouteError> {
    let h = &head.headers;
    let mode = h.pushstream_mode.as_deref().map(str::to_ascii_lowercase);
    let polling = mode.as_deref() == Some("polling");
    if (polling || mode.as_deref() == Some("long-polling"))
        && sub.transport != SubTransport::WebSocket
    {
        sub.transport = SubTransport::LongPoll;
    }
    let event_id = h
        .last_event_id
        .as_deref()
        .map(str::to_string)
        .or_else(|| query_param(head.query, "eventid"))
        .filter(|e| !e.is_empty());
    let time = h
        .if_modified_since
        .as_deref()
        .map(str::to_string)
        .or_else(|| query_param(head.query, "time"))
        .and_then(|t| httpdate::parse(&t));
    let tag = h
        .if_none_match
        .as_deref()
        .map(str::to_string)
        .or_else(|| query_param(head.query, "tag"))
        .and_then(|t| parse_tag(&t));
    sub.resume = resume_point(time, tag);
    sub.json = false;
    let callback = query_param(head.query, "callback").filter(|c| !c.is_empty());
    if callback
        .as_deref()
        .is_some_and(|c| !ps_wire::valid_callback(c))
    {
        return Err(RouteError::new(400, "invalid JSONP callback name"));
    }
    let polling = polling && sub.transport == SubTransport::LongPoll;
    Ok(CompatRoute::Subscribe(
        sub,
        SubDialect::PushStream(PushStreamSub {
            event_id,
            callback,
            polling,
        }),
    ))
}

/// `W/123`, `"123"` or `123`.
fn parse_tag(text: &str) -> Option<u64> {
    text.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// Where an `If-Modified-Since` (seconds) and `If-None-Match` (tag) pair
/// resumes: after a crier id when the tag is one; else from the time (the
/// second itself included when a tag was sent, as push-stream compares
/// `(time, tag)` pairs; after it when not).
pub fn resume_point(time: Option<u64>, tag: Option<u64>) -> Resume {
    match (time, tag) {
        (_, Some(id)) if id >= FIRST_CRIER_ID => Resume::AfterSeq(id),
        // Saturating, as crier's own `since=` is: `time=` is the client's.
        (Some(t), Some(_)) => Resume::SinceMs(t.saturating_mul(1000)),
        (Some(t), None) => Resume::SinceMs(t.saturating_add(1).saturating_mul(1000)),
        (None, _) => Resume::Live,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{parse_head, Limits};

    const LIMITS: Limits = Limits {
        max_request_line: 1024,
        max_header_bytes: 8192,
        max_headers: 64,
        max_body_bytes: 1 << 20,
    };
    const ROUTE: RouteLimits = RouteLimits {
        max_channels: 16,
        max_channel_id: 128,
    };

    fn route_of(req: &str, mode: PublisherMode) -> Result<CompatRoute, RouteError> {
        let (head, _) = parse_head(req.as_bytes(), &LIMITS).unwrap().unwrap();
        route(&head, &ROUTE, mode)
    }

    fn get(path: &str, headers: &str) -> Result<CompatRoute, RouteError> {
        route_of(
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n"),
            PublisherMode::Normal,
        )
    }

    #[test]
    fn publisher_location() {
        let post = "POST /pub?id=a/b HTTP/1.1\r\nContent-Length: 1\r\n\r\n";
        assert_eq!(
            route_of(post, PublisherMode::Normal).unwrap(),
            CompatRoute::Publish(vec!["a".into(), "b".into()])
        );
        let del = "DELETE /pub?id=a HTTP/1.1\r\n\r\n";
        let e = route_of(del, PublisherMode::Normal).unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("GET, POST, PUT")));
        assert_eq!(
            route_of(del, PublisherMode::Admin).unwrap(),
            CompatRoute::Delete(vec!["a".into()])
        );
        assert_eq!(get("/pub?id=ALL", "").unwrap_err().status, 403);
        assert_eq!(get("/pub?id=a*", "").unwrap_err().status, 403);
        assert_eq!(get("/pub", "").unwrap_err().message, NO_CHANNEL_ID);
        assert_eq!(
            get("/pub?id=a", "").unwrap(),
            CompatRoute::Info(vec!["a".into()])
        );
    }

    #[test]
    fn a_far_if_modified_since_is_refused_and_never_overflows() {
        // Found by the route fuzz target: a huge year overflowed the date
        // arithmetic and then the milliseconds of the resume point.
        for year in ["2000000000", "99999999999999999"] {
            let ims = format!("If-Modified-Since: Thu, 01 Jan {year} 00:00:00 GMT\r\n");
            match get("/sub/a", &ims).unwrap() {
                CompatRoute::Subscribe(s, _) => assert_eq!(s.resume, Resume::Live),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            resume_point(Some(u64::MAX), None),
            Resume::SinceMs(u64::MAX)
        );
        assert_eq!(
            resume_point(Some(u64::MAX), Some(1)),
            Resume::SinceMs(u64::MAX)
        );
    }

    #[test]
    fn stats_queries() {
        let stats = |q: &str| match get(&format!("/channels-stats{q}"), "").unwrap() {
            CompatRoute::Stats(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(stats(""), StatsQuery::Summary);
        assert_eq!(stats("?id=ALL"), StatsQuery::Prefix(String::new()));
        assert_eq!(stats("?id=news_*"), StatsQuery::Prefix("news_".into()));
        assert_eq!(
            stats("?id=a/b"),
            StatsQuery::Channels(vec!["a".into(), "b".into()])
        );
        assert_eq!(get("/status", "").unwrap(), CompatRoute::Crier);
    }

    #[test]
    fn subscriptions_resume_the_push_stream_way() {
        let sub = |path: &str, headers: &str| match get(path, headers).unwrap() {
            CompatRoute::Subscribe(s, SubDialect::PushStream(p)) => (s, p),
            other => panic!("{other:?}"),
        };
        let (s, p) = sub("/ev/a", "Last-Event-ID: evt 2\r\n");
        assert_eq!(
            (s.resume, p.event_id.as_deref()),
            (Resume::Live, Some("evt 2"))
        );
        let (s, _) = sub(
            "/lp/a",
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:10 GMT\r\nIf-None-Match: W/1700000000000000001\r\n",
        );
        assert_eq!(s.resume, Resume::AfterSeq(1_700_000_000_000_000_001));
        let (s, _) = sub("/lp/a?time=Thu,+01+Jan+1970+00:00:10+GMT&tag=0", "");
        assert_eq!(s.resume, Resume::SinceMs(10_000));
        let (s, _) = sub(
            "/lp/a",
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:10 GMT\r\n",
        );
        assert_eq!(s.resume, Resume::SinceMs(11_000));
        let (s, p) = sub("/sub/a?callback=cb", "X-Nginx-PushStream-Mode: polling\r\n");
        assert_eq!(
            (s.transport, p.polling, p.callback.as_deref()),
            (SubTransport::LongPoll, true, Some("cb"))
        );
        let (s, p) = sub("/ws/a", "X-Nginx-PushStream-Mode: polling\r\n");
        assert_eq!((s.transport, p.polling), (SubTransport::WebSocket, false));
    }
}
