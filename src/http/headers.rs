//! The header fields crier looks at, picked out of a request head once so
//! handlers never scan the raw list. Values borrow from the read buffer
//! (a copy is made only to join a repeated list field or to replace
//! invalid UTF-8), so parsing a publish allocates nothing for its headers.

use std::borrow::Cow;

/// Header values crier uses; trimmed, `None` when absent. Invalid UTF-8 is
/// replaced (lossy) so a stray byte never fails the request.
///
/// List-valued fields (`Connection`, `Sec-WebSocket-Protocol`,
/// `Sec-WebSocket-Extensions`, `If-None-Match`) that appear several times are
/// joined with `", "`, as RFC 9110 §5.3 allows; for the others the first
/// occurrence wins.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Headers<'a> {
    /// `Content-Type` of a published message.
    pub content_type: Option<Cow<'a, str>>,
    /// `Event-Type`: SSE event name a publisher attaches to a message.
    pub event_type: Option<Cow<'a, str>>,
    /// `Last-Event-ID`: where an EventSource resumes.
    pub last_event_id: Option<Cow<'a, str>>,
    /// `Upgrade`, e.g. `websocket`.
    pub upgrade: Option<Cow<'a, str>>,
    /// `Connection`, raw (its tokens decide keep-alive and upgrades).
    pub connection: Option<Cow<'a, str>>,
    /// `Sec-WebSocket-Key`.
    pub sec_websocket_key: Option<Cow<'a, str>>,
    /// `Sec-WebSocket-Version`.
    pub sec_websocket_version: Option<Cow<'a, str>>,
    /// `Sec-WebSocket-Protocol`.
    pub sec_websocket_protocol: Option<Cow<'a, str>>,
    /// `Sec-WebSocket-Extensions` (permessage-deflate negotiation).
    pub sec_websocket_extensions: Option<Cow<'a, str>>,
    /// `If-None-Match`: long-poll resume position.
    pub if_none_match: Option<Cow<'a, str>>,
    /// `Origin`: the browser page's origin (CORS, WebSocket origin check).
    pub origin: Option<Cow<'a, str>>,
    /// `Authorization`: a publish or status secret, or a signed token.
    pub authorization: Option<Cow<'a, str>>,
    /// `Event-Id`: push-stream's publisher-chosen message id.
    pub event_id: Option<Cow<'a, str>>,
    /// `X-EventSource-Event`: Nchan's SSE event name of a message.
    pub eventsource_event: Option<Cow<'a, str>>,
    /// `Accept`: the reply format (Nchan, push-stream) or the subscriber
    /// transport (Nchan: `text/event-stream`, `multipart/mixed`).
    pub accept: Option<Cow<'a, str>>,
    /// `If-Modified-Since`: push-stream's and Nchan's long-poll position.
    pub if_modified_since: Option<Cow<'a, str>>,
    /// `TE`: Nchan's chunked subscriber asks with `TE: chunked`.
    pub te: Option<Cow<'a, str>>,
    /// `X-Nginx-PushStream-Mode`: push-stream's `polling` / `long-polling`.
    pub pushstream_mode: Option<Cow<'a, str>>,
}

impl Headers<'_> {
    /// The credential of `Authorization: Bearer CREDENTIAL` (scheme without
    /// case, RFC 6750).
    pub fn bearer(&self) -> Option<&str> {
        let value = self.authorization.as_deref()?;
        let (scheme, credential) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| credential.trim())
            .filter(|c| !c.is_empty())
    }
}

impl<'a> Headers<'a> {
    /// Records one header field if crier uses it. Returns false for fields
    /// it does not know (the caller handles framing fields itself).
    pub fn record(&mut self, name: &str, value: &'a [u8]) -> bool {
        if let Some(slot) = self.single_slot(name) {
            if slot.is_none() {
                *slot = Some(trimmed_value(value));
            }
            return true;
        }
        if let Some(slot) = self.list_slot(name) {
            join_list(slot, trimmed_value(value));
            return true;
        }
        false
    }

    /// Single-valued fields: the first occurrence wins.
    fn single_slot(&mut self, name: &str) -> Option<&mut Option<Cow<'a, str>>> {
        let slot = match name.len() {
            2 if name.eq_ignore_ascii_case("te") => &mut self.te,
            6 if name.eq_ignore_ascii_case("origin") => &mut self.origin,
            8 if name.eq_ignore_ascii_case("event-id") => &mut self.event_id,
            17 if name.eq_ignore_ascii_case("if-modified-since") => &mut self.if_modified_since,
            19 if name.eq_ignore_ascii_case("x-eventsource-event") => &mut self.eventsource_event,
            23 if name.eq_ignore_ascii_case("x-nginx-pushstream-mode") => &mut self.pushstream_mode,
            7 if name.eq_ignore_ascii_case("upgrade") => &mut self.upgrade,
            10 if name.eq_ignore_ascii_case("event-type") => &mut self.event_type,
            12 if name.eq_ignore_ascii_case("content-type") => &mut self.content_type,
            13 if name.eq_ignore_ascii_case("last-event-id") => &mut self.last_event_id,
            13 if name.eq_ignore_ascii_case("authorization") => &mut self.authorization,
            17 if name.eq_ignore_ascii_case("sec-websocket-key") => &mut self.sec_websocket_key,
            21 if name.eq_ignore_ascii_case("sec-websocket-version") => {
                &mut self.sec_websocket_version
            }
            _ => return None,
        };
        Some(slot)
    }

    /// List-valued fields: repeated occurrences are joined with ", ".
    fn list_slot(&mut self, name: &str) -> Option<&mut Option<Cow<'a, str>>> {
        let slot = if name.eq_ignore_ascii_case("connection") {
            &mut self.connection
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            &mut self.sec_websocket_protocol
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            &mut self.sec_websocket_extensions
        } else if name.eq_ignore_ascii_case("if-none-match") {
            &mut self.if_none_match
        } else if name.eq_ignore_ascii_case("accept") {
            &mut self.accept
        } else {
            return None;
        };
        Some(slot)
    }
}

/// A header value without surrounding spaces and tabs, borrowed when it is
/// valid UTF-8.
pub fn trimmed_value(value: &[u8]) -> Cow<'_, str> {
    match String::from_utf8_lossy(value) {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_matches([' ', '\t'])),
        Cow::Owned(s) => Cow::Owned(s.trim_matches([' ', '\t']).to_owned()),
    }
}

/// Appends `value` to a comma-separated list field.
fn join_list<'a>(slot: &mut Option<Cow<'a, str>>, value: Cow<'a, str>) {
    match slot {
        Some(existing) => {
            let joined = existing.to_mut();
            joined.push_str(", ");
            joined.push_str(&value);
        }
        None => *slot = Some(value),
    }
}

/// True when the comma-separated `list` contains `token` (case-insensitive).
pub fn has_token(list: &str, token: &str) -> bool {
    list.split(',')
        .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&str, &'static [u8])]) -> Headers<'static> {
        let mut h = Headers::default();
        for (name, value) in fields {
            h.record(name, value);
        }
        h
    }

    #[test]
    fn fields_are_case_insensitive_trimmed_and_borrowed() {
        let h = headers(&[
            ("Content-Type", b" text/plain "),
            ("EVENT-TYPE", b"news"),
            ("last-event-id", b"\t42"),
            ("Upgrade", b"websocket"),
            ("Connection", b"keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", b"13"),
            ("Sec-WebSocket-Protocol", b"chat"),
            ("Sec-WebSocket-Protocol", b"superchat"),
            ("Sec-WebSocket-Extensions", b"permessage-deflate"),
            ("If-None-Match", b"\"7\""),
        ]);
        assert_eq!(h.content_type.as_deref(), Some("text/plain"));
        assert!(matches!(h.content_type, Some(Cow::Borrowed(_))));
        assert_eq!(h.event_type.as_deref(), Some("news"));
        assert_eq!(h.last_event_id.as_deref(), Some("42"));
        assert_eq!(h.upgrade.as_deref(), Some("websocket"));
        assert_eq!(h.connection.as_deref(), Some("keep-alive, Upgrade"));
        assert_eq!(
            h.sec_websocket_key.as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        assert_eq!(h.sec_websocket_version.as_deref(), Some("13"));
        assert_eq!(h.sec_websocket_protocol.as_deref(), Some("chat, superchat"));
        assert_eq!(
            h.sec_websocket_extensions.as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(h.if_none_match.as_deref(), Some("\"7\""));
    }

    #[test]
    fn first_single_value_wins_and_unknown_fields_are_not_kept() {
        let mut h = Headers::default();
        assert!(h.record("Event-Type", b"a"));
        assert!(h.record("Event-Type", b"b"));
        assert!(!h.record("X-Other", b"c"));
        assert_eq!(h.event_type.as_deref(), Some("a"));
    }

    #[test]
    fn non_utf8_value_is_lossy_and_trimmed() {
        let h = headers(&[("Event-Type", b" a\xffb\t")]);
        assert_eq!(h.event_type.as_deref(), Some("a\u{fffd}b"));
    }

    #[test]
    fn bearer_credentials() {
        let h = headers(&[("Authorization", b"Bearer  abc.def ")]);
        assert_eq!(h.bearer(), Some("abc.def"));
        assert_eq!(
            headers(&[("Authorization", b"bearer x")]).bearer(),
            Some("x")
        );
        assert_eq!(headers(&[("Authorization", b"Basic eA==")]).bearer(), None);
        assert_eq!(headers(&[("Authorization", b"Bearer")]).bearer(), None);
        assert_eq!(
            headers(&[("Origin", b"https://a.example")])
                .origin
                .as_deref(),
            Some("https://a.example")
        );
    }

    #[test]
    fn tokens() {
        assert!(has_token("keep-alive, Upgrade", "upgrade"));
        assert!(has_token("close", "close"));
        assert!(!has_token("upgrades", "upgrade"));
        assert!(!has_token("", "close"));
    }
}
