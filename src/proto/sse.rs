//! EventSource (server-sent events) wire encoder, per the WHATWG HTML
//! "Server-sent events" section.
//!
//! Pure: appends bytes to a caller-owned buffer so the reactor can encode a
//! message once and fan the same bytes out to every subscriber.
//!
//! Payload line breaks (CR, LF, CRLF) become separate `data:` lines; the
//! browser rejoins them with LF, so CR and CRLF in a payload arrive as LF —
//! that normalisation is inherent to the protocol. Every other byte is
//! reproduced exactly.

/// Appends one event: optional `id: {id}\n`, optional `event: {name}\n`,
/// one `data: {line}\n` per payload line, then the blank line that makes
/// the browser dispatch it.
///
/// Lines are split at CR, LF and CRLF (CRLF counts once). An empty payload
/// is `data: \n`, which the browser delivers as `""`. A trailing line break
/// yields a final empty `data: \n`, so `"a\n"` arrives as `"a\n"`.
///
/// `id` and `event` must be single-line: CR, LF and NUL are dropped from them
/// (a NUL makes the browser ignore an id). `id: \n` is still written for an
/// empty id because it resets the browser's last event ID; an empty event
/// name is left out because the browser would use `message` anyway.
pub fn encode_event(id: Option<&str>, event: Option<&str>, data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + 16);
    if let Some(id) = id {
        field_line(b"id", id, out);
    }
    if let Some(event) = event {
        if event.bytes().any(|b| !is_forbidden(b)) {
            field_line(b"event", event, out);
        }
    }
    for line in split_lines(data) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Appends a comment, `: {text}\n\n` (`:\n\n` when `text` is empty).
/// EventSource ignores comments, so they serve as keepalive pings that
/// stop proxies from closing idle streams. Multi-line text becomes one
/// comment line per line, so it can never turn into a field.
pub fn encode_comment(text: &str, out: &mut Vec<u8>) {
    if text.is_empty() {
        out.extend_from_slice(b":\n\n");
        return;
    }
    for line in split_lines(text.as_bytes()) {
        out.extend_from_slice(b": ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Appends `retry: {ms}\n\n`, telling the browser how long to wait before
/// reconnecting after the stream drops.
pub fn encode_retry(ms: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"retry: ");
    out.extend_from_slice(ms.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Bytes that would end or poison a single-line field value.
fn is_forbidden(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | 0)
}

/// Writes `{name}: {value}\n`, dropping CR, LF and NUL from the value.
fn field_line(name: &[u8], value: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    for piece in value.as_bytes().split(|&b| is_forbidden(b)) {
        out.extend_from_slice(piece);
    }
    out.push(b'\n');
}

/// Splits at CR, LF and CRLF; `n` line breaks give `n + 1` lines, so an
/// empty input gives one empty line and a trailing break a final empty one.
pub fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let cur = rest?;
        match cur.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(i) => {
                let skip = if cur[i] == b'\r' && cur.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = Some(&cur[i + skip..]);
                Some(&cur[..i])
            }
            None => {
                rest = None;
                Some(cur)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A received event, as the browser's `MessageEvent` would expose it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Ev {
        kind: String,
        data: String,
        last_id: String,
    }

    /// Spec-following EventSource stream parser (HTML §9.2.6), used to check
    /// that what we encode is what a browser decodes.
    #[derive(Default)]
    struct Parser {
        data: String,
        kind: String,
        last_id: String,
        retry: Option<u64>,
        events: Vec<Ev>,
    }

    impl Parser {
        fn parse(stream: &[u8]) -> Parser {
            let text = String::from_utf8_lossy(stream);
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let mut p = Parser::default();
            // Lines end in CRLF, LF or CR; an unterminated last line is dropped.
            let mut line = String::new();
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\r' => {
                        if chars.peek() == Some(&'\n') {
                            chars.next();
                        }
                        p.line(&std::mem::take(&mut line));
                    }
                    '\n' => p.line(&std::mem::take(&mut line)),
                    c => line.push(c),
                }
            }
            p
        }

        fn line(&mut self, line: &str) {
            if line.is_empty() {
                return self.dispatch();
            }
            if line.starts_with(':') {
                return;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.kind = value.to_owned(),
                "data" => {
                    self.data.push_str(value);
                    self.data.push('\n');
                }
                "id" if !value.contains('\0') => self.last_id = value.to_owned(),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    self.retry = value.parse().ok();
                }
                _ => {}
            }
        }

        fn dispatch(&mut self) {
            if self.data.is_empty() {
                self.kind.clear();
                return;
            }
            if self.data.ends_with('\n') {
                self.data.pop();
            }
            let kind = if self.kind.is_empty() {
                "message".to_owned()
            } else {
                std::mem::take(&mut self.kind)
            };
            self.events.push(Ev {
                kind,
                data: std::mem::take(&mut self.data),
                last_id: self.last_id.clone(),
            });
        }
    }

    fn enc(id: Option<&str>, event: Option<&str>, data: &[u8]) -> String {
        let mut out = Vec::new();
        encode_event(id, event, data, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn single_line() {
        assert_eq!(enc(None, None, b"hello"), "data: hello\n\n");
    }

    #[test]
    fn id_and_event() {
        assert_eq!(
            enc(Some("7"), Some("news"), b"x"),
            "id: 7\nevent: news\ndata: x\n\n"
        );
    }

    #[test]
    fn multi_line_with_mixed_breaks() {
        assert_eq!(
            enc(None, None, b"a\nb\r\nc\rd\n\re"),
            "data: a\ndata: b\ndata: c\ndata: d\ndata: \ndata: e\n\n"
        );
    }

    #[test]
    fn empty_payload() {
        assert_eq!(enc(None, None, b""), "data: \n\n");
        let p = Parser::parse(enc(None, None, b"").as_bytes());
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.events[0].data, "");
    }

    #[test]
    fn trailing_newline() {
        assert_eq!(enc(None, None, b"a\n"), "data: a\ndata: \n\n");
        assert_eq!(enc(None, None, b"a\r\n"), "data: a\ndata: \n\n");
        assert_eq!(enc(None, None, b"\n"), "data: \ndata: \n\n");
        let p = Parser::parse(enc(None, None, b"a\n").as_bytes());
        assert_eq!(p.events[0].data, "a\n");
    }

    #[test]
    fn leading_space_survives() {
        let s = enc(None, None, b" x");
        assert_eq!(s, "data:  x\n\n");
        assert_eq!(Parser::parse(s.as_bytes()).events[0].data, " x");
    }

    #[test]
    fn id_and_event_are_sanitized() {
        assert_eq!(
            enc(Some("1\r\n2\x003"), Some("ev\nil\r\0"), b"d"),
            "id: 123\nevent: evil\ndata: d\n\n"
        );
        // Empty event name is omitted; empty id is kept (it resets lastEventId).
        assert_eq!(enc(Some(""), Some("\r\n"), b"d"), "id: \ndata: d\n\n");
        let p = Parser::parse(enc(Some("a\0b"), None, b"d").as_bytes());
        assert_eq!(p.events[0].last_id, "ab");
    }

    #[test]
    fn event_names_reach_the_parser() {
        let mut out = Vec::new();
        encode_event(Some("1"), Some("update"), b"u", &mut out);
        encode_event(None, None, b"m", &mut out);
        encode_event(Some(""), Some("message"), b"r", &mut out);
        let p = Parser::parse(&out);
        let got: Vec<(&str, &str, &str)> = p
            .events
            .iter()
            .map(|e| (e.kind.as_str(), e.data.as_str(), e.last_id.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("update", "u", "1"),
                ("message", "m", "1"),
                ("message", "r", "")
            ]
        );
    }

    #[test]
    fn comments_and_retry() {
        let mut out = Vec::new();
        encode_comment("", &mut out);
        encode_comment("ping", &mut out);
        encode_comment("two\nlines\r\ndata: nope", &mut out);
        encode_retry(2500, &mut out);
        encode_retry(0, &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            ":\n\n: ping\n\n: two\n: lines\n: data: nope\n\nretry: 2500\n\nretry: 0\n\n"
        );
        let p = Parser::parse(&out);
        assert!(p.events.is_empty());
        assert_eq!(p.retry, Some(0));
        let mut r = Vec::new();
        encode_retry(u64::MAX, &mut r);
        assert_eq!(Parser::parse(&r).retry, Some(u64::MAX));
    }

    #[test]
    fn split_lines_counts() {
        let count = |d: &[u8]| split_lines(d).count();
        assert_eq!(count(b""), 1);
        assert_eq!(count(b"\r\n"), 2);
        assert_eq!(count(b"\n\r"), 3);
        assert_eq!(count(b"\r\r\n\n"), 4);
    }

    /// Normalises line breaks the way the protocol does: CR and CRLF to LF.
    fn normalise(s: &str) -> String {
        s.replace("\r\n", "\n").replace('\r', "\n")
    }

    #[test]
    fn round_trip_random_payloads() {
        let pieces = [
            "a", "b", " ", "\r", "\n", "\r\n", "\n\n", "é", "€", "😀", ":", "data:", "id: x", "\t",
            "\u{feff}", "\0",
        ];
        let mut seed: u64 = 0x1234_5678;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for i in 0..500 {
            let mut payload = String::new();
            for _ in 0..next() % 12 {
                payload.push_str(pieces[next() % pieces.len()]);
            }
            let id = format!("{i}");
            let kind = if i % 3 == 0 { "tick" } else { "message" };
            encode_event(Some(&id), Some(kind), payload.as_bytes(), &mut stream);
            if i % 7 == 0 {
                encode_comment("keepalive\r\nstill", &mut stream);
            }
            expected.push(Ev {
                kind: kind.to_owned(),
                data: normalise(&payload),
                last_id: id,
            });
            // Each event also round-trips alone.
            let alone = Parser::parse(enc(None, Some(kind), payload.as_bytes()).as_bytes());
            assert_eq!(alone.events.len(), 1, "{payload:?}");
            assert_eq!(alone.events[0].data, normalise(&payload), "{payload:?}");
        }
        assert_eq!(Parser::parse(&stream).events, expected);
    }
}
