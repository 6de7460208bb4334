//! Message history end to end: lossless resume after a disconnect on every
//! transport (EventSource, WebSocket JSON, stream JSON, long-poll), on
//! single- and multi-channel subscriptions, the "missed" signal when the
//! resume point fell out of history, backtrack (`CH.bN`) and `since=`.
//!
//! Every scenario publishes, reads, disconnects, publishes while the client
//! is away, reconnects from the last id and then checks that exactly the
//! missed messages arrive, in order, once each, followed by live ones and a
//! final marker (which proves nothing extra was delivered in between).

mod common;

use common::*;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a subscriber is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// `/ev/…`
    Sse,
    /// `/ws/…?format=json`
    Ws,
    /// `/sub/…?format=json`
    Stream,
    /// `/lp/…`
    LongPoll,
}

/// How the resume position is sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `Last-Event-ID` request header.
    Header,
    /// `last_event_id` query parameter.
    Query,
    /// `If-None-Match` with the long-poll `ETag` (long-poll only).
    ETag,
}

/// What a subscriber receives, transport-independently.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// A message: id and data.
    Msg(u64, String),
    /// The gap signal, with the id the client asked to resume after.
    Missed(String),
}

/// A long-poll client that loops like a browser would: as soon as an
/// answer arrives the next poll is sent (keep-alive, same connection) with
/// the position the answer returned.
struct LpClient {
    conn: Conn,
    channels: String,
    via: Via,
    /// Id the next poll resumes after (None: live).
    position: Option<String>,
    /// ETag of the last answer.
    etag: Option<String>,
    /// A poll was sent and its answer not read yet.
    outstanding: bool,
    /// The id the outstanding poll asked for (for the missed signal).
    asked: Option<String>,
    buf: VecDeque<Item>,
}

impl LpClient {
    fn send_poll(&mut self) {
        let mut path = format!("/lp/{}", self.channels);
        let mut extra = String::new();
        match (&self.position, self.via) {
            (None, _) => {}
            (Some(id), Via::Header) => extra = format!("Last-Event-ID: {id}\r\n"),
            (Some(id), Via::Query) => path.push_str(&format!("?last_event_id={id}")),
            (Some(id), Via::ETag) => {
                let etag = self.etag.clone().unwrap_or_else(|| format!("\"{id}\""));
                extra = format!("If-None-Match: {etag}\r\n");
            }
        }
        self.conn
            .write(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
        self.asked = self.position.clone();
        self.outstanding = true;
    }

    fn next(&mut self) -> Item {
        let mut timeouts = 0;
        loop {
            if let Some(i) = self.buf.pop_front() {
                return i;
            }
            if !self.outstanding {
                self.send_poll();
            }
            let r = self.conn.read_response();
            self.outstanding = false;
            assert_eq!(r.header("connection"), Some("keep-alive"), "{r:?}");
            let lei = r
                .header("last-event-id")
                .unwrap_or_else(|| panic!("no Last-Event-ID in {r:?}"))
                .to_string();
            assert_eq!(r.header("etag"), Some(format!("\"{lei}\"").as_str()));
            match r.status {
                304 => {
                    if let Some(asked) = &self.asked {
                        assert_eq!(&lei, asked, "a 304 reports the position it waited from");
                    }
                    timeouts += 1;
                    assert!(timeouts < 4, "no message after {timeouts} long-polls");
                }
                200 => {
                    let v = r.json();
                    assert_eq!(v["last_event_id"], lei.as_str(), "body and header agree");
                    let missed = v["missed"].as_bool().expect("missed flag");
                    assert_eq!(
                        r.header("x-missed-messages"),
                        Some(if missed { "true" } else { "false" })
                    );
                    if missed {
                        self.buf
                            .push_back(Item::Missed(self.asked.clone().unwrap_or_default()));
                    }
                    let msgs = v["messages"].as_array().expect("messages array");
                    for m in msgs {
                        self.buf.push_back(json_item(m));
                    }
                    if let Some(Item::Msg(last, _)) = msgs.last().map(json_item) {
                        assert_eq!(last.to_string(), lei, "Last-Event-ID is the last message");
                    }
                }
                s => panic!("long-poll answered {s}: {}", r.text()),
            }
            self.position = Some(lei);
            self.etag = r.header("etag").map(str::to_string);
            // Poll again at once, like a client loop.
            self.send_poll();
        }
    }
}

/// A message or missed signal from a JSON envelope (WebSocket, stream,
/// long-poll).
fn json_item(v: &serde_json::Value) -> Item {
    if v["event"] == "missed" {
        return Item::Missed(
            v["last_event_id"]
                .as_str()
                .unwrap_or_else(|| panic!("missed without last_event_id: {v}"))
                .to_string(),
        );
    }
    let id = v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .parse()
        .expect("numeric id");
    let data = v["data"]
        .as_str()
        .unwrap_or_else(|| panic!("no data in {v}"));
    Item::Msg(id, data.to_string())
}

/// A subscriber on any transport.
enum Sub {
    Sse(SseClient),
    Ws(WsJsonClient),
    Stream(StreamClient),
    Lp(Box<LpClient>),
}

impl Sub {
    /// Subscribes to `channels` (`a` or `a/b`), resuming after `resume`
    /// (an id, or for `Via::ETag` the ETag value) if given. Returns once
    /// the subscription is registered.
    fn connect(
        t: Transport,
        via: Via,
        addr: SocketAddr,
        channels: &str,
        resume: Option<&str>,
    ) -> Sub {
        let query = match (resume, via) {
            (Some(id), Via::Query) => format!("last_event_id={id}"),
            _ => String::new(),
        };
        let header = match (resume, via) {
            (Some(id), Via::Header) => format!("Last-Event-ID: {id}\r\n"),
            _ => String::new(),
        };
        let json_path = |prefix: &str| {
            if query.is_empty() {
                format!("/{prefix}/{channels}?format=json")
            } else {
                format!("/{prefix}/{channels}?format=json&{query}")
            }
        };
        match t {
            Transport::Sse => {
                let path = if query.is_empty() {
                    format!("/ev/{channels}")
                } else {
                    format!("/ev/{channels}?{query}")
                };
                Sub::Sse(SseClient::connect_with(addr, &path, &header))
            }
            Transport::Ws => {
                assert!(header.is_empty(), "WebSocket resumes by query");
                Sub::Ws(WsJsonClient::connect(addr, &json_path("ws")))
            }
            Transport::Stream => {
                assert!(header.is_empty(), "stream resumes by query");
                Sub::Stream(StreamClient::connect(addr, &json_path("sub")))
            }
            Transport::LongPoll => {
                let (position, etag) = match (resume, via) {
                    (Some(e), Via::ETag) => {
                        (Some(e.trim_matches('"').to_string()), Some(e.to_string()))
                    }
                    (r, _) => (r.map(str::to_string), None),
                };
                let mut lp = LpClient {
                    conn: Conn::connect(addr),
                    channels: channels.to_string(),
                    via,
                    position,
                    etag,
                    outstanding: false,
                    asked: None,
                    buf: VecDeque::new(),
                };
                lp.send_poll();
                if resume.is_none() {
                    // A live poll: wait until it is registered, so what
                    // the test publishes next is after its position.
                    let first = channels.split('/').next().unwrap();
                    wait_subscribers(addr, first, 1);
                }
                Sub::Lp(Box::new(lp))
            }
        }
    }

    fn next(&mut self) -> Item {
        match self {
            Sub::Sse(c) => {
                let ev = c.event();
                if ev.kind == "missed" {
                    return Item::Missed(ev.data);
                }
                assert_eq!(ev.kind, "message", "{ev:?}");
                Item::Msg(ev.last_id.parse().expect("numeric SSE id"), ev.data)
            }
            Sub::Ws(c) => json_item(&c.next_json()),
            Sub::Stream(c) => {
                let chunk = c.chunk();
                let line = chunk
                    .strip_suffix(b"\n")
                    .unwrap_or_else(|| panic!("JSON line without LF: {chunk:?}"));
                let v: serde_json::Value = serde_json::from_slice(line).unwrap_or_else(|e| {
                    panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(line))
                });
                json_item(&v)
            }
            Sub::Lp(c) => c.next(),
        }
    }

    /// Reads exactly `expected`, in order.
    fn expect(&mut self, expected: &[Item], what: &str) {
        let mut got = Vec::new();
        for _ in expected {
            got.push(self.next());
        }
        assert_eq!(got, expected, "{what}");
    }

    /// What a client resumes with: the ETag of the last long-poll answer
    /// for `Via::ETag`, else the last message id seen.
    fn token(&self, last: &Item, via: Via) -> String {
        match (self, via) {
            (Sub::Lp(lp), Via::ETag) => lp.etag.clone().expect("an ETag was received"),
            _ => match last {
                Item::Msg(id, _) => id.to_string(),
                Item::Missed(_) => panic!("resume token from a missed signal"),
            },
        }
    }
}

/// Publishes one message per target (`a`, `b` or `a/b`) with bodies
/// `{prefix}{i}`; returns what a subscriber of all targets must receive.
fn publish_all(addr: SocketAddr, targets: &[&str], prefix: &str) -> Vec<Item> {
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let body = format!("{prefix}{i}");
            let id = id_of(&publish(addr, t, body.as_bytes()));
            Item::Msg(id, body)
        })
        .collect()
}

/// Targets of one scenario: (subscription, first k, while away, live,
/// marker).
struct Plan<'a> {
    channels: &'a str,
    first: &'a [&'a str],
    away: &'a [&'a str],
    live: &'a [&'a str],
}

const SINGLE: Plan = Plan {
    channels: "news",
    first: &["news"; 3],
    away: &["news"; 4],
    live: &["news"; 2],
};

const MULTI: Plan = Plan {
    channels: "a/b",
    first: &["a", "b", "a"],
    away: &["b", "a/b", "a", "b"],
    live: &["a/b", "a"],
};

/// Receive k=3, disconnect, 4 published while away, reconnect from the last
/// id → exactly those 4, then live ones, then the marker.
fn resume_scenario(t: Transport, via: Via, plan: &Plan) {
    let server = start_with(2, |c| c.longpoll_timeout = 2);
    let addr = server.addr();
    let mut sub = Sub::connect(t, via, addr, plan.channels, None);
    let first = publish_all(addr, plan.first, "first-");
    sub.expect(&first, "before the disconnect");
    let token = sub.token(first.last().unwrap(), via);
    drop(sub);

    let away = publish_all(addr, plan.away, "away-");
    let mut sub = Sub::connect(t, via, addr, plan.channels, Some(&token));
    sub.expect(&away, "messages published while away, once each, in order");
    let live = publish_all(addr, plan.live, "live-");
    sub.expect(&live, "live messages after the replay");
    let marker = publish_all(addr, &[plan.live[0]], "marker-");
    sub.expect(&marker, "nothing extra before the marker");
}

#[test]
fn sse_resumes_with_last_event_id_header() {
    resume_scenario(Transport::Sse, Via::Header, &SINGLE);
}

#[test]
fn sse_resumes_with_last_event_id_query() {
    resume_scenario(Transport::Sse, Via::Query, &SINGLE);
}

#[test]
fn websocket_json_resumes_with_last_event_id_query() {
    resume_scenario(Transport::Ws, Via::Query, &SINGLE);
}

#[test]
fn stream_json_resumes_with_last_event_id_query() {
    resume_scenario(Transport::Stream, Via::Query, &SINGLE);
}

#[test]
fn longpoll_resumes_with_last_event_id_header() {
    resume_scenario(Transport::LongPoll, Via::Header, &SINGLE);
}

#[test]
fn longpoll_resumes_with_last_event_id_query() {
    resume_scenario(Transport::LongPoll, Via::Query, &SINGLE);
}

#[test]
fn longpoll_resumes_with_if_none_match_etag() {
    resume_scenario(Transport::LongPoll, Via::ETag, &SINGLE);
}

#[test]
fn multi_channel_sse_resume() {
    resume_scenario(Transport::Sse, Via::Header, &MULTI);
}

#[test]
fn multi_channel_websocket_resume() {
    resume_scenario(Transport::Ws, Via::Query, &MULTI);
}

#[test]
fn multi_channel_stream_resume() {
    resume_scenario(Transport::Stream, Via::Query, &MULTI);
}

#[test]
fn multi_channel_longpoll_resume() {
    resume_scenario(Transport::LongPoll, Via::Header, &MULTI);
}

/// store_messages=3, 10 published while away: the missed signal (carrying
/// the requested id), then the 3 stored, then live.
fn missed_scenario(t: Transport, via: Via) {
    let server = start_with(2, |c| {
        c.store_messages = 3;
        c.longpoll_timeout = 2;
    });
    let addr = server.addr();
    let mut sub = Sub::connect(t, via, addr, "news", None);
    let first = publish_all(addr, &["news"; 3], "first-");
    sub.expect(&first, "before the disconnect");
    let token = sub.token(first.last().unwrap(), via);
    let Item::Msg(last_id, _) = first.last().unwrap() else {
        unreachable!()
    };
    drop(sub);

    let away = publish_all(addr, &["news"; 10], "away-");
    let mut sub = Sub::connect(t, via, addr, "news", Some(&token));
    let mut expected = vec![Item::Missed(last_id.to_string())];
    expected.extend_from_slice(&away[7..]);
    sub.expect(&expected, "missed signal, then the 3 stored");
    let live = publish_all(addr, &["news"; 2], "live-");
    sub.expect(&live, "live messages after the replay");
}

#[test]
fn sse_resume_out_of_history_gets_missed_event() {
    missed_scenario(Transport::Sse, Via::Header);
}

#[test]
fn websocket_json_resume_out_of_history_gets_missed_envelope() {
    missed_scenario(Transport::Ws, Via::Query);
}

#[test]
fn stream_json_resume_out_of_history_gets_missed_line() {
    missed_scenario(Transport::Stream, Via::Query);
}

#[test]
fn longpoll_resume_out_of_history_reports_missed() {
    missed_scenario(Transport::LongPoll, Via::Header);
}

/// The exact SSE bytes of the missed signal: `event: missed`, data = the
/// requested id, no `id:` line (the client keeps its last id).
#[test]
fn sse_missed_event_wire_format() {
    let server = start_with(1, |c| c.store_messages = 2);
    let addr = server.addr();
    let first = id_of(&publish(addr, "news", b"0"));
    let ids: Vec<u64> = (1..=4)
        .map(|i| id_of(&publish(addr, "news", format!("{i}").as_bytes())))
        .collect();
    let mut sse = SseClient::connect_with(addr, "/ev/news", &format!("Last-Event-ID: {first}\r\n"));
    let ev = sse.event();
    assert_eq!(
        String::from_utf8_lossy(&ev.raw),
        format!("event: missed\ndata: {first}\n\n")
    );
    for (id, data) in ids[2..].iter().zip(["3", "4"]) {
        let ev = sse.event();
        assert_eq!(ev.kind, "message");
        assert_eq!((ev.last_id, ev.data), (id.to_string(), data.to_string()));
    }
}

/// Resuming from the newest stored id: nothing missed, nothing replayed.
#[test]
fn resume_from_the_newest_id_replays_nothing() {
    let server = start_with(2, |c| {
        c.store_messages = 3;
        c.longpoll_timeout = 1;
    });
    let addr = server.addr();
    let items = publish_all(addr, &["news"; 5], "m");
    let Item::Msg(mut last, _) = items.last().cloned().unwrap() else {
        unreachable!()
    };
    for t in [Transport::Sse, Transport::Ws] {
        let via = if t == Transport::Sse {
            Via::Header
        } else {
            Via::Query
        };
        let mut sub = Sub::connect(t, via, addr, "news", Some(&last.to_string()));
        let live = publish_all(addr, &["news"], "live");
        sub.expect(&live, "only the live message");
        let Item::Msg(id, _) = live[0] else {
            unreachable!()
        };
        last = id;
    }
    // Long-poll from the newest id waits and answers 304 at that id.
    let mut c = Conn::connect(addr);
    let r = longpoll_on(&mut c, "/lp/news", &format!("Last-Event-ID: {last}\r\n"));
    assert_eq!(r.status, 304, "{r:?}");
    assert_eq!(r.header("last-event-id"), Some(last.to_string().as_str()));
}

/// An id the server cannot read, or one from the future (another run),
/// means "missed": the whole stored history follows the signal.
#[test]
fn unreadable_or_future_resume_id_gets_missed_and_whole_history() {
    let server = start_with(2, |c| c.store_messages = 4);
    let addr = server.addr();
    let items = publish_all(addr, &["news"; 6], "m");
    let Item::Msg(last, _) = items.last().unwrap() else {
        unreachable!()
    };
    for bad in ["garbage".to_string(), (last + 1_000_000).to_string()] {
        let mut sse =
            SseClient::connect_with(addr, "/ev/news", &format!("Last-Event-ID: {bad}\r\n"));
        let ev = sse.event();
        assert_eq!(ev.kind, "missed", "resume after {bad:?}: {ev:?}");
        for item in &items[2..] {
            let Item::Msg(id, data) = item else {
                unreachable!()
            };
            let ev = sse.event();
            assert_eq!((ev.last_id, ev.data), (id.to_string(), data.clone()));
        }
    }
}

/// The body data of every message of a long-poll answer, with ids.
fn lp_items(r: &Response) -> Vec<Item> {
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(json_item)
        .collect()
}

#[test]
fn backtrack_replays_the_last_n_stored() {
    let server = start_with(2, |c| c.longpoll_timeout = 2);
    let addr = server.addr();
    let items = publish_all(addr, &["news"; 5], "n");

    // SSE: the last 2, then live.
    let mut sub = Sub::Sse(SseClient::connect(addr, "/ev/news.b2"));
    sub.expect(&items[3..], "SSE backtrack 2");
    let live = publish_all(addr, &["news"], "live");
    sub.expect(&live, "live after the backtrack");
    drop(sub);
    // All 6 published are stored (store_messages defaults to 10).
    let items: Vec<Item> = items.into_iter().chain(live).collect();

    // WebSocket JSON: the last 2.
    let mut sub = Sub::Ws(WsJsonClient::connect(addr, "/ws/news.b2?format=json"));
    sub.expect(&items[4..], "WebSocket backtrack 2");
    drop(sub);

    // Long-poll: the last 3 at once, position = the newest.
    let mut c = Conn::connect(addr);
    let r = longpoll_on(&mut c, "/lp/news.b3", "");
    assert_eq!(lp_items(&r), items[3..], "long-poll backtrack 3");
    let Item::Msg(newest, _) = items.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(r.header("last-event-id"), Some(newest.to_string().as_str()));
    assert_eq!(r.json()["missed"], false);

    // More than stored: everything stored.
    let mut sub = Sub::Sse(SseClient::connect(addr, "/ev/news.b50"));
    sub.expect(&items, "backtrack beyond the history gives all of it");
}

#[test]
fn backtrack_is_per_channel_in_a_multi_channel_subscription() {
    let server = start_with(2, |_| {});
    let addr = server.addr();
    // ids in publish order: a0 b1 a2 b3 a4 b5
    let items = publish_all(addr, &["a", "b", "a", "b", "a", "b"], "x");

    // Backtrack only on a: the last 2 of a, none of b; then live on both.
    let mut sub = Sub::Sse(SseClient::connect(addr, "/ev/a.b2/b"));
    sub.expect(&[items[2].clone(), items[4].clone()], "a.b2/b");
    let live = publish_all(addr, &["b", "a"], "live");
    sub.expect(&live, "live on both channels");
    drop(sub);

    // Different backtracks per channel, merged in id order.
    let mut sub = Sub::Sse(SseClient::connect(addr, "/ev/a.b1/b.b2"));
    // a's last is live[1]; b's last two are items[5], live[0].
    sub.expect(
        &[items[5].clone(), live[0].clone(), live[1].clone()],
        "a.b1/b.b2 in id order",
    );
    drop(sub);

    // A message published to a/b is replayed once.
    let both = publish_all(addr, &["a/b"], "both");
    let mut sub = Sub::Sse(SseClient::connect(addr, "/ev/a.b1/b.b1"));
    sub.expect(&both, "a/b message backtracked from both channels, once");
    let marker = publish_all(addr, &["a/b"], "marker");
    sub.expect(&marker, "nothing extra");
}

/// Unix seconds now.
fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sleeps until just past the next whole second; returns that second.
fn sleep_past_second_boundary() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let boundary = now.as_secs() + 1;
    let wait = Duration::from_secs(boundary) - now + Duration::from_millis(50);
    std::thread::sleep(wait);
    boundary
}

#[test]
fn since_replays_messages_published_from_that_second_on() {
    let server = start_with(2, |c| c.longpoll_timeout = 2);
    let addr = server.addr();
    let early = publish_all(addr, &["news"; 3], "early");
    let before = unix_secs();
    let boundary = sleep_past_second_boundary();
    assert!(boundary > before);
    let late = publish_all(addr, &["news"; 2], "late");

    let mut sub = Sub::Sse(SseClient::connect(
        addr,
        &format!("/ev/news?since={boundary}"),
    ));
    sub.expect(&late, "SSE since= gives only the later ones");
    let live = publish_all(addr, &["news"], "live");
    sub.expect(&live, "then live");
    drop(sub);
    let late: Vec<Item> = late.into_iter().chain(live).collect();

    let mut sub = Sub::Ws(WsJsonClient::connect(
        addr,
        &format!("/ws/news?format=json&since={boundary}"),
    ));
    sub.expect(&late, "WebSocket since=");
    drop(sub);

    let mut c = Conn::connect(addr);
    let r = longpoll_on(&mut c, &format!("/lp/news?since={boundary}"), "");
    assert_eq!(lp_items(&r), late, "long-poll since=");

    // since= before everything: the whole history.
    let mut sub = Sub::Sse(SseClient::connect(
        addr,
        &format!("/ev/news?since={}", before - 5),
    ));
    let all: Vec<Item> = early.into_iter().chain(late).collect();
    sub.expect(&all, "since= before the first message");
}

/// On /ev/a/b, only a overflowed its history while the client was away:
/// the missed signal, then what is still stored of both, in id order.
#[test]
fn multi_channel_resume_with_one_channel_out_of_history() {
    let server = start_with(2, |c| c.store_messages = 3);
    let addr = server.addr();
    let mut sub = Sub::connect(Transport::Sse, Via::Header, addr, "a/b", None);
    let first = publish_all(addr, &["a", "b"], "first-");
    sub.expect(&first, "before the disconnect");
    let Item::Msg(last, _) = first[1] else {
        unreachable!()
    };
    drop(sub);
    // ids: b0 a1 a2 b3 a4 a5 — a keeps a2 a4 a5, b keeps (first b) b0 b3.
    let away = publish_all(addr, &["b", "a", "a", "b", "a", "a"], "away-");
    let mut sub = Sub::connect(
        Transport::Sse,
        Via::Header,
        addr,
        "a/b",
        Some(&last.to_string()),
    );
    let mut expected = vec![Item::Missed(last.to_string())];
    for i in [0, 2, 3, 4, 5] {
        expected.push(away[i].clone());
    }
    sub.expect(&expected, "missed, then the stored rest of both channels");
}

/// `Last-Event-ID` (header) wins over the `last_event_id` query.
#[test]
fn last_event_id_header_wins_over_the_query() {
    let server = start_with(1, |_| {});
    let addr = server.addr();
    let items = publish_all(addr, &["news"; 4], "m");
    let Item::Msg(second, _) = items[1] else {
        unreachable!()
    };
    let mut sub = Sub::Sse(SseClient::connect_with(
        addr,
        "/ev/news?last_event_id=garbage",
        &format!("Last-Event-ID: {second}\r\n"),
    ));
    sub.expect(
        &items[2..],
        "resumed after the header's id, no missed signal",
    );
}
