//! Telling a TLS client from a plaintext HTTP client on a TLS port, by the
//! first byte it sends.
//!
//! A TLS connection opens with a handshake record: content type 22
//! (0x16). An HTTP/1.x request opens with its method, upper-case ASCII
//! letters. The two cannot be confused, so one byte decides, and a browser
//! or curl pointed at `http://` on the TLS port gets a readable refusal
//! instead of a handshake error it would show as garbage.

/// What the first byte of a connection says it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A TLS handshake record.
    Tls,
    /// An HTTP request in the clear (`GET`, `POST`, …).
    PlainHttp,
    /// Neither: rustls will refuse it as a protocol error.
    Other,
}

/// Classifies the first byte a client sent.
pub fn opening(first: u8) -> Opening {
    match first {
        0x16 => Opening::Tls,
        b'A'..=b'Z' => Opening::PlainHttp,
        _ => Opening::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_plaintext_and_handshakes_are_tls() {
        for req in [
            "GET / HTTP/1.1",
            "POST /pub",
            "PUT",
            "HEAD",
            "OPTIONS",
            "DELETE",
        ] {
            assert_eq!(opening(req.as_bytes()[0]), Opening::PlainHttp, "{req}");
        }
        assert_eq!(opening(0x16), Opening::Tls);
        assert_eq!(opening(0x80), Opening::Other); // SSLv2-style hello
        assert_eq!(opening(b'g'), Opening::Other);
    }
}
