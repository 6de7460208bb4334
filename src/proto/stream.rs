//! Raw HTTP streaming (`/sub`): one message per HTTP/1.1 chunk.

/// Appends `payload` + `separator` as one chunk of a chunked response.
pub fn encode_chunk(payload: &[u8], separator: &[u8], out: &mut Vec<u8>) {
    let len = payload.len() + separator.len();
    if len == 0 {
        // A zero-length chunk would end the response; send nothing instead.
        return;
    }
    out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(separator);
    out.extend_from_slice(b"\r\n");
}

/// The chunk that ends a chunked response cleanly.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_framing() {
        let mut out = Vec::new();
        encode_chunk(&[b'x'; 20], b"\n", &mut out);
        assert!(out.starts_with(b"15\r\n"));
        assert!(out.ends_with(b"x\n\r\n"));
    }

    #[test]
    fn empty_message_without_separator_sends_nothing() {
        let mut out = Vec::new();
        encode_chunk(b"", b"", &mut out);
        assert!(out.is_empty());
    }
}
