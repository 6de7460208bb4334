//! Frame layout (RFC 6455 §5.2): opcodes, the header parser, server frame
//! encoding and masking. Pure: bytes in, values out.

use super::error::WsError;

/// Frame opcodes defined by RFC 6455 §5.2; reserved values never get this far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// Continues a fragmented message.
    Continuation = 0x0,
    /// First frame of a UTF-8 text message.
    Text = 0x1,
    /// First frame of a binary message.
    Binary = 0x2,
    /// Closing handshake.
    Close = 0x8,
    /// Keep-alive request; must be answered with a pong.
    Ping = 0x9,
    /// Keep-alive answer (or unsolicited heartbeat).
    Pong = 0xA,
}

impl Opcode {
    /// Maps the 4-bit wire value; `None` for the reserved opcodes.
    pub fn from_u8(v: u8) -> Option<Opcode> {
        match v {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    /// Control frames have extra rules (≤125 bytes, never fragmented, may interleave).
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// A decoded frame header, so the caller can learn a frame's size before its payload arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Last frame of its message.
    pub fin: bool,
    /// Per-message compressed (only meaningful with permessage-deflate).
    pub rsv1: bool,
    /// Always false: frames with it set are rejected.
    pub rsv2: bool,
    /// Always false: frames with it set are rejected.
    pub rsv3: bool,
    /// The frame type.
    pub opcode: Opcode,
    /// Always true: unmasked client frames are rejected.
    pub masked: bool,
    /// The key to XOR the payload with.
    pub mask: [u8; 4],
    /// Payload length as announced (≤ 2^63 - 1).
    pub payload_len: u64,
    /// Bytes of header before the payload (2..=14).
    pub header_len: usize,
}

/// Parses a client→server frame header from the start of `buf`.
///
/// `Ok(None)` means more bytes are needed. Errors are returned as soon as the
/// bytes seen so far prove the frame invalid. RSV1 is reported, not judged:
/// only the reader knows whether permessage-deflate was negotiated.
pub fn parse_frame_header(buf: &[u8]) -> Result<Option<FrameHeader>, WsError> {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };
    let fin = b0 & 0x80 != 0;
    let rsv1 = b0 & 0x40 != 0;
    let rsv2 = b0 & 0x20 != 0;
    let rsv3 = b0 & 0x10 != 0;
    if rsv2 || rsv3 {
        return Err(WsError::protocol("reserved bit set"));
    }
    let opcode = Opcode::from_u8(b0 & 0x0F).ok_or(WsError::protocol("reserved opcode"))?;
    let masked = b1 & 0x80 != 0;
    if !masked {
        return Err(WsError::protocol("unmasked client frame"));
    }
    let len7 = b1 & 0x7F;
    if opcode.is_control() {
        if !fin {
            return Err(WsError::protocol("fragmented control frame"));
        }
        if len7 > 125 {
            return Err(WsError::protocol("control frame too long"));
        }
    }
    let (payload_len, mut header_len) = match len7 {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let v = u64::from_be_bytes(a);
                if v >> 63 != 0 {
                    return Err(WsError::protocol("64-bit length with MSB set"));
                }
                (v, 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    let mut mask = [0u8; 4];
    match buf.get(header_len..header_len + 4) {
        Some(m) => mask.copy_from_slice(m),
        None => return Ok(None),
    }
    header_len += 4;
    Ok(Some(FrameHeader {
        fin,
        rsv1,
        rsv2,
        rsv3,
        opcode,
        masked,
        mask,
        payload_len,
        header_len,
    }))
}

/// Appends an unmasked server→client frame header; separate from the payload
/// so a shared payload can be sent without copying it per subscriber.
pub fn encode_frame_header(fin: bool, rsv1: bool, opcode: Opcode, len: usize, out: &mut Vec<u8>) {
    out.push(((fin as u8) << 7) | ((rsv1 as u8) << 6) | opcode as u8);
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xFFFF {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Encodes one complete unfragmented server→client frame.
pub fn encode_frame(opcode: Opcode, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    encode_frame_header(true, rsv1, opcode, payload.len(), &mut out);
    out.extend_from_slice(payload);
    out
}

/// Encodes a close frame; the reason is cut on a char boundary so the
/// payload stays within the 125-byte control frame limit and valid UTF-8.
pub fn encode_close(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    encode_frame(Opcode::Close, false, &payload)
}

/// Whether a peer may send this close code (RFC 6455 §7.4 plus the IANA
/// registry: 1012-1014 are registered and accepted; 1004-1006, 1015 and the
/// unassigned 1016-2999 are not).
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// An empty unmasked close frame: the answer to a client close that carried
/// no code (RFC 6455 §5.5.1 lets it be echoed empty).
pub const EMPTY_CLOSE: [u8; 2] = [0x80 | Opcode::Close as u8, 0];

/// An empty unmasked ping frame: the keepalive probe, the same bytes for
/// every connection.
pub const EMPTY_PING: [u8; 2] = [0x80 | Opcode::Ping as u8, 0];

/// Unmasks `src` into a fresh exactly sized vector.
pub(super) fn unmask(src: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    unmask_into(src, mask, 0, &mut out);
    out
}

/// Appends `src` XOR mask, where `src[0]` is payload byte number `offset`.
pub(super) fn unmask_into(src: &[u8], mask: [u8; 4], offset: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(src);
    let mut m8 = [0u8; 8];
    for (i, m) in m8.iter_mut().enumerate() {
        *m = mask[(offset + i) & 3];
    }
    let key = u64::from_ne_bytes(m8);
    let mut chunks = out[start..].chunks_exact_mut(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(a) ^ key).to_ne_bytes());
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(m8) {
        *b ^= m;
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Client-side frame builders for the codec tests.

    /// The mask every test frame uses.
    pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// Builds a masked client frame with an arbitrary first byte.
    pub fn raw(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![b0];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        out
    }

    /// A masked client frame from its flags and opcode.
    pub fn frame(fin: bool, rsv1: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        raw(((fin as u8) << 7) | ((rsv1 as u8) << 6) | op, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn header_lengths_and_incomplete() {
        for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
            let f = frame(true, false, 2, &vec![7u8; len]);
            let hl = f.len() - len;
            for k in 0..hl {
                assert_eq!(
                    parse_frame_header(&f[..k]),
                    Ok(None),
                    "len {len} prefix {k}"
                );
            }
            let h = parse_frame_header(&f).unwrap().unwrap();
            assert_eq!((h.payload_len, h.header_len), (len as u64, hl));
            assert!(h.fin && h.masked && !h.rsv1 && h.mask == MASK);
            assert_eq!(h.opcode, Opcode::Binary);
        }
    }

    #[test]
    fn header_rejections() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                parse_frame_header(&[0x80 | op, 0x80]).unwrap_err().code,
                1002
            );
        }
        assert_eq!(parse_frame_header(&[0xA1, 0x80]).unwrap_err().code, 1002);
        assert_eq!(parse_frame_header(&[0x91, 0x80]).unwrap_err().code, 1002);
        assert_eq!(parse_frame_header(&[0x81, 0x00]).unwrap_err().code, 1002);
        assert_eq!(
            parse_frame_header(&[0x89, 0x80 | 126]).unwrap_err().code,
            1002
        );
        assert_eq!(parse_frame_header(&[0x09, 0x80]).unwrap_err().code, 1002);
        let mut big = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse_frame_header(&big).unwrap_err().code, 1002);
        // Non-minimal encodings are accepted.
        big[2] = 0;
        big[9] = 5;
        big.extend_from_slice(&MASK);
        assert_eq!(parse_frame_header(&big).unwrap().unwrap().payload_len, 5);
        let h = parse_frame_header(&[0x81, 0xFE, 0, 3, 1, 2, 3, 4])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, h.header_len), (3, 8));
        // RSV1 is reported, not rejected, by the header parser.
        assert!(
            parse_frame_header(&[0xC1, 0x80, 0, 0, 0, 0])
                .unwrap()
                .unwrap()
                .rsv1
        );
    }

    #[test]
    fn encoding() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let f = encode_frame(Opcode::Text, false, &vec![b'a'; len]);
            let hl = f.len() - len;
            assert_eq!(
                hl,
                if len < 126 {
                    2
                } else if len < 65536 {
                    4
                } else {
                    10
                }
            );
            assert_eq!(f[0], 0x81);
            assert_eq!(f[1] & 0x80, 0);
        }
        let mut out = Vec::new();
        encode_frame_header(false, true, Opcode::Binary, 3, &mut out);
        assert_eq!(out, [0x42, 3]);
        let c = encode_close(1000, "bye");
        assert_eq!(c, [0x88, 5, 0x03, 0xE8, b'b', b'y', b'e']);
        let long = "é".repeat(100); // 200 bytes, 2 per char
        let c = encode_close(1001, &long);
        assert_eq!(c[1] as usize, 2 + 122);
        assert!(std::str::from_utf8(&c[4..]).is_ok());
        assert!(c.len() - 2 <= 125);
    }
}
