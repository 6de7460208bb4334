//! The bytes of push-stream's and Nchan's answers (pure): errors, channel
//! figures and long-poll answers, with the headers their clients read.
//!
//! Errors: push-stream answers with no body and the reason in
//! `X-Nginx-PushStream-Explain`; Nchan with no body at all. Both keep
//! crier's `Cache-Control: no-cache` and CORS headers.

use std::sync::Arc;

use super::{Dialect, SubDialect};
use crate::http::response::{self, Cors, ReplyMode};
use crate::proto::compat::{httpdate, nchan as nchan_wire, push_stream as ps_wire};
use crate::proto::{EncodeSettings, WireFormat};
use crate::pubsub::channel::ChannelInfo;
use crate::pubsub::message::Message;

/// Nchan long-poll answers vary with the position headers.
const NCHAN_VARY: &str = "Vary: If-None-Match, If-Modified-Since";

/// Lets pages on other origins read the position headers.
const EXPOSE: &str = "Access-Control-Expose-Headers: Last-Modified, Etag";

/// An error answer in the peer's format.
pub fn error(
    dialect: Dialect,
    cors: &Cors,
    status: u16,
    message: &str,
    mode: ReplyMode,
    extra: &[&str],
) -> Vec<u8> {
    let mut headers: Vec<String> = extra.iter().map(|h| h.to_string()).collect();
    if matches!(dialect, Dialect::PushStream(_)) && !matches!(status, 404 | 405) {
        // A header value must stay one line.
        let explain: String = message.chars().filter(|c| !c.is_control()).collect();
        headers.push(format!("X-Nginx-PushStream-Explain: {explain}"));
    }
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    response::full(cors, status, "", b"", mode, &refs)
}

/// push-stream's figures of one channel, as crier knows them.
pub fn ps_figures(c: &ChannelInfo) -> ps_wire::ChannelFigures<'_> {
    ps_wire::ChannelFigures {
        name: &c.channel,
        published_messages: c.published_messages,
        stored_messages: c.stored_messages,
        subscribers: c.subscribers,
    }
}

/// push-stream's reply for one or several channels (`head` describes the
/// server for the several-channel form).
pub fn ps_channels(
    format: ps_wire::InfoFormat,
    head: &ps_wire::GroupHead<'_>,
    infos: &[ChannelInfo],
) -> String {
    let figures: Vec<_> = infos.iter().map(ps_figures).collect();
    match figures.as_slice() {
        [one] => ps_wire::channel(format, one),
        many => ps_wire::group(format, head, many),
    }
}

/// Nchan's id of a channel's newest message, `0:0` when it has none.
pub fn nchan_last_id(c: &ChannelInfo, fallback_ms: u64) -> String {
    match c.last_id {
        Some(id) => nchan_wire::msg_id(c.last_at_ms.unwrap_or(fallback_ms), id),
        None => "0:0".to_string(),
    }
}

/// Nchan's channel-info body for `c`; `now_ms` stands in for the time of
/// a newest message that is no longer stored.
pub fn nchan_channel(format: nchan_wire::InfoFormat, c: &ChannelInfo, now_ms: u64) -> String {
    let last = nchan_last_id(c, now_ms);
    nchan_wire::channel_info(
        format,
        &nchan_wire::ChannelInfo {
            messages: c.stored_messages,
            // crier does not keep when a channel was last requested: "now"
            // while subscribers are connected, "never" (-1) otherwise.
            requested: if c.subscribers > 0 { 0 } else { -1 },
            subscribers: c.subscribers,
            last_message_id: &last,
        },
    )
}

/// How a long-poll ends, for its answer.
#[derive(Debug, Clone, Copy)]
pub enum PollEnd<'a> {
    /// Messages arrived (or were stored after its position).
    Messages(&'a [Arc<Message>]),
    /// Nothing came before the timeout; `position` is where it waited.
    Timeout { position: u64 },
    /// Its channel (this one) was deleted.
    Deleted { channel: &'a str },
    /// The server is going away.
    Shutdown { retry_after_secs: u64 },
    /// The token that opened its private channel expired.
    TokenExpired,
}

/// The answer to a push-stream or Nchan long-poll; None for crier's own.
pub fn longpoll(
    dialect: &SubDialect,
    end: PollEnd<'_>,
    cors: &Cors,
    mode: ReplyMode,
    now_secs: u64,
    settings: &EncodeSettings,
) -> Option<Vec<u8>> {
    match dialect {
        SubDialect::Crier => None,
        SubDialect::PushStream(p) => Some(ps_longpoll(
            p.callback.as_deref(),
            end,
            cors,
            mode,
            now_secs,
            settings,
        )),
        SubDialect::Nchan(_) => Some(nchan_longpoll(end, cors, mode)),
    }
}

/// push-stream's long-poll answer: the header template, the messages
/// through the message template (as `callback([m1,m2]);` for JSONP), the
/// footer template; a timeout is `304` with the position to come back
/// with.
fn ps_longpoll(
    callback: Option<&str>,
    end: PollEnd<'_>,
    cors: &Cors,
    mode: ReplyMode,
    now_secs: u64,
    settings: &EncodeSettings,
) -> Vec<u8> {
    let dialect = Dialect::PushStream(ps_wire::InfoFormat::Json);
    let content_type = if callback.is_some() {
        "application/javascript"
    } else {
        "text/plain"
    };
    let templates = &settings.push_stream;
    let body_of = |pieces: &[&[u8]]| {
        let mut body = templates.header.as_bytes().to_vec();
        match callback {
            Some(cb) => body.extend_from_slice(&ps_wire::jsonp(cb, pieces.iter().copied())),
            None => body.extend_from_slice(&pieces.concat()),
        }
        body.extend_from_slice(templates.footer.as_bytes());
        body
    };
    match end {
        PollEnd::Messages(messages) => {
            let Some(last) = messages.last() else {
                return ps_longpoll(
                    callback,
                    PollEnd::Timeout { position: 0 },
                    cors,
                    mode,
                    now_secs,
                    settings,
                );
            };
            let encoded: Vec<_> = messages
                .iter()
                .map(|m| m.encoded(WireFormat::PushStreamText, settings))
                .collect();
            let pieces: Vec<&[u8]> = encoded.iter().map(|b| &b[..]).collect();
            let body = body_of(&pieces);
            let modified = format!(
                "Last-Modified: {}",
                httpdate::format(last.published_at_ms / 1000)
            );
            let etag = format!("Etag: W/{}", last.seq);
            response::full(
                cors,
                200,
                content_type,
                &body,
                mode,
                &[&modified, &etag, EXPOSE],
            )
        }
        PollEnd::Timeout { position } => {
            let modified = format!("Last-Modified: {}", httpdate::format(now_secs));
            let etag = format!("Etag: W/{position}");
            response::full(cors, 304, "", b"", mode, &[&modified, &etag, EXPOSE])
        }
        PollEnd::Deleted { channel } => {
            // push-stream answers a waiting poll with its "Channel deleted"
            // message.
            let text = ps_wire::channel_deleted_message(channel, &templates.message);
            let body = body_of(&[&text]);
            response::full(cors, 200, content_type, &body, mode, &[])
        }
        PollEnd::Shutdown { retry_after_secs } => {
            let retry = format!("Retry-After: {retry_after_secs}");
            error(dialect, cors, 503, "server shutting down", mode, &[&retry])
        }
        PollEnd::TokenExpired => error(dialect, cors, 401, "token expired", mode, &[]),
    }
}

fn nchan_longpoll(end: PollEnd<'_>, cors: &Cors, mode: ReplyMode) -> Vec<u8> {
    let dialect = Dialect::Nchan(nchan_wire::InfoFormat::Plain);
    match end {
        // One message per answer, as Nchan (without multipart): the next
        // poll asks for the one after it.
        PollEnd::Messages([first, ..]) => {
            let modified = format!(
                "Last-Modified: {}",
                httpdate::format(first.published_at_ms / 1000)
            );
            let etag = format!("Etag: {}", first.seq);
            let ct = first.content_type.as_deref().unwrap_or("");
            response::full(
                cors,
                200,
                ct,
                &first.payload,
                mode,
                &[&modified, &etag, NCHAN_VARY, EXPOSE],
            )
        }
        PollEnd::Messages([]) | PollEnd::Timeout { .. } => {
            response::full(cors, 408, "", b"", mode, &[NCHAN_VARY])
        }
        PollEnd::Deleted { .. } => response::full(cors, 410, "", b"", mode, &[NCHAN_VARY]),
        PollEnd::Shutdown { retry_after_secs } => {
            let retry = format!("Retry-After: {retry_after_secs}");
            error(dialect, cors, 503, "", mode, &[&retry])
        }
        PollEnd::TokenExpired => error(dialect, cors, 401, "", mode, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::{NchanSub, PushStreamSub};
    use crate::pubsub::channel::ChannelRef;
    use crate::pubsub::message::Publication;

    fn msg(seq: u64, body: &'static str, ct: Option<&str>) -> Arc<Message> {
        let ch = ChannelRef {
            id: 1,
            name: Arc::from("a"),
        };
        let p = Publication {
            payload: body.into(),
            content_type: ct.map(str::to_string),
            ..Default::default()
        };
        Arc::new(Message::new(seq, vec![ch].into(), 1_796_149_147_000, p))
    }

    fn settings() -> EncodeSettings {
        EncodeSettings {
            stream_separator: bytes::Bytes::from_static(b"\n"),
            deflate_min_size: 64,
            push_stream: Default::default(),
        }
    }

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn push_stream_polls() {
        let d = SubDialect::PushStream(PushStreamSub::default());
        let m = [msg(5, "a", None), msg(6, "b", None)];
        let mode = ReplyMode::keep_alive(true);
        let r = text(
            longpoll(
                &d,
                PollEnd::Messages(&m),
                &Cors::any(),
                mode,
                0,
                &settings(),
            )
            .unwrap(),
        );
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("\r\nLast-Modified: Tue, 01 Dec 2026 18:19:07 GMT\r\n"));
        assert!(r.contains("\r\nEtag: W/6\r\n") && r.ends_with("\r\n\r\nab"));
        let jsonp = SubDialect::PushStream(PushStreamSub {
            callback: Some("cb".into()),
            ..Default::default()
        });
        let r = text(
            longpoll(
                &jsonp,
                PollEnd::Messages(&m),
                &Cors::any(),
                mode,
                0,
                &settings(),
            )
            .unwrap(),
        );
        assert!(
            r.contains("Content-Type: application/javascript\r\n") && r.ends_with("cb([a,b]);")
        );
        let r = text(
            longpoll(
                &d,
                PollEnd::Timeout { position: 9 },
                &Cors::any(),
                mode,
                0,
                &settings(),
            )
            .unwrap(),
        );
        assert!(r.starts_with("HTTP/1.1 304 Not Modified\r\n") && r.contains("Etag: W/9\r\n"));
    }

    #[test]
    fn nchan_polls_answer_one_message() {
        let d = SubDialect::Nchan(NchanSub::default());
        let m = [msg(5, "a", Some("text/plain")), msg(6, "b", None)];
        let mode = ReplyMode::keep_alive(true);
        let r = text(
            longpoll(
                &d,
                PollEnd::Messages(&m),
                &Cors::default(),
                mode,
                0,
                &settings(),
            )
            .unwrap(),
        );
        assert!(r.contains("Content-Type: text/plain\r\n") && r.contains("Etag: 5\r\n"));
        assert!(r.contains(NCHAN_VARY) && r.ends_with("\r\n\r\na"), "{r}");
        let r = text(
            longpoll(
                &d,
                PollEnd::Timeout { position: 1 },
                &Cors::default(),
                mode,
                0,
                &settings(),
            )
            .unwrap(),
        );
        assert!(
            r.starts_with("HTTP/1.1 408 Request Timeout\r\n")
                && r.contains("Content-Length: 0\r\n")
        );
        let r = text(
            longpoll(
                &d,
                PollEnd::Deleted { channel: "a" },
                &Cors::default(),
                mode,
                0,
                &settings(),
            )
            .unwrap(),
        );
        assert!(r.starts_with("HTTP/1.1 410 Gone\r\n"));
        assert!(longpoll(
            &SubDialect::Crier,
            PollEnd::TokenExpired,
            &Cors::default(),
            mode,
            0,
            &settings(),
        )
        .is_none());
    }

    #[test]
    fn errors() {
        let ps = Dialect::PushStream(ps_wire::InfoFormat::Json);
        let r = text(error(
            ps,
            &Cors::default(),
            400,
            "No channel id provided.",
            ReplyMode::CLOSE,
            &[],
        ));
        assert!(r.contains("X-Nginx-PushStream-Explain: No channel id provided.\r\n"));
        assert!(r.contains("Content-Length: 0\r\n"));
        let r = text(error(ps, &Cors::default(), 404, "x", ReplyMode::CLOSE, &[]));
        assert!(!r.contains("Explain"));
    }

    #[test]
    fn push_stream_polls_go_through_the_templates() {
        use crate::proto::compat::template::Template;
        let mut s = settings();
        s.push_stream.message = Template::parse(r#"{"id":~id~,"text":"~text~"}"#);
        s.push_stream.header = "<h>".into();
        s.push_stream.footer = "</h>".into();
        let m = [msg(5, "a", None), msg(6, "b", None)];
        let mode = ReplyMode::keep_alive(true);
        let d = SubDialect::PushStream(PushStreamSub::default());
        let r = text(longpoll(&d, PollEnd::Messages(&m), &Cors::any(), mode, 0, &s).unwrap());
        assert!(
            r.ends_with("\r\n\r\n<h>{\"id\":5,\"text\":\"a\"}{\"id\":6,\"text\":\"b\"}</h>"),
            "{r}"
        );
        let jsonp = SubDialect::PushStream(PushStreamSub {
            callback: Some("cb".into()),
            ..Default::default()
        });
        let r = text(longpoll(&jsonp, PollEnd::Messages(&m), &Cors::any(), mode, 0, &s).unwrap());
        assert!(
            r.ends_with("<h>cb([{\"id\":5,\"text\":\"a\"},{\"id\":6,\"text\":\"b\"}]);</h>"),
            "{r}"
        );
        let r = text(
            longpoll(
                &jsonp,
                PollEnd::Deleted { channel: "a" },
                &Cors::any(),
                mode,
                0,
                &s,
            )
            .unwrap(),
        );
        assert!(
            r.ends_with("<h>cb([{\"id\":-2,\"text\":\"Channel deleted\"}]);</h>"),
            "{r}"
        );
        // A timeout has no body at all: no header or footer either.
        let r = text(
            longpoll(
                &d,
                PollEnd::Timeout { position: 9 },
                &Cors::any(),
                mode,
                0,
                &s,
            )
            .unwrap(),
        );
        assert!(r.ends_with("\r\n\r\n") && !r.contains("<h>"), "{r}");
    }
}
