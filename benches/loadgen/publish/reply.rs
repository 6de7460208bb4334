//! Reading HTTP replies off a keep-alive connection, one complete reply at a time. Both
//! publishing patterns (pipelined and waiting) and the `/status` probe read replies the
//! same way, so a server that frames its replies oddly (chunked, split across segments)
//! is handled in one place.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::wire::{self, ChunkDecoder};
use crate::Res;

/// One reply: its status code and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The read side of a connection with the bytes received but not yet parsed. Replies to
/// pipelined requests may arrive several per segment or one split over many; the carry
/// keeps whatever follows the reply just returned.
pub struct ReplyReader {
    stream: TcpStream,
    carry: Vec<u8>,
    chunk: Vec<u8>,
}

impl ReplyReader {
    /// Reads from `stream` with a short read timeout, so that every wait can check its
    /// own deadline instead of blocking without bound.
    pub fn new(stream: TcpStream) -> ReplyReader {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
        ReplyReader {
            stream,
            carry: Vec::with_capacity(64 * 1024),
            chunk: vec![0; 64 * 1024],
        }
    }

    /// The next complete reply, reading as needed until `deadline`.
    pub fn next_reply(&mut self, deadline: Instant) -> Res<Reply> {
        loop {
            if let Some((used, reply)) = parse_response(&self.carry)? {
                self.carry.drain(..used);
                return Ok(reply);
            }
            if Instant::now() >= deadline {
                return Err("no complete reply before the deadline".into());
            }
            match self.stream.read(&mut self.chunk) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(k) => self.carry.extend_from_slice(&self.chunk[..k]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
}

/// One complete HTTP response from the front of `buf`: (bytes used, reply).
fn parse_response(buf: &[u8]) -> Res<Option<(usize, Reply)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let head_len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad reply: {e}")),
    };
    let status = r.code.unwrap_or(0);
    let value = |name: &str| wire::header(r.headers, name).map(|v| v.to_ascii_lowercase());
    let rest = &buf[head_len..];
    if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut dec = ChunkDecoder::new();
        let mut body = Vec::new();
        let used = dec.feed(rest, &mut body)?;
        return Ok(dec
            .is_done()
            .then(|| (head_len + used, Reply { status, body })));
    }
    let len = match value("content-length") {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| "bad Content-Length")?,
        None => 0,
    };
    Ok((rest.len() >= len).then(|| {
        let body = rest[..len].to_vec();
        (head_len + len, Reply { status, body })
    }))
}
