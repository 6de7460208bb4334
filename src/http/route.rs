//! Maps a request head to what crier should do with it (pure).

use crate::http::request::{query_param, Method, RequestHead};
use crate::pubsub::hub::ChannelRequest;

/// Longest channel id, in bytes.
pub const MAX_CHANNEL_ID: usize = 128;

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
    Subscribe {
        transport: SubTransport,
        channels: Vec<ChannelRequestSpec>,
    },
    /// `/status` or `/status?id=CH`.
    Status(Option<String>),
    /// `/metrics`.
    Metrics,
}

/// A channel of a subscribe path, as requested (`news` or `news.b5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRequestSpec {
    pub name: String,
    pub backtrack: usize,
}

impl From<&ChannelRequestSpec> for ChannelRequest {
    fn from(s: &ChannelRequestSpec) -> ChannelRequest {
        ChannelRequest {
            name: s.name.clone(),
            backtrack: s.backtrack,
        }
    }
}

/// Why a request cannot be routed: an HTTP status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub status: u16,
    pub message: String,
    /// For 405: the `Allow` header value.
    pub allow: Option<&'static str>,
}

impl RouteError {
    fn new(status: u16, message: impl Into<String>) -> RouteError {
        RouteError {
            status,
            message: message.into(),
            allow: None,
        }
    }

    fn method(allow: &'static str) -> RouteError {
        RouteError {
            status: 405,
            message: format!("method not allowed; use {allow}"),
            allow: Some(allow),
        }
    }
}

/// Channel ids: 1–128 bytes of `[A-Za-z0-9_.:@-]`.
pub fn valid_channel_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CHANNEL_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-'))
}

fn channel_list(raw: &str, max: usize) -> Result<Vec<String>, RouteError> {
    let mut ids: Vec<String> = Vec::new();
    // `a/a` names one channel: a message is stored and counted once.
    for id in raw.split('/') {
        if !ids.iter().any(|seen| seen == id) {
            ids.push(id.to_string());
        }
    }
    if ids.len() > max {
        return Err(RouteError::new(
            400,
            format!("too many channels (at most {max})"),
        ));
    }
    for id in &ids {
        if !valid_channel_id(id) {
            return Err(bad_channel(id));
        }
    }
    Ok(ids)
}

fn bad_channel(id: &str) -> RouteError {
    let shown: String = id.chars().take(64).collect();
    RouteError::new(
        400,
        format!("invalid channel id {shown:?}: use 1-128 characters of A-Z a-z 0-9 _ . : @ -"),
    )
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

/// Routes a request. `max_channels` bounds how many channels one request
/// may name.
pub fn route(head: &RequestHead, max_channels: usize) -> Result<Route, RouteError> {
    let path = head.path.as_str();
    if head.method == Method::Options {
        return match path {
            "/pub" | "/status" | "/metrics" => Ok(Route::Preflight),
            p if subscribe_prefix(p).is_some() => Ok(Route::Preflight),
            _ => Err(RouteError::new(404, "not found")),
        };
    }
    if head.method == Method::Head {
        // HEAD is GET without the body (the reactor drops it); it makes no
        // sense on subscribe paths, which never end.
        let mut as_get = head.clone();
        as_get.method = Method::Get;
        return match route(&as_get, max_channels)? {
            Route::Subscribe { .. } => Err(RouteError::method("GET, OPTIONS")),
            r => Ok(r),
        };
    }
    if path == "/pub" {
        let raw = query_param(&head.query, "id")
            .ok_or_else(|| RouteError::new(400, "missing channel: use /pub?id=CHANNEL"))?;
        return match head.method {
            Method::Post | Method::Put => Ok(Route::Publish(channel_list(&raw, max_channels)?)),
            Method::Get | Method::Delete => {
                if !valid_channel_id(&raw) {
                    return Err(bad_channel(&raw));
                }
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
        return match query_param(&head.query, "id") {
            Some(id) if !valid_channel_id(&id) => Err(bad_channel(&id)),
            id => Ok(Route::Status(id)),
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
        if segments.len() > max_channels {
            return Err(RouteError::new(
                400,
                format!("too many channels (at most {max_channels})"),
            ));
        }
        let mut channels: Vec<ChannelRequestSpec> = Vec::with_capacity(segments.len());
        for seg in segments {
            let (name, backtrack) = parse_backtrack(seg);
            if !valid_channel_id(name) {
                return Err(bad_channel(name));
            }
            if !channels.iter().any(|c| c.name == name) {
                channels.push(ChannelRequestSpec {
                    name: name.to_string(),
                    backtrack,
                });
            }
        }
        return Ok(Route::Subscribe {
            transport,
            channels,
        });
    }
    Err(RouteError::new(404, "not found"))
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

    fn head(req: &str) -> RequestHead {
        let limits = Limits {
            max_header_bytes: 8192,
            max_headers: 64,
            max_body_bytes: 1 << 20,
        };
        parse_head(req.as_bytes(), &limits).unwrap().unwrap().0
    }

    fn get(path: &str) -> Result<Route, RouteError> {
        route(
            &head(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")),
            16,
        )
    }

    #[test]
    fn channel_ids() {
        assert!(valid_channel_id("a-b_c.d:e@f9"));
        assert!(!valid_channel_id(""));
        assert!(!valid_channel_id("a b"));
        assert!(!valid_channel_id(&"x".repeat(129)));
        assert!(valid_channel_id(&"x".repeat(128)));
    }

    #[test]
    fn subscribe_paths_with_backtrack() {
        let r = get("/ev/news.b5/sport").unwrap();
        assert_eq!(
            r,
            Route::Subscribe {
                transport: SubTransport::EventSource,
                channels: vec![
                    ChannelRequestSpec {
                        name: "news".into(),
                        backtrack: 5
                    },
                    ChannelRequestSpec {
                        name: "sport".into(),
                        backtrack: 0
                    },
                ]
            }
        );
        assert_eq!(get("/ev/").unwrap_err().status, 400);
        assert_eq!(get("/ev/bad%20id").unwrap_err().status, 400);
        assert_eq!(get("/nope").unwrap_err().status, 404);
    }

    #[test]
    fn publish_and_methods() {
        let r = route(
            &head("POST /pub?id=a/b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            16,
        );
        assert_eq!(r.unwrap(), Route::Publish(vec!["a".into(), "b".into()]));
        let r = route(&head("PATCH /pub?id=a HTTP/1.1\r\n\r\n"), 16);
        assert_eq!(r.unwrap_err().status, 405);
        let r = route(&head("POST /pub HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 16);
        assert_eq!(r.unwrap_err().status, 400);
        let r = route(
            &head("POST /ev/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            16,
        );
        assert_eq!(r.unwrap_err().status, 405);
    }
}
