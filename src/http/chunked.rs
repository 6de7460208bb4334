//! Incremental request-body reader for `Content-Length` and `chunked` bodies.
//!
//! Pure and resumable: the reactor feeds whatever bytes arrived, at any
//! boundary, and gets decoded body bytes plus how much input was consumed.
//! Bytes after the end of the body are left alone because they belong to
//! the next pipelined request.
//!
//! Chunked syntax is strict (RFC 9112 §7.1): every line must end in CRLF; a
//! bare LF is a 400. Lenient line endings are a classic request-smuggling
//! vector when a proxy in front disagrees, so we refuse rather than guess.

use crate::http::query::hex_val;
use crate::http::request::{BodyKind, HttpError};

/// Longest chunk-size line (size, extensions, CRLF) we accept, so a client
/// cannot make us scan an endless extension.
const MAX_SIZE_LINE: usize = 1024;
/// Longest trailer section (all trailer lines plus the final CRLF); trailers
/// are skipped, but only this much of them.
const MAX_TRAILER_BYTES: usize = 8 * 1024;

/// Where the chunked decoder is inside the framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading hex digits of a chunk size; `digits` counts them.
    Size { size: usize, digits: usize },
    /// After the digits: skipping optional whitespace and `;extensions` until CR.
    Ext { size: usize },
    /// Saw CR at the end of the size line; LF must follow.
    SizeLf { size: usize },
    /// Inside chunk data, `left` bytes to go.
    Data { left: usize },
    /// After chunk data: CR must follow.
    DataCr,
    /// After chunk data and CR: LF must follow.
    DataLf,
    /// At the start of a trailer line or of the final CRLF.
    TrailerStart,
    /// Inside a trailer line, skipping until CR.
    Trailer,
    /// Saw CR ending a trailer line; LF must follow.
    TrailerLf,
    /// Saw CR of the final empty line; LF must follow.
    FinalLf,
}

/// What the reader is doing; kept private so callers only see `feed`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// `Content-Length` body with `left` bytes still to read.
    Length { left: usize },
    /// Chunked body.
    Chunked(Chunk),
    /// Body complete.
    Done,
    /// A previous call failed; the same error is returned again.
    Failed(HttpError),
}

/// Decodes one request body, fed in arbitrary pieces; the reactor keeps one
/// per request that has a body.
#[derive(Debug, Clone)]
pub struct BodyReader {
    state: State,
    /// Largest decoded body allowed.
    max: usize,
    /// Decoded bytes so far.
    total: usize,
    /// Bytes of the current size line, or of the whole trailer section.
    line: usize,
}

impl BodyReader {
    /// Builds a reader for the framing the head announced. `max_body_bytes`
    /// bounds the decoded body (413 past it) since chunked bodies announce no
    /// total up front.
    pub fn new(kind: BodyKind, max_body_bytes: usize) -> Self {
        let state = match kind {
            BodyKind::None | BodyKind::Length(0) => State::Done,
            BodyKind::Length(n) if n > max_body_bytes => State::Failed(HttpError::BodyTooLarge),
            BodyKind::Length(n) => State::Length { left: n },
            BodyKind::Chunked => State::Chunked(Chunk::Size { size: 0, digits: 0 }),
        };
        BodyReader {
            state,
            max: max_body_bytes,
            total: 0,
            line: 0,
        }
    }

    /// Consumes what it can from `input`, appending decoded body bytes to
    /// `body`. Returns `Ok((consumed, done))`; `done` is true once the whole
    /// body (for chunked: through the last chunk, trailers and final CRLF)
    /// has been consumed. Bytes after that are not consumed. After an error
    /// the reader stays failed and returns the same error.
    pub fn feed(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<(usize, bool), HttpError> {
        let result = match self.state {
            State::Done => Ok(0),
            State::Failed(ref e) => return Err(e.clone()),
            State::Length { left } => {
                let n = left.min(input.len());
                body.extend_from_slice(&input[..n]);
                self.total += n;
                self.state = if n == left {
                    State::Done
                } else {
                    State::Length { left: left - n }
                };
                Ok(n)
            }
            State::Chunked(_) => self.feed_chunked(input, body),
        };
        match result {
            Ok(n) => Ok((n, self.state == State::Done)),
            Err(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// The chunked state machine; returns bytes consumed.
    fn feed_chunked(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < input.len() {
            let State::Chunked(chunk) = self.state else {
                break;
            };
            // Chunk data is copied in bulk; everything else is byte by byte.
            if let Chunk::Data { left } = chunk {
                let n = left.min(input.len() - i);
                body.extend_from_slice(&input[i..i + n]);
                self.total += n;
                i += n;
                self.state = State::Chunked(if n == left {
                    Chunk::DataCr
                } else {
                    Chunk::Data { left: left - n }
                });
                continue;
            }
            let b = input[i];
            i += 1;
            let next = self.step(chunk, b)?;
            self.state = next;
        }
        Ok(i)
    }

    /// Advances the framing by one non-data byte.
    fn step(&mut self, chunk: Chunk, b: u8) -> Result<State, HttpError> {
        let next = match chunk {
            Chunk::Size { .. } | Chunk::Ext { .. } | Chunk::SizeLf { .. } => {
                self.line += 1;
                if self.line > MAX_SIZE_LINE {
                    return Err(HttpError::Malformed("chunk size line too long"));
                }
                self.size_line(chunk, b)?
            }
            Chunk::Data { .. } => chunk,
            Chunk::DataCr => match b {
                b'\r' => Chunk::DataLf,
                _ => return Err(HttpError::Malformed("missing CRLF after chunk data")),
            },
            Chunk::DataLf => match b {
                b'\n' => {
                    self.line = 0;
                    Chunk::Size { size: 0, digits: 0 }
                }
                _ => return Err(HttpError::Malformed("missing CRLF after chunk data")),
            },
            Chunk::TrailerStart | Chunk::Trailer | Chunk::TrailerLf | Chunk::FinalLf => {
                self.line += 1;
                if self.line > MAX_TRAILER_BYTES {
                    return Err(HttpError::HeadersTooLarge);
                }
                match (chunk, b) {
                    (Chunk::TrailerStart, b'\r') => Chunk::FinalLf,
                    (Chunk::FinalLf, b'\n') => return Ok(State::Done),
                    (Chunk::TrailerLf, b'\n') => Chunk::TrailerStart,
                    (Chunk::Trailer, b'\r') => Chunk::TrailerLf,
                    (Chunk::TrailerStart | Chunk::Trailer, b'\n' | 0) => {
                        return Err(HttpError::Malformed("invalid chunked trailer"))
                    }
                    (Chunk::TrailerStart | Chunk::Trailer, _) => Chunk::Trailer,
                    _ => return Err(HttpError::Malformed("invalid chunked trailer")),
                }
            }
        };
        Ok(State::Chunked(next))
    }

    /// Parses one byte of a chunk-size line: `1*HEXDIG [BWS ;ext...] CRLF`.
    fn size_line(&mut self, chunk: Chunk, b: u8) -> Result<Chunk, HttpError> {
        Ok(match chunk {
            Chunk::Size { size, digits } => {
                if let Some(v) = hex_val(b) {
                    let size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(usize::from(v)))
                        .ok_or(HttpError::BodyTooLarge)?;
                    if self.total.saturating_add(size) > self.max {
                        return Err(HttpError::BodyTooLarge);
                    }
                    return Ok(Chunk::Size {
                        size,
                        digits: digits + 1,
                    });
                }
                if digits == 0 {
                    return Err(HttpError::Malformed("invalid chunk size"));
                }
                match b {
                    b'\r' => Chunk::SizeLf { size },
                    b';' | b' ' | b'\t' => Chunk::Ext { size },
                    _ => return Err(HttpError::Malformed("invalid chunk size")),
                }
            }
            Chunk::Ext { size } => match b {
                b'\r' => Chunk::SizeLf { size },
                b'\n' | 0 => return Err(HttpError::Malformed("invalid chunk extension")),
                _ => Chunk::Ext { size },
            },
            Chunk::SizeLf { size } => match b {
                b'\n' if size == 0 => {
                    self.line = 0;
                    Chunk::TrailerStart
                }
                b'\n' => Chunk::Data { left: size },
                _ => return Err(HttpError::Malformed("missing LF after chunk size")),
            },
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1000;

    /// Feeds `input` in pieces of the given sizes (repeating the last one),
    /// like a socket would, re-offering unconsumed bytes.
    fn feed_pieces(
        kind: BodyKind,
        input: &[u8],
        piece: usize,
    ) -> Result<(Vec<u8>, usize), HttpError> {
        let mut r = BodyReader::new(kind, MAX);
        let mut body = Vec::new();
        let mut pos = 0;
        let mut end = 0;
        loop {
            end = (end + piece).min(input.len());
            let (n, done) = r.feed(&input[pos..end], &mut body)?;
            pos += n;
            if done {
                assert_eq!(r.state, State::Done);
                return Ok((body, pos));
            }
            assert_eq!(pos, end, "reader must consume everything before done");
            if end == input.len() {
                return Err(HttpError::Malformed("test: incomplete"));
            }
        }
    }

    /// Feeds at every split point into two calls and one byte at a time;
    /// all must agree with feeding it whole.
    fn decode_all_ways(kind: BodyKind, input: &[u8]) -> Result<(Vec<u8>, usize), HttpError> {
        let whole = feed_pieces(kind, input, input.len().max(1));
        for piece in [1, 2, 3, 7] {
            assert_eq!(feed_pieces(kind, input, piece), whole, "piece {piece}");
        }
        for cut in 0..=input.len() {
            let mut r = BodyReader::new(kind, MAX);
            let mut body = Vec::new();
            let got = r.feed(&input[..cut], &mut body).and_then(|(n1, done)| {
                if done {
                    return Ok((body.clone(), n1));
                }
                assert_eq!(n1, cut);
                let (n2, done) = r.feed(&input[cut..], &mut body)?;
                if done {
                    Ok((body.clone(), n1 + n2))
                } else {
                    Err(HttpError::Malformed("test: incomplete"))
                }
            });
            assert_eq!(got, whole, "cut at {cut}");
        }
        whole
    }

    fn chunked(input: &str) -> Result<(Vec<u8>, usize), HttpError> {
        decode_all_ways(BodyKind::Chunked, input.as_bytes())
    }

    #[test]
    fn none_is_done_at_once() {
        let mut r = BodyReader::new(BodyKind::None, MAX);
        let mut body = Vec::new();
        assert_eq!(r.state, State::Done);
        assert_eq!(r.feed(b"GET / HTTP/1.1", &mut body), Ok((0, true)));
        assert_eq!(r.feed(b"", &mut body), Ok((0, true)));
        assert!(body.is_empty());
        let mut r = BodyReader::new(BodyKind::Length(0), MAX);
        assert_eq!(r.feed(b"x", &mut body), Ok((0, true)));
    }

    #[test]
    fn content_length_every_split_and_pipelining() {
        let input = b"hello worldGET /next HTTP/1.1\r\n\r\n";
        let (body, n) = decode_all_ways(BodyKind::Length(11), input).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(n, 11);
    }

    #[test]
    fn content_length_over_max_fails() {
        let mut r = BodyReader::new(BodyKind::Length(MAX + 1), MAX);
        assert_eq!(r.feed(b"x", &mut Vec::new()), Err(HttpError::BodyTooLarge));
        assert_eq!(r.feed(b"x", &mut Vec::new()), Err(HttpError::BodyTooLarge));
        let mut r = BodyReader::new(BodyKind::Length(MAX), MAX);
        let (n, done) = r.feed(&[b'a'; MAX + 5], &mut Vec::new()).unwrap();
        assert_eq!((n, done), (MAX, true));
    }

    #[test]
    fn chunked_basic_with_pipelining() {
        let input = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        let (body, n) = chunked(input).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&input[n..], "GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn chunked_zero_length_body() {
        let (body, n) = chunked("0\r\n\r\n").unwrap();
        assert!(body.is_empty());
        assert_eq!(n, 5);
        let (body, _) = chunked("000\r\n\r\n").unwrap();
        assert!(body.is_empty());
    }

    #[test]
    fn chunked_hex_case_and_leading_zeros() {
        let data = "x".repeat(0xAB);
        let input = format!("00aB\r\n{data}\r\n0\r\n\r\n");
        let (body, n) = chunked(&input).unwrap();
        assert_eq!(body.len(), 0xAB);
        assert_eq!(n, input.len());
        let input = format!("AB\r\n{data}\r\n0\r\n\r\n");
        assert_eq!(chunked(&input).unwrap().0.len(), 0xAB);
    }

    #[test]
    fn chunked_extensions_are_ignored() {
        let input = "3;name=val\r\nabc\r\n2 ; a=\"q;x\"\r\nde\r\n0;last\r\n\r\n";
        let (body, n) = chunked(input).unwrap();
        assert_eq!(body, b"abcde");
        assert_eq!(n, input.len());
    }

    #[test]
    fn chunked_trailers_are_skipped() {
        let input = "2\r\nhi\r\n0\r\nX-Trailer: 1\r\nX-Other: two\r\n\r\nNEXT";
        let (body, n) = chunked(input).unwrap();
        assert_eq!(body, b"hi");
        assert_eq!(&input[n..], "NEXT");
    }

    #[test]
    fn chunked_trailer_limit() {
        let big = format!("0\r\nX: {}\r\n\r\n", "a".repeat(MAX_TRAILER_BYTES));
        assert_eq!(chunked(&big), Err(HttpError::HeadersTooLarge));
        let ok = format!("0\r\nX: {}\r\n\r\n", "a".repeat(MAX_TRAILER_BYTES - 10));
        assert!(chunked(&ok).is_ok());
    }

    #[test]
    fn chunked_size_line_limit() {
        let long = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(MAX_SIZE_LINE));
        assert_eq!(chunked(&long).unwrap_err().status(), 400);
        let fits = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(MAX_SIZE_LINE - 10));
        assert_eq!(chunked(&fits).unwrap().0, b"a");
        // Leading zeros count against the line too.
        let zeros = format!("{}1\r\na\r\n0\r\n\r\n", "0".repeat(MAX_SIZE_LINE + 1));
        assert_eq!(chunked(&zeros).unwrap_err().status(), 400);
    }

    #[test]
    fn chunked_body_limit() {
        // One chunk over the max fails on the size line, before any data.
        assert_eq!(chunked("3E9\r\n"), Err(HttpError::BodyTooLarge));
        let exact = format!("3E8\r\n{}\r\n0\r\n\r\n", "a".repeat(MAX));
        assert_eq!(chunked(&exact).unwrap().0.len(), MAX);
        // The sum of chunks over the max fails too.
        let sum = format!("200\r\n{}\r\n200\r\n", "a".repeat(0x200));
        assert_eq!(chunked(&sum), Err(HttpError::BodyTooLarge));
        // Huge hex that overflows usize.
        assert_eq!(
            chunked("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\r\n"),
            Err(HttpError::BodyTooLarge)
        );
        let mut r = BodyReader::new(BodyKind::Chunked, usize::MAX);
        assert_eq!(
            r.feed(b"1FFFFFFFFFFFFFFFF\r\n", &mut Vec::new()),
            Err(HttpError::BodyTooLarge)
        );
    }

    #[test]
    fn chunked_malformed() {
        for bad in [
            "\r\n",                  // empty size
            "x\r\n",                 // not hex
            "-1\r\n",                // sign
            "0x5\r\nhello\r\n",      // 0x prefix
            "5\nhello\r\n0\r\n\r\n", // bare LF after size
            "5\r\nhelloX\r\n",       // missing CRLF after data
            "5\r\nhello\rX",         // CR without LF after data
            "5\r\nhello\n0\r\n\r\n", // bare LF after data
            "5\rX",                  // CR without LF after size
            "5;ext\nhello",          // bare LF after extension
            "0\r\nX: 1\n\r\n",       // bare LF in trailer
            "0\r\n\n",               // bare LF final
            "0\r\n\rX",              // CR without LF final
            "5 x\r\n",               // garbage? allowed as BWS then ext
        ] {
            let got = chunked(bad);
            if bad == "5 x\r\n" {
                // Whitespace starts the extension area: tolerated, then incomplete.
                assert!(matches!(got, Err(HttpError::Malformed("test: incomplete"))));
                continue;
            }
            let e = got.unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?} -> {e:?}");
            assert_ne!(e, HttpError::Malformed("test: incomplete"), "{bad:?}");
        }
    }

    #[test]
    fn errors_are_sticky() {
        let mut r = BodyReader::new(BodyKind::Chunked, MAX);
        let e = r.feed(b"zz", &mut Vec::new()).unwrap_err();
        assert_eq!(r.feed(b"0\r\n\r\n", &mut Vec::new()), Err(e));
    }

    #[test]
    fn done_consumes_nothing_more() {
        let mut r = BodyReader::new(BodyKind::Chunked, MAX);
        let mut body = Vec::new();
        assert_eq!(
            r.feed(b"1\r\na\r\n0\r\n\r\nrest", &mut body),
            Ok((11, true))
        );
        assert_eq!(r.feed(b"more", &mut body), Ok((0, true)));
        assert_eq!(body, b"a");
    }

    #[test]
    fn never_panics_on_garbage() {
        let alphabet = b"0123456789abcdefABCDEF;= \t\r\nxyz\x00";
        let mut seed: u64 = 12345;
        for _ in 0..3000 {
            let mut buf = Vec::new();
            let len = (seed % 60) as usize;
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                buf.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let mut r = BodyReader::new(BodyKind::Chunked, MAX);
            let mut body = Vec::new();
            if let Ok((n, _)) = r.feed(&buf, &mut body) {
                assert!(n <= buf.len());
                assert!(body.len() <= MAX);
            }
        }
    }
}
