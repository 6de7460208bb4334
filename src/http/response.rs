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
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Options shared by every response of a server.
#[derive(Debug, Clone)]
pub struct ResponseOptions {
    /// `Access-Control-Allow-Origin` value; empty = not sent.
    pub allow_origin: String,
}

impl ResponseOptions {
    fn cors(&self, head: &mut String) {
        if !self.allow_origin.is_empty() {
            let _ = write!(
                head,
                "Access-Control-Allow-Origin: {}\r\n",
                self.allow_origin
            );
        }
    }
}

/// A complete response with a body. `extra_headers` are full lines
/// without the trailing CRLF.
pub fn full(
    opts: &ResponseOptions,
    status: u16,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
    extra_headers: &[&str],
) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    if !content_type.is_empty() {
        let _ = write!(head, "Content-Type: {content_type}\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n", body.len());
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
    head.push_str("Cache-Control: no-cache\r\n");
    opts.cors(&mut head);
    for h in extra_headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A JSON response.
pub fn json(
    opts: &ResponseOptions,
    status: u16,
    body: &serde_json::Value,
    keep_alive: bool,
) -> Vec<u8> {
    json_with_headers(opts, status, body, keep_alive, &[])
}

fn json_with_headers(
    opts: &ResponseOptions,
    status: u16,
    body: &serde_json::Value,
    keep_alive: bool,
    extra_headers: &[&str],
) -> Vec<u8> {
    let mut text = body.to_string();
    text.push('\n');
    full(
        opts,
        status,
        "application/json",
        text.as_bytes(),
        keep_alive,
        extra_headers,
    )
}

/// An error response with a JSON body.
pub fn error(
    opts: &ResponseOptions,
    status: u16,
    message: &str,
    keep_alive: bool,
    extra_headers: &[&str],
) -> Vec<u8> {
    let body = serde_json::json!({ "error": message, "status": status });
    json_with_headers(opts, status, &body, keep_alive, extra_headers)
}

/// The head of an EventSource response; events follow until close.
pub fn event_stream_head(opts: &ResponseOptions) -> Vec<u8> {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\
         Cache-Control: no-cache\r\nConnection: keep-alive\r\nX-Accel-Buffering: no\r\n",
    );
    opts.cors(&mut head);
    head.push_str("\r\n");
    head.into_bytes()
}

/// The head of a raw `/sub` stream: chunked for HTTP/1.1, close-delimited
/// for HTTP/1.0 clients (which do not understand chunks).
pub fn stream_head(opts: &ResponseOptions, content_type: &str, chunked: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    if chunked {
        head.push_str("Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n");
    } else {
        head.push_str("Connection: close\r\n");
    }
    opts.cors(&mut head);
    head.push_str("\r\n");
    head.into_bytes()
}

/// The answer to a CORS preflight (`OPTIONS`), so browser pages on other
/// origins may publish with custom headers such as `Event-Type`.
pub fn preflight(opts: &ResponseOptions, keep_alive: bool) -> Vec<u8> {
    full(
        opts,
        204,
        "",
        b"",
        keep_alive,
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
        let opts = ResponseOptions {
            allow_origin: "*".into(),
        };
        let r = String::from_utf8(error(&opts, 404, "no such channel", false, &[])).unwrap();
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(r.contains("Access-Control-Allow-Origin: *\r\n"));
        assert!(r.contains("Connection: close\r\n"));
        let body = r.split("\r\n\r\n").nth(1).unwrap();
        assert!(r.contains(&format!("Content-Length: {}\r\n", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], 404);
    }
}
