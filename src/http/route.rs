//! Maps a request head to what crier should do with it (pure): the
//! operation, its channels, and for a subscription where it resumes.

use crate::http::query::query_param;
use crate::http::request::{Method, RequestHead};
use crate::pubsub::channel::{valid_channel_id, ChannelRequest, Resume};
use crate::web::Page;

/// How a subscriber wants its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubTransport {
    /// `/ev/…`: EventSource.
    EventSource,
    /// `/sub/…`: raw chunked stream.
    Stream,
    /// `/ws/…`: WebSocket.
    WebSocket,
    /// `/lp/…`: long-poll.
    LongPoll,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// POST/PUT `/pub?id=a/b`: publish the body to these channels.
    Publish(Vec<String>),
    /// GET `/pub?id=CH`: the channel's figures.
    ChannelInfo(String),
    /// DELETE `/pub?id=CH`.
    DeleteChannel(String),
    /// OPTIONS on any known path: CORS preflight.
    Preflight,
    /// A subscription.
    Subscribe(Subscription),
    /// `/status` or `/status?id=CH`.
    Status(Option<String>),
    /// `/metrics`.
    Metrics,
    /// `GET /ev/$status`: `/status` as an EventSource stream, once a second.
    StatusStream,
    /// A file crier serves (`/crier.js`, `/demo`, `/dashboard`).
    Page(Page),
}

/// The internal channel `$status` figures are published on: `$` is outside
/// the channel-id alphabet, so no client can publish there.
pub const STATUS_CHANNEL: &str = "$status";

/// A subscribe request, fully parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub transport: SubTransport,
    /// Distinct channels in path order, each with its `.bN` backtrack.
    pub channels: Vec<ChannelRequest>,
    /// Where it starts: `Last-Event-ID` (header, then `last_event_id`
    /// query, then `If-None-Match`), else `since=`, else live.
    pub resume: Resume,
    /// `?format=json`: messages as JSON envelopes carrying their ids.
    pub json: bool,
    /// The resume id as given when it is not a plain number (a composite
    /// id of a sharded backplane; `resume` is then `AfterSeq(0)`).
    pub resume_text: Option<String>,
}

/// Why a request cannot be routed: an HTTP status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub status: u16,
    pub message: String,
    /// For 405: the `Allow` header value.
    pub allow: Option<&'static str>,
    /// Which size limit was passed, if that is why.
    pub limit: Option<RouteLimit>,
}

/// The size limits routing enforces (counted apart in `/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteLimit {
    /// More channels than `max-channels-per-subscription`.
    Channels,
    /// A channel id longer than `max-channel-id`.
    ChannelId,
}

/// The configured limits of one request's channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteLimits {
    /// Most channels one request may name.
    pub max_channels: usize,
    /// Longest channel id, in bytes (at most 128).
    pub max_channel_id: usize,
}

impl RouteError {
    pub fn new(status: u16, message: impl Into<String>) -> RouteError {
        RouteError {
            status,
            message: message.into(),
            allow: None,
            limit: None,
        }
    }

    pub fn method(allow: &'static str) -> RouteError {
        RouteError {
            status: 405,
            message: format!("method not allowed; use {allow}"),
            allow: Some(allow),
            limit: None,
        }
    }

    fn too_many(max: usize) -> RouteError {
        RouteError {
            limit: Some(RouteLimit::Channels),
            ..RouteError::new(400, format!("too many channels (at most {max})"))
        }
    }
}

impl RouteLimits {
    /// Checks one channel id against the id rule and the length limit.
    pub fn check(&self, id: &str) -> Result<(), RouteError> {
        if id.len() > self.max_channel_id {
            return Err(RouteError {
                limit: Some(RouteLimit::ChannelId),
                ..RouteError::new(
                    400,
                    format!(
                        "channel id too long (at most {} bytes)",
                        self.max_channel_id
                    ),
                )
            });
        }
        if !valid_channel_id(id) {
            let shown: String = id.chars().take(64).collect();
            return Err(RouteError::new(
                400,
                format!(
                    "invalid channel id {shown:?}: use 1-128 characters of A-Z a-z 0-9 _ . : @ -"
                ),
            ));
        }
        Ok(())
    }

    pub fn channel_list(&self, raw: &str) -> Result<Vec<String>, RouteError> {
        let mut ids: Vec<String> = Vec::new();
        // `a/a` names one channel: a message is stored and counted once.
        for id in raw.split('/') {
            if !ids.iter().any(|seen| seen == id) {
                if ids.len() == self.max_channels {
                    return Err(RouteError::too_many(self.max_channels));
                }
                ids.push(id.to_string());
            }
        }
        for id in &ids {
            self.check(id)?;
        }
        Ok(ids)
    }
}

/// Splits `news.b5` into (`news`, 5); other names have no backtrack.
fn parse_backtrack(segment: &str) -> (&str, usize) {
    if let Some(dot) = segment.rfind(".b") {
        let digits = &segment[dot + 2..];
        if !digits.is_empty() && digits.len() <= 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return (&segment[..dot], digits.parse().unwrap_or(0));
        }
    }
    (segment, 0)
}

/// Routes a request within `limits`.
pub fn route(head: &RequestHead, limits: &RouteLimits) -> Result<Route, RouteError> {
    let path = head.path;
    if head.method == Method::Options {
        return match path {
            "/pub" | "/status" | "/metrics" => Ok(Route::Preflight),
            p if subscribe_prefix(p).is_some() || Page::at(p).is_some() => Ok(Route::Preflight),
            _ => Err(RouteError::new(404, "not found")),
        };
    }
    if head.method == Method::Head {
        // HEAD is GET without the body (the reactor drops it); it makes no
        // sense on subscribe paths, which never end.
        let mut as_get = head.clone();
        as_get.method = Method::Get;
        return match route(&as_get, limits)? {
            Route::Subscribe { .. } | Route::StatusStream => {
                Err(RouteError::method("GET, OPTIONS"))
            }
            r => Ok(r),
        };
    }
    if path == "/pub" {
        let raw = query_param(head.query, "id")
            .ok_or_else(|| RouteError::new(400, "missing channel: use /pub?id=CHANNEL"))?;
        return match head.method {
            Method::Post | Method::Put => Ok(Route::Publish(limits.channel_list(&raw)?)),
            Method::Get | Method::Delete => {
                limits.check(&raw)?;
                Ok(if head.method == Method::Get {
                    Route::ChannelInfo(raw)
                } else {
                    Route::DeleteChannel(raw)
                })
            }
            _ => Err(RouteError::method("GET, POST, PUT, DELETE, OPTIONS")),
        };
    }
    if path == "/status" || path == "/metrics" {
        if head.method != Method::Get {
            return Err(RouteError::method("GET, OPTIONS"));
        }
        if path == "/metrics" {
            return Ok(Route::Metrics);
        }
        return match query_param(head.query, "id") {
            Some(id) => {
                limits.check(&id)?;
                Ok(Route::Status(Some(id)))
            }
            None => Ok(Route::Status(None)),
        };
    }
    if let Some(page) = Page::at(path) {
        return match head.method {
            Method::Get => Ok(Route::Page(page)),
            _ => Err(RouteError::method("GET, HEAD, OPTIONS")),
        };
    }
    if path == "/ev/$status" || path == "/ev/%24status" {
        return match head.method {
            Method::Get => Ok(Route::StatusStream),
            _ => Err(RouteError::method("GET, OPTIONS")),
        };
    }
    if let Some((transport, rest)) = subscribe_prefix(path) {
        if head.method != Method::Get {
            return Err(RouteError::method("GET, OPTIONS"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(RouteError::new(400, "missing channel in path"));
        }
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.len() > limits.max_channels {
            return Err(RouteError::too_many(limits.max_channels));
        }
        let mut channels: Vec<ChannelRequest> = Vec::with_capacity(segments.len());
        for seg in segments {
            let (name, backtrack) = parse_backtrack(seg);
            limits.check(name)?;
            if !channels.iter().any(|c| c.name == name) {
                channels.push(ChannelRequest {
                    name: name.to_string(),
                    backtrack,
                });
            }
        }
        return Ok(Route::Subscribe(Subscription {
            transport,
            channels,
            resume: resume_point(head),
            json: query_param(head.query, "format").is_some_and(|f| f == "json"),
            resume_text: resume_id(head).filter(|id| id.trim().parse::<u64>().is_err()),
        }));
    }
    Err(RouteError::new(404, "not found"))
}

/// The id a subscriber resumes after: `Last-Event-ID`, then the
/// `last_event_id` query, then `If-None-Match`.
fn resume_id(head: &RequestHead<'_>) -> Option<String> {
    let etag = head.headers.if_none_match.as_deref().map(|v| {
        v.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    });
    head.headers
        .last_event_id
        .as_deref()
        .map(str::to_string)
        .or_else(|| query_param(head.query, "last_event_id"))
        .or(etag)
}

/// Where a new subscriber starts. An id that is not a number is treated as
/// very old: the client gets the whole history and a "missed" signal.
fn resume_point(head: &RequestHead<'_>) -> Resume {
    if let Some(id) = resume_id(head) {
        return Resume::AfterSeq(id.trim().parse().unwrap_or(0));
    }
    if let Some(since) = query_param(head.query, "since") {
        if let Ok(secs) = since.trim().parse::<u64>() {
            return Resume::SinceMs(secs.saturating_mul(1000));
        }
    }
    Resume::Live
}

fn subscribe_prefix(path: &str) -> Option<(SubTransport, &str)> {
    [
        ("/ev/", SubTransport::EventSource),
        ("/sub/", SubTransport::Stream),
        ("/ws/", SubTransport::WebSocket),
        ("/lp/", SubTransport::LongPoll),
    ]
    .into_iter()
    .find_map(|(prefix, t)| path.strip_prefix(prefix).map(|rest| (t, rest)))
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

    fn route_of(req: &str) -> Result<Route, RouteError> {
        let (head, _) = parse_head(req.as_bytes(), &LIMITS).unwrap().unwrap();
        route(&head, &ROUTE_LIMITS)
    }

    const ROUTE_LIMITS: RouteLimits = RouteLimits {
        max_channels: 16,
        max_channel_id: 128,
    };

    fn get(path: &str) -> Result<Route, RouteError> {
        route_of(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
    }

    fn subscription(r: Result<Route, RouteError>) -> Subscription {
        match r {
            Ok(Route::Subscribe(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    fn req(name: &str, backtrack: usize) -> ChannelRequest {
        ChannelRequest {
            name: name.into(),
            backtrack,
        }
    }

    #[test]
    fn subscribe_paths_with_backtrack() {
        let s = subscription(get("/ev/news.b5/sport/news"));
        assert_eq!(s.transport, SubTransport::EventSource);
        assert_eq!(s.channels, vec![req("news", 5), req("sport", 0)]);
        assert_eq!((s.resume, s.json), (Resume::Live, false));
        assert_eq!(
            subscription(get("/lp/x.b0.b12")).channels,
            vec![req("x.b0", 12)]
        );
        // Not a backtrack: a channel literally named so.
        assert_eq!(
            subscription(get("/sub/v1.beta")).channels,
            vec![req("v1.beta", 0)]
        );
        assert_eq!(get("/ev/").unwrap_err().status, 400);
        assert_eq!(get("/ev/bad%20id").unwrap_err().status, 400);
        assert_eq!(get("/nope").unwrap_err().status, 404);
        let many: Vec<String> = (0..17).map(|i| format!("c{i}")).collect();
        assert_eq!(
            get(&format!("/ev/{}", many.join("/"))).unwrap_err().status,
            400
        );
    }

    #[test]
    fn resume_points_in_order_of_precedence() {
        let resume = |req: &str| subscription(route_of(req)).resume;
        assert_eq!(
            resume("GET /ev/a?last_event_id=5&since=9 HTTP/1.1\r\nLast-Event-ID: 7\r\n\r\n"),
            Resume::AfterSeq(7)
        );
        assert_eq!(
            resume("GET /ev/a?last_event_id=5&since=9 HTTP/1.1\r\n\r\n"),
            Resume::AfterSeq(5)
        );
        assert_eq!(
            resume("GET /lp/a HTTP/1.1\r\nIf-None-Match: W/\"12\"\r\n\r\n"),
            Resume::AfterSeq(12)
        );
        assert_eq!(
            resume("GET /ev/a?since=9 HTTP/1.1\r\n\r\n"),
            Resume::SinceMs(9000)
        );
        assert_eq!(
            resume("GET /ev/a?since=soon HTTP/1.1\r\n\r\n"),
            Resume::Live
        );
        // An id we cannot read resumes from the very beginning.
        assert_eq!(
            resume("GET /ev/a HTTP/1.1\r\nLast-Event-ID: abc\r\n\r\n"),
            Resume::AfterSeq(0)
        );
        assert!(subscription(get("/ws/a?format=json")).json);
        assert!(!subscription(get("/ws/a?format=xml")).json);
    }

    #[test]
    fn publish_and_methods() {
        let r = route_of("POST /pub?id=a/b/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.unwrap(), Route::Publish(vec!["a".into(), "b".into()]));
        let r = route_of("PATCH /pub?id=a HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!((r.status, r.allow.is_some()), (405, true));
        let r = route_of("POST /pub HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.unwrap_err().status, 400);
        let r = route_of("POST /ev/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.unwrap_err().status, 405);
        assert_eq!(
            route_of("DELETE /pub?id=c HTTP/1.1\r\n\r\n").unwrap(),
            Route::DeleteChannel("c".into())
        );
        assert_eq!(
            route_of("HEAD /pub?id=c HTTP/1.1\r\n\r\n").unwrap(),
            Route::ChannelInfo("c".into())
        );
        assert_eq!(
            route_of("HEAD /ev/c HTTP/1.1\r\n\r\n").unwrap_err().status,
            405
        );
        assert_eq!(
            route_of("OPTIONS /ev/c HTTP/1.1\r\n\r\n").unwrap(),
            Route::Preflight
        );
        assert_eq!(
            get("/status?id=c").unwrap(),
            Route::Status(Some("c".into()))
        );
        assert_eq!(get("/status?id=c/d").unwrap_err().status, 400);
        assert_eq!(get("/metrics").unwrap(), Route::Metrics);
        assert_eq!(get("/ev/$status").unwrap(), Route::StatusStream);
        assert_eq!(get("/sub/$status").unwrap_err().status, 400);
        assert_eq!(get("/demo").unwrap(), Route::Page(Page::Demo));
        assert_eq!(
            route_of("HEAD /crier.js HTTP/1.1\r\n\r\n").unwrap(),
            Route::Page(Page::CrierJs)
        );
        assert_eq!(
            route_of("POST /dashboard HTTP/1.1\r\n\r\n")
                .unwrap_err()
                .status,
            405
        );
    }
}
