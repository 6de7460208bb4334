//! nginx-push-stream-module's wire formats (pure): its channel figures in
//! the four formats its `Accept` negotiation picks, the EventSource event
//! whose `id:` is the publisher's `Event-Id`, messages through the message
//! template (`template.rs`) and JSONP long-poll bodies.
//! The layouts (spacing, CRLFs, field order) are push-stream's own, since
//! publishers and dashboards parse them.

use super::super::envelope::MessageView;
use super::super::sse;
use super::template::{Fields, Template};
use base64::Engine;

/// The format of a channel-figures reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoFormat {
    Plain,
    Json,
    Yaml,
    Xml,
    XJson,
    XYaml,
}

/// push-stream's subtypes, in the order it tries them.
const SUBTYPES: [(&str, InfoFormat); 6] = [
    ("plain", InfoFormat::Plain),
    ("json", InfoFormat::Json),
    ("yaml", InfoFormat::Yaml),
    ("xml", InfoFormat::Xml),
    ("x-json", InfoFormat::XJson),
    ("x-yaml", InfoFormat::XYaml),
];

impl InfoFormat {
    /// push-stream's choice: after each `/` of the `Accept` value, the
    /// first subtype the text starts with wins; JSON when none does. (So a
    /// browser's default `Accept` gets XML, as it does from push-stream.)
    pub fn negotiate(accept: Option<&str>) -> InfoFormat {
        let Some(accept) = accept else {
            return InfoFormat::Json;
        };
        for (i, _) in accept.match_indices('/') {
            let rest = &accept[i + 1..];
            if let Some((_, f)) = SUBTYPES.iter().find(|(name, _)| rest.starts_with(name)) {
                return *f;
            }
        }
        InfoFormat::Json
    }

    /// The reply's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            InfoFormat::Plain => "text/plain",
            InfoFormat::Json => "application/json",
            InfoFormat::Yaml => "application/yaml",
            InfoFormat::Xml => "application/xml",
            InfoFormat::XJson => "text/x-json",
            InfoFormat::XYaml => "text/x-yaml",
        }
    }

    fn base(self) -> InfoFormat {
        match self {
            InfoFormat::XJson => InfoFormat::Json,
            InfoFormat::XYaml => InfoFormat::Yaml,
            f => f,
        }
    }
}

/// One channel's figures as push-stream reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelFigures<'a> {
    pub name: &'a str,
    pub published_messages: u64,
    pub stored_messages: u64,
    pub subscribers: u64,
}

/// The head of a multi-channel reply (`?id=ALL`, `?id=a/b`, `prefix_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupHead<'a> {
    pub hostname: &'a str,
    /// `YYYY-MM-DDTHH:MM:SS`, UTC.
    pub time: &'a str,
    pub channels: u64,
    pub wildcard_channels: u64,
    pub uptime: u64,
}

/// The server-wide summary of `/channels-stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary<'a> {
    pub hostname: &'a str,
    pub time: &'a str,
    pub channels: u64,
    pub wildcard_channels: u64,
    pub published_messages: u64,
    pub stored_messages: u64,
    pub messages_in_trash: u64,
    pub channels_in_delete: u64,
    pub channels_in_trash: u64,
    pub subscribers: u64,
    pub uptime: u64,
    /// Per worker (crier: per reactor): an id, its subscribers, uptime.
    pub by_worker: Vec<(u64, u64, u64)>,
}

/// One channel's reply (`GET /pub?id=CH`, a publish to one channel,
/// `/channels-stats?id=CH`).
pub fn channel(format: InfoFormat, c: &ChannelFigures<'_>) -> String {
    match format.base() {
        InfoFormat::Plain => format!("{}\r\n", plain_item(c)),
        InfoFormat::Yaml => format!("{}\r\n", yaml_item(c)),
        InfoFormat::Xml => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n{}\r\n",
            xml_item(c)
        ),
        _ => format!("{}\r\n", json_item(c)),
    }
}

/// Several channels' reply.
pub fn group(format: InfoFormat, head: &GroupHead<'_>, items: &[ChannelFigures<'_>]) -> String {
    let n = items.len();
    let mut out = match format.base() {
        InfoFormat::Plain => format!(
            "hostname: {}, time: {}, channels: {}, wildcard_channels: {}, uptime: {}, infos: \r\n",
            head.hostname, head.time, head.channels, head.wildcard_channels, head.uptime
        ),
        InfoFormat::Yaml => format!(
            "hostname: {}\r\ntime: {}\r\nchannels: {}\r\nwildcard_channels: {}\r\nuptime: {}\r\ninfos: \r\n",
            head.hostname, head.time, head.channels, head.wildcard_channels, head.uptime
        ),
        InfoFormat::Xml => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<root>\r\n  <hostname>{}</hostname>\r\n  <time>{}</time>\r\n  <channels>{}</channels>\r\n  <wildcard_channels>{}</wildcard_channels>\r\n  <uptime>{}</uptime>\r\n  <infos>\r\n",
            head.hostname, head.time, head.channels, head.wildcard_channels, head.uptime
        ),
        _ => format!(
            "{{\"hostname\": \"{}\", \"time\": \"{}\", \"channels\": {}, \"wildcard_channels\": {}, \"uptime\": {}, \"infos\": [\r\n",
            head.hostname, head.time, head.channels, head.wildcard_channels, head.uptime
        ),
    };
    for (i, c) in items.iter().enumerate() {
        let last = i + 1 == n;
        match format.base() {
            InfoFormat::Plain => {
                out.push_str(&plain_item(c));
                if !last {
                    out.push_str(",\r\n");
                }
            }
            InfoFormat::Yaml => {
                out.push_str(" -\r\n");
                out.push_str(&yaml_item(c));
                if !last {
                    out.push_str("\r\n");
                }
            }
            InfoFormat::Xml => out.push_str(&xml_item(c)),
            _ => {
                out.push_str(&json_item(c));
                out.push_str(if last { "\r\n" } else { ",\r\n" });
            }
        }
    }
    out.push_str(match format.base() {
        InfoFormat::Xml => "  </infos>\r\n</root>\r\n",
        InfoFormat::Plain | InfoFormat::Yaml => "\r\n",
        _ => "]}\r\n",
    });
    out
}

/// The server-wide summary.
pub fn summary(format: InfoFormat, s: &Summary<'_>) -> String {
    let n = s.by_worker.len();
    let workers: String = s
        .by_worker
        .iter()
        .enumerate()
        .map(|(i, (pid, subs, up))| {
            let last = i + 1 == n;
            match format.base() {
                InfoFormat::Plain => format!(
                    "  pid: {pid}\r\n  subscribers: {subs}\r\n  uptime: {up}{}",
                    if last { "" } else { ",\r\n" }
                ),
                InfoFormat::Yaml => format!(
                    "   -\r\n    pid: {pid}\r\n    subscribers: {subs}\r\n    uptime: {up}{}",
                    if last { "" } else { "\r\n" }
                ),
                InfoFormat::Xml => format!(
                    "<worker>\r\n  <pid>{pid}</pid>\r\n  <subscribers>{subs}</subscribers>\r\n  <uptime>{up}</uptime>\r\n</worker>\r\n"
                ),
                _ => format!(
                    "{{\"pid\": \"{pid}\", \"subscribers\": {subs}, \"uptime\": {up}}}{}",
                    if last { "" } else { ",\r\n" }
                ),
            }
        })
        .collect();
    match format.base() {
        InfoFormat::Plain => format!(
            "hostname: {}\r\ntime: {}\r\nchannels: {}\r\nwildcard_channels: {}\r\npublished_messages: {}\r\nstored_messages: {}\r\nmessages_in_trash: {}\r\nchannels_in_delete: {}\r\nchannels_in_trash: {}\r\nsubscribers: {}\r\nuptime: {}\r\nby_worker:\r\n{}\r\n",
            s.hostname, s.time, s.channels, s.wildcard_channels, s.published_messages, s.stored_messages, s.messages_in_trash, s.channels_in_delete, s.channels_in_trash, s.subscribers, s.uptime, workers
        ),
        InfoFormat::Yaml => format!(
            "  hostname: {}\r\n  time: {}\r\n  channels: {}\r\n  wildcard_channels: {}\r\n  published_messages: {}\r\n  stored_messages: {}\r\n  messages_in_trash: {}\r\n  channels_in_delete: {}\r\n  channels_in_trash: {}\r\n  subscribers: {}\r\n  uptime: {}\r\n  by_worker:\r\n{}\r\n",
            s.hostname, s.time, s.channels, s.wildcard_channels, s.published_messages, s.stored_messages, s.messages_in_trash, s.channels_in_delete, s.channels_in_trash, s.subscribers, s.uptime, workers
        ),
        InfoFormat::Xml => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<infos>\r\n  <hostname>{}</hostname>\r\n  <time>{}</time>\r\n  <channels>{}</channels>\r\n  <wildcard_channels>{}</wildcard_channels>\r\n  <published_messages>{}</published_messages>\r\n  <stored_messages>{}</stored_messages>\r\n  <messages_in_trash>{}</messages_in_trash>\r\n  <channels_in_delete>{}</channels_in_delete>\r\n  <channels_in_trash>{}</channels_in_trash>\r\n  <subscribers>{}</subscribers>\r\n  <uptime>{}</uptime>\r\n  <by_worker>{}</by_worker>\r\n</infos>\r\n",
            s.hostname, s.time, s.channels, s.wildcard_channels, s.published_messages, s.stored_messages, s.messages_in_trash, s.channels_in_delete, s.channels_in_trash, s.subscribers, s.uptime, workers
        ),
        _ => format!(
            "{{\"hostname\": \"{}\", \"time\": \"{}\", \"channels\": {}, \"wildcard_channels\": {}, \"published_messages\": {}, \"stored_messages\": {}, \"messages_in_trash\": {}, \"channels_in_delete\": {}, \"channels_in_trash\": {}, \"subscribers\": {}, \"uptime\": {}, \"by_worker\": [\r\n{}\r\n]}}\r\n",
            s.hostname, s.time, s.channels, s.wildcard_channels, s.published_messages, s.stored_messages, s.messages_in_trash, s.channels_in_delete, s.channels_in_trash, s.subscribers, s.uptime, workers
        ),
    }
}

fn json_item(c: &ChannelFigures<'_>) -> String {
    format!(
        "{{\"channel\": \"{}\", \"published_messages\": {}, \"stored_messages\": {}, \"subscribers\": {}}}",
        c.name, c.published_messages, c.stored_messages, c.subscribers
    )
}

fn plain_item(c: &ChannelFigures<'_>) -> String {
    format!(
        "channel: {}\r\npublished_messages: {}\r\nstored_messages: {}\r\nactive_subscribers: {}",
        c.name, c.published_messages, c.stored_messages, c.subscribers
    )
}

fn yaml_item(c: &ChannelFigures<'_>) -> String {
    format!(
        "  channel: {}\r\n  published_messages: {}\r\n  stored_messages: {}\r\n  subscribers: {}",
        c.name, c.published_messages, c.stored_messages, c.subscribers
    )
}

fn xml_item(c: &ChannelFigures<'_>) -> String {
    format!(
        "<channel>\r\n  <name>{}</name>\r\n  <published_messages>{}</published_messages>\r\n  <stored_messages>{}</stored_messages>\r\n  <subscribers>{}</subscribers>\r\n</channel>\r\n",
        c.name, c.published_messages, c.stored_messages, c.subscribers
    )
}

/// `secs` as push-stream's stats time, `YYYY-MM-DDTHH:MM:SS` (UTC).
pub fn iso_time(secs: u64) -> String {
    // Reuse the HTTP-date arithmetic: "Tue, 01 Dec 2026 18:19:07 GMT".
    let http = super::httpdate::format(secs);
    let w: Vec<&str> = http.split(' ').collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == w[2])
    .unwrap_or(0)
        + 1;
    format!("{}-{:02}-{}T{}", w[3], month, w[1], w[4])
}

/// The template fields of message `m`, `~text~` being `text`.
fn fields<'a>(m: &MessageView<'a>, text: &'a [u8]) -> Fields<'a> {
    Fields {
        id: m.id,
        tag: m.id,
        time_secs: m.published_at_ms / 1000,
        channel: m.channels.first().copied().unwrap_or(""),
        event_id: m.event_id.unwrap_or(""),
        event_type: m.event_type.unwrap_or(""),
        text,
    }
}

/// Message `m` through the message template: what it is on push-stream's
/// streams, WebSockets and long-polls (EventSource applies the template
/// per line, [`encode_sse`]).
pub fn render_message(m: &MessageView<'_>, template: &Template, out: &mut Vec<u8>) {
    if template.is_text_only() {
        out.extend_from_slice(m.payload);
    } else {
        template.render(&fields(m, m.payload), out);
    }
}

/// What push-stream sends its subscribers when their channel is deleted:
/// the text `Channel deleted` as message `-2` (pushstream.js calls
/// `onchanneldeleted` for that id), through the message template.
pub fn channel_deleted_message(channel: &str, template: &Template) -> Vec<u8> {
    let mut out = Vec::new();
    let f = Fields {
        id: "-2",
        tag: "0",
        time_secs: 0,
        channel,
        event_id: "",
        event_type: "",
        text: CHANNEL_DELETED_TEXT,
    };
    template.render(&f, &mut out);
    out
}

/// The text of push-stream's "channel deleted" message.
pub const CHANNEL_DELETED_TEXT: &[u8] = b"Channel deleted";

/// One EventSource event as push-stream frames it: `id:` only when the
/// publisher gave an `Event-Id`, `event:` from `Event-Type`, then one
/// `data:` line per line of the payload, each line through the message
/// template (so `~text~` and `~size~` are the line's). Binary payloads are
/// base64, as in crier's own SSE.
pub fn encode_sse(m: &MessageView<'_>, template: &Template, out: &mut Vec<u8>) {
    let b64;
    let text = if m.binary {
        b64 = base64::engine::general_purpose::STANDARD.encode(m.payload);
        b64.as_bytes()
    } else {
        m.payload
    };
    if template.is_text_only() {
        return sse::encode_event(m.event_id, m.event_type, text, out);
    }
    let mut data = Vec::with_capacity(text.len() + 64);
    for (i, line) in sse::split_lines(text).enumerate() {
        if i > 0 {
            data.push(b'\n');
        }
        template.render(&fields(m, line), &mut data);
    }
    sse::encode_event(m.event_id, m.event_type, &data, out);
}

/// A JSONP long-poll body: `callback([m1,m2]);`, each message as the
/// message template made it.
pub fn jsonp<'a>(callback: &str, messages: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(callback.len() + 16);
    out.extend_from_slice(callback.as_bytes());
    out.extend_from_slice(b"([");
    for (i, m) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(m);
    }
    out.extend_from_slice(b"]);");
    out
}

/// Whether `name` may be a JSONP callback: a JavaScript identifier path
/// (`cb`, `PushStream.cb_1`), so a reply can never carry script a page
/// did not ask for.
pub fn valid_callback(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.'))
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(name: &str) -> ChannelFigures<'_> {
        ChannelFigures {
            name,
            published_messages: 3,
            stored_messages: 2,
            subscribers: 1,
        }
    }

    #[test]
    fn accept_negotiation_is_push_streams() {
        assert_eq!(InfoFormat::negotiate(None), InfoFormat::Json);
        assert_eq!(InfoFormat::negotiate(Some("text/plain")), InfoFormat::Plain);
        assert_eq!(
            InfoFormat::negotiate(Some("application/yaml")),
            InfoFormat::Yaml
        );
        assert_eq!(
            InfoFormat::negotiate(Some("text/x-json")),
            InfoFormat::XJson
        );
        assert_eq!(InfoFormat::negotiate(Some("*/*")), InfoFormat::Json);
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(InfoFormat::negotiate(Some(browser)), InfoFormat::Xml);
    }

    #[test]
    fn one_channel_in_each_format() {
        assert_eq!(
            channel(InfoFormat::Json, &ch("a")),
            "{\"channel\": \"a\", \"published_messages\": 3, \"stored_messages\": 2, \"subscribers\": 1}\r\n"
        );
        assert_eq!(
            channel(InfoFormat::Plain, &ch("a")),
            "channel: a\r\npublished_messages: 3\r\nstored_messages: 2\r\nactive_subscribers: 1\r\n"
        );
        assert!(channel(InfoFormat::Xml, &ch("a")).starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<channel>\r\n  <name>a</name>"
        ));
        assert_eq!(
            channel(InfoFormat::XYaml, &ch("a")),
            channel(InfoFormat::Yaml, &ch("a"))
        );
    }

    #[test]
    fn groups_and_summaries_are_valid_json() {
        let head = GroupHead {
            hostname: "h",
            time: "2026-12-01T18:19:07",
            channels: 2,
            wildcard_channels: 0,
            uptime: 5,
        };
        let text = group(InfoFormat::Json, &head, &[ch("a"), ch("b")]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["infos"][1]["channel"], "b");
        let empty: serde_json::Value =
            serde_json::from_str(&group(InfoFormat::Json, &head, &[])).unwrap();
        assert_eq!(empty["infos"].as_array().unwrap().len(), 0);
        let s = Summary {
            hostname: "h",
            time: "t",
            channels: 1,
            wildcard_channels: 0,
            published_messages: 2,
            stored_messages: 1,
            messages_in_trash: 0,
            channels_in_delete: 0,
            channels_in_trash: 0,
            subscribers: 4,
            uptime: 9,
            by_worker: vec![(0, 3, 9), (1, 1, 9)],
        };
        let v: serde_json::Value = serde_json::from_str(&summary(InfoFormat::Json, &s)).unwrap();
        assert_eq!(v["by_worker"][1]["pid"], "1");
        assert_eq!(v["subscribers"], 4);
        assert!(summary(InfoFormat::Plain, &s).contains("by_worker:\r\n  pid: 0\r\n"));
    }

    #[test]
    fn sse_ids_come_from_event_id_and_jsonp_joins() {
        let mut m = MessageView {
            id: "9",
            channels: &["a"],
            event_type: Some("t"),
            content_type: None,
            binary: false,
            payload: b"x\ny",
            published_at_ms: 0,
            event_id: None,
        };
        let mut out = Vec::new();
        encode_sse(&m, &Template::default(), &mut out);
        assert_eq!(out, b"event: t\ndata: x\ndata: y\n\n");
        m.event_id = Some("e1");
        out.clear();
        encode_sse(&m, &Template::default(), &mut out);
        assert!(out.starts_with(b"id: e1\n"));
        assert_eq!(jsonp("cb", [&b"1"[..], b"2"]), b"cb([1,2]);");
        assert_eq!(iso_time(1_796_149_147), "2026-12-01T18:19:07");
        assert!(
            valid_callback("PushStream.cb_1") && !valid_callback("a(1)") && !valid_callback("1a")
        );
    }

    const JSON_TEMPLATE: &str = r#"{"id":~id~,"channel":"~channel~","text":"~text~","tag":"~tag~","time":"~time~","eventid":"~event-id~"}"#;

    fn view<'a>(payload: &'a [u8], event_id: Option<&'a str>) -> MessageView<'a> {
        MessageView {
            id: "1796149147000001",
            channels: &["ch"],
            event_type: None,
            content_type: None,
            binary: false,
            payload,
            published_at_ms: 1_796_149_147_250,
            event_id,
        }
    }

    #[test]
    fn templates_on_every_transport_but_eventsource_fill_the_whole_message() {
        let t = Template::parse(JSON_TEMPLATE);
        let mut out = Vec::new();
        render_message(&view(b"a\nb", Some("e7")), &t, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":1796149147000001,\"channel\":\"ch\",\"text\":\"a\nb\",\"tag\":\"1796149147000001\",\"time\":\"Tue, 01 Dec 2026 18:19:07 GMT\",\"eventid\":\"e7\"}"
        );
        let mut out = Vec::new();
        render_message(&view(b"as is", None), &Template::default(), &mut out);
        assert_eq!(out, b"as is");
    }

    #[test]
    fn eventsource_applies_the_template_per_line() {
        let t = Template::parse("[~text~:~size~]");
        let mut out = Vec::new();
        encode_sse(&view(b"one\r\ntwo", Some("e1")), &t, &mut out);
        assert_eq!(out, b"id: e1\ndata: [one:3]\ndata: [two:3]\n\n");
        // A template with a line break of its own still cannot end the
        // event early: each line is a data line.
        let mut out = Vec::new();
        encode_sse(&view(b"x", None), &Template::parse("~text~\n\n!"), &mut out);
        assert_eq!(out, b"data: x\ndata: \ndata: !\n\n");
        // Binary payloads are base64 before the template sees them.
        let mut m = view(b"\x00\x01", None);
        m.binary = true;
        let mut out = Vec::new();
        encode_sse(&m, &Template::parse("<~text~>"), &mut out);
        assert_eq!(out, b"data: <AAE=>\n\n");
    }

    #[test]
    fn channel_deleted_is_message_minus_two() {
        let t = Template::parse(JSON_TEMPLATE);
        let v: serde_json::Value =
            serde_json::from_slice(&channel_deleted_message("news", &t)).unwrap();
        assert_eq!(
            (v["id"].as_i64(), v["channel"].as_str(), v["text"].as_str()),
            (Some(-2), Some("news"), Some("Channel deleted"))
        );
        assert_eq!(v["time"], "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            channel_deleted_message("news", &Template::default()),
            b"Channel deleted"
        );
    }
}
