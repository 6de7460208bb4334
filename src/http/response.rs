//! HTTP response heads and small bodies, as bytes ready to queue.
//!
//! Errors are always a JSON body `{"error": "...", "status": N}` so clients
//! and operators can tell what went wrong without reading server logs.

use std::fmt::Write as _;

/// Reason phrase for the statuses crier sends.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Content Too Large",
        414 => "URI Too Long",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The CORS headers of one response, decided from the request's `Origin`
/// and the configured origins (`auth::origin`). Owned, because some answers
/// (a long-poll, a publish whose body was slow) are written after the
/// request's bytes are gone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cors {
    /// `Access-Control-Allow-Origin` value: `*` or the request's origin.
    allow_origin: Option<Box<str>>,
    /// The answer depends on `Origin` (an origin list is configured), so
    /// shared caches must key on it.
    vary: bool,
}

impl Cors {
    /// `Access-Control-Allow-Origin: *`.
    pub fn any() -> Cors {
        Cors {
            allow_origin: Some("*".into()),
            vary: false,
        }
    }

    /// The request's own origin, which is on the configured list.
    pub fn echo(origin: &str) -> Cors {
        Cors {
            allow_origin: Some(origin.into()),
            vary: true,
        }
    }

    /// No CORS grant (origin missing or not listed), but the answer still
    /// varies with `Origin`.
    pub fn refused() -> Cors {
        Cors {
            allow_origin: None,
            vary: true,
        }
    }

    fn write(&self, head: &mut String) {
        if let Some(origin) = &self.allow_origin {
            // An origin with CR or LF would split the header; the request
            // parser never lets one through, but the bytes go on the wire.
            if !origin.contains(['\r', '\n']) {
                let _ = write!(head, "Access-Control-Allow-Origin: {origin}\r\n");
            }
        }
        if self.vary {
            head.push_str("Vary: Origin\r\n");
        }
    }
}

/// What the request allows its response to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyMode {
    /// The connection stays open for another request after this response.
    pub keep_alive: bool,
    /// The request was `HEAD`: send the head only, with the `Content-Length`
    /// the body would have had (RFC 9110 §9.3.2).
    pub head_only: bool,
}

impl ReplyMode {
    /// A full response on a connection that closes after it.
    pub const CLOSE: ReplyMode = ReplyMode {
        keep_alive: false,
        head_only: false,
    };

    /// A full response; the connection stays open if `keep_alive`.
    pub fn keep_alive(keep_alive: bool) -> ReplyMode {
        ReplyMode {
            keep_alive,
            head_only: false,
        }
    }
}

/// A complete response with a body. `extra_headers` are full lines
/// without the trailing CRLF.
pub fn full(
    cors: &Cors,
    status: u16,
    content_type: &str,
    body: &[u8],
    mode: ReplyMode,
    extra_headers: &[&str],
) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    if !content_type.is_empty() {
        let _ = write!(head, "Content-Type: {content_type}\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n", body.len());
    head.push_str(if mode.keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
    head.push_str("Cache-Control: no-cache\r\n");
    cors.write(&mut head);
    for h in extra_headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !mode.head_only {
        out.extend_from_slice(body);
    }
    out
}

/// A JSON response.
pub fn json(
    cors: &Cors,
    status: u16,
    body: &serde_json::Value,
    mode: ReplyMode,
    extra_headers: &[&str],
) -> Vec<u8> {
    let mut text = body.to_string();
    text.push('\n');
    full(
        cors,
        status,
        "application/json",
        text.as_bytes(),
        mode,
        extra_headers,
    )
}

/// An error response with a JSON body.
pub fn error(
    cors: &Cors,
    status: u16,
    message: &str,
    mode: ReplyMode,
    extra_headers: &[&str],
) -> Vec<u8> {
    let body = serde_json::json!({ "error": message, "status": status });
    json(cors, status, &body, mode, extra_headers)
}

/// The head of an EventSource response; events follow until close.
pub fn event_stream_head(cors: &Cors) -> Vec<u8> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
         Cache-Control: no-cache\r\nConnection: keep-alive\r\nX-Accel-Buffering: no\r\n",
    );
    cors.write(&mut head);
    head.push_str("\r\n");
    head.into_bytes()
}

/// The head of a raw `/sub` stream: chunked for HTTP/1.1, close-delimited
/// for HTTP/1.0 clients (which do not understand chunks).
pub fn stream_head(cors: &Cors, content_type: &str, chunked: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n");
    } else {
        head.push_str("Connection: close\r\n");
    }
    cors.write(&mut head);
    head.push_str("\r\n");
    head.into_bytes()
}

/// The answer to a CORS preflight (`OPTIONS`), so browser pages on other
/// origins may publish with custom headers such as `Event-Type`.
pub fn preflight(cors: &Cors, mode: ReplyMode) -> Vec<u8> {
    full(
        cors,
        204,
        "",
        b"",
        mode,
        &[
            "Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS",
            "Access-Control-Allow-Headers: Content-Type, Event-Type, Last-Event-ID, Authorization",
            "Access-Control-Max-Age: 86400",
        ],
    )
}

/// `100 Continue`, sent when a publisher waits for permission to send a body.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_json_with_length() {
        let r = String::from_utf8(error(
            &Cors::any(),
            404,
            "no such channel",
            ReplyMode::CLOSE,
            &[],
        ))
        .unwrap();
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(r.contains("Access-Control-Allow-Origin: *\r\n"));
        assert!(r.contains("Connection: close\r\n"));
        let body = r.split("\r\n\r\n").nth(1).unwrap();
        assert!(r.contains(&format!("Content-Length: {}\r\n", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], 404);
    }

    #[test]
    fn head_only_keeps_the_length_and_drops_the_body() {
        let opts = Cors::default();
        let mode = ReplyMode {
            keep_alive: true,
            head_only: true,
        };
        let r = String::from_utf8(full(&opts, 200, "text/plain", b"hello", mode, &[])).unwrap();
        assert!(r.ends_with("\r\n\r\n"), "{r:?}");
        assert!(r.contains("Content-Length: 5\r\n"));
        assert!(r.contains("Connection: keep-alive\r\n"));
        assert!(!r.contains("Access-Control-Allow-Origin"));
    }
}
