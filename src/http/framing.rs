//! How the body after a request head is framed: `Content-Length` and
//! `Transfer-Encoding` decided together, strictly (request-smuggling
//! defence: a request that two servers could frame differently is refused
//! rather than guessed at).

use super::error::HttpError;

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

/// The framing fields of one head, as they are seen.
#[derive(Debug, Default)]
pub(super) struct FramingFields {
    content_length: Option<usize>,
    transfer_encoding: Framing,
}

impl FramingFields {
    /// One `Content-Length` field; repeats must agree.
    pub fn content_length(&mut self, value: &str, max: usize) -> Result<(), HttpError> {
        let n = parse_content_length(value, max)?;
        if self.content_length.is_some_and(|prev| prev != n) {
            return Err(HttpError::Malformed("conflicting content-length"));
        }
        self.content_length = Some(n);
        Ok(())
    }

    /// One `Transfer-Encoding` field (all of them form one list).
    pub fn transfer_encoding(&mut self, value: &str) {
        self.transfer_encoding.add(value);
    }

    /// The body framing these fields give an HTTP/1.`minor_version` request.
    pub fn body_kind(&self, minor_version: u8) -> Result<BodyKind, HttpError> {
        Ok(match (self.content_length, self.transfer_encoding) {
            (Some(_), Framing::Chunked | Framing::Other) => {
                return Err(HttpError::Malformed(
                    "both content-length and transfer-encoding",
                ))
            }
            (None, Framing::Chunked | Framing::Other) if minor_version == 0 => {
                return Err(HttpError::Malformed("transfer-encoding in http/1.0"))
            }
            (None, Framing::Chunked) => BodyKind::Chunked,
            (None, Framing::Other) => return Err(HttpError::UnsupportedTransferEncoding),
            (Some(0), Framing::Absent) | (None, Framing::Absent) => BodyKind::None,
            (Some(n), Framing::Absent) => BodyKind::Length(n),
        })
    }
}

/// What the `Transfer-Encoding` fields (all of them, as one list) say.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No `Transfer-Encoding` field.
    #[default]
    Absent,
    /// Exactly `chunked`, once.
    Chunked,
    /// Anything else (`gzip`, `chunked, chunked`, …): refused.
    Other,
}

impl Framing {
    /// Adds one `Transfer-Encoding` field value to the list seen so far.
    fn add(&mut self, value: &str) {
        *self = match self {
            Framing::Absent if value.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::Other,
        };
    }
}

/// Parses a Content-Length value. A list of identical values (`5, 5`) is
/// accepted as RFC 9112 §6.3 permits; differing values, empty or non-digit
/// values are 400; a value over `max` (including one overflowing `usize`)
/// is 413 right away, before any body byte is read.
fn parse_content_length(value: &str, max: usize) -> Result<usize, HttpError> {
    let mut result: Option<usize> = None;
    for part in value.split(',') {
        let part = part.trim_matches([' ', '\t']);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{parse_head, Limits, RequestHead};

    fn lim() -> Limits {
        Limits {
            max_request_line: 1024,
            max_header_bytes: 4096,
            max_headers: 16,
            max_body_bytes: 1000,
        }
    }

    fn ok(s: &str) -> RequestHead<'_> {
        parse_head(s.as_bytes(), &lim())
            .unwrap()
            .expect("complete")
            .0
    }

    fn err(s: &str) -> HttpError {
        parse_head(s.as_bytes(), &lim()).unwrap_err()
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
}
