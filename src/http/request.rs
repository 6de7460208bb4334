//! HTTP/1.x request-head parser.
//!
//! Pure: bytes in, a [`RequestHead`] out. The reactor owns the socket and the
//! buffer; this module only decides whether the buffer holds a complete,
//! acceptable head, and how the body that follows it is framed. It never
//! panics on network input and every rejection maps to one HTTP status
//! through [`HttpError::status`].
//!
//! The head borrows from the buffer (paths, queries and header values are
//! slices of it) and the header table lives on the stack, so a parse
//! attempt allocates nothing; the reactor copies out only what must outlive
//! the buffer (a publish waiting for its body).
//!
//! How the body is framed is decided in `framing.rs`.

use super::error::from_httparse;
pub use super::error::HttpError;
pub use super::framing::BodyKind;
use super::framing::FramingFields;
use super::headers::{has_token, trimmed_value, Headers};

/// Most header fields any configuration may allow: the parser's table of
/// this many slots lives on the stack (32 bytes each).
pub const MAX_HEADER_SLOTS: usize = 128;

/// Size limits for one request, so a client cannot make the server buffer
/// an unbounded amount of memory before it is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (method, target, version), in bytes.
    pub max_request_line: usize,
    /// Largest request head (request line + headers + blank line), in bytes.
    pub max_header_bytes: usize,
    /// Largest number of header fields in a head (at most [`MAX_HEADER_SLOTS`]).
    pub max_headers: usize,
    /// Largest decoded body, in bytes.
    pub max_body_bytes: usize,
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

/// A parsed, validated request head: everything the router needs, with body
/// framing already decided. Borrows from the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// Request method.
    pub method: Method,
    /// Target path without the query, NOT percent-decoded (the router decides).
    /// Absolute-form targets (`http://host/p`) are reduced to their path.
    pub path: &'a str,
    /// Raw query after `?`, `""` if none; read it with
    /// [`crate::http::query::query_param`].
    pub query: &'a str,
    /// Minor version of HTTP/1.x (0 or 1).
    pub minor_version: u8,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// Body framing.
    pub body: BodyKind,
    /// `Expect: 100-continue` was sent: the reactor should answer `100 Continue`
    /// before reading the body (or reject early).
    pub expect_continue: bool,
    /// Header fields crier uses.
    pub headers: Headers<'a>,
}

/// Parses the request head at the start of `buf`.
///
/// Returns `Ok(None)` when the head is incomplete (read more and call again;
/// nothing is consumed), or `Ok(Some((head, consumed)))` where `consumed`
/// counts every byte through the blank line, including any empty lines
/// before the request line (RFC 9112 §2.2). Bytes after `consumed` are the
/// body or the next pipelined request.
pub fn parse_head<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(RequestHead<'a>, usize)>, HttpError> {
    // A head within max_header_bytes cannot hold more than one header per
    // 3 bytes ("a:\n"), so a huge configured max_headers costs nothing.
    let slot_count = limits
        .max_headers
        .min(limits.max_header_bytes / 3 + 1)
        .min(MAX_HEADER_SLOTS);
    // Only the first max_header_bytes are looked at: an acceptable head
    // lies within them, and the verdict must not depend on how much of what
    // follows has arrived. Parsing the whole buffer made a syntax error past
    // the limit a 400 when it came in the same read and a 431 when it came
    // later (found by the http_request fuzz target). The request line is
    // measured within the same window: measured in the whole buffer, a
    // line over max_header_bytes (when max_request_line is larger) was a
    // 414 when it arrived whole and a 431 when a read ended between the two
    // limits (found by the same target). It is the head limit's: a 431.
    let window = &buf[..buf.len().min(limits.max_header_bytes)];
    check_request_line(window, limits.max_request_line)?;
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADER_SLOTS];
    let mut req = httparse::Request::new(&mut slots[..slot_count]);
    let consumed = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_header_bytes {
                return Err(HttpError::HeadersTooLarge);
            }
            return Ok(None);
        }
        Err(e) => return Err(from_httparse(e)),
    };
    debug_assert!(consumed <= limits.max_header_bytes);
    // httparse guarantees these are set on Complete; be defensive anyway.
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(HttpError::Malformed("incomplete request line"));
    };

    let mut headers = Headers::default();
    let mut framing = FramingFields::default();
    let mut expect_continue = false;
    let mut seen_host = false;
    for h in req.headers.iter() {
        let name = h.name;
        if headers.record(name, h.value) {
            continue;
        }
        let value = trimmed_value(h.value);
        if name.eq_ignore_ascii_case("content-length") {
            framing.content_length(&value, limits.max_body_bytes)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            framing.transfer_encoding(&value);
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case("100-continue") {
                expect_continue = true;
            }
        } else if name.eq_ignore_ascii_case("host") {
            // RFC 9112 §3.2: a request with several Host fields is a 400.
            if seen_host {
                return Err(HttpError::Malformed("duplicate host header"));
            }
            seen_host = true;
        }
    }
    let body = framing.body_kind(minor_version)?;

    let connection = headers.connection.as_deref().unwrap_or("");
    let keep_alive = if minor_version == 0 {
        has_token(connection, "keep-alive") && !has_token(connection, "close")
    } else {
        !has_token(connection, "close")
    };
    let (path, query) = split_target(target);

    let head = RequestHead {
        method: Method::from_token(method),
        path,
        query,
        minor_version,
        keep_alive,
        body,
        // RFC 9110 §10.1.1: a server MUST ignore 100-continue from HTTP/1.0.
        expect_continue: expect_continue && minor_version >= 1,
        headers,
    };
    Ok(Some((head, consumed)))
}

/// Refuses a request line longer than `max` before parsing the rest (a
/// 414 says what was wrong, where a 431 for the whole head would not).
/// Empty lines before the request line are skipped exactly as the parser
/// skips them: `\r\n` or `\n`. A bare `\r` is not one (httparse refuses
/// it): skipping it here too made `\rGET /long…` a 414 when it came in one
/// read and a 400 when the `\r` came alone (found by the http_request fuzz
/// target).
fn check_request_line(buf: &[u8], max: usize) -> Result<(), HttpError> {
    let mut start = 0;
    loop {
        match &buf[start..] {
            [b'\r', b'\n', ..] => start += 2,
            [b'\n', ..] => start += 1,
            _ => break,
        }
    }
    let line = &buf[start..];
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    if end > max {
        // A line already malformed within its first `max` bytes is
        // malformed however long it goes on: judging it by those bytes
        // alone keeps the verdict from depending on how much has arrived
        // (found by the http_request fuzz target).
        let mut no_headers = [];
        let mut req = httparse::Request::new(&mut no_headers);
        if let Err(e) = req.parse(&line[..max]) {
            return Err(from_httparse(e));
        }
        return Err(HttpError::RequestLineTooLong);
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> Limits {
        Limits {
            max_request_line: 1024,
            max_header_bytes: 4096,
            max_headers: 16,
            max_body_bytes: 1000,
        }
    }

    fn parse(s: &str) -> Result<Option<(RequestHead<'_>, usize)>, HttpError> {
        parse_head(s.as_bytes(), &lim())
    }

    fn ok(s: &str) -> RequestHead<'_> {
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
        assert_eq!(h.body, BodyKind::None);
        assert!(!h.expect_continue);
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
    fn duplicate_host_rejected() {
        assert_eq!(
            err("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status(),
            400
        );
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
    fn expect_continue() {
        assert!(
            ok("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                .expect_continue
        );
        assert!(!ok("POST / HTTP/1.1\r\nExpect: other\r\n\r\n").expect_continue);
        assert!(!ok("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
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
    fn request_line_limit() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(1100));
        assert_eq!(parse(&long).unwrap_err(), HttpError::RequestLineTooLong);
        // Refused as soon as the line is known to be too long.
        assert_eq!(
            parse(&long[..1030]).unwrap_err(),
            HttpError::RequestLineTooLong
        );
        let fits = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(1000));
        assert!(parse(&fits).unwrap().is_some());
        assert_eq!(
            parse("\r\n\r\nGET / HTTP/1.1\r\n\r\n")
                .unwrap()
                .unwrap()
                .0
                .path,
            "/"
        );
    }

    #[test]
    fn a_long_request_line_malformed_early_is_400_at_every_split() {
        let l = Limits {
            max_request_line: 32,
            ..lim()
        };
        let req = b"GET /____TE d=bad%2BT /pHTTP/1.1\r\n\r\n";
        let whole = parse_head(req, &l).unwrap_err();
        assert_eq!(whole.status(), 400, "{whole:?}");
        // Malformed from the first byte after the target on.
        for cut in 13..req.len() {
            assert_eq!(
                parse_head(&req[..cut], &l).unwrap_err(),
                whole,
                "cut at {cut}"
            );
        }
        let valid_but_long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(40));
        assert_eq!(
            parse_head(valid_but_long.as_bytes(), &l).unwrap_err(),
            HttpError::RequestLineTooLong
        );
    }

    /// The first verdict of a head that arrives a byte at a time.
    fn verdict_byte_by_byte(req: &[u8], l: &Limits) -> Result<usize, HttpError> {
        for cut in 0..=req.len() {
            if let Some((_, n)) = parse_head(&req[..cut], l)? {
                return Ok(n);
            }
        }
        panic!("incomplete at the end");
    }

    #[test]
    fn a_bare_cr_before_a_long_request_line_is_400_at_every_split() {
        let l = Limits {
            max_request_line: 16,
            ..lim()
        };
        // Not an empty line: the parser refuses a CR without LF there.
        let req = b"\rGET /a-long-enough-target HTTP/1.1\r\n\r\n";
        let whole = parse_head(req, &l).unwrap_err();
        assert_eq!(whole, HttpError::Malformed("invalid line ending"));
        assert_eq!(verdict_byte_by_byte(req, &l), Err(whole));
        // CRLF and LF are empty lines, skipped before the line is measured.
        let skipped = b"\r\n\nGET /a-long-enough-target HTTP/1.1\r\n\r\n";
        assert_eq!(
            parse_head(skipped, &l).unwrap_err(),
            HttpError::RequestLineTooLong
        );
        assert_eq!(
            verdict_byte_by_byte(skipped, &l),
            Err(HttpError::RequestLineTooLong)
        );
    }

    #[test]
    fn a_request_line_over_the_head_limit_is_431_at_every_split() {
        // max_request_line above max_header_bytes (the configuration allows
        // it): a line longer than the head may be is that limit's business.
        let l = Limits {
            max_request_line: 256,
            max_header_bytes: 32,
            ..lim()
        };
        let req = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(100));
        let req = req.as_bytes();
        assert_eq!(parse_head(req, &l).unwrap_err(), HttpError::HeadersTooLarge);
        assert_eq!(
            verdict_byte_by_byte(req, &l),
            Err(HttpError::HeadersTooLarge)
        );
        // Over both limits: still the head limit, the one passed first.
        let longer = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(300));
        assert_eq!(
            parse_head(longer.as_bytes(), &l).unwrap_err(),
            HttpError::HeadersTooLarge
        );
        // Below the head limit the line limit answers, with its 414.
        let l = Limits {
            max_request_line: 64,
            max_header_bytes: 256,
            ..lim()
        };
        assert_eq!(
            verdict_byte_by_byte(req, &l),
            Err(HttpError::RequestLineTooLong)
        );
        assert_eq!(
            parse_head(req, &l).unwrap_err(),
            HttpError::RequestLineTooLong
        );
    }

    #[test]
    fn verdict_past_the_limit_does_not_depend_on_the_split() {
        // A syntax error (bare CR) after the first 32 bytes: over the limit
        // whether the bad byte has arrived yet or not.
        let l = Limits {
            max_header_bytes: 32,
            ..lim()
        };
        let req = b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\rX\r\n\r\n";
        for cut in 33..=req.len() {
            assert_eq!(
                parse_head(&req[..cut], &l).unwrap_err(),
                HttpError::HeadersTooLarge,
                "cut at {cut}"
            );
        }
        // Within the limit the same error is a 400, at every cut that has it.
        let l = Limits {
            max_header_bytes: 4096,
            ..lim()
        };
        let at = req.iter().position(|&b| b == b'\r').unwrap();
        for cut in at + 2..=req.len() {
            assert_eq!(parse_head(&req[..cut], &l).unwrap_err().status(), 400);
        }
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
        assert_eq!((h.method, h.path), (Method::Options, "*"));
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
        }
    }
}
