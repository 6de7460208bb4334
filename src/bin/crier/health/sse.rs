//! The EventSource body `crier health` waits on, decoded without a
//! client library: chunked transfer coding undone, then events split.

/// An EventSource body, decoded: chunked transfer coding (as a proxy may
/// add) undone, then split into events. Pure, for the unit tests.
pub(super) struct SseReader {
    /// Undecoded chunked framing, when the body is chunked.
    pub(super) framed: Option<Vec<u8>>,
    /// The last (zero-size) chunk was read.
    pub(super) last_chunk: bool,
    /// Body bytes not yet split into complete lines.
    pub(super) text: Vec<u8>,
    /// `data:` lines of the event being read.
    pub(super) data: Option<String>,
    /// Whether the current event is `channel_deleted`.
    pub(super) deleting: bool,
    /// Complete events' data.
    pub(super) ready: Vec<String>,
    /// A `channel_deleted` event was seen.
    pub(super) deleted: bool,
}

impl SseReader {
    pub(super) fn new(chunked: bool) -> SseReader {
        SseReader {
            framed: chunked.then(Vec::new),
            last_chunk: false,
            text: Vec::new(),
            data: None,
            deleting: false,
            ready: Vec::new(),
            deleted: false,
        }
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.framed {
            None => self.text.extend_from_slice(bytes),
            // After the last chunk only a trailer and the close are left.
            Some(_) if self.last_chunk => {}
            Some(framed) => {
                framed.extend_from_slice(bytes);
                self.last_chunk = dechunk(framed, &mut self.text)?;
            }
        }
        while let Some(end) = self.text.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.text.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]);
            self.line(line.strip_suffix('\r').unwrap_or(&line));
        }
        if self.text.len() > 1 << 20 {
            return Err("an event stream line over 1 MiB".into());
        }
        Ok(())
    }

    pub(super) fn line(&mut self, line: &str) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                self.ready.push(data);
            }
            self.deleted |= std::mem::take(&mut self.deleting);
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.deleting = value == "channel_deleted",
            _ => {} // comments (pings), id, retry
        }
    }

    pub(super) fn take_events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.ready)
    }
}

/// Moves the payload of every complete chunk from `framed` to `out`;
/// true once the last chunk is read.
pub(super) fn dechunk(framed: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<bool, String> {
    let mut at = 0;
    let mut last = false;
    while let Some(eol) = framed[at..].windows(2).position(|w| w == b"\r\n") {
        let size_line = String::from_utf8_lossy(&framed[at..at + eol]);
        let size_text = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .ok()
            .filter(|&n| n <= MAX_CHUNK)
            .ok_or_else(|| format!("bad chunk size {size_text:?}"))?;
        let start = at + eol + 2;
        if size == 0 {
            // The stream is over; the reader sees the close.
            last = true;
            at = framed.len();
            break;
        }
        if framed.len() < start + size + 2 {
            break;
        }
        out.extend_from_slice(&framed[start..start + size]);
        at = start + size + 2;
    }
    framed.drain(..at);
    // What is left is a chunk being received, after its size line.
    if !framed.is_empty() && !framed.windows(2).any(|w| w == b"\r\n") && framed.len() > 1024 {
        return Err("a chunk size line over 1 KiB".into());
    }
    Ok(last)
}

/// Larger chunks are refused (a crier message is at most
/// `max-message-size`, 1 MiB by default).
pub(super) const MAX_CHUNK: usize = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_and_lines() {
        let mut r = SseReader::new(false);
        r.feed(b"retry: 3000\n\n: ping\n\nid: 1\nda").unwrap();
        assert!(r.take_events().is_empty());
        r.feed(b"ta: one\r\ndata:two\n\nid: 2\ndata: x\n").unwrap();
        assert_eq!(r.take_events(), ["one\ntwo"]);
        r.feed(b"\nevent: channel_deleted\ndata: h\n\n").unwrap();
        assert_eq!(r.take_events(), ["x", "h"]);
        assert!(r.deleted);
    }

    #[test]
    fn chunked_bodies_are_decoded_in_any_split() {
        let body = b"d\r\nretry: 3000\n\n\r\n5;x=1\r\ndata:\r\n6\r\n nonce\r\n1\r\n\n\r\n1\r\n\n\r\n0\r\n\r\n";
        for split in 0..body.len() {
            let mut r = SseReader::new(true);
            r.feed(&body[..split]).unwrap();
            r.feed(&body[split..]).unwrap();
            assert_eq!(r.take_events(), ["nonce"], "split at {split}");
        }
        let mut r = SseReader::new(true);
        assert!(r.feed(b"zz\r\n").is_err());
        let mut r = SseReader::new(true);
        assert!(r.feed(b"ffffffffffffffff\r\n").is_err());
        let mut r = SseReader::new(true);
        assert!(r.feed(&[b'1'; 2000]).is_err());
    }
}
