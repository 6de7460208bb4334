//! `--compat push-stream` end to end: the replies nginx-push-stream-module's
//! publishers, dashboards and clients parse, byte for byte as its
//! documentation and specs (misc/spec/) give them, and its resume rules:
//! `Event-Id` / `Last-Event-Id`, `If-Modified-Since` + `If-None-Match`,
//! `.bN`, JSONP.

mod common;

use common::*;
use std::net::SocketAddr;

fn push_stream(tweak: impl FnOnce(&mut crier::Config)) -> crier::Handle {
    start_with(2, |c| {
        c.compat = crier::Compat::PushStream;
        tweak(c);
    })
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> Response {
    raw_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n"),
    )
}

#[test]
fn publish_replies_with_the_channel_json() {
    let s = push_stream(|_| {});
    let a = s.addr();
    let r = raw_post(a, "/pub?id=my_channel_1", "", "Hello World!");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text(),
        "{\"channel\": \"my_channel_1\", \"published_messages\": 1, \"stored_messages\": 1, \"subscribers\": 0}\r\n"
    );
    let r = get(a, "/pub?id=my_channel_1", "Accept: text/plain\r\n");
    assert_eq!(
        r.text(),
        "channel: my_channel_1\r\npublished_messages: 1\r\nstored_messages: 1\r\nactive_subscribers: 0\r\n"
    );
    // Several channels: the group form, valid JSON with "infos".
    let r = raw_post(a, "/pub?id=a/b", "", "both");
    let v = r.json();
    assert_eq!(v["infos"][0]["channel"], "a");
    assert_eq!(v["infos"][1]["channel"], "b");
    assert!(v["hostname"].is_string() && v["time"].as_str().unwrap().len() == 19);
    // Errors: no body, the reason in X-Nginx-PushStream-Explain.
    let r = raw_post(a, "/pub?id=e", "", "");
    assert_eq!((r.status, r.body.len()), (400, 0));
    assert_eq!(
        r.header("x-nginx-pushstream-explain"),
        Some("Empty post requests are not allowed.")
    );
    let r = get(a, "/pub", "");
    assert_eq!(
        r.header("x-nginx-pushstream-explain"),
        Some("No channel id provided.")
    );
    let r = raw_post(a, "/pub?id=ALL", "", "x");
    assert_eq!(
        (r.status, r.header("x-nginx-pushstream-explain")),
        (403, Some("Channel id not authorized for this method."))
    );
    let r = get(a, "/pub?id=none", "");
    assert_eq!((r.status, r.body.len()), (404, 0));
}

#[test]
fn delete_needs_an_admin_publisher() {
    let s = push_stream(|_| {});
    let a = s.addr();
    raw_post(a, "/pub?id=d", "", "x");
    let r = raw_request(a, "DELETE /pub?id=d HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, POST, PUT")));

    let s = push_stream(|c| c.push_stream_publisher = crier::PublisherMode::Admin);
    let a = s.addr();
    raw_post(a, "/pub?id=d", "", "x");
    let mut sse = SseClient::connect(a, "/ev/d.b1");
    assert_eq!(sse.event().data, "x");
    let r = raw_request(a, "DELETE /pub?id=d HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(
        r.header("x-nginx-pushstream-explain"),
        Some("Channel deleted.")
    );
    // The subscriber gets push-stream's "Channel deleted" message.
    assert_eq!(sse.event().data, "Channel deleted");
    let r = raw_request(a, "DELETE /pub?id=d HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 404);
}

#[test]
fn channels_stats_summary_all_prefix_and_one() {
    let s = push_stream(|_| {});
    let a = s.addr();
    raw_post(a, "/pub?id=news_1", "", "a");
    raw_post(a, "/pub?id=news_2", "", "b");
    raw_post(a, "/pub?id=sport", "", "c");
    let v = get(a, "/channels-stats", "").json();
    for key in [
        "hostname",
        "time",
        "channels",
        "wildcard_channels",
        "published_messages",
        "stored_messages",
        "messages_in_trash",
        "channels_in_delete",
        "channels_in_trash",
        "subscribers",
        "uptime",
        "by_worker",
    ] {
        assert!(v.get(key).is_some(), "summary lacks {key}: {v}");
    }
    assert_eq!(
        (v["channels"].as_u64(), v["published_messages"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(v["by_worker"].as_array().unwrap().len(), 2);
    let all = get(a, "/channels-stats?id=ALL", "").json();
    assert_eq!(all["infos"].as_array().unwrap().len(), 3);
    let news = get(a, "/channels-stats?id=news_*", "").json();
    let names: Vec<&str> = news["infos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["channel"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["news_1", "news_2"]);
    let one = get(a, "/channels-stats?id=sport", "");
    assert_eq!(
        one.text(),
        "{\"channel\": \"sport\", \"published_messages\": 1, \"stored_messages\": 1, \"subscribers\": 0}\r\n"
    );
    assert_eq!(get(a, "/channels-stats?id=nope", "").status, 404);
    let xml = get(a, "/channels-stats", "Accept: application/xml\r\n");
    assert_eq!(xml.header("content-type"), Some("application/xml"));
    assert!(xml
        .text()
        .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\r\n<infos>\r\n  <hostname>"));
}

#[test]
fn eventsource_ids_are_the_publishers_event_ids_and_resume() {
    let s = push_stream(|_| {});
    let a = s.addr();
    raw_post(a, "/pub?id=ev", "Event-Id: event 1\r\n", "msg 1");
    raw_post(a, "/pub?id=ev", "Event-Id: event 2\r\n", "msg 2");
    raw_post(a, "/pub?id=ev", "", "msg 3");
    raw_post(
        a,
        "/pub?id=ev",
        "Event-Id: event 3\r\nEvent-Type: tick\r\n",
        "msg 4",
    );
    let mut sse = SseClient::connect_with(a, "/ev/ev", "Last-Event-ID: event 2\r\n");
    let e = sse.event();
    assert_eq!(
        (e.data.as_str(), e.raw.as_slice()),
        ("msg 3", &b"data: msg 3\n\n"[..])
    );
    let e = sse.event();
    assert_eq!(e.raw, b"id: event 3\nevent: tick\ndata: msg 4\n\n");
    assert_eq!((e.kind.as_str(), e.last_id.as_str()), ("tick", "event 3"));
    // An unknown event id sends no old messages (push-stream's rule).
    let mut fresh = SseClient::connect_with(a, "/ev/ev", "Last-Event-ID: nope\r\n");
    wait_subscribers_status(a, "ev", 2);
    raw_post(a, "/pub?id=ev", "", "live");
    assert_eq!(fresh.event().data, "live");
}

fn wait_subscribers_status(addr: SocketAddr, ch: &str, n: u64) {
    poll_until(&format!("{n} subscribers on {ch}"), || {
        let r = get(addr, &format!("/status?id={ch}"), "");
        match r.status {
            200 if r.json()["subscribers"].as_u64() >= Some(n) => Ok(()),
            _ => Err(r.text()),
        }
    })
}

#[test]
fn long_polling_resumes_from_last_modified_and_etag() {
    let s = push_stream(|c| c.longpoll_timeout = 1);
    let a = s.addr();
    let mut c = Conn::connect(a);
    // Nothing yet: 304 at the timeout, with the position to come back with.
    let r = longpoll_on(&mut c, "/lp/lp", "If-None-Match: 0\r\n");
    assert_eq!((r.status, r.body.len()), (304, 0));
    let etag = r.header("etag").unwrap().to_string();
    assert!(etag.starts_with("W/"), "{etag}");
    let lm = r.header("last-modified").unwrap().to_string();
    raw_post(a, "/pub?id=lp", "", "body");
    let r = longpoll_on(
        &mut c,
        "/lp/lp",
        &format!("If-Modified-Since: {lm}\r\nIf-None-Match: {etag}\r\n"),
    );
    assert_eq!((r.status, r.text().as_str()), (200, "body"));
    // The next poll waits for the next message, which answers it alone.
    let (lm, etag) = (
        r.header("last-modified").unwrap().to_string(),
        r.header("etag").unwrap().to_string(),
    );
    c.write(format!("GET /lp/lp HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: {lm}\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes());
    wait_subscribers_status(a, "lp", 1);
    raw_post(a, "/pub?id=lp", "", "body 1");
    let r = c.read_response();
    assert_eq!(r.text(), "body 1");
    let next: u64 = r.header("etag").unwrap()[2..].parse().unwrap();
    let prev: u64 = etag[2..].parse().unwrap();
    assert_eq!(next, prev + 1, "consecutive messages, consecutive tags");
}

#[test]
fn jsonp_backtrack_and_polling_mode() {
    let s = push_stream(|_| {});
    let a = s.addr();
    raw_post(a, "/pub?id=j", "Event-Id: event_id\r\n", "body");
    raw_post(a, "/pub?id=j", "", "body1");
    let mut c = Conn::connect(a);
    let r = longpoll_on(&mut c, "/lp/j.b2?callback=callback_function", "");
    assert_eq!(r.header("content-type"), Some("application/javascript"));
    assert_eq!(r.text(), "callback_function([body,body1]);");
    let r = longpoll_on(
        &mut c,
        "/lp/j?callback=callback_function",
        "Last-Event-Id: event_id\r\n",
    );
    assert_eq!(r.text(), "callback_function([body1]);");
    let r = longpoll_on(
        &mut c,
        "/lp/j?callback=cb",
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
    );
    assert_eq!(r.text(), "cb([body,body1]);");
    // pushstream.js in JSONP mode sends the position as arguments.
    let r = longpoll_on(
        &mut c,
        "/lp/j?callback=cb&time=Thu%2C%2001%20Jan%201970%2000%3A00%3A00%20GMT&tag=0",
        "",
    );
    assert_eq!(r.text(), "cb([body,body1]);");
    // Polling answers at once: 304 when nothing is new.
    let etag = r.header("etag").unwrap().to_string();
    let r = longpoll_on(
        &mut c,
        "/sub/j",
        &format!("X-Nginx-PushStream-Mode: polling\r\nIf-None-Match: {etag}\r\n"),
    );
    assert_eq!(r.status, 304);
    let r = longpoll_on(&mut c, "/lp/j?callback=a(1)", "");
    assert_eq!(r.status, 400);
}

#[test]
fn store_messages_zero_stores_nothing() {
    let s = push_stream(|c| c.store_messages = 0);
    let a = s.addr();
    let r = raw_post(a, "/pub?id=s", "", "x");
    assert_eq!(
        r.text(),
        "{\"channel\": \"s\", \"published_messages\": 1, \"stored_messages\": 0, \"subscribers\": 0}\r\n"
    );
}

#[test]
fn websocket_gets_the_message_text() {
    let s = push_stream(|_| {});
    let a = s.addr();
    let mut ws = ws_connect(a, "/ws/w");
    wait_subscribers_status(a, "w", 1);
    raw_post(a, "/pub?id=w", "Event-Id: e\r\n", "hello");
    match ws.read().unwrap() {
        tungstenite::Message::Text(t) => assert_eq!(t.as_str(), "hello"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn crier_mode_is_unchanged_by_default() {
    let s = start_with(1, |_| {});
    let a = s.addr();
    let r = raw_post(a, "/pub?id=x", "Event-Id: e\r\n", "m");
    assert!(r.json()["id"].is_string(), "crier's own JSON");
    assert_eq!(get(a, "/channels-stats", "").status, 404);
    // --first-message works without --compat too.
    let s = start_with(1, |c| c.first_message = crier::FirstMessage::Oldest);
    raw_post(s.addr(), "/pub?id=f", "", "first");
    let mut sse = SseClient::connect(s.addr(), "/ev/f");
    assert_eq!(sse.event().data, "first");
}

/// push-stream's own misc/nginx.conf template, the one pushstream.js parses.
const JSON_TEMPLATE: &str = r#"{"id":~id~,"channel":"~channel~","text":"~text~","tag":"~tag~","time":"~time~","eventid":"~event-id~"}"#;

/// The id and publish time of the newest message on `ch`, from a
/// backtracking long-poll's `Etag: W/ID` and `Last-Modified`.
fn newest_id_and_time(addr: SocketAddr, ch: &str) -> (String, String) {
    let r = get(addr, &format!("/lp/{ch}.b1"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r
        .header("etag")
        .unwrap()
        .trim_start_matches("W/")
        .to_string();
    (id, r.header("last-modified").unwrap().to_string())
}

#[test]
fn message_template_on_every_transport_byte_for_byte() {
    let s = push_stream(|c| c.push_stream_message_template = JSON_TEMPLATE.into());
    let a = s.addr();
    raw_post(a, "/pub?id=tpl", "Event-Id: e1\r\n", "hello%20world");
    let (id, time) = newest_id_and_time(a, "tpl");
    let body = format!(
        r#"{{"id":{id},"channel":"tpl","text":"hello%20world","tag":"{id}","time":"{time}","eventid":"e1"}}"#
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"].as_u64(), id.parse().ok(), "~id~ is a JSON number");

    // Long-poll: the body is the templated message; JSONP wraps it.
    let r = get(a, "/lp/tpl.b1", "");
    assert_eq!(r.text(), body);
    let r = get(a, "/lp/tpl.b1?callback=cb", "");
    assert_eq!(r.text(), format!("cb([{body}]);"));
    // EventSource: the template inside `data:`, the Event-Id as `id:`.
    let mut sse = SseClient::connect(a, "/ev/tpl.b1");
    let e = sse.event();
    assert_eq!(e.raw, format!("id: e1\ndata: {body}\n\n").into_bytes());
    // Stream: one chunk, the template then the stream separator.
    let mut stream = StreamClient::connect(a, "/sub/tpl.b1");
    assert_eq!(stream.chunk(), format!("{body}\n").into_bytes());
    // WebSocket: one text frame.
    let mut ws = ws_connect(a, "/ws/tpl.b1");
    match ws.read().unwrap() {
        tungstenite::Message::Text(t) => assert_eq!(t.as_str(), body),
        other => panic!("{other:?}"),
    }

    // Live messages too, without an Event-Id (~event-id~ is empty).
    wait_subscribers_status(a, "tpl", 3);
    raw_post(a, "/pub?id=tpl", "", "live");
    let (id, time) = newest_id_and_time(a, "tpl");
    let live = format!(
        r#"{{"id":{id},"channel":"tpl","text":"live","tag":"{id}","time":"{time}","eventid":""}}"#
    );
    assert_eq!(sse.event().raw, format!("data: {live}\n\n").into_bytes());
    assert_eq!(stream.chunk(), format!("{live}\n").into_bytes());
    match ws.read().unwrap() {
        tungstenite::Message::Text(t) => assert_eq!(t.as_str(), live),
        other => panic!("{other:?}"),
    }
}

#[test]
fn template_text_is_not_escaped_and_eventsource_templates_each_line() {
    let s = push_stream(|c| {
        c.push_stream_message_template = "<~text~|~size~|~event-type~>".into();
        c.stream_separator = String::new();
    });
    let a = s.addr();
    raw_post(a, "/pub?id=raw", "Event-Type: note\r\n", "say \"hi\"\nbye");
    // The text goes in as published, quotes and line breaks included...
    let r = get(a, "/lp/raw.b1", "");
    assert_eq!(r.text(), "<say \"hi\"\nbye|12|note>");
    let mut stream = StreamClient::connect(a, "/sub/raw.b1");
    assert_eq!(stream.chunk(), b"<say \"hi\"\nbye|12|note>");
    // ...except on EventSource, where each line is templated on its own
    // (push-stream's rule), so ~size~ is the line's.
    let mut sse = SseClient::connect(a, "/ev/raw.b1");
    let e = sse.event();
    assert_eq!(
        e.raw,
        b"event: note\ndata: <say \"hi\"|8|note>\ndata: <bye|3|note>\n\n"
    );
}

#[test]
fn header_and_footer_templates_frame_each_transport() {
    let s = push_stream(|c| {
        c.push_stream_publisher = crier::PublisherMode::Admin;
        c.push_stream_message_template =
            r#"{"id":~id~,"channel":"~channel~","text":"~text~"}"#.into();
        c.push_stream_header_template = "<head>".into();
        c.push_stream_footer_template = "</body>".into();
    });
    let a = s.addr();
    raw_post(a, "/pub?id=hf", "", "m1");
    let (id, _) = newest_id_and_time(a, "hf");
    let m1 = format!(r#"{{"id":{id},"channel":"hf","text":"m1"}}"#);
    // A long-poll answer: header, messages, footer.
    assert_eq!(get(a, "/lp/hf.b1", "").text(), format!("<head>{m1}</body>"));
    // Streams open with the header.
    let mut stream = StreamClient::connect(a, "/sub/hf.b1");
    assert_eq!(stream.chunk(), b"<head>");
    assert_eq!(stream.chunk(), format!("{m1}\n").into_bytes());
    let mut sse = SseClient::connect(a, "/ev/hf.b1");
    let e = sse.event();
    assert_eq!(sse.comments, [" <head>"]);
    assert_eq!(e.data, m1);
    let mut ws = ws_connect(a, "/ws/hf.b1");
    for want in ["<head>", m1.as_str()] {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => assert_eq!(t.as_str(), want),
            other => panic!("{other:?}"),
        }
    }
    // Deleting the channel: push-stream's message -2 through the template,
    // then the footer, then the end.
    let deleted = r#"{"id":-2,"channel":"hf","text":"Channel deleted"}"#;
    let r = raw_request(a, "DELETE /pub?id=hf HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(stream.chunk(), format!("{deleted}\n").into_bytes());
    assert_eq!(stream.chunk(), b"</body>");
    assert_eq!(stream.next_chunk(), None);
    assert_eq!(sse.event().data, deleted);
    for want in [deleted, "</body>"] {
        match ws.read().unwrap() {
            tungstenite::Message::Text(t) => assert_eq!(t.as_str(), want),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(ws.read(), Ok(tungstenite::Message::Close(_))));
}

#[test]
fn a_waiting_long_poll_gets_the_templated_channel_deleted_message() {
    let s = push_stream(|c| {
        c.push_stream_publisher = crier::PublisherMode::Admin;
        c.push_stream_message_template =
            r#"{"id":~id~,"channel":"~channel~","text":"~text~"}"#.into();
    });
    let a = s.addr();
    raw_post(a, "/pub?id=gone", "", "x");
    let mut c = Conn::connect(a);
    c.write(b"GET /lp/gone?callback=cb HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_subscribers_status(a, "gone", 1);
    raw_request(a, "DELETE /pub?id=gone HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response();
    assert_eq!(
        r.text(),
        r#"cb([{"id":-2,"channel":"gone","text":"Channel deleted"}]);"#
    );
}
