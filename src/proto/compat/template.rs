//! push-stream's message templates (`push_stream_message_template`,
//! crier's `push-stream-message-template`), pure.
//!
//! A template is text with placeholders, each replaced per message:
//!
//! | placeholder | becomes |
//! |---|---|
//! | `~text~` | the message as published (one line of it on EventSource) |
//! | `~id~` | crier's message id (push-stream: a per-channel counter) |
//! | `~tag~` | crier's message id again, what `If-None-Match` / `tag=` resume from (push-stream: a counter within the publish second) |
//! | `~time~` | the publish second as an HTTP date, what `If-Modified-Since` / `time=` take |
//! | `~channel~` | the channel (the first one of a publish to several) |
//! | `~event-id~`, `~event-type~` | the publisher's `Event-Id` / `Event-Type`, empty without |
//! | `~size~` | the length of `~text~` in bytes |
//!
//! As in push-stream, placeholders match without regard to case, anything
//! else between tildes stays as written, and **nothing is escaped**: the
//! text goes in byte for byte, so a message holding `"` breaks a JSON
//! template. pushstream.js never sends one: it publishes
//! `encodeURIComponent(text)` and decodes the `text` it receives.

use std::fmt::Write as _;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Id,
    EventId,
    EventType,
    Channel,
    Text,
    Tag,
    Time,
    Size,
}

/// The placeholders, as push-stream spells them.
const PLACEHOLDERS: [(&str, Part); 8] = [
    ("~id~", Part::Id),
    ("~event-id~", Part::EventId),
    ("~event-type~", Part::EventType),
    ("~channel~", Part::Channel),
    ("~text~", Part::Text),
    ("~tag~", Part::Tag),
    ("~time~", Part::Time),
    ("~size~", Part::Size),
];

/// A parsed message template. The default, `~text~`, sends each message
/// as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Default for Template {
    fn default() -> Template {
        Template {
            parts: vec![Part::Text],
        }
    }
}

/// What a template can name of one message. `text` is what `~text~`
/// stands for (a line of the message on EventSource).
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// `~id~`: a message id, or push-stream's `-2` for "channel deleted".
    pub id: &'a str,
    /// `~tag~`.
    pub tag: &'a str,
    /// `~time~`, seconds since the epoch.
    pub time_secs: u64,
    pub channel: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub text: &'a [u8],
}

impl Template {
    /// Parses `text`. Every text is a template (one without placeholders
    /// sends the same bytes for every message), so this cannot fail.
    pub fn parse(text: &str) -> Template {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('~') {
            literal.push_str(&rest[..at]);
            rest = &rest[at..];
            let found = PLACEHOLDERS.iter().find(|(name, _)| {
                rest.get(..name.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(name))
            });
            match found {
                Some((name, part)) => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part.clone());
                    rest = &rest[name.len()..];
                }
                None => {
                    literal.push('~');
                    rest = &rest[1..];
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Template { parts }
    }

    /// True for `~text~` alone: each message goes out as published.
    pub fn is_text_only(&self) -> bool {
        self.parts == [Part::Text]
    }

    /// Appends the template filled with `f` to `out`.
    pub fn render(&self, f: &Fields<'_>, out: &mut Vec<u8>) {
        let mut time = None;
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Part::Id => out.extend_from_slice(f.id.as_bytes()),
                Part::Tag => out.extend_from_slice(f.tag.as_bytes()),
                Part::Time => out.extend_from_slice(
                    time.get_or_insert_with(|| super::httpdate::format(f.time_secs))
                        .as_bytes(),
                ),
                Part::Channel => out.extend_from_slice(f.channel.as_bytes()),
                Part::EventId => out.extend_from_slice(f.event_id.as_bytes()),
                Part::EventType => out.extend_from_slice(f.event_type.as_bytes()),
                Part::Text => out.extend_from_slice(f.text),
                Part::Size => {
                    let mut n = String::new();
                    let _ = write!(n, "{}", f.text.len());
                    out.extend_from_slice(n.as_bytes());
                }
            }
        }
    }
}

/// push-stream's header, message and footer templates together: what
/// `--compat push-stream` wraps around its subscribers' messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Templates {
    /// Applied to every message (`push-stream-message-template`).
    pub message: Template,
    /// Sent once when a subscriber arrives, and at the start of a
    /// long-poll answer with messages (`push-stream-header-template`).
    pub header: String,
    /// Sent before a stream ends, and at the end of a long-poll answer
    /// with messages (`push-stream-footer-template`).
    pub footer: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &[u8]) -> Fields<'_> {
        Fields {
            id: "1796149147000001",
            tag: "1796149147000001",
            time_secs: 1_796_149_147,
            channel: "news",
            event_id: "",
            event_type: "",
            text,
        }
    }

    fn render(template: &str, f: &Fields<'_>) -> String {
        let mut out = Vec::new();
        Template::parse(template).render(f, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// The template of push-stream's misc/nginx.conf, which pushstream.js
    /// parses.
    const PUSHSTREAM_JS: &str = r#"{"id":~id~,"channel":"~channel~","text":"~text~","tag":"~tag~","time":"~time~","eventid":"~event-id~"}"#;

    #[test]
    fn every_placeholder() {
        let mut f = fields(b"hello");
        f.event_id = "e1";
        f.event_type = "tick";
        assert_eq!(
            render(PUSHSTREAM_JS, &f),
            r#"{"id":1796149147000001,"channel":"news","text":"hello","tag":"1796149147000001","time":"Tue, 01 Dec 2026 18:19:07 GMT","eventid":"e1"}"#
        );
        assert_eq!(render("~event-type~/~size~", &f), "tick/5");
        assert_eq!(render("[~TEXT~|~Id~]", &f), "[hello|1796149147000001]");
        // Without an Event-Id, ~event-id~ is empty.
        let v: serde_json::Value =
            serde_json::from_str(&render(PUSHSTREAM_JS, &fields(b"x"))).unwrap();
        assert_eq!(v["eventid"], "");
    }

    #[test]
    fn text_goes_in_unescaped_as_push_stream_does() {
        // push-stream copies the text verbatim: a quote breaks the JSON.
        let out = render(PUSHSTREAM_JS, &fields(br#"say "hi""#));
        assert!(out.contains(r#""text":"say "hi"""#), "{out}");
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_err());
        // pushstream.js publishes encodeURIComponent(text): valid JSON,
        // and decodeURIComponent gives the text back.
        let out = render(PUSHSTREAM_JS, &fields(b"say%20%22hi%22%0A%E2%9C%93"));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["text"], "say%20%22hi%22%0A%E2%9C%93");
        // Bytes that are not UTF-8 pass through too.
        let mut out = Vec::new();
        Template::parse("<~text~>").render(&fields(b"\xff\x00"), &mut out);
        assert_eq!(out, b"<\xff\x00>");
    }

    #[test]
    fn unknown_tildes_stay_literal() {
        let f = fields(b"t");
        assert_eq!(render("~~text~~", &f), "~t~");
        assert_eq!(render("~nope~ ~ ~tex", &f), "~nope~ ~ ~tex");
        assert_eq!(render("no placeholders", &f), "no placeholders");
        assert_eq!(render("", &f), "");
        assert_eq!(render("é~text~é", &f), "été");
    }

    #[test]
    fn size_counts_bytes_and_default_is_the_text() {
        assert_eq!(render("~size~", &fields("✓".as_bytes())), "3");
        assert!(Template::default().is_text_only());
        assert!(Template::parse("~text~").is_text_only());
        assert!(Template::parse("~TEXT~").is_text_only());
        assert!(!Template::parse("~text~\n").is_text_only());
        let mut out = Vec::new();
        Template::default().render(&fields(b"as published"), &mut out);
        assert_eq!(out, b"as published");
    }
}
