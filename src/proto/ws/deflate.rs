//! RFC 7692 permessage-deflate: negotiation, per-message compression and
//! bounded inflation.
//!
//! Policy: we always negotiate `server_no_context_takeover` and
//! `client_no_context_takeover`, so no (de)compressor outlives one message.
//! A connection then holds zero deflate memory while idle, and a published
//! message is compressed once per window size (`WireFormat::WebSocket`'s
//! `deflate`), the same frame shared by every subscriber that negotiated it.

use super::error::{SizeLimit, WsError};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The sync-flush marker RFC 7692 §7.2.1 strips from each message and §7.2.2 restores.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// What a connection negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    /// LZ77 window we may use when compressing (8..=15). With 8 we send every
    /// message uncompressed: zlib cannot produce raw deflate with a 256-byte
    /// window, and compression is optional per message (RSV1 clear).
    pub server_max_window_bits: u8,
}

impl Default for DeflateParams {
    /// The parameters when the client asks for nothing: full 32 KiB window.
    fn default() -> Self {
        DeflateParams {
            server_max_window_bits: 15,
        }
    }
}

/// Picks the first permessage-deflate offer in a `Sec-WebSocket-Extensions`
/// request value (several header lines joined with ", ") that we can honour,
/// returning its params and the response header value. Unknown extensions and
/// offers with unknown, duplicated or invalid parameters are skipped (RFC 7692 §5).
pub fn negotiate(offer_header: &str) -> Option<(DeflateParams, String)> {
    for offer in split_unquoted(offer_header, ',') {
        let mut parts = split_unquoted(offer, ';').into_iter();
        let name = parts.next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("permessage-deflate") {
            continue;
        }
        if let Some(server_bits) = parse_offer(parts) {
            let mut response = String::from(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            );
            let params = match server_bits {
                Some(n) => {
                    response.push_str(&format!("; server_max_window_bits={n}"));
                    DeflateParams {
                        server_max_window_bits: n,
                    }
                }
                None => DeflateParams::default(),
            };
            return Some((params, response));
        }
    }
    None
}

/// Validates one offer's parameters; `Some(server_max_window_bits offered)` when acceptable.
fn parse_offer<'a>(params: impl Iterator<Item = &'a str>) -> Option<Option<u8>> {
    let (mut snct, mut cnct, mut cmwb) = (false, false, false);
    let mut smwb: Option<u8> = None;
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim())?)),
            None => (param.trim(), None),
        };
        let seen = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => &mut snct,
            "client_no_context_takeover" if value.is_none() => &mut cnct,
            "client_max_window_bits" => {
                if let Some(v) = value {
                    window_bits(v)?;
                }
                &mut cmwb
            }
            "server_max_window_bits" => {
                if smwb.is_some() {
                    return None;
                }
                smwb = Some(window_bits(value?)?);
                continue;
            }
            _ => return None,
        };
        if *seen {
            return None;
        }
        *seen = true;
    }
    Some(smwb)
}

/// Parses a window-bits value: decimal 8..=15 without leading zeros (RFC 7692 §7.1.2).
fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u8>().ok().filter(|n| (8..=15).contains(n))
}

/// Strips the quotes of a quoted-string value; `None` when malformed.
fn unquote(v: &str) -> Option<&str> {
    match v.strip_prefix('"') {
        Some(rest) => {
            let inner = rest.strip_suffix('"')?;
            // Escapes or stray quotes can't occur in a valid (token-shaped) value.
            (!inner.contains(['"', '\\'])).then_some(inner)
        }
        None => Some(v),
    }
}

/// Splits on `sep` outside double-quoted strings (with backslash escapes);
/// empty elements are dropped, as HTTP list syntax allows.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    // Keep the first element even if empty so `negotiate` sees the name slot;
    // drop empty list elements only for the comma level.
    if sep == ',' {
        out.retain(|p| !p.trim().is_empty());
    }
    out
}

/// Compresses one whole message statelessly (fresh compressor, sync flush,
/// trailing 00 00 FF FF removed per RFC 7692 §7.2.1).
///
/// `None` means "send it uncompressed" (RSV1 clear): when `window_bits` is
/// outside 9..=15 (8 cannot be produced by zlib) or when compression would
/// not make the message smaller. The compressor (~256 KiB) lives only during the call.
pub fn compress(payload: &[u8], window_bits: u8) -> Option<Vec<u8>> {
    if !(9..=15).contains(&window_bits) {
        return None;
    }
    let mut c = Compress::new_with_window_bits(Compression::default(), false, window_bits);
    let mut out = Vec::with_capacity(payload.len() / 2 + 64);
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
        let consumed = usize::try_from(c.total_in()).ok()?;
        let input = payload.get(consumed..).unwrap_or(&[]);
        c.compress_vec(input, &mut out, FlushCompress::Sync).ok()?;
        let done = usize::try_from(c.total_in()).ok()? >= payload.len();
        if done && out.len() < out.capacity() {
            break;
        }
    }
    if !out.ends_with(&TAIL) {
        return None;
    }
    out.truncate(out.len() - TAIL.len());
    (out.len() < payload.len()).then_some(out)
}

/// Inflates one whole compressed message (RFC 7692 §7.2.2) with a fresh raw
/// inflater (a 15-bit window decodes any smaller one); the inflater (~40 KiB)
/// lives only during the call.
///
/// Output grows in bounded steps and never past `max_size + 1` bytes: a
/// deflate bomb fails with 1009 as soon as the cap is passed. Corrupt data
/// fails with 1007 (payload inconsistent with the message's encoding).
pub fn inflate(compressed: &[u8], max_size: usize) -> Result<Vec<u8>, WsError> {
    let too_big = WsError::too_big(SizeLimit::Inflated, "inflated message too big");
    let cap = max_size.saturating_add(1);
    let mut d = Decompress::new(false);
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(2).max(64).min(cap));
    for input in [compressed, &TAIL[..]] {
        let mut pos = 0usize;
        loop {
            if out.len() == out.capacity() {
                if out.len() > max_size {
                    return Err(too_big);
                }
                let grow = out.capacity().max(64).min(cap - out.len());
                out.reserve_exact(grow);
            }
            let (in0, out0) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(
                    input.get(pos..).unwrap_or(&[]),
                    &mut out,
                    FlushDecompress::Sync,
                )
                .map_err(|_| WsError::invalid_data("invalid compressed data"))?;
            if out.len() > max_size {
                return Err(too_big);
            }
            pos += usize::try_from(d.total_in() - in0).unwrap_or(usize::MAX);
            if status == Status::StreamEnd {
                // The sender closed the stream with a final block: the message ends here.
                return Ok(out);
            }
            let progressed = d.total_in() != in0 || d.total_out() != out0;
            let room = out.len() < out.capacity();
            if room && (pos >= input.len() || !progressed) {
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::reader::{MessageReader, WsEvent};
    use super::*;
    use std::io::Read;

    const FULL: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    fn neg(h: &str) -> Option<(u8, String)> {
        negotiate(h).map(|(p, r)| (p.server_max_window_bits, r))
    }

    #[test]
    fn negotiation_basic() {
        assert_eq!(neg("permessage-deflate"), Some((15, FULL.into())));
        assert_eq!(neg("Permessage-Deflate"), Some((15, FULL.into())));
        assert_eq!(
            neg("permessage-deflate; client_max_window_bits"),
            Some((15, FULL.into()))
        );
        assert_eq!(
            neg("permessage-deflate; client_max_window_bits=10"),
            Some((15, FULL.into()))
        );
        assert_eq!(
            neg("permessage-deflate;client_no_context_takeover"),
            Some((15, FULL.into()))
        );
        assert_eq!(
            neg("permessage-deflate; server_max_window_bits=\"12\""),
            Some((12, format!("{FULL}; server_max_window_bits=12")))
        );
        assert_eq!(
            neg("x-webkit-deflate-frame, foo; a=\"b,c\"; d, permessage-deflate"),
            Some((15, FULL.into()))
        );
        assert_eq!(neg(""), None);
        assert_eq!(neg("x-webkit-deflate-frame"), None);
    }

    #[test]
    fn negotiation_autobahn_offers() {
        // The offers Autobahn 12.x/13.x clients send, and our expected answers.
        let cases: [(&str, u8, &str); 6] = [
            ("permessage-deflate; client_max_window_bits", 15, ""),
            ("permessage-deflate; client_max_window_bits; server_no_context_takeover", 15, ""),
            ("permessage-deflate; client_max_window_bits; server_max_window_bits=8", 8, "; server_max_window_bits=8"),
            ("permessage-deflate; client_max_window_bits; server_max_window_bits=15", 15, "; server_max_window_bits=15"),
            (
                "permessage-deflate; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8",
                8,
                "; server_max_window_bits=8",
            ),
            (
                "permessage-deflate; client_max_window_bits; server_no_context_takeover; server_max_window_bits=15",
                15,
                "; server_max_window_bits=15",
            ),
        ];
        for (offer, bits, suffix) in cases {
            assert_eq!(
                neg(offer),
                Some((bits, format!("{FULL}{suffix}"))),
                "{offer}"
            );
        }
        let multi = "permessage-deflate; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, \
                     permessage-deflate; client_max_window_bits; server_no_context_takeover, \
                     permessage-deflate; client_max_window_bits";
        assert_eq!(
            neg(multi),
            Some((8, format!("{FULL}; server_max_window_bits=8")))
        );
        for n in 8..=15u8 {
            let (p, r) =
                negotiate(&format!("permessage-deflate; server_max_window_bits={n}")).unwrap();
            assert_eq!(p.server_max_window_bits, n);
            assert!(r.ends_with(&format!("server_max_window_bits={n}")));
        }
    }

    #[test]
    fn negotiation_declines_bad_offers() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; server_max_window_bits=\"9",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
            "permessage-deflate; server_max_window_bits=9; server_max_window_bits=10",
            "permessage-deflate; unknown_param",
            "permessage-deflate; ;",
            "permessage-deflate=1",
            ";;;,,,=\"",
        ] {
            assert_eq!(neg(bad), None, "{bad}");
        }
        // A bad offer followed by a good one: the good one wins.
        assert_eq!(
            neg("permessage-deflate; foo, permessage-deflate; server_max_window_bits=10")
                .map(|x| x.0),
            Some(10)
        );
    }

    #[test]
    fn round_trip() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 97) as u8 ^ (i / 1000) as u8)
            .collect();
        for bits in 9..=15 {
            let c = compress(&data, bits).unwrap();
            assert!(c.len() < data.len());
            assert_eq!(inflate(&c, data.len()).unwrap(), data);
            assert_eq!(inflate(&c, data.len() - 1).unwrap_err().code, 1009);
        }
        assert_eq!(compress(&data, 8), None);
        assert_eq!(compress(b"", 15), None);
        // RFC 7692 §7.2.3.1 sample: "Hello" compressed.
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate(&hello, 100).unwrap(), b"Hello");
        // §7.2.3.6 empty message: a single 0x00 byte, and a final block variant.
        assert_eq!(inflate(&[0x00], 100).unwrap(), b"");
        assert_eq!(
            inflate(&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], 100).unwrap(),
            b"Hello"
        );
        assert_eq!(inflate(&[], 100).unwrap(), b"");
    }

    #[test]
    fn many_sizes_and_garbage() {
        let mut seed = 12345u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        };
        let mut compressed = 0;
        for len in (0..3000).step_by(7).chain([16384, 65535, 65536, 131072]) {
            let data: Vec<u8> = (0..len)
                .map(|i| if i % 5 == 0 { next() } else { b'a' })
                .collect();
            if let Some(c) = compress(&data, 15) {
                compressed += 1;
                assert_eq!(inflate(&c, len).unwrap(), data, "len {len}");
            }
            let garbage: Vec<u8> = (0..len % 200).map(|_| next()).collect();
            let _ = inflate(&garbage, 1000);
        }
        assert!(compressed > 400);
    }

    #[test]
    fn independent_decoder() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(1000);
        let mut c = compress(text.as_bytes(), 15).unwrap();
        c.extend_from_slice(&TAIL);
        c.extend_from_slice(&[0x03, 0x00]); // empty final fixed block
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&c[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, text.as_bytes());
    }

    #[test]
    fn invalid_data() {
        assert_eq!(
            inflate(&[0xFF, 0xFF, 0xFF, 0xFF], 100).unwrap_err().code,
            1007
        );
        assert_eq!(inflate(&[0x07, 0x00], 100).unwrap_err().code, 1007);
    }

    #[test]
    fn deflate_bomb() {
        let zeros = vec![0u8; 10 << 20];
        let c = compress(&zeros, 15).unwrap();
        assert!(c.len() < 20 << 10, "{}", c.len());
        let start = std::time::Instant::now();
        let err = inflate(&c, 1 << 20).unwrap_err();
        assert_eq!(err.code, 1009);
        assert!(start.elapsed().as_secs() < 2);
        // Through the reader: same verdict, and the output never exceeded the cap
        // (inflate's Vec is capped at max + 1 by construction).
        let mut frame = vec![0xC2, 0xFF];
        frame.extend_from_slice(&(c.len() as u64).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(&c);
        let mut r = MessageReader::new(1 << 20, true);
        assert_eq!(r.read(&frame).unwrap_err().code, 1009);
    }

    #[test]
    fn fragmented_compressed_via_reader() {
        let msg: Vec<u8> = (0..50_000u32).map(|i| (i % 13) as u8).collect();
        let c = compress(&msg, 12).unwrap();
        let mut input = Vec::new();
        let pieces: Vec<&[u8]> = c.chunks(c.len() / 3 + 1).collect();
        for (i, p) in pieces.iter().enumerate() {
            let fin = i + 1 == pieces.len();
            let b0 = ((fin as u8) << 7) | if i == 0 { 0x40 | 2 } else { 0 };
            input.push(b0);
            input.push(0xFF);
            input.extend_from_slice(&(p.len() as u64).to_be_bytes());
            input.extend_from_slice(&[0, 0, 0, 0]);
            input.extend_from_slice(p);
        }
        let mut r = MessageReader::new(1 << 20, true);
        let mut events = Vec::new();
        let mut buf = &input[..];
        while !buf.is_empty() {
            let (n, ev) = r.read(buf).unwrap();
            assert!(n > 0);
            events.extend(ev);
            buf = &buf[n..];
        }
        assert_eq!(events, vec![WsEvent::Binary(msg)]);
    }
}
