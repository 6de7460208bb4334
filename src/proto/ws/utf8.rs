//! Incremental UTF-8 validation for text messages that arrive in pieces.

use super::error::WsError;

/// Incremental UTF-8 validator: lets text be checked frame by frame (and
/// within a frame still arriving) so invalid text fails fast, as RFC 6455
/// §8.1 asks, without buffering. Five bytes of state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    pending: [u8; 4],
    len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes; `Err` (1007) as soon as the text can no longer be valid.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), WsError> {
        const INVALID: WsError = WsError::invalid_data("invalid UTF-8 in text message");
        while self.len > 0 {
            let Some((&b, rest)) = input.split_first() else {
                return Ok(());
            };
            if usize::from(self.len) >= self.pending.len() {
                return Err(INVALID);
            }
            self.pending[usize::from(self.len)] = b;
            self.len += 1;
            input = rest;
            match std::str::from_utf8(&self.pending[..usize::from(self.len)]) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_some() => return Err(INVALID),
                Err(_) => {}
            }
        }
        match std::str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(INVALID),
            Err(e) => {
                let tail = &input[e.valid_up_to()..];
                if tail.len() > 3 {
                    return Err(INVALID);
                }
                self.pending[..tail.len()].copy_from_slice(tail);
                self.len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// True when everything fed so far ends on a character boundary.
    pub fn is_complete(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_validator() {
        let text = "κόσμε 𝄞 ascii ☃".as_bytes();
        let mut v = Utf8Validator::new();
        for b in text {
            v.feed(std::slice::from_ref(b)).unwrap();
        }
        assert!(v.is_complete());
        let bad: [&[u8]; 7] = [
            &[0xC0, 0x80],
            &[0xED, 0xA0, 0x80],
            &[0xF4, 0x90, 0x80, 0x80],
            &[0xF8],
            &[0x80],
            &[0xE0, 0x80],
            &[0xCE, 0x41],
        ];
        for b in bad {
            let mut v = Utf8Validator::new();
            let mut failed = false;
            for byte in b {
                if v.feed(std::slice::from_ref(byte)).is_err() {
                    failed = true;
                    break;
                }
            }
            assert!(failed, "{b:?}");
        }
        // Fail fast: F4 90 is already impossible after two bytes.
        let mut v = Utf8Validator::new();
        v.feed(&[b'a', 0xF4]).unwrap();
        assert!(v.feed(&[0x90]).is_err());
        let mut v = Utf8Validator::new();
        v.feed(&[0xE2, 0x98]).unwrap();
        assert!(!v.is_complete());
        v.feed(&[0x83, b'x']).unwrap();
        assert!(v.is_complete());
    }
}
