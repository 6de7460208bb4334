//! Why a request was rejected: small on purpose, so each kind maps to one
//! HTTP status and the reactor needs no mapping table.

use std::fmt;

/// A rejected request head or body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Syntax or framing error (400). The text is short, ASCII, JSON-safe.
    Malformed(&'static str),
    /// Request line over `max-request-line` (414).
    RequestLineTooLong,
    /// Head (or chunked trailer section) over its byte limit (431).
    HeadersTooLarge,
    /// More header fields than `max-headers` (431).
    TooManyHeaders,
    /// Body over `max_body_bytes` (413).
    BodyTooLarge,
    /// `Transfer-Encoding` other than exactly `chunked` (501).
    UnsupportedTransferEncoding,
}

impl HttpError {
    /// HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) => 400,
            HttpError::RequestLineTooLong => 414,
            HttpError::HeadersTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::BodyTooLarge => 413,
            HttpError::UnsupportedTransferEncoding => 501,
        }
    }

    /// Short human text for a JSON error body; ASCII without quotes or
    /// backslashes, so it can be embedded without escaping.
    pub fn reason(&self) -> &'static str {
        match self {
            HttpError::Malformed(why) => why,
            HttpError::RequestLineTooLong => "request line too long",
            HttpError::HeadersTooLarge => "request header fields too large",
            HttpError::TooManyHeaders => "too many header fields",
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
pub(crate) fn from_httparse(err: httparse::Error) -> HttpError {
    match err {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        httparse::Error::HeaderName => HttpError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HttpError::Malformed("invalid header value"),
        httparse::Error::NewLine => HttpError::Malformed("invalid line ending"),
        httparse::Error::Status => HttpError::Malformed("invalid status"),
        httparse::Error::Token => HttpError::Malformed("invalid method or token"),
        httparse::Error::Version => HttpError::Malformed("unsupported http version"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_reasons() {
        let all = [
            HttpError::Malformed("bad thing"),
            HttpError::RequestLineTooLong,
            HttpError::HeadersTooLarge,
            HttpError::TooManyHeaders,
            HttpError::BodyTooLarge,
            HttpError::UnsupportedTransferEncoding,
        ];
        let statuses: Vec<u16> = all.iter().map(HttpError::status).collect();
        assert_eq!(statuses, [400, 414, 431, 431, 413, 501]);
        for e in &all {
            let r = e.reason();
            assert!(r.is_ascii() && !r.contains('"') && !r.contains('\\'));
            assert!(e.to_string().starts_with(&e.status().to_string()));
        }
    }
}
