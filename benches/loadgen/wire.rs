//! Bytes on the wire that more than one side agrees on: the payload format (publisher
//! writes it, subscribers parse it), HTTP header lookup and chunked decoding (subscribers
//! and the publisher), and WebSocket frame encoding and parsing (client and floor).

use crate::Res;

/// Cap on buffered, not yet parsed bytes per connection (a sane server never gets near it).
pub const MAX_CARRY: usize = 4 << 20;

// ---- Payloads ------------------------------------------------------------------------

/// `t=<ns since harness epoch>;seq=<k>;` padded with 'x' to `size` bytes.
pub fn make_payload(seq: u64, t_ns: u64, size: usize) -> Vec<u8> {
    let mut p = format!("t={t_ns};seq={seq};").into_bytes();
    if p.len() < size {
        p.resize(size, b'x');
    }
    p
}

/// Warm-up message: confirms a subscriber is registered without counting as a delivery.
pub const WARM: &[u8] = b"warm";

pub fn parse_payload(p: &[u8]) -> Option<(u64, u64)> {
    let (t, rest) = take_num(p.strip_prefix(b"t=")?)?;
    let (seq, _) = take_num(rest.strip_prefix(b"seq=")?)?;
    Some((t, seq))
}

fn take_num(b: &[u8]) -> Option<(u64, &[u8])> {
    let end = b.iter().position(|&c| c == b';')?;
    if end == 0 {
        return None;
    }
    let mut v = 0u64;
    for &c in &b[..end] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some((v, &b[end + 1..]))
}

// ---- HTTP ----------------------------------------------------------------------------

/// Value of the first header called `name` (any case), decoded lossily.
pub fn header(headers: &[httparse::Header], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ChunkState {
    Size,
    SizeExt,
    Data(usize),
    DataCr,
    TrailerStart,
    Trailer,
    Done,
}

/// HTTP/1.1 chunked decoding: servers may frame an SSE stream or a reply as chunked.
pub struct ChunkDecoder {
    state: ChunkState,
    size: usize,
}

impl ChunkDecoder {
    pub fn new() -> Self {
        ChunkDecoder {
            state: ChunkState::Size,
            size: 0,
        }
    }

    /// Decodes `data` into `out`; returns how many input bytes were used (fewer than
    /// `data.len()` only once the terminating chunk and trailers are complete).
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Res<usize> {
        let mut i = 0;
        while i < data.len() && self.state != ChunkState::Done {
            let c = data[i];
            match self.state {
                ChunkState::Size => {
                    i += 1;
                    match c {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let d = (c as char).to_digit(16).unwrap_or(0) as usize;
                            self.size = self
                                .size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(d))
                                .filter(|&s| s < MAX_CARRY)
                                .ok_or("chunk too large")?;
                        }
                        b';' | b'\r' | b' ' => self.state = ChunkState::SizeExt,
                        b'\n' => self.end_size(),
                        _ => return Err(format!("bad chunk size byte {c:#x}")),
                    }
                }
                ChunkState::SizeExt => {
                    i += 1;
                    if c == b'\n' {
                        self.end_size();
                    }
                }
                ChunkState::Data(rem) => {
                    let n = rem.min(data.len() - i);
                    out.extend_from_slice(&data[i..i + n]);
                    i += n;
                    self.state = if n == rem {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data(rem - n)
                    };
                }
                ChunkState::DataCr => {
                    i += 1;
                    match c {
                        b'\r' => {}
                        b'\n' => self.state = ChunkState::Size,
                        _ => return Err("missing CRLF after chunk".into()),
                    }
                }
                ChunkState::TrailerStart => {
                    i += 1;
                    match c {
                        b'\r' => {}
                        b'\n' => self.state = ChunkState::Done,
                        _ => self.state = ChunkState::Trailer,
                    }
                }
                ChunkState::Trailer => {
                    i += 1;
                    if c == b'\n' {
                        self.state = ChunkState::TrailerStart;
                    }
                }
                ChunkState::Done => {}
            }
        }
        Ok(i)
    }

    /// The terminating chunk and its trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    fn end_size(&mut self) {
        self.state = if self.size == 0 {
            ChunkState::TrailerStart
        } else {
            ChunkState::Data(self.size)
        };
        self.size = 0;
    }
}

// ---- WebSocket framing (client side: we mask what we send, the server must not mask) --

/// A masked client frame (RFC 6455 §5.3); used for pongs.
pub fn ws_client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0x17, 0xc3, 0x81];
    let mut f = vec![0x80 | opcode];
    push_ws_len(&mut f, payload.len(), 0x80);
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// An unmasked server frame; `rsv1` marks a permessage-deflate message.
pub fn ws_server_frame(payload: &[u8], rsv1: bool) -> Vec<u8> {
    let mut f = vec![0x81 | if rsv1 { 0x40 } else { 0 }];
    push_ws_len(&mut f, payload.len(), 0);
    f.extend_from_slice(payload);
    f
}

fn push_ws_len(f: &mut Vec<u8>, len: usize, mask_bit: u8) {
    if len < 126 {
        f.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        f.push(mask_bit | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(mask_bit | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// One parsed frame header: (fin+rsv+opcode byte, header length, payload length, mask).
pub fn ws_frame_header(d: &[u8]) -> Option<(u8, usize, usize, Option<[u8; 4]>)> {
    if d.len() < 2 {
        return None;
    }
    let masked = d[1] & 0x80 != 0;
    let (len, mut h) = match d[1] & 0x7f {
        126 => (u64::from(u16::from_be_bytes([*d.get(2)?, *d.get(3)?])), 4),
        127 => (u64::from_be_bytes(d.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let m: [u8; 4] = d.get(h..h + 4)?.try_into().ok()?;
        h += 4;
        Some(m)
    } else {
        None
    };
    Some((d[0], h, usize::try_from(len).unwrap_or(usize::MAX), mask))
}
