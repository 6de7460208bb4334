//! WebSocket receive path of a subscriber: parse server frames, answer pings, reassemble
//! fragments, and inflate permessage-deflate messages (client side of RFC 7692).

use flate2::{Decompress, FlushDecompress};

use super::sub::{RxCtx, Sub};
use crate::wire::{ws_client_frame, ws_frame_header, MAX_CARRY};
use crate::Res;

/// WebSocket receive state (only allocated for WS subscribers).
pub(super) struct WsRx {
    inflate: Option<Decompress>,
    reset_each: bool,
    frag: Vec<u8>,
    frag_rsv1: bool,
}

impl WsRx {
    /// Receive state for what the 101 response's `Sec-WebSocket-Extensions` (lowercased)
    /// agreed to.
    pub(super) fn negotiated(ext: &str) -> WsRx {
        let deflate = ext.contains("permessage-deflate");
        WsRx {
            inflate: deflate.then(|| Decompress::new(false)),
            reset_each: ext.contains("server_no_context_takeover"),
            frag: Vec::new(),
            frag_rsv1: false,
        }
    }
}

impl Sub {
    pub(super) fn ws_frames(&mut self, data: &[u8], cx: &mut RxCtx) -> Res<usize> {
        let mut pos = 0;
        while let Some((b0, h, len, mask)) = ws_frame_header(&data[pos..]) {
            if len > MAX_CARRY {
                return Err("websocket frame too large".into());
            }
            if data.len() - pos < h + len {
                break;
            }
            let raw = &data[pos + h..pos + h + len];
            match mask {
                // Servers must not mask (RFC 6455 §5.1); tolerate it rather than abort.
                Some(m) => {
                    let un: Vec<u8> = raw.iter().enumerate().map(|(i, b)| b ^ m[i % 4]).collect();
                    self.ws_frame(b0, &un, cx)?;
                }
                None => self.ws_frame(b0, raw, cx)?,
            }
            pos += h + len;
        }
        Ok(pos)
    }

    fn ws_frame(&mut self, b0: u8, payload: &[u8], cx: &mut RxCtx) -> Res<()> {
        let (fin, rsv1, opcode) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x0f);
        match opcode {
            0x9 => {
                // Best effort: a pong lost to a full send buffer is not worth failing over.
                let _ = self.io_write(&ws_client_frame(0xA, payload));
                Ok(())
            }
            0xA => Ok(()),
            0x8 => Err("server sent websocket close".into()),
            0x1 | 0x2 if fin => self.ws_message(payload, rsv1, cx),
            0x1 | 0x2 => {
                let ws = self.ws.as_mut().ok_or("websocket state missing")?;
                ws.frag = payload.to_vec();
                ws.frag_rsv1 = rsv1;
                Ok(())
            }
            0x0 => {
                let ws = self.ws.as_mut().ok_or("websocket state missing")?;
                ws.frag.extend_from_slice(payload);
                if !fin {
                    return Ok(());
                }
                let (msg, compressed) = (std::mem::take(&mut ws.frag), ws.frag_rsv1);
                self.ws_message(&msg, compressed, cx)
            }
            op => Err(format!("unexpected websocket opcode {op:#x}")),
        }
    }

    fn ws_message(&mut self, payload: &[u8], compressed: bool, cx: &mut RxCtx) -> Res<()> {
        if !compressed {
            self.on_message(payload, cx);
            return Ok(());
        }
        let ws = self.ws.as_mut().ok_or("websocket state missing")?;
        let reset = ws.reset_each;
        let d = ws
            .inflate
            .as_mut()
            .ok_or("compressed frame without negotiated permessage-deflate")?;
        let msg = inflate_message(d, payload)?;
        cx.st.inflated += 1;
        if reset {
            d.reset(false);
        }
        self.on_message(&msg, cx);
        Ok(())
    }
}

/// Inflates one permessage-deflate message (RFC 7692 §7.2.2: append 00 00 ff ff).
fn inflate_message(d: &mut Decompress, payload: &[u8]) -> Res<Vec<u8>> {
    let mut input = Vec::with_capacity(payload.len() + 4);
    input.extend_from_slice(payload);
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    let mut pos = 0;
    loop {
        let (in0, out0) = (d.total_in(), out.len());
        d.decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
            .map_err(|e| format!("inflate: {e}"))?;
        pos += (d.total_in() - in0) as usize;
        let full = out.len() == out.capacity();
        if pos >= input.len() && !full {
            return Ok(out);
        }
        if full {
            if out.len() > MAX_CARRY {
                return Err("inflated message too large".into());
            }
            out.reserve(out.capacity().max(256));
        } else if d.total_in() == in0 && out.len() == out0 {
            return Err("inflate made no progress".into());
        }
    }
}
