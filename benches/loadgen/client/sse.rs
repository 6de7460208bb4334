//! Server-Sent Events receive path of a subscriber: undo chunked framing if the server
//! used it, split the stream into lines, and hand every `data:` line on as a message.

use super::sub::{RxCtx, Sub};
use crate::Res;

impl Sub {
    pub(super) fn sse_bytes(&mut self, data: &[u8], cx: &mut RxCtx) -> Res<usize> {
        let Some(dec) = self.chunk.as_mut() else {
            self.sse_lines(data, cx);
            return Ok(data.len());
        };
        let mut decoded = Vec::with_capacity(data.len());
        let used = dec.feed(data, &mut decoded)?;
        if dec.is_done() {
            return Err("server ended the event stream".into());
        }
        self.sse_lines(&decoded, cx);
        Ok(used)
    }

    fn sse_lines(&mut self, data: &[u8], cx: &mut RxCtx) {
        let mut rest = data;
        while let Some(p) = rest.iter().position(|&c| c == b'\n') {
            if self.line.is_empty() {
                self.sse_line(&rest[..p], cx);
            } else {
                let mut l = std::mem::take(&mut self.line);
                l.extend_from_slice(&rest[..p]);
                self.sse_line(&l, cx);
            }
            rest = &rest[p + 1..];
        }
        self.line.extend_from_slice(rest);
    }

    fn sse_line(&mut self, line: &[u8], cx: &mut RxCtx) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(d) = line.strip_prefix(b"data:") {
            self.on_message(d.strip_prefix(b" ").unwrap_or(d), cx);
        }
        // "id:", "event:", ":" comments (pings) and blank separators carry nothing we count.
    }
}
