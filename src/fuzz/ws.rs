//! Target `ws_frames`: the WebSocket message reader (frames, reassembly,
//! inflate, message and frame size limits) on raw client bytes and on valid messages the
//! driver frames itself, fed as `reactor/websocket.rs` feeds it. Checked:
//! no event without consuming, events within the limit and the protocol
//! (UTF-8 text, short control frames, valid close codes), only 1002, 1007
//! and 1009 as errors, whole and split feeds agree, and built messages
//! read back exactly as built.

use crate::proto::ws::frame::{encode_frame_header, is_valid_close_code};
use crate::proto::ws::{deflate, MessageReader, Opcode, WsEvent};

use super::{for_each_piece, Input, Splits};

/// What a reader produced from a stream: events until the first error or
/// close, and the bytes it was still waiting on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct WsOutcome {
    events: Vec<WsEvent>,
    error: Option<(u16, &'static str)>,
    leftover: Vec<u8>,
}

/// Invariants of one event: the reader only hands on what the protocol and
/// the size limit allow.
fn check_ws_event(event: &WsEvent, max: usize) {
    match event {
        WsEvent::Text(t) => {
            assert!(std::str::from_utf8(t).is_ok(), "text event is not UTF-8");
            assert!(t.len() <= max, "text of {} bytes, max {max}", t.len());
        }
        WsEvent::Binary(b) => assert!(b.len() <= max, "binary of {} bytes, max {max}", b.len()),
        WsEvent::Ping(p) | WsEvent::Pong(p) => assert!(p.len() <= 125),
        WsEvent::Close(code, reason) => {
            assert!(code.is_none_or(is_valid_close_code), "close code {code:?}");
            assert!(code.is_some() || reason.is_empty());
            assert!(reason.len() <= 123);
        }
    }
}

/// Feeds `stream` to a reader like `reactor/websocket.rs` `feed_ws`: every
/// complete frame is read, an incomplete one is kept and re-offered with
/// the next bytes; reading stops at the first error or close.
pub(super) fn run_ws(
    max: usize,
    max_frame: usize,
    deflate: bool,
    stream: &[u8],
    splits: Option<Splits>,
) -> WsOutcome {
    let mut reader = MessageReader::new(max, deflate).with_max_frame(max_frame);
    let mut out = WsOutcome {
        events: Vec::new(),
        error: None,
        leftover: Vec::new(),
    };
    let mut kept: Vec<u8> = Vec::new();
    for_each_piece(stream, splits, |piece| {
        kept.extend_from_slice(piece);
        let mut pos = 0;
        while pos < kept.len() {
            match reader.read(&kept[pos..]) {
                Ok((0, event)) => {
                    assert!(event.is_none(), "event without consuming a frame");
                    break;
                }
                Ok((n, event)) => {
                    assert!(n <= kept.len() - pos, "consumed more than the input");
                    pos += n;
                    if let Some(event) = event {
                        check_ws_event(&event, max);
                        let close = matches!(event, WsEvent::Close(..));
                        out.events.push(event);
                        if close {
                            return false;
                        }
                    }
                }
                Err(e) => {
                    assert!(
                        matches!(e.code, 1002 | 1007 | 1009),
                        "close code {}",
                        e.code
                    );
                    out.error = Some((e.code, e.reason));
                    return false;
                }
            }
        }
        kept.drain(..pos);
        true
    });
    if out.error.is_none() && !matches!(out.events.last(), Some(WsEvent::Close(..))) {
        out.leftover = kept;
    }
    out
}

/// Close codes a built close frame may carry (all valid).
const CLOSE_CODES: [u16; 6] = [1000, 1001, 1003, 1011, 3000, 4999];

/// Frames the driver wrote from the input, and what reading them must give.
struct BuiltFrames {
    wire: Vec<u8>,
    events: Vec<WsEvent>,
    /// The close code the reader must fail with after `events`, if any.
    error: Option<u16>,
}

/// Appends one masked client frame.
fn push_frame(out: &mut Vec<u8>, fin: bool, rsv1: bool, op: Opcode, mask: [u8; 4], payload: &[u8]) {
    let start = out.len();
    encode_frame_header(fin, rsv1, op, payload.len(), out);
    out[start + 1] |= 0x80;
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
}

/// Writes valid client messages from the input (the fuzzer rarely finds
/// valid deflate data or masks on its own) and the events they must read
/// as. Each message takes a flags byte (kind, fragments, compression,
/// interleaved ping, mask), a length (two bytes, with a repeat factor) and
/// its payload bytes.
fn build_frames(mut input: Input<'_>, max: usize, max_frame: usize, deflate: bool) -> BuiltFrames {
    let mut b = BuiltFrames {
        wire: Vec::new(),
        events: Vec::new(),
        error: None,
    };
    while !input.data.is_empty() && b.error.is_none() {
        let flags = input.byte();
        let len = input.u16();
        let mask = if flags & 0x80 != 0 {
            [input.byte(), input.byte(), input.byte(), input.byte()]
        } else {
            [0; 4]
        };
        let raw = input.take(usize::from(len & 0x3FFF));
        // Long, compressible messages without long inputs; capped just past
        // 64 KiB (which needs the 64-bit length) so one run stays fast.
        let repeat =
            [1usize, 4, 64, 1024][usize::from(len >> 14)].min((72 << 10) / raw.len().max(1));
        match flags & 7 {
            kind @ (2 | 3) => {
                let p = &raw[..raw.len().min(125)];
                let op = if kind == 2 {
                    Opcode::Ping
                } else {
                    Opcode::Pong
                };
                push_frame(&mut b.wire, true, false, op, mask, p);
                b.events.push(if kind == 2 {
                    WsEvent::Ping(p.to_vec())
                } else {
                    WsEvent::Pong(p.to_vec())
                });
            }
            4 => {
                let code = CLOSE_CODES[usize::from(raw.first().copied().unwrap_or(0)) % 6];
                let text = String::from_utf8_lossy(raw.get(1..).unwrap_or_default());
                let mut end = text.len().min(123);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(&text.as_bytes()[..end]);
                push_frame(&mut b.wire, true, false, Opcode::Close, mask, &p);
                b.events
                    .push(WsEvent::Close(Some(code), text[..end].to_string()));
                return b;
            }
            5 => {
                push_frame(&mut b.wire, true, false, Opcode::Close, mask, &[]);
                b.events.push(WsEvent::Close(None, String::new()));
                return b;
            }
            kind => {
                let text = kind == 0 || kind == 6;
                let mut data = raw.repeat(repeat);
                if text {
                    data = String::from_utf8_lossy(&data).into_owned().into_bytes();
                }
                let oversize = data.len() > max;
                let compressed = if deflate && flags & 0x20 != 0 {
                    deflate::compress(&data, 9 + (flags >> 3 & 7).min(6))
                } else {
                    None
                };
                let wire_payload = compressed.as_deref().unwrap_or(&data);
                let fragments = 1 + usize::from(flags >> 3 & 3);
                let step = wire_payload.len().div_ceil(fragments).max(1);
                let pieces: Vec<&[u8]> = if wire_payload.is_empty() {
                    vec![&[]; 1]
                } else {
                    wire_payload.chunks(step).collect()
                };
                for (i, piece) in pieces.iter().enumerate() {
                    let fin = i + 1 == pieces.len();
                    let (op, rsv1) = if i == 0 {
                        let op = if text { Opcode::Text } else { Opcode::Binary };
                        (op, compressed.is_some())
                    } else {
                        (Opcode::Continuation, false)
                    };
                    push_frame(&mut b.wire, fin, rsv1, op, mask, piece);
                    // A data frame over max_frame fails as soon as its header
                    // is in, whatever the message around it.
                    if piece.len() > max_frame {
                        b.error = Some(1009);
                        return b;
                    }
                    // A ping between fragments is answered, then the message goes on.
                    if !fin && i == 0 && flags & 0x40 != 0 && !oversize {
                        push_frame(&mut b.wire, true, false, Opcode::Ping, mask, b"i");
                        b.events.push(WsEvent::Ping(b"i".to_vec()));
                    }
                }
                if oversize {
                    b.error = Some(1009);
                } else if text {
                    b.events.push(WsEvent::Text(data));
                } else {
                    b.events.push(WsEvent::Binary(data));
                }
            }
        }
    }
    b
}

/// WebSocket frame decoder with reassembly and inflate, whole and split.
///
/// Input: a setup byte (deflate negotiated in bit 0, message size limit
/// in bits 1-3, built frames in bit 4, frame size limit in bits 5-7), a
/// split seed, then either raw client bytes or messages
/// for [`build_frames`], whose decoded result must match what was built.
pub fn ws_frames(data: &[u8]) {
    const MAX: [usize; 8] = [1, 16, 125, 1000, 4096, 1 << 16, 1 << 20, usize::MAX];
    // max-frame-size: none first (so a zero keeps the first round's
    // meaning), then around the frame header's length forms (125/126,
    // 65535/65536) and the sizes built messages are cut into.
    const MAX_FRAME: [usize; 8] = [usize::MAX, 1, 16, 125, 126, 1000, 65535, 65536];
    let mut input = Input::new(data);
    let setup = input.byte();
    let deflate = setup & 1 != 0;
    let max = MAX[usize::from(setup >> 1 & 7)];
    let max_frame = MAX_FRAME[usize::from(setup >> 5)];
    let seed = input.byte();
    let (wire, expected) = if setup & 0x10 != 0 {
        let built = build_frames(input, max, max_frame, deflate);
        (built.wire.clone(), Some(built))
    } else {
        (input.rest().to_vec(), None)
    };
    let whole = run_ws(max, max_frame, deflate, &wire, None);
    let split = run_ws(
        max,
        max_frame,
        deflate,
        &wire,
        Some(Splits::new(seed, wire.len())),
    );
    assert_eq!(whole, split, "split feed differs from whole feed");
    if let Some(built) = expected {
        assert_eq!(
            whole.events, built.events,
            "built messages read differently"
        );
        assert_eq!(whole.error.map(|e| e.0), built.error, "{:?}", whole.error);
        assert!(whole.leftover.is_empty());
    }
}
