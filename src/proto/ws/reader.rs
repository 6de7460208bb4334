//! Message reassembly: frames in, whole client messages out, with
//! fragmentation, control-frame interleaving, UTF-8 and size rules checked
//! as the bytes arrive. The reader keeps only the state that must survive
//! between reads and owns no buffer while the connection is idle (a push
//! server holds many mostly silent subscribers).

use super::deflate;
use super::error::{SizeLimit, WsError};
use super::frame::{is_valid_close_code, parse_frame_header, unmask, unmask_into, Opcode};
use super::utf8::Utf8Validator;

/// One complete event decoded from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A whole text message; the bytes are valid UTF-8.
    Text(Vec<u8>),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A ping; answer with a pong carrying the same payload.
    Ping(Vec<u8>),
    /// A pong (reply to our ping or unsolicited heartbeat).
    Pong(Vec<u8>),
    /// The client started (or answered) the closing handshake: code (None when the
    /// payload was empty; already validated) and reason (valid UTF-8).
    Close(Option<u16>, String),
}

/// A fragmented message in progress; boxed so idle connections don't pay for it.
#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
}

/// Per-connection incoming protocol state (fragmentation, UTF-8, limits).
///
/// Owns no buffer while idle: 32 bytes on 64-bit targets, plus a heap box
/// only while a fragmented message is being assembled.
#[derive(Debug)]
pub struct MessageReader {
    max: usize,
    /// Largest payload of one data frame (control frames have their own
    /// 125-byte rule).
    max_frame: usize,
    /// Payload bytes of the frame at the head of the caller's buffer already
    /// fed to `utf8` by an earlier call that found the frame incomplete.
    scanned: usize,
    partial: Option<Box<Partial>>,
    utf8: Utf8Validator,
    deflate: bool,
}

impl MessageReader {
    /// A reader enforcing `max_message_size` (after inflation too); `deflate`
    /// says whether permessage-deflate was negotiated (RSV1 allowed).
    pub fn new(max_message_size: usize, deflate: bool) -> Self {
        MessageReader {
            max: max_message_size,
            max_frame: usize::MAX,
            scanned: 0,
            partial: None,
            utf8: Utf8Validator::new(),
            deflate,
        }
    }

    /// Also refuses any single data frame over `max_frame` bytes (1009).
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// Upper bound on compressed message bytes: deflate can expand
    /// incompressible data slightly, so a message of `max` bytes still fits.
    fn compressed_limit(&self) -> usize {
        self.max.saturating_add(self.max / 1024 + 64)
    }

    /// Parses at most one COMPLETE frame from the start of `buf` (the caller
    /// keeps unconsumed bytes and calls again when more arrive).
    ///
    /// `Ok((0, None))`: incomplete frame, need more bytes (text already seen is
    /// validated so invalid UTF-8 fails fast; oversize announcements fail with
    /// 1009 as soon as the header is in). `Ok((n, None))`: consumed a frame that
    /// produced no event (a non-final fragment). `Ok((n, Some(event)))`: a
    /// complete event. After any `Err` or a `Close` event, stop reading.
    pub fn read(&mut self, buf: &[u8]) -> Result<(usize, Option<WsEvent>), WsError> {
        let Some(h) = parse_frame_header(buf)? else {
            return Ok((0, None));
        };
        if h.rsv1 && (!self.deflate || !matches!(h.opcode, Opcode::Text | Opcode::Binary)) {
            return Err(WsError::protocol("unexpected RSV1"));
        }
        let (text_stream, limit, already) = match h.opcode {
            Opcode::Continuation => {
                let p = self
                    .partial
                    .as_deref()
                    .ok_or(WsError::protocol("continuation without a message"))?;
                let limit = if p.compressed {
                    self.compressed_limit()
                } else {
                    self.max
                };
                (p.text && !p.compressed, limit, p.data.len())
            }
            Opcode::Text | Opcode::Binary => {
                if self.partial.is_some() {
                    return Err(WsError::protocol("new message inside a fragmented one"));
                }
                let limit = if h.rsv1 {
                    self.compressed_limit()
                } else {
                    self.max
                };
                (h.opcode == Opcode::Text && !h.rsv1, limit, 0)
            }
            _ => (false, 125, 0),
        };
        if h.payload_len > self.max_frame as u64 && !h.opcode.is_control() {
            return Err(WsError::too_big(SizeLimit::Frame, "frame too big"));
        }
        if h.payload_len > limit.saturating_sub(already) as u64 {
            return Err(WsError::too_big(SizeLimit::Message, "message too big"));
        }
        let len = h.payload_len as usize;
        let total = h
            .header_len
            .checked_add(len)
            .ok_or(WsError::too_big(SizeLimit::Message, "message too big"))?;
        let available = buf.len().min(total) - h.header_len;
        if text_stream {
            if self.scanned == 0 && h.opcode == Opcode::Text {
                self.utf8 = Utf8Validator::new();
            }
            let start = self.scanned.min(available);
            let src = &buf[h.header_len + start..h.header_len + available];
            feed_masked(&mut self.utf8, src, h.mask, start)?;
            self.scanned = available;
        }
        if buf.len() < total {
            return Ok((0, None));
        }
        self.scanned = 0;
        let src = &buf[h.header_len..total];
        let event = match h.opcode {
            Opcode::Ping => Some(WsEvent::Ping(unmask(src, h.mask))),
            Opcode::Pong => Some(WsEvent::Pong(unmask(src, h.mask))),
            Opcode::Close => Some(parse_close(&unmask(src, h.mask))?),
            Opcode::Text | Opcode::Binary => {
                let part = Partial {
                    text: h.opcode == Opcode::Text,
                    compressed: h.rsv1,
                    data: unmask(src, h.mask),
                };
                if h.fin {
                    Some(self.finish(part)?)
                } else {
                    self.partial = Some(Box::new(part));
                    None
                }
            }
            Opcode::Continuation => {
                let Some(p) = self.partial.as_deref_mut() else {
                    return Err(WsError::protocol("continuation without a message"));
                };
                let need = p.data.len() + len;
                if p.data.capacity() < need {
                    // Amortised growth, but never past the limit.
                    let target = need.max(p.data.capacity().saturating_mul(2)).min(limit);
                    p.data.reserve_exact(target.max(need) - p.data.len());
                }
                unmask_into(src, h.mask, 0, &mut p.data);
                if h.fin {
                    match self.partial.take() {
                        Some(p) => Some(self.finish(*p)?),
                        None => None,
                    }
                } else {
                    None
                }
            }
        };
        Ok((total, event))
    }

    /// Turns a complete message into an event: inflates and validates text.
    fn finish(&mut self, p: Partial) -> Result<WsEvent, WsError> {
        let data = if p.compressed {
            deflate::inflate(&p.data, self.max)?
        } else {
            p.data
        };
        if !p.text {
            return Ok(WsEvent::Binary(data));
        }
        let valid = if p.compressed {
            std::str::from_utf8(&data).is_ok()
        } else {
            self.utf8.is_complete()
        };
        self.utf8 = Utf8Validator::new();
        if valid {
            Ok(WsEvent::Text(data))
        } else {
            Err(WsError::invalid_data("invalid UTF-8 in text message"))
        }
    }
}

/// Validates a close payload (RFC 6455 §5.5.1, §7.4).
fn parse_close(p: &[u8]) -> Result<WsEvent, WsError> {
    match p {
        [] => Ok(WsEvent::Close(None, String::new())),
        [_] => Err(WsError::protocol("close payload of 1 byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(WsError::protocol("invalid close code"));
            }
            match std::str::from_utf8(reason) {
                Ok(r) => Ok(WsEvent::Close(Some(code), r.to_owned())),
                Err(_) => Err(WsError::invalid_data("close reason is not UTF-8")),
            }
        }
    }
}

/// Feeds masked bytes to the validator through a small stack buffer (no allocation).
fn feed_masked(
    v: &mut Utf8Validator,
    src: &[u8],
    mask: [u8; 4],
    offset: usize,
) -> Result<(), WsError> {
    let mut tmp = [0u8; 256];
    for (ci, chunk) in src.chunks(tmp.len()).enumerate() {
        let base = offset + ci * tmp.len();
        for (i, (t, b)) in tmp.iter_mut().zip(chunk).enumerate() {
            *t = b ^ mask[(base + i) & 3];
        }
        v.feed(&tmp[..chunk.len()])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::frame::testing::*;
    use super::*;

    /// Drives a reader like the reactor would: keeps unconsumed bytes, feeds
    /// `chunk` bytes at a time, collects events until the first error.
    fn drive(r: &mut MessageReader, input: &[u8], chunk: usize) -> Result<Vec<WsEvent>, WsError> {
        let mut buf = Vec::new();
        let mut events = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                let (n, ev) = r.read(&buf)?;
                events.extend(ev);
                if n == 0 {
                    break;
                }
                buf.drain(..n);
            }
        }
        assert!(buf.is_empty(), "leftover bytes");
        Ok(events)
    }

    fn all(input: &[u8]) -> Result<Vec<WsEvent>, WsError> {
        drive(&mut MessageReader::new(1 << 20, false), input, usize::MAX)
    }

    fn code(r: Result<Vec<WsEvent>, WsError>) -> u16 {
        r.expect_err("expected an error").code
    }

    #[test]
    fn reader_is_small() {
        assert!(std::mem::size_of::<MessageReader>() <= 48);
    }

    #[test]
    fn frame_limit_is_apart_from_the_message_limit() {
        let mut r = MessageReader::new(1000, false).with_max_frame(100);
        let f = frame(true, false, 2, &[0; 101]);
        let e = r.read(&f[..8]).unwrap_err();
        assert_eq!((e.code, e.limit), (1009, Some(SizeLimit::Frame)));
        // Several frames under the frame limit make a message up to its own.
        let mut input = frame(false, false, 2, &[1; 100]);
        input.extend(frame(true, false, 0, &[2; 100]));
        let ev = drive(
            &mut MessageReader::new(1000, false).with_max_frame(100),
            &input,
            7,
        );
        assert_eq!(
            ev.unwrap(),
            vec![WsEvent::Binary([[1; 100], [2; 100]].concat())]
        );
        let e = drive(&mut MessageReader::new(150, false), &input, 7).unwrap_err();
        assert_eq!(e.limit, Some(SizeLimit::Message));
        // Pings are never held to the frame limit (their own rule is 125).
        let ping = frame(true, false, 9, &[0; 120]);
        assert!(MessageReader::new(1000, false)
            .with_max_frame(10)
            .read(&ping)
            .is_ok());
    }

    #[test]
    fn simple_messages() {
        let mut input = frame(true, false, 1, "héllo".as_bytes());
        input.extend(frame(true, false, 2, &[0, 1, 2, 255]));
        input.extend(frame(true, false, 9, b"p"));
        input.extend(frame(true, false, 0xA, b""));
        input.extend(frame(true, false, 1, b""));
        input.extend(frame(true, false, 8, &[0x03, 0xE8, b'o', b'k']));
        assert_eq!(
            all(&input).unwrap(),
            vec![
                WsEvent::Text("héllo".into()),
                WsEvent::Binary(vec![0, 1, 2, 255]),
                WsEvent::Ping(b"p".to_vec()),
                WsEvent::Pong(vec![]),
                WsEvent::Text(vec![]),
                WsEvent::Close(Some(1000), "ok".into()),
            ]
        );
    }

    #[test]
    fn unmasked_and_masked_lengths() {
        assert_eq!(code(all(&[0x81, 0x02, b'h', b'i'])), 1002);
        for len in [125usize, 126, 65535, 65536, 100_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let ev = all(&frame(true, false, 2, &payload)).unwrap();
            assert_eq!(ev, vec![WsEvent::Binary(payload)]);
        }
    }

    #[test]
    fn fragmentation_with_interleaved_control() {
        let mut input = frame(false, false, 1, b"fra");
        input.extend(frame(true, false, 9, b"ping"));
        input.extend(frame(false, false, 0, b"gme"));
        input.extend(frame(true, false, 0xA, b"pong"));
        input.extend(frame(true, false, 0, b"nted"));
        input.extend(frame(false, false, 2, &[1]));
        input.extend(frame(true, false, 0, &[2]));
        assert_eq!(
            all(&input).unwrap(),
            vec![
                WsEvent::Ping(b"ping".to_vec()),
                WsEvent::Pong(b"pong".to_vec()),
                WsEvent::Text(b"fragmented".to_vec()),
                WsEvent::Binary(vec![1, 2]),
            ]
        );
        let mut r = MessageReader::new(100, false);
        let f = frame(false, false, 1, b"a");
        assert_eq!(r.read(&f), Ok((f.len(), None)));
        assert!(r.partial.is_some());
    }

    #[test]
    fn sequencing_errors() {
        assert_eq!(code(all(&frame(true, false, 0, b"x"))), 1002);
        let mut input = frame(false, false, 1, b"a");
        input.extend(frame(true, false, 1, b"b"));
        assert_eq!(code(all(&input)), 1002);
        let mut input = frame(false, false, 2, b"a");
        input.extend(frame(false, false, 2, b"b"));
        assert_eq!(code(all(&input)), 1002);
        // Fragmented ping.
        assert_eq!(code(all(&frame(false, false, 9, b""))), 1002);
        // Control frame of 126 bytes.
        assert_eq!(code(all(&frame(true, false, 9, &[0; 126]))), 1002);
        assert_eq!(all(&frame(true, false, 9, &[0; 125])).unwrap().len(), 1);
    }

    #[test]
    fn reserved_bits_and_opcodes() {
        assert_eq!(code(all(&frame(true, true, 1, b"x"))), 1002);
        assert_eq!(code(all(&raw(0xA1, b"x"))), 1002);
        assert_eq!(code(all(&raw(0x91, b"x"))), 1002);
        assert_eq!(code(all(&raw(0x83, b""))), 1002);
        assert_eq!(code(all(&raw(0x8B, b""))), 1002);
        // With deflate: RSV1 on control or continuation is still an error.
        let mut r = MessageReader::new(1000, true);
        assert_eq!(r.read(&frame(true, true, 9, b"")).unwrap_err().code, 1002);
        let mut r = MessageReader::new(1000, true);
        let mut input = frame(false, false, 2, b"a");
        input.extend(frame(true, true, 0, b"b"));
        assert_eq!(drive(&mut r, &input, usize::MAX).unwrap_err().code, 1002);
    }

    #[test]
    fn close_frames() {
        assert_eq!(
            all(&frame(true, false, 8, b"")).unwrap(),
            vec![WsEvent::Close(None, String::new())]
        );
        assert_eq!(code(all(&frame(true, false, 8, &[3]))), 1002);
        for c in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            let ev = all(&frame(true, false, 8, &c.to_be_bytes())).unwrap();
            assert_eq!(ev, vec![WsEvent::Close(Some(c), String::new())], "code {c}");
        }
        for c in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                code(all(&frame(true, false, 8, &c.to_be_bytes()))),
                1002,
                "code {c}"
            );
        }
        let mut p = 1000u16.to_be_bytes().to_vec();
        p.extend_from_slice(&[0xCE, 0xBA, 0xED, 0xA0, 0x80]);
        assert_eq!(code(all(&frame(true, false, 8, &p))), 1007);
    }

    #[test]
    fn utf8_across_fragments() {
        let snow = "☃".as_bytes(); // E2 98 83
        let mut input = frame(false, false, 1, &snow[..1]);
        input.extend(frame(false, false, 0, &snow[1..2]));
        input.extend(frame(true, false, 0, &snow[2..]));
        assert_eq!(all(&input).unwrap(), vec![WsEvent::Text(snow.to_vec())]);
        // Incomplete at the end of the message.
        let mut input = frame(false, false, 1, b"ok");
        input.extend(frame(true, false, 0, &snow[..2]));
        assert_eq!(code(all(&input)), 1007);
        // Fail fast: the second fragment is invalid, the message never finishes.
        let mut r = MessageReader::new(1000, false);
        let f1 = frame(false, false, 1, "κόσμε".as_bytes());
        assert_eq!(r.read(&f1), Ok((f1.len(), None)));
        let f2 = frame(false, false, 0, &[0xCE, 0xBA, 0xF4, 0x90, 0x80, 0x80]);
        assert_eq!(r.read(&f2).unwrap_err().code, 1007);
        // Binary messages are not validated.
        let mut input = frame(false, false, 2, &[0xFF]);
        input.extend(frame(true, false, 0, &[0xFE]));
        assert_eq!(
            all(&input).unwrap(),
            vec![WsEvent::Binary(vec![0xFF, 0xFE])]
        );
    }

    #[test]
    fn utf8_fail_fast_inside_partial_frame() {
        // Like Autobahn 6.4.3: one frame whose bytes arrive in chunks.
        let mut payload = "κόσμε".as_bytes().to_vec();
        let valid_len = payload.len();
        payload.extend_from_slice(&[0xF4, 0x90, 0x80, 0x80]);
        payload.extend_from_slice(b"edited");
        let f = frame(true, false, 1, &payload);
        let mut r = MessageReader::new(1000, false);
        let cut = f.len() - payload.len() + valid_len + 2; // valid text + F4 90
        assert_eq!(r.read(&f[..cut - 2]), Ok((0, None)));
        assert_eq!(r.read(&f[..cut - 1]), Ok((0, None)));
        assert_eq!(r.read(&f[..cut]).unwrap_err().code, 1007);
    }

    #[test]
    fn every_split_point() {
        let mut small = frame(false, false, 1, "héllo ".as_bytes());
        small.extend(frame(true, false, 9, b"ping!"));
        small.extend(frame(true, false, 0, &vec![b'w'; 300]));
        let mut input = small.clone();
        input.extend(frame(true, false, 2, &vec![9u8; 70000]));
        input.extend(frame(true, false, 1, "☃𝄞".as_bytes()));
        input.extend(frame(true, false, 8, &[0x03, 0xE9]));
        let expected = all(&input).unwrap();
        assert_eq!(expected.len(), 5);
        for chunk in [1usize, 2, 3, 5, 7, 64, 1000] {
            let mut r = MessageReader::new(1 << 20, false);
            assert_eq!(
                drive(&mut r, &input, chunk).unwrap(),
                expected,
                "chunk {chunk}"
            );
        }
        // Two-piece split at every point of the small frames.
        small.extend(frame(true, false, 1, "☃𝄞".as_bytes()));
        let small = &small[..];
        let small_expected = all(small).unwrap();
        // Reads every complete frame from the front of `buf`, as a caller does.
        let read_all = |r: &mut MessageReader, buf: &mut Vec<u8>, events: &mut Vec<WsEvent>| loop {
            let (n, ev) = r.read(buf).unwrap();
            events.extend(ev);
            if n == 0 {
                break;
            }
            buf.drain(..n);
        };
        for k in 0..small.len() {
            let mut r = MessageReader::new(1 << 20, false);
            let mut buf = small[..k].to_vec();
            let mut events = Vec::new();
            read_all(&mut r, &mut buf, &mut events);
            buf.extend_from_slice(&small[k..]);
            read_all(&mut r, &mut buf, &mut events);
            assert!(buf.is_empty());
            assert_eq!(events, small_expected, "split {k}");
        }
    }

    #[test]
    fn size_limits() {
        // Header alone announcing too much fails at once.
        let mut r = MessageReader::new(100, false);
        let f = frame(true, false, 2, &[0; 101]);
        assert_eq!(r.read(&f[..8]).unwrap_err().code, 1009);
        let mut r = MessageReader::new(100, false);
        let f = frame(true, false, 2, &[0; 100]);
        assert_eq!(r.read(&f).unwrap().0, f.len());
        // Fragments accumulating past the cap.
        let mut input = frame(false, false, 1, &[b'a'; 60]);
        input.extend(frame(false, false, 0, &[b'a'; 40]));
        input.extend(frame(true, false, 0, &[b'a'; 1]));
        let mut r = MessageReader::new(100, false);
        assert_eq!(drive(&mut r, &input, usize::MAX).unwrap_err().code, 1009);
        // Huge 64-bit announcement.
        let mut r = MessageReader::new(usize::MAX, false);
        let hdr = [
            0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
        ];
        assert!(r.read(&hdr).is_ok() || r.read(&hdr).unwrap_err().code == 1009);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..3000 {
            let len = (next() % 64) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 2 == 0 && buf.len() > 1 {
                buf[1] |= 0x80; // mostly masked, to get past the header checks
                buf[0] &= 0x8F;
            }
            let mut r = MessageReader::new(40, round % 3 == 0);
            let mut rest = &buf[..];
            while let Ok((n, _)) = r.read(rest) {
                if n == 0 {
                    break;
                }
                rest = &rest[n..];
            }
        }
    }

    #[test]
    fn compressed_messages() {
        let text = "hello hello hello hello compressed world ".repeat(50);
        let c = deflate::compress(text.as_bytes(), 15).unwrap();
        let ev = drive(
            &mut MessageReader::new(1 << 20, true),
            &frame(true, true, 1, &c),
            usize::MAX,
        );
        assert_eq!(ev.unwrap(), vec![WsEvent::Text(text.clone().into_bytes())]);
        // Fragmented, with a ping in the middle, byte by byte.
        let (a, b) = c.split_at(c.len() / 2);
        let mut input = frame(false, true, 1, a);
        input.extend(frame(true, false, 9, b"x"));
        input.extend(frame(true, false, 0, b));
        for chunk in [1usize, usize::MAX] {
            let ev = drive(&mut MessageReader::new(1 << 20, true), &input, chunk).unwrap();
            assert_eq!(
                ev,
                vec![
                    WsEvent::Ping(b"x".to_vec()),
                    WsEvent::Text(text.clone().into_bytes())
                ]
            );
        }
        // Uncompressed messages still work on a deflate connection.
        let ev = drive(
            &mut MessageReader::new(100, true),
            &frame(true, false, 2, b"raw"),
            usize::MAX,
        );
        assert_eq!(ev.unwrap(), vec![WsEvent::Binary(b"raw".to_vec())]);
        // Compressed invalid UTF-8 text.
        let bad = deflate::compress(&[0xFF; 100], 15).unwrap();
        let r = drive(
            &mut MessageReader::new(1000, true),
            &frame(true, true, 1, &bad),
            usize::MAX,
        );
        assert_eq!(r.unwrap_err().code, 1007);
        // Inflated size over the cap.
        let r = drive(
            &mut MessageReader::new(1000, true),
            &frame(true, true, 2, &bad),
            usize::MAX,
        );
        assert!(r.is_ok());
        let big = deflate::compress(&[0u8; 5000], 15).unwrap();
        let r = drive(
            &mut MessageReader::new(1000, true),
            &frame(true, true, 2, &big),
            usize::MAX,
        );
        assert_eq!(r.unwrap_err().code, 1009);
    }
}
