//! HTTP/1.x request-head parser.
//!
//! Pure: bytes in, a [`RequestHead`] out. The reactor owns the socket and the
//! buffer; this module only decides whether the buffer holds a complete,
//! acceptable head, and how the body that follows it is framed. It never
//! panics on network input and every rejection maps to one HTTP status
//! through [`HttpError::status`].
//!
//! Framing rules are strict on purpose (request-smuggling defence): a request
//! that two servers could frame differently is refused rather than guessed at.

use std::fmt;

/// Size limits for one request, so a client cannot make the server buffer
/// an unbounded amount of memory before it is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line + headers + blank line), in bytes.
    pub max_header_bytes: usize,
    /// Largest number of header fields in a head.
    pub max_headers: usize,
    /// Largest decoded body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    /// Conservative defaults that suit a publish/subscribe edge: small heads,
    /// message-sized bodies.
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Request method; only the ones crier routes on get their own variant, so
/// the router can `match` without string compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET` — subscribe.
    Get,
    /// `HEAD`.
    Head,
    /// `POST` — publish.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE` — drop a channel.
    Delete,
    /// `OPTIONS` — CORS preflight.
    Options,
    /// Any other syntactically valid method (answered with 405 by the router).
    Other,
}

impl Method {
    /// Maps the method token (case-sensitive, as RFC 9110 says) to a variant.
    fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// How the body after the head is framed; tells the reactor which
/// [`crate::http::chunked::BodyReader`] to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: the next byte starts the next request.
    None,
    /// `Content-Length: n` body (n is already checked against the limit).
    Length(usize),
    /// `Transfer-Encoding: chunked` body.
    Chunked,
}

/// The header fields crier looks at, pre-extracted so handlers never scan the
/// raw header list. Values are trimmed; `None` when absent. Invalid UTF-8 is
/// replaced (lossy) so a stray byte never fails the request.
///
/// List-valued fields (`Connection`, `Sec-WebSocket-Protocol`,
/// `Sec-WebSocket-Extensions`, `If-None-Match`) that appear several times are
/// joined with `", "`, as RFC 9110 §5.3 allows; for the others the first
/// occurrence wins (except `Host`, whose repetition is an error).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Headers {
    /// `Host`.
    pub host: Option<String>,
    /// `Content-Type` of a published message.
    pub content_type: Option<String>,
    /// `Event-Type`: SSE event name a publisher attaches to a message.
    pub event_type: Option<String>,
    /// `Last-Event-ID`: where an EventSource resumes.
    pub last_event_id: Option<String>,
    /// `Origin`, for CORS and WebSocket origin checks.
    pub origin: Option<String>,
    /// `Upgrade`, e.g. `websocket`.
    pub upgrade: Option<String>,
    /// `Connection`, raw (tokens are interpreted into `keep_alive` / `wants_upgrade`).
    pub connection: Option<String>,
    /// `Sec-WebSocket-Key`.
    pub sec_websocket_key: Option<String>,
    /// `Sec-WebSocket-Version`.
    pub sec_websocket_version: Option<String>,
    /// `Sec-WebSocket-Protocol`.
    pub sec_websocket_protocol: Option<String>,
    /// `Sec-WebSocket-Extensions` (permessage-deflate negotiation).
    pub sec_websocket_extensions: Option<String>,
    /// `If-None-Match`: long-poll resume position.
    pub if_none_match: Option<String>,
    /// `Authorization`, for publisher authentication.
    pub authorization: Option<String>,
}

/// A parsed, validated request head: everything the router needs, with body
/// framing already decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Request method.
    pub method: Method,
    /// Target path without the query, NOT percent-decoded (the router decides).
    /// Absolute-form targets (`http://host/p`) are reduced to their path.
    pub path: String,
    /// Raw query after `?`, `""` if none; read it with [`query_param`].
    pub query: String,
    /// Minor version of HTTP/1.x (0 or 1).
    pub minor_version: u8,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// `Connection` has the `upgrade` token and `Upgrade` is present.
    pub wants_upgrade: bool,
    /// Body framing.
    pub body: BodyKind,
    /// `Expect: 100-continue` was sent: the reactor should answer `100 Continue`
    /// before reading the body (or reject early).
    pub expect_continue: bool,
    /// Header fields crier uses.
    pub headers: Headers,
}

/// Why a request was rejected; small on purpose so each maps to one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Syntax or framing error (400). The text is short, ASCII, JSON-safe.
    Malformed(&'static str),
    /// Head (or chunked trailer section) over its limit, or too many headers (431).
    HeadersTooLarge,
    /// Body over `max_body_bytes` (413).
    BodyTooLarge,
    /// `Transfer-Encoding` other than exactly `chunked` (501).
    UnsupportedTransferEncoding,
}

impl HttpError {
    /// HTTP status to answer with, so the reactor needs no mapping table.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::HeadersTooLarge => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::UnsupportedTransferEncoding => 501,
        }
    }

    /// Short human text for a JSON error body; ASCII without quotes or
    /// backslashes, so it can be embedded without escaping.
    pub fn reason(&self) -> &'static str {
        match self {
            HttpError::Malformed(why) => why,
            HttpError::HeadersTooLarge => "request header fields too large",
            HttpError::BodyTooLarge => "request body too large",
            HttpError::UnsupportedTransferEncoding => "unsupported transfer-encoding",
        }
    }
}

impl fmt::Display for HttpError {
    /// Status and reason, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.reason())
    }
}

impl std::error::Error for HttpError {}

/// Maps httparse's syntax errors to a 400 (or 431 for too many headers).
fn from_httparse(err: httparse::Error) -> HttpError {
    match err {
        httparse::Error::TooManyHeaders => HttpError::HeadersTooLarge,
        httparse::Error::HeaderName => HttpError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HttpError::Malformed("invalid header value"),
        httparse::Error::NewLine => HttpError::Malformed("invalid line ending"),
        httparse::Error::Status => HttpError::Malformed("invalid status"),
        httparse::Error::Token => HttpError::Malformed("invalid method or token"),
        httparse::Error::Version => HttpError::Malformed("unsupported http version"),
    }
}

/// Parses the request head at the start of `buf`.
///
/// Returns `Ok(None)` when the head is incomplete (read more and call again;
/// nothing is consumed), or `Ok(Some((head, consumed)))` where `consumed`
/// counts every byte through the blank line, including any empty lines
/// before the request line (RFC 9112 §2.2). Bytes after `consumed` are the
/// body or the next pipelined request.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<(RequestHead, usize)>, HttpError> {
    // A head within max_header_bytes cannot hold more than one header per
    // 3 bytes ("a:\n"), so a huge configured max_headers costs nothing.
    let slot_count = limits.max_headers.min(limits.max_header_bytes / 3 + 1);
    let mut slots = vec![httparse::EMPTY_HEADER; slot_count];
    let mut req = httparse::Request::new(&mut slots);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_header_bytes {
                return Err(HttpError::HeadersTooLarge);
            }
            return Ok(None);
        }
        Err(e) => return Err(from_httparse(e)),
    };
    if consumed > limits.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    // httparse guarantees these are set on Complete; be defensive anyway.
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(HttpError::Malformed("incomplete request line"));
    };

    let mut headers = Headers::default();
    let mut content_length: Option<usize> = None;
    let mut transfer_encoding: Option<String> = None;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_content_length(value, limits.max_body_bytes)?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(HttpError::Malformed("conflicting content-length"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            join_list(&mut transfer_encoding, value);
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case("100-continue") {
                expect_continue = true;
            }
        } else if name.eq_ignore_ascii_case("host") {
            if headers.host.is_some() {
                return Err(HttpError::Malformed("duplicate host header"));
            }
            headers.host = Some(value.to_owned());
        } else if let Some(slot) = single_slot(&mut headers, name) {
            if slot.is_none() {
                *slot = Some(value.to_owned());
            }
        } else if let Some(slot) = list_slot(&mut headers, name) {
            join_list(slot, value);
        }
    }

    let body = match (content_length, transfer_encoding) {
        (Some(_), Some(_)) => {
            return Err(HttpError::Malformed(
                "both content-length and transfer-encoding",
            ))
        }
        (None, Some(_)) if minor_version == 0 => {
            return Err(HttpError::Malformed("transfer-encoding in http/1.0"))
        }
        (None, Some(te)) if te.eq_ignore_ascii_case("chunked") => BodyKind::Chunked,
        (None, Some(_)) => return Err(HttpError::UnsupportedTransferEncoding),
        (Some(0), None) | (None, None) => BodyKind::None,
        (Some(n), None) => BodyKind::Length(n),
    };

    let connection = headers.connection.as_deref().unwrap_or("");
    let keep_alive = if minor_version == 0 {
        has_token(connection, "keep-alive") && !has_token(connection, "close")
    } else {
        !has_token(connection, "close")
    };
    let wants_upgrade = has_token(connection, "upgrade")
        && headers.upgrade.as_deref().is_some_and(|u| !u.is_empty());
    let (path, query) = split_target(target);

    let head = RequestHead {
        method: Method::from_token(method),
        path: path.to_owned(),
        query: query.to_owned(),
        minor_version,
        keep_alive,
        wants_upgrade,
        body,
        // RFC 9110 §10.1.1: a server MUST ignore 100-continue from HTTP/1.0.
        expect_continue: expect_continue && minor_version >= 1,
        headers,
    };
    Ok(Some((head, consumed)))
}

/// Single-valued fields: the first occurrence wins.
fn single_slot<'a>(h: &'a mut Headers, name: &str) -> Option<&'a mut Option<String>> {
    let slot = match name.len() {
        6 if name.eq_ignore_ascii_case("origin") => &mut h.origin,
        7 if name.eq_ignore_ascii_case("upgrade") => &mut h.upgrade,
        10 if name.eq_ignore_ascii_case("event-type") => &mut h.event_type,
        12 if name.eq_ignore_ascii_case("content-type") => &mut h.content_type,
        13 if name.eq_ignore_ascii_case("last-event-id") => &mut h.last_event_id,
        13 if name.eq_ignore_ascii_case("authorization") => &mut h.authorization,
        17 if name.eq_ignore_ascii_case("sec-websocket-key") => &mut h.sec_websocket_key,
        21 if name.eq_ignore_ascii_case("sec-websocket-version") => &mut h.sec_websocket_version,
        _ => return None,
    };
    Some(slot)
}

/// List-valued fields: repeated occurrences are joined with ", ".
fn list_slot<'a>(h: &'a mut Headers, name: &str) -> Option<&'a mut Option<String>> {
    let slot = if name.eq_ignore_ascii_case("connection") {
        &mut h.connection
    } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
        &mut h.sec_websocket_protocol
    } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
        &mut h.sec_websocket_extensions
    } else if name.eq_ignore_ascii_case("if-none-match") {
        &mut h.if_none_match
    } else {
        return None;
    };
    Some(slot)
}

/// Appends `value` to a comma-separated list field.
fn join_list(slot: &mut Option<String>, value: &str) {
    match slot {
        Some(existing) => {
            existing.push_str(", ");
            existing.push_str(value);
        }
        None => *slot = Some(value.to_owned()),
    }
}

/// Parses a Content-Length value. A list of identical values (`5, 5`) is
/// accepted as RFC 9112 §6.3 permits; differing values, empty or non-digit
/// values are 400; a value over `max` (including one overflowing `usize`)
/// is 413 right away, before any body byte is read.
fn parse_content_length(value: &str, max: usize) -> Result<usize, HttpError> {
    let mut result: Option<usize> = None;
    for part in value.split(',') {
        let part = part.trim_matches(|c| c == ' ' || c == '\t');
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HttpError::Malformed("invalid content-length"));
        }
        let mut n: usize = 0;
        for b in part.bytes() {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(b - b'0')))
                .ok_or(HttpError::BodyTooLarge)?;
        }
        if result.is_some_and(|prev| prev != n) {
            return Err(HttpError::Malformed("conflicting content-length"));
        }
        result = Some(n);
    }
    let n = result.ok_or(HttpError::Malformed("invalid content-length"))?;
    if n > max {
        return Err(HttpError::BodyTooLarge);
    }
    Ok(n)
}

/// True when the comma-separated `list` contains `token` (case-insensitive).
fn has_token(list: &str, token: &str) -> bool {
    list.split(',').any(|t| {
        t.trim_matches(|c| c == ' ' || c == '\t')
            .eq_ignore_ascii_case(token)
    })
}

/// Splits a request target into (path, query). Absolute-form
/// (`http://host/p?q`, which proxies send) is reduced to its path, with `/`
/// when the authority has none.
fn split_target(target: &str) -> (&str, &str) {
    let mut rest = target;
    for scheme in ["http://", "https://"] {
        if rest.len() >= scheme.len()
            && rest.as_bytes()[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
        {
            let after = &rest[scheme.len()..];
            rest = match after.find(['/', '?']) {
                Some(i) => &after[i..],
                None => "",
            };
            break;
        }
    }
    let (path, query) = match rest.find('?') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if path.is_empty() && target != rest {
        ("/", query)
    } else {
        (path, query)
    }
}

/// Percent-decoded value of the first `name` parameter of a raw query string
/// (`+` is a space), so handlers can read e.g. `?last_id=` without a URL
/// crate. Keys are decoded before comparing. A bare `name` (no `=`) yields
/// `Some("")`. Invalid `%` escapes are kept literally; invalid UTF-8 is
/// replaced (lossy).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
}

/// `application/x-www-form-urlencoded` style decoding.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&b| hex_val(b));
                let lo = bytes.get(i + 2).and_then(|&b| hex_val(b));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Value of one hex digit, either case.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> Limits {
        Limits {
            max_header_bytes: 4096,
            max_headers: 16,
            max_body_bytes: 1000,
        }
    }

    fn parse(s: &str) -> Result<Option<(RequestHead, usize)>, HttpError> {
        parse_head(s.as_bytes(), &lim())
    }

    fn ok(s: &str) -> RequestHead {
        let (head, n) = parse(s).unwrap().expect("complete");
        assert_eq!(n, s.len());
        head
    }

    fn err(s: &str) -> HttpError {
        parse(s).unwrap_err()
    }

    #[test]
    fn simple_get() {
        let h = ok("GET /sub/ch1?last_id=5&x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.path, "/sub/ch1");
        assert_eq!(h.query, "last_id=5&x=1");
        assert_eq!(h.minor_version, 1);
        assert!(h.keep_alive);
        assert!(!h.wants_upgrade);
        assert_eq!(h.body, BodyKind::None);
        assert!(!h.expect_continue);
        assert_eq!(h.headers.host.as_deref(), Some("example.com"));
    }

    #[test]
    fn methods() {
        for (m, want) in [
            ("GET", Method::Get),
            ("HEAD", Method::Head),
            ("POST", Method::Post),
            ("PUT", Method::Put),
            ("DELETE", Method::Delete),
            ("OPTIONS", Method::Options),
            ("PATCH", Method::Other),
            ("get", Method::Other),
        ] {
            assert_eq!(ok(&format!("{m} / HTTP/1.1\r\n\r\n")).method, want);
        }
    }

    #[test]
    fn all_headers_extracted_case_insensitive_and_trimmed() {
        let req = "GET /ws HTTP/1.1\r\n\
            hOsT:  h \r\n\
            Content-Type: text/plain\r\n\
            EVENT-TYPE: news\r\n\
            last-event-id: 42\r\n\
            Origin: https://a.example\r\n\
            Upgrade: websocket\r\n\
            Connection: keep-alive, Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
            Sec-WebSocket-Version: 13\r\n\
            Sec-WebSocket-Protocol: chat\r\n\
            Sec-WebSocket-Protocol: superchat\r\n\
            Sec-WebSocket-Extensions: permessage-deflate\r\n\
            If-None-Match: \"7\"\r\n\
            Authorization: Bearer t\r\n\
            X-Other: ignored\r\n\r\n";
        let h = ok(req);
        let hd = &h.headers;
        assert_eq!(hd.host.as_deref(), Some("h"));
        assert_eq!(hd.content_type.as_deref(), Some("text/plain"));
        assert_eq!(hd.event_type.as_deref(), Some("news"));
        assert_eq!(hd.last_event_id.as_deref(), Some("42"));
        assert_eq!(hd.origin.as_deref(), Some("https://a.example"));
        assert_eq!(hd.upgrade.as_deref(), Some("websocket"));
        assert_eq!(hd.connection.as_deref(), Some("keep-alive, Upgrade"));
        assert_eq!(
            hd.sec_websocket_key.as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        assert_eq!(hd.sec_websocket_version.as_deref(), Some("13"));
        assert_eq!(
            hd.sec_websocket_protocol.as_deref(),
            Some("chat, superchat")
        );
        assert_eq!(
            hd.sec_websocket_extensions.as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(hd.if_none_match.as_deref(), Some("\"7\""));
        assert_eq!(hd.authorization.as_deref(), Some("Bearer t"));
        assert!(h.wants_upgrade);
        assert!(h.keep_alive);
    }

    #[test]
    fn first_single_value_wins() {
        let h = ok("GET / HTTP/1.1\r\nOrigin: a\r\nOrigin: b\r\n\r\n");
        assert_eq!(h.headers.origin.as_deref(), Some("a"));
    }

    #[test]
    fn duplicate_host_rejected() {
        assert_eq!(
            err("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status(),
            400
        );
    }

    #[test]
    fn non_utf8_value_is_lossy() {
        let mut req = b"GET / HTTP/1.1\r\nOrigin: a\xffb\r\n\r\n".to_vec();
        let (h, n) = parse_head(&req, &lim()).unwrap().unwrap();
        assert_eq!(n, req.len());
        assert_eq!(h.headers.origin.as_deref(), Some("a\u{fffd}b"));
        req.truncate(10);
        assert!(parse_head(&req, &lim()).unwrap().is_none());
    }

    #[test]
    fn keep_alive_rules() {
        assert!(ok("GET / HTTP/1.1\r\n\r\n").keep_alive);
        assert!(!ok("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!ok("GET / HTTP/1.1\r\nConnection: foo, CLOSE\r\n\r\n").keep_alive);
        assert!(!ok("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!ok("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
        assert_eq!(ok("GET / HTTP/1.0\r\n\r\n").minor_version, 0);
        // Connection split over two lines is one list.
        assert!(
            !ok("GET / HTTP/1.1\r\nConnection: upgrade\r\nConnection: close\r\n\r\n").keep_alive
        );
    }

    #[test]
    fn upgrade_needs_both_headers() {
        assert!(!ok("GET / HTTP/1.1\r\nConnection: Upgrade\r\n\r\n").wants_upgrade);
        assert!(!ok("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").wants_upgrade);
        assert!(
            !ok("GET / HTTP/1.1\r\nConnection: upgrades\r\nUpgrade: websocket\r\n\r\n")
                .wants_upgrade
        );
        assert!(
            ok("GET / HTTP/1.1\r\nConnection: UPGRADE\r\nUpgrade: websocket\r\n\r\n").wants_upgrade
        );
    }

    #[test]
    fn expect_continue() {
        assert!(
            ok("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                .expect_continue
        );
        assert!(!ok("POST / HTTP/1.1\r\nExpect: other\r\n\r\n").expect_continue);
        assert!(!ok("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
    }

    #[test]
    fn content_length_framing() {
        let h = ok("POST /pub HTTP/1.1\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(h.body, BodyKind::Length(5));
        assert_eq!(
            ok("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").body,
            BodyKind::None
        );
        assert_eq!(
            ok("POST / HTTP/1.1\r\ncontent-length: 007\r\n\r\n").body,
            BodyKind::Length(7)
        );
        // Identical repeats are fine, as a list or as separate fields.
        assert_eq!(
            ok("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n").body,
            BodyKind::Length(5)
        );
        assert_eq!(
            ok("POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n").body,
            BodyKind::Length(1000)
        );
    }

    #[test]
    fn content_length_errors() {
        for bad in ["-1", "+5", "5a", "", "0x10", "5 5", "5,", "1.0"] {
            let e = err(&format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n"));
            assert_eq!(e.status(), 400, "{bad:?} -> {e:?}");
        }
        assert_eq!(
            err("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").status(),
            400
        );
        assert_eq!(
            err("POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n").status(),
            400
        );
        assert_eq!(
            err("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n"),
            HttpError::BodyTooLarge
        );
        assert_eq!(
            err("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999999\r\n\r\n"),
            HttpError::BodyTooLarge
        );
    }

    #[test]
    fn transfer_encoding_rules() {
        assert_eq!(
            ok("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").body,
            BodyKind::Chunked
        );
        assert_eq!(
            ok("POST / HTTP/1.1\r\nTransfer-Encoding:  CHUNKED \r\n\r\n").body,
            BodyKind::Chunked
        );
        for te in [
            "gzip, chunked",
            "chunked, chunked",
            "identity",
            "gzip",
            "chunked;q=1",
        ] {
            assert_eq!(
                err(&format!(
                    "POST / HTTP/1.1\r\nTransfer-Encoding: {te}\r\n\r\n"
                )),
                HttpError::UnsupportedTransferEncoding,
                "{te}"
            );
        }
        // Two fields are one list: not exactly "chunked".
        assert_eq!(
            err("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
                .status(),
            501
        );
        // Smuggling: both framings.
        assert_eq!(
            err("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
                .status(),
            400
        );
        assert_eq!(
            err("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
                .status(),
            400
        );
        // HTTP/1.0 cannot use chunked.
        assert_eq!(
            err("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").status(),
            400
        );
    }

    #[test]
    fn malformed_heads() {
        for bad in [
            "GET / HTTP/2.0\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\n: x\r\n\r\n",
            "GET\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\rX\r\n\r\n",
            "\x00\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
        ] {
            let e = err(bad);
            assert_eq!(e.status(), 400, "{bad:?} -> {e:?}");
            assert!(!e.reason().is_empty());
        }
    }

    #[test]
    fn header_limits() {
        // Incomplete and already over the limit.
        let l = Limits {
            max_header_bytes: 32,
            ..lim()
        };
        let partial = "GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(
            parse_head(partial.as_bytes(), &l).unwrap_err(),
            HttpError::HeadersTooLarge
        );
        // Incomplete but exactly at the limit: keep waiting.
        assert!(parse_head(&partial.as_bytes()[..32], &l).unwrap().is_none());
        // Complete but longer than the limit.
        let full = "GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaa\r\n\r\n";
        assert!(full.len() > 32);
        assert_eq!(
            parse_head(full.as_bytes(), &l).unwrap_err(),
            HttpError::HeadersTooLarge
        );
        // Exactly at the limit is accepted.
        let exact = "GET / HTTP/1.1\r\nX: aaaaaaaaaa\r\n\r\n";
        let l2 = Limits {
            max_header_bytes: exact.len(),
            ..lim()
        };
        assert!(parse_head(exact.as_bytes(), &l2).unwrap().is_some());
        // Too many headers.
        let l3 = Limits {
            max_headers: 2,
            ..lim()
        };
        let three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(parse_head(three.as_bytes(), &l3).unwrap_err().status(), 431);
        let two = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
        assert!(parse_head(two.as_bytes(), &l3).unwrap().is_some());
        // Zero header slots still parse a header-less request.
        let l4 = Limits {
            max_headers: 0,
            ..lim()
        };
        assert!(parse_head(b"GET / HTTP/1.1\r\n\r\n", &l4)
            .unwrap()
            .is_some());
        // An absurd max_headers is bounded by max_header_bytes, not allocated.
        let l5 = Limits {
            max_headers: usize::MAX,
            ..lim()
        };
        let one = b"GET / HTTP/1.1\r\nA: 1\r\n\r\n";
        assert!(parse_head(one, &l5).unwrap().is_some());
    }

    #[test]
    fn every_split_point_is_incomplete_then_complete() {
        let req = "\r\nPOST /pub/a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc";
        let head_len = req.len() - 3;
        for cut in 0..head_len {
            assert!(
                parse(&req[..cut]).unwrap().is_none(),
                "cut at {cut} should be incomplete"
            );
        }
        for cut in head_len..=req.len() {
            let (h, n) = parse(&req[..cut]).unwrap().unwrap();
            assert_eq!(n, head_len);
            assert_eq!(h.body, BodyKind::Length(3));
            assert!(!h.keep_alive);
        }
    }

    #[test]
    fn leading_empty_lines_are_consumed() {
        let (h, n) = parse("\r\n\r\nGET /x HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(n, 4 + "GET /x HTTP/1.1\r\n\r\n".len());
        assert_eq!(h.path, "/x");
        assert!(parse("\r\n").unwrap().is_none());
        assert!(parse("").unwrap().is_none());
    }

    #[test]
    fn pipelined_requests() {
        let buf = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET /c HTTP/1.1\r\n\r\n";
        let (a, n1) = parse(buf).unwrap().unwrap();
        assert_eq!(a.path, "/a");
        assert_eq!(&buf[..n1], "GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
        let rest = &buf[n1..];
        let (b, n2) = parse(rest).unwrap().unwrap();
        assert_eq!(b.path, "/b");
        assert_eq!(b.body, BodyKind::Length(2));
        let rest = &rest[n2..];
        assert!(rest.starts_with("hi"));
        let (c, n3) = parse(&rest[2..]).unwrap().unwrap();
        assert_eq!(c.path, "/c");
        assert_eq!(n3, rest.len() - 2);
    }

    #[test]
    fn targets() {
        assert_eq!(split_target("/a/b"), ("/a/b", ""));
        assert_eq!(split_target("/a?"), ("/a", ""));
        assert_eq!(split_target("/a?x=1?y"), ("/a", "x=1?y"));
        assert_eq!(split_target("/%2F?q"), ("/%2F", "q"));
        assert_eq!(split_target("*"), ("*", ""));
        assert_eq!(split_target("http://h:80/p?q=1"), ("/p", "q=1"));
        assert_eq!(split_target("HTTPS://h"), ("/", ""));
        assert_eq!(split_target("http://h?q"), ("/", "q"));
        let h = ok("OPTIONS * HTTP/1.1\r\n\r\n");
        assert_eq!((h.method, h.path.as_str()), (Method::Options, "*"));
    }

    #[test]
    fn query_params() {
        let q = "a=1&b=hello+world&c=%41%62&d=%zz%4&e&last%5Fid=9&a=2&f=%E2%82%AC&g=";
        assert_eq!(query_param(q, "a").as_deref(), Some("1"));
        assert_eq!(query_param(q, "b").as_deref(), Some("hello world"));
        assert_eq!(query_param(q, "c").as_deref(), Some("Ab"));
        assert_eq!(query_param(q, "d").as_deref(), Some("%zz%4"));
        assert_eq!(query_param(q, "e").as_deref(), Some(""));
        assert_eq!(query_param(q, "last_id").as_deref(), Some("9"));
        assert_eq!(query_param(q, "f").as_deref(), Some("\u{20ac}"));
        assert_eq!(query_param(q, "g").as_deref(), Some(""));
        assert_eq!(query_param(q, "zz"), None);
        assert_eq!(query_param("", "a"), None);
        assert_eq!(query_param("&&", ""), None);
        assert_eq!(query_param("x=%ff", "x").as_deref(), Some("\u{fffd}"));
        assert_eq!(query_param("x=a=b", "x").as_deref(), Some("a=b"));
        assert_eq!(query_param("x=%", "x").as_deref(), Some("%"));
    }

    #[test]
    fn statuses_and_reasons() {
        let all = [
            HttpError::Malformed("bad thing"),
            HttpError::HeadersTooLarge,
            HttpError::BodyTooLarge,
            HttpError::UnsupportedTransferEncoding,
        ];
        let statuses: Vec<u16> = all.iter().map(HttpError::status).collect();
        assert_eq!(statuses, [400, 431, 413, 501]);
        for e in &all {
            let r = e.reason();
            assert!(r.is_ascii() && !r.contains('"') && !r.contains('\\'));
            assert!(e.to_string().starts_with(&e.status().to_string()));
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        // Deterministic pseudo-random bytes biased towards HTTP syntax.
        let alphabet = b"GET /?:\r\n\t aZ0-,;=%\x00\xff";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut buf = Vec::new();
            let len = (seed % 120) as usize;
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                buf.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let _ = parse_head(&buf, &lim());
            let mut prefixed = b"POST / HTTP/1.1\r\n".to_vec();
            prefixed.extend_from_slice(&buf);
            let _ = parse_head(&prefixed, &lim());
            let _ = query_param(&String::from_utf8_lossy(&buf), "a");
        }
    }
}
