//! A raw `/sub` stream subscriber that decodes the HTTP/1.1 chunks of the
//! response (one chunk per message, the zero chunk at the end).

use super::conn::{Conn, Response};
use std::net::SocketAddr;

/// A raw `/sub` stream subscriber decoding HTTP/1.1 chunks.
pub struct StreamClient {
    pub conn: Conn,
    pub head: Response,
}

impl StreamClient {
    /// Sends `GET path` and checks the chunked 200 head; the subscription
    /// is registered once the head is read.
    pub fn connect(addr: SocketAddr, path: &str) -> StreamClient {
        let mut conn = Conn::connect(addr);
        conn.write(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        let head = conn.read_head();
        assert_eq!(head.status, 200, "subscribe {path}: {head:?}");
        assert_eq!(head.header("transfer-encoding"), Some("chunked"));
        StreamClient { conn, head }
    }

    /// The next chunk's data; None for the last (zero) chunk, after its
    /// trailers. Panics on EOF or bad framing.
    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        let size_line = self.conn.line().expect("EOF instead of a chunk");
        let hex = size_line.split(';').next().unwrap().trim();
        let size = usize::from_str_radix(hex, 16)
            .unwrap_or_else(|_| panic!("bad chunk size line {size_line:?}"));
        if size == 0 {
            loop {
                let l = self.conn.line().expect("EOF in trailers");
                if l.is_empty() {
                    return None;
                }
            }
        }
        let data = self.conn.exact(size);
        assert_eq!(self.conn.exact(2), b"\r\n", "CRLF after chunk data");
        Some(data)
    }

    /// The next message chunk; panics on the last chunk.
    pub fn chunk(&mut self) -> Vec<u8> {
        self.next_chunk()
            .expect("stream ended with the last chunk unexpectedly")
    }
}
