//! `--compat nchan`: Nchan's publisher and subscriber locations.
//!
//! An nginx `location` becomes a path prefix: with the defaults,
//! `/pub/CH` or `/pub?id=CH` is `nchan_publisher` (POST/PUT publish, GET
//! channel info, DELETE) and `/sub/CH` or `/sub?id=CH` is
//! `nchan_subscriber`, where the request picks the transport as with
//! Nchan: a WebSocket upgrade, `Accept: text/event-stream`, `TE: chunked`,
//! else a long-poll. The same path for both is `nchan_pubsub` (GET
//! subscribes, POST publishes). Several channels are separated by `/` or
//! `,` (Nchan's `nchan_channel_id_split_delimiter`).
//!
//! Resume: `If-None-Match` (the `Etag` of the previous long-poll answer)
//! with `If-Modified-Since`, else `Last-Event-ID` or `last_event_id=`
//! (`TIME:ID`); without one, `--first-message` (Nchan's default `oldest`).

use super::{CompatRoute, Locations, NchanSub, SubDialect, NCHAN_WS_META};
use crate::http::headers::has_token;
use crate::http::query::query_param;
use crate::http::request::{Method, RequestHead};
use crate::http::route::{RouteError, RouteLimits, SubTransport, Subscription};
use crate::proto::compat::nchan::parse_msg_id;
use crate::pubsub::channel::{ChannelRequest, Resume};

/// Routes a request on Nchan's locations; `CompatRoute::Crier` elsewhere
/// (crier's own API stays reachable on the paths Nchan does not take).
pub fn route(
    head: &RequestHead<'_>,
    limits: &RouteLimits,
    loc: &Locations,
) -> Result<CompatRoute, RouteError> {
    let publish = channel_part(head, &loc.nchan_publish);
    let subscribe = channel_part(head, &loc.nchan_subscribe);
    let (raw, is_pub, is_sub) = match (publish, subscribe) {
        (Some(raw), Some(_)) => (raw, true, true),
        (Some(raw), None) => (raw, true, false),
        (None, Some(raw)) => (raw, false, true),
        (None, None) => return Ok(CompatRoute::Crier),
    };
    if head.method == Method::Options {
        return Ok(CompatRoute::Crier);
    }
    let pubsub = is_pub && is_sub;
    let allow = match (is_pub, is_sub) {
        (true, true) => "GET, POST, PUT, OPTIONS",
        (true, false) => "GET, POST, PUT, DELETE, OPTIONS",
        _ => "GET, OPTIONS",
    };
    let method_ok = match head.method {
        Method::Get => true,
        Method::Post | Method::Put => is_pub,
        // Nchan: channels cannot be deleted through a pubsub location.
        Method::Delete => is_pub && !pubsub,
        _ => false,
    };
    if !method_ok {
        return Err(RouteError::method(allow));
    }
    if raw.is_empty() {
        return Err(RouteError::new(400, "missing channel id"));
    }
    let channels = limits.channel_list(&raw.replace(',', "/"))?;
    Ok(match head.method {
        Method::Get if is_sub => subscription(head, channels),
        Method::Get => CompatRoute::Info(channels),
        Method::Delete => CompatRoute::Delete(channels),
        _ => CompatRoute::Publish(channels),
    })
}

/// The channel part of a request on `location`: the rest of the path
/// after `location/`, or `?id=` on `location` itself.
fn channel_part(head: &RequestHead<'_>, location: &str) -> Option<String> {
    let rest = head.path.strip_prefix(location)?;
    if rest.is_empty() {
        return Some(query_param(head.query, "id").unwrap_or_default());
    }
    let rest = rest.strip_prefix('/')?;
    Some(rest.trim_end_matches('/').to_string())
}

/// A subscriber: its transport from the request, its resume point.
fn subscription(head: &RequestHead<'_>, channels: Vec<String>) -> CompatRoute {
    let h = &head.headers;
    let websocket = h
        .upgrade
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let accepts = |ty: &str| {
        h.accept
            .as_deref()
            .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with(ty)))
    };
    let transport = if websocket {
        SubTransport::WebSocket
    } else if accepts("text/event-stream") {
        SubTransport::EventSource
    } else if h.te.as_deref().is_some_and(|te| {
        te.split(',').any(|t| {
            let mut parts = t.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q0 = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            name.eq_ignore_ascii_case("chunked") && !q0
        })
    }) {
        SubTransport::Stream
    } else {
        SubTransport::LongPoll
    };
    let ws_meta = websocket
        && h.sec_websocket_protocol
            .as_deref()
            .is_some_and(|p| has_token(p, NCHAN_WS_META));
    let sub = Subscription {
        transport,
        channels: channels
            .into_iter()
            .map(|name| ChannelRequest { name, backtrack: 0 })
            .collect(),
        resume: resume_point(head),
        json: false,
        // Nchan's `TIME:ID` names one sequence: a single shard's.
        resume_text: None,
    };
    CompatRoute::Subscribe(sub, SubDialect::Nchan(NchanSub { ws_meta }))
}

/// Nchan's resume order: the long-poll pair (`If-None-Match` holds crier's
/// id), then `Last-Event-ID`, then `last_event_id=`. An id crier cannot
/// read (one issued by Nchan itself) resumes from the oldest stored
/// message.
fn resume_point(head: &RequestHead<'_>) -> Resume {
    let h = &head.headers;
    let id = h
        .if_none_match
        .as_deref()
        .map(str::to_string)
        .or_else(|| h.last_event_id.as_deref().map(str::to_string))
        .or_else(|| query_param(head.query, "last_event_id"))
        .filter(|id| !id.trim().is_empty());
    match id {
        Some(id) => Resume::AfterSeq(parse_msg_id(&id).unwrap_or(0)),
        None => Resume::Live,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::{Compat, PublisherMode};
    use crate::http::request::{parse_head, Limits};

    const LIMITS: Limits = Limits {
        max_request_line: 1024,
        max_header_bytes: 8192,
        max_headers: 64,
        max_body_bytes: 1 << 20,
    };
    const ROUTE: RouteLimits = RouteLimits {
        max_channels: 16,
        max_channel_id: 128,
    };

    fn loc(publish: &str, subscribe: &str) -> Locations {
        Locations {
            compat: Compat::Nchan,
            push_stream_publisher: PublisherMode::Normal,
            nchan_publish: publish.into(),
            nchan_subscribe: subscribe.into(),
        }
    }

    fn route_in(req: &str, l: &Locations) -> Result<CompatRoute, RouteError> {
        let (head, _) = parse_head(req.as_bytes(), &LIMITS).unwrap().unwrap();
        route(&head, &ROUTE, l)
    }

    fn sub(req: &str) -> (Subscription, NchanSub) {
        match route_in(req, &loc("/pub", "/sub")).unwrap() {
            CompatRoute::Subscribe(s, SubDialect::Nchan(n)) => (s, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn publisher_locations_by_path_and_query() {
        let l = loc("/pub", "/sub");
        let post = "POST /pub/a,b HTTP/1.1\r\nContent-Length: 1\r\n\r\n";
        assert_eq!(
            route_in(post, &l).unwrap(),
            CompatRoute::Publish(vec!["a".into(), "b".into()])
        );
        let get = "GET /pub?id=a HTTP/1.1\r\n\r\n";
        assert_eq!(
            route_in(get, &l).unwrap(),
            CompatRoute::Info(vec!["a".into()])
        );
        let del = "DELETE /pub/a HTTP/1.1\r\n\r\n";
        assert_eq!(
            route_in(del, &l).unwrap(),
            CompatRoute::Delete(vec!["a".into()])
        );
        assert_eq!(
            route_in("GET /publish HTTP/1.1\r\n\r\n", &l).unwrap(),
            CompatRoute::Crier
        );
        assert_eq!(
            route_in("GET /status HTTP/1.1\r\n\r\n", &l).unwrap(),
            CompatRoute::Crier
        );
        assert_eq!(
            route_in("POST /sub/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &l)
                .unwrap_err()
                .status,
            405
        );
        assert_eq!(
            route_in("GET /pub HTTP/1.1\r\n\r\n", &l)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn pubsub_location_subscribes_on_get_and_refuses_delete() {
        let l = loc("/ps", "/ps");
        assert!(matches!(
            route_in("GET /ps/a HTTP/1.1\r\n\r\n", &l).unwrap(),
            CompatRoute::Subscribe(..)
        ));
        assert!(matches!(
            route_in("POST /ps/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &l).unwrap(),
            CompatRoute::Publish(_)
        ));
        assert_eq!(
            route_in("DELETE /ps/a HTTP/1.1\r\n\r\n", &l)
                .unwrap_err()
                .status,
            405
        );
    }

    #[test]
    fn transport_and_resume_from_the_request() {
        let (s, _) = sub("GET /sub/a HTTP/1.1\r\n\r\n");
        assert_eq!(
            (s.transport, s.resume),
            (SubTransport::LongPoll, Resume::Live)
        );
        let (s, _) =
            sub("GET /sub/a HTTP/1.1\r\nAccept: text/event-stream\r\nLast-Event-ID: 17:42\r\n\r\n");
        assert_eq!(
            (s.transport, s.resume),
            (SubTransport::EventSource, Resume::AfterSeq(42))
        );
        let (s, _) = sub("GET /sub?id=a&last_event_id=17%3A9 HTTP/1.1\r\nTE: chunked\r\n\r\n");
        assert_eq!(
            (s.transport, s.resume),
            (SubTransport::Stream, Resume::AfterSeq(9))
        );
        let (s, _) = sub("GET /sub/a HTTP/1.1\r\nIf-Modified-Since: x\r\nIf-None-Match: 5\r\n\r\n");
        assert_eq!(s.resume, Resume::AfterSeq(5));
        let (s, n) = sub("GET /sub/a HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: ws+meta.nchan\r\n\r\n");
        assert_eq!((s.transport, n.ws_meta), (SubTransport::WebSocket, true));
        let (s, _) = sub("GET /sub/a HTTP/1.1\r\nLast-Event-ID: 1796149165:[0],-\r\n\r\n");
        assert_eq!(s.resume, Resume::AfterSeq(0));
    }
}
