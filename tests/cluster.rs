//! Several crier nodes sharing channels, ids and history through a real
//! Redis (docs/CLUSTER.md): cross-node delivery in one order, resume on any
//! node (multi-channel across two Redis servers too), listening only where
//! there are subscribers, Redis restarts and outages, node restarts.

mod common;

use common::*;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A node on `redis` (comma-separated shard URLs).
fn node(redis: &str, tweak: impl FnOnce(&mut crier::Config)) -> crier::Handle {
    let redis = redis.to_string();
    start_with(2, move |c| {
        c.redis = redis;
        c.store_messages = 100;
        tweak(c);
    })
}

/// Waits until node `addr` listens to `n` channels in Redis (a subscriber
/// is registered locally at once, and in Redis a moment later).
fn wait_listening(addr: SocketAddr, n: u64) {
    poll_status(addr, &format!("{n} channels listened to in Redis"), |s| {
        let shards = s["backplane"]["shards"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        shards
            .iter()
            .map(|f| f["channels"].as_u64().unwrap_or(0))
            .sum::<u64>()
            == n
            && shards.iter().all(|f| f["up"] == true)
    });
}

fn wait_up(addr: SocketAddr) {
    poll_status(addr, "backplane up", |s| s["backplane"]["state"] == "up");
}

/// Publishes and returns the reply's status and JSON.
fn try_publish(addr: SocketAddr, channel: &str, body: &str) -> (u16, serde_json::Value) {
    let r = send(
        agent().post(&url(addr, &format!("/pub?id={channel}"))),
        body.as_bytes(),
    );
    let status = r.status();
    (status, json_of(r))
}

/// `n` SSE events as (id, data).
fn events(sse: &mut SseClient, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let e = sse.event();
            (e.last_id, e.data)
        })
        .collect()
}

/// Stable FNV-1a, as crier spreads channels over shards (docs/CLUSTER.md).
fn shard_of(channel: &str, shards: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in channel.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % shards
}

#[test]
fn a_publish_on_one_node_reaches_every_node_with_the_same_ids() {
    let redis = RedisServer::start();
    let (a, b, c) = (
        node(&redis.url(), |_| {}),
        node(&redis.url(), |_| {}),
        node(&redis.url(), |_| {}),
    );
    wait_up(a.addr());
    let mut on_b = SseClient::connect(b.addr(), "/ev/news");
    let mut on_c = SseClient::connect(c.addr(), "/ev/news");
    wait_listening(b.addr(), 1);
    wait_listening(c.addr(), 1);
    let mut ids = Vec::new();
    for i in 0..20 {
        let (st, reply) = try_publish(a.addr(), "news", &format!("m{i}"));
        assert_eq!(st, 200, "{reply}");
        assert_eq!(reply["nodes"], 2, "{reply}");
        ids.push(reply["id"].as_str().unwrap().to_string());
    }
    let expected: Vec<(String, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), format!("m{i}")))
        .collect();
    assert_eq!(events(&mut on_b, 20), expected);
    assert_eq!(events(&mut on_c, 20), expected);
    // A has no subscriber of the channel: it does not listen to it.
    assert_eq!(redis.pubsub_channels(), vec!["crier:m:news".to_string()]);
    let s = status(a.addr());
    assert_eq!(num(&s, "/backplane/shards/0/channels"), 0, "{s}");
}

#[test]
fn a_node_stops_listening_when_its_last_subscriber_of_a_channel_leaves() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url(), |_| {}), node(&redis.url(), |_| {}));
    wait_up(a.addr());
    wait_up(b.addr());
    let on_a = SseClient::connect(a.addr(), "/ev/scores");
    let first_on_b = SseClient::connect(b.addr(), "/ev/scores");
    let second_on_b = SseClient::connect(b.addr(), "/ev/scores");
    wait_listening(a.addr(), 1);
    wait_listening(b.addr(), 1);
    let numsub = || -> u64 {
        let (_, n): (String, u64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("crier:m:scores")
            .query(&mut redis.client())
            .expect("PUBSUB NUMSUB");
        n
    };
    // One Redis subscription per node, however many local subscribers.
    assert_eq!(numsub(), 2);
    drop(first_on_b);
    poll_status(b.addr(), "one subscriber left on b", |s| {
        s["subscribers"] == 1
    });
    assert_eq!(numsub(), 2, "b still has a subscriber of the channel");
    drop(second_on_b);
    wait_listening(b.addr(), 0);
    poll_until("b unsubscribed in Redis", || match numsub() {
        1 => Ok(()),
        n => Err(format!("{n} subscriptions")),
    });
    drop(on_a);
    wait_listening(a.addr(), 0);
    poll_until("no node listens to the channel", || {
        let chans = redis.pubsub_channels();
        if chans.is_empty() {
            Ok(())
        } else {
            Err(format!("{chans:?}"))
        }
    });
}

#[test]
fn concurrent_publishes_on_every_node_give_one_sequence_everywhere() {
    let redis = RedisServer::start();
    let nodes: Vec<crier::Handle> = (0..3).map(|_| node(&redis.url(), |_| {})).collect();
    let mut subs: Vec<SseClient> = nodes
        .iter()
        .map(|n| SseClient::connect(n.addr(), "/ev/race"))
        .collect();
    for n in &nodes {
        wait_listening(n.addr(), 1);
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr()).collect();
    let publishers: Vec<_> = addrs
        .iter()
        .enumerate()
        .map(|(p, &addr)| {
            std::thread::spawn(move || {
                let mut conn = KeepAlivePublisher::connect(addr);
                for i in 0..40 {
                    conn.publish("race", format!("p{p}-{i}").as_bytes());
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    let seen: Vec<Vec<(String, String)>> = subs.iter_mut().map(|s| events(s, 120)).collect();
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
    let ids: Vec<u64> = seen[0].iter().map(|(id, _)| id.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    // Each publisher's messages in its own order.
    for p in 0..3 {
        let mine: Vec<&String> = seen[0]
            .iter()
            .map(|(_, d)| d)
            .filter(|d| d.starts_with(&format!("p{p}-")))
            .collect();
        let want: Vec<String> = (0..40).map(|i| format!("p{p}-{i}")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>());
    }
}

#[test]
fn a_client_resumes_on_another_node_with_the_id_it_got_from_the_first() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis.url(), |_| {}), node(&redis.url(), |_| {}));
    let mut on_a = SseClient::connect(a.addr(), "/ev/story");
    wait_listening(a.addr(), 1);
    for i in 0..5 {
        try_publish(a.addr(), "story", &format!("s{i}"));
    }
    let got = events(&mut on_a, 3);
    let last = got[2].0.clone();
    drop(on_a);
    for i in 5..8 {
        try_publish(b.addr(), "story", &format!("s{i}"));
    }
    let mut on_b =
        SseClient::connect_with(b.addr(), "/ev/story", &format!("Last-Event-ID: {last}\r\n"));
    let rest: Vec<String> = events(&mut on_b, 5).into_iter().map(|(_, d)| d).collect();
    assert_eq!(rest, ["s3", "s4", "s5", "s6", "s7"]);
    // Live after the history, without a duplicate.
    try_publish(a.addr(), "story", "s8");
    assert_eq!(on_b.event().data, "s8");
    // Backtrack and long-poll work against Redis history too.
    let mut back = SseClient::connect(a.addr(), "/ev/story.b2");
    assert_eq!(
        events(&mut back, 2)
            .into_iter()
            .map(|(_, d)| d)
            .collect::<Vec<_>>(),
        ["s7", "s8"]
    );
    let mut c = Conn::connect(b.addr());
    let r = longpoll_on(&mut c, &format!("/lp/story?last_event_id={last}"), "");
    assert_eq!(r.status, 200, "{r:?}");
    let datas: Vec<String> = r.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["data"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(datas, ["s3", "s4", "s5", "s6", "s7", "s8"]);
}

#[test]
fn a_multi_channel_subscription_over_two_redis_servers_resumes_without_loss_or_duplicates() {
    let (r0, r1) = (RedisServer::start(), RedisServer::start());
    let urls = format!("{},{}", r0.url(), r1.url());
    let (a, b) = (node(&urls, |_| {}), node(&urls, |_| {}));
    // Two channels on different shards.
    let x = "alpha";
    let y = (0..)
        .map(|i| format!("beta{i}"))
        .find(|c| shard_of(c, 2) != shard_of(x, 2))
        .unwrap();
    let path = format!("/ev/{x}/{y}");
    let mut on_a = SseClient::connect(a.addr(), &path);
    wait_listening(a.addr(), 2);
    try_publish(b.addr(), x, "x0");
    try_publish(b.addr(), &y, "y0");
    try_publish(b.addr(), x, "x1");
    let got = events(&mut on_a, 3);
    // Each shard keeps its own order; the two shards are independent.
    let datas: Vec<&str> = got.iter().map(|(_, d)| d.as_str()).collect();
    let xs: Vec<&str> = datas
        .iter()
        .copied()
        .filter(|d| d.starts_with('x'))
        .collect();
    assert_eq!(xs, ["x0", "x1"]);
    assert!(datas.contains(&"y0"), "{datas:?}");
    let last = got[2].0.clone();
    assert_eq!(last.split('-').count(), 2, "a composite id: {last}");
    drop(on_a);
    try_publish(b.addr(), &y, "y1");
    try_publish(b.addr(), x, "x2");
    let mut on_b = SseClient::connect_with(b.addr(), &path, &format!("Last-Event-ID: {last}\r\n"));
    let mut rest: Vec<String> = events(&mut on_b, 2).into_iter().map(|(_, d)| d).collect();
    rest.sort();
    assert_eq!(rest, ["x2", "y1"]);
    wait_listening(b.addr(), 2);
    try_publish(a.addr(), &y, "y2");
    assert_eq!(on_b.event().data, "y2", "live after history, nothing twice");
    // Each shard holds only its own channel.
    assert_eq!(r0.pubsub_channels().len() + r1.pubsub_channels().len(), 2);
}

#[test]
fn redis_restarting_mid_stream_loses_nothing_that_was_accepted() {
    let mut redis = RedisServer::start();
    let (a, b) = (node(&redis.url(), |_| {}), node(&redis.url(), |_| {}));
    let mut sub = SseClient::connect(b.addr(), "/ev/live");
    wait_listening(b.addr(), 1);
    let mut accepted = Vec::new();
    for i in 0..5 {
        assert_eq!(try_publish(a.addr(), "live", &format!("before{i}")).0, 200);
        accepted.push(format!("before{i}"));
    }
    redis.shutdown();
    poll_status(a.addr(), "backplane reported down", |s| {
        s["backplane"]["state"] == "down"
    });
    let (st, reply) = try_publish(a.addr(), "live", "during");
    assert_eq!(st, 503, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("backplane"),
        "{reply}"
    );
    let m = call(agent().get(&url(a.addr(), "/metrics")))
        .into_string()
        .unwrap();
    assert!(m.contains("crier_backplane_up{shard=\"0\"} 0"), "{m}");
    assert!(
        m.contains("crier_backplane_publishes_refused_total{shard=\"0\"} 1\n"),
        "the 503 is counted: {m}"
    );
    redis.restart();
    // Publishing resumes by itself once both nodes are back.
    wait_listening(b.addr(), 1);
    wait_up(a.addr());
    for i in 0..5 {
        assert_eq!(try_publish(a.addr(), "live", &format!("after{i}")).0, 200);
        accepted.push(format!("after{i}"));
    }
    let got: Vec<String> = events(&mut sub, 10).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, accepted);
    assert!(num(&status(b.addr()), "/backplane/shards/0/reconnects") >= 1);
}

/// A TCP proxy to Redis that can be cut, to cut one node off while the
/// others keep publishing.
struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let flag = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if flag.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let flag = flag.clone();
                    std::thread::spawn(move || {
                        let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
                        let mut buf = [0u8; 16384];
                        loop {
                            if flag.load(Ordering::SeqCst) {
                                let _ = from.shutdown(std::net::Shutdown::Both);
                                let _ = to.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                            match std::io::Read::read(&mut from, &mut buf) {
                                Ok(0) => {
                                    let _ = to.shutdown(std::net::Shutdown::Both);
                                    return;
                                }
                                Ok(n) => {
                                    if std::io::Write::write_all(&mut to, &buf[..n]).is_err() {
                                        return;
                                    }
                                }
                                Err(e)
                                    if e.kind() == std::io::ErrorKind::WouldBlock
                                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
            }
        });
        Proxy { addr, cut }
    }
}

#[test]
fn a_node_cut_off_from_redis_fills_the_gap_from_history_when_it_is_back() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(redis.port);
    let a = node(&redis.url(), |_| {});
    let b = node(&format!("redis://{}", proxy.addr), |_| {});
    let mut sub = SseClient::connect(b.addr(), "/ev/gap");
    wait_listening(b.addr(), 1);
    try_publish(a.addr(), "gap", "one");
    assert_eq!(sub.event().data, "one");
    proxy.cut.store(true, Ordering::SeqCst);
    poll_status(b.addr(), "b cut off", |s| s["backplane"]["state"] == "down");
    // Accepted by Redis through A while B cannot hear it.
    for d in ["two", "three"] {
        assert_eq!(try_publish(a.addr(), "gap", d).0, 200);
    }
    proxy.cut.store(false, Ordering::SeqCst);
    let got: Vec<String> = events(&mut sub, 2).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, ["two", "three"]);
    try_publish(a.addr(), "gap", "four");
    assert_eq!(sub.event().data, "four", "live again, nothing twice");
    assert_eq!(
        num(&status(b.addr()), "/backplane/shards/0/messages_recovered"),
        2
    );
}

#[test]
fn subscribers_of_a_node_that_restarts_resume_on_another() {
    let redis = RedisServer::start();
    let args = [
        "--workers",
        "1",
        "--redis",
        &redis.url(),
        "--store-messages",
        "50",
    ];
    let mut first = ChildServer::spawn(&args);
    let other = node(&redis.url(), |_| {});
    let mut sub = SseClient::connect(first.addr, "/ev/roam");
    wait_listening(first.addr, 1);
    try_publish(other.addr(), "roam", "r0");
    let last = sub.event().last_id;
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(5));
    try_publish(other.addr(), "roam", "r1");
    try_publish(other.addr(), "roam", "r2");
    // The client's reconnect lands on the other node.
    let mut again = SseClient::connect_with(
        other.addr(),
        "/ev/roam",
        &format!("Last-Event-ID: {last}\r\n"),
    );
    let got: Vec<String> = events(&mut again, 2).into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, ["r1", "r2"]);
}

#[test]
fn a_node_started_while_redis_is_down_serves_reports_and_connects_later() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let n = node(&format!("redis://127.0.0.1:{port}"), |_| {});
    let s = status(n.addr());
    assert_eq!(s["backplane"]["state"], "down", "{s}");
    assert_eq!(try_publish(n.addr(), "x", "y").0, 503);
    let s = status(n.addr());
    assert_eq!(num(&s, "/backplane/shards/0/publishes_refused"), 1, "{s}");
    // Subscribers are served meanwhile.
    let _sub = SseClient::connect(n.addr(), "/ev/x");
    let redis = RedisServerOn::start(port);
    wait_listening(n.addr(), 1);
    assert_eq!(try_publish(n.addr(), "x", "y").0, 200);
    drop(redis);
}

/// A redis-server on a port chosen in advance.
struct RedisServerOn(std::process::Child);

impl RedisServerOn {
    fn start(port: u16) -> RedisServerOn {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server");
        RedisServerOn(child)
    }
}

impl Drop for RedisServerOn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn first_message_reads_the_shared_history_on_any_node() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), |_| {});
    let b = node(&redis.url(), |c| c.first_message = "-2".parse().unwrap());
    wait_up(a.addr());
    wait_up(b.addr());
    let ids: Vec<String> = (0..3)
        .map(|i| {
            let (st, reply) = try_publish(a.addr(), "feed", &format!("m{i}"));
            assert_eq!(st, 200, "{reply}");
            reply["id"].as_str().unwrap().to_string()
        })
        .collect();
    // No id given: b starts from the newest two of what a published.
    let mut on_b = SseClient::connect(b.addr(), "/ev/feed");
    assert_eq!(
        events(&mut on_b, 2),
        vec![(ids[1].clone(), "m1".into()), (ids[2].clone(), "m2".into())]
    );
    wait_listening(b.addr(), 1);
    let (_, reply) = try_publish(a.addr(), "feed", "m3");
    assert_eq!(events(&mut on_b, 1)[0].1, "m3", "{reply}");
}

#[test]
fn websocket_publishes_count_once_and_reach_a_subscriber_of_several_channels_once() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), |c| c.ws_publish = true);
    let b = node(&redis.url(), |_| {});
    wait_up(a.addr());
    wait_up(b.addr());
    // Both channels on the one shard; b's subscriber takes both.
    let mut on_b = SseClient::connect(b.addr(), "/ev/left/right");
    // A dashboard on b: its own figures, never a channel in Redis.
    let _dashboard = SseClient::connect(b.addr(), "/ev/$status");
    wait_listening(b.addr(), 2);
    let mut publisher = ws_connect(a.addr(), "/ws/left/right");
    publisher
        .send(tungstenite::Message::Text("to both".into()))
        .unwrap();
    let (_, reply) = try_publish(a.addr(), "left", "after");
    // a listens too: its WebSocket publisher subscribes to both channels.
    assert_eq!(reply["nodes"], 2, "{reply}");
    let got = events(&mut on_b, 2);
    assert_eq!(got[0].1, "to both");
    assert_eq!(got[1].1, "after", "the WebSocket message came once");
    // This node's publishes: one WebSocket message (two channels), one HTTP.
    poll_status(a.addr(), "2 published messages on a", |s| {
        s["published_messages"] == 2
    });
    let mut chans = redis.pubsub_channels();
    chans.sort();
    assert_eq!(chans, ["crier:m:left", "crier:m:right"]);
}

#[test]
fn nodes_reach_redis_over_tls_and_check_its_certificate() {
    let dir = TempDir::new("redis-tls");
    let pki = TestPki::new("redis");
    let (cert, key) = pki.write_to(&dir.0);
    let ca = dir.0.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let redis = RedisServer::start_tls(&cert, &key);
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let ca_path = ca.display().to_string();
    let with_ca = |c: &mut crier::Config| c.redis_tls_ca = ca_path.clone();
    let (a, b) = (node(&url, with_ca), node(&url, with_ca));
    wait_up(a.addr());
    let mut on_b = SseClient::connect(b.addr(), "/ev/secure");
    wait_listening(b.addr(), 1);
    let (st, reply) = try_publish(a.addr(), "secure", "over tls");
    assert_eq!(st, 200, "{reply}");
    assert_eq!(
        events(&mut on_b, 1)[0],
        (reply["id"].as_str().unwrap().into(), "over tls".into())
    );
    // Without the CA (the system's roots) the certificate is refused: the
    // node serves, says why in its log and answers publishes 503.
    let stranger = ChildServer::spawn(&["--redis", &url]);
    let log = poll_until("the refusal logged", || {
        let log = stranger.log();
        if log.contains("unreachable") {
            Ok(log)
        } else {
            Err(log)
        }
    });
    assert!(log.contains("certificate"), "{log}");
    assert_eq!(try_publish(stranger.addr, "secure", "no").0, 503);
}
