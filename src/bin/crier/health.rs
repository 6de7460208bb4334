//! `crier health URL`: one publish → subscribe round trip, for monitoring
//! and load-balancer checks.
//!
//! It subscribes to a health channel over EventSource, publishes a nonce
//! on a second connection, waits until the nonce arrives and prints the
//! time from sending the publish to receiving it (`ok 0.4 ms`, or a JSON
//! object with `--json`). A server that accepts connections but no longer
//! fans out fails it, which a TCP or `/status` probe would not notice.
//!
//! Exit codes: 0 healthy; 1 unhealthy, with a one-line reason (`fail:
//! STAGE: WHY`) on stdout; 2 bad usage. 1 and not 2, because Docker's
//! HEALTHCHECK reserves 2.
//!
//! Plain sockets and `httparse`, no HTTP client: the command is a handful
//! of fixed requests, and an exact clock around them is the point.
//! `http://` only for now. Everything that touches the wire goes through
//! [`Target::connect`], which returns a [`Wire`]; https is one more
//! [`Scheme`] arm there, wrapping the `TcpStream` in a TLS client stream,
//! and nothing else changes.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crier::Secret;
use serde_json::{json, Value};

/// The flags of `crier health` (its help text is on `Command::Health`).
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The server: http://HOST[:PORT][/PREFIX] (a path prefix is kept, for
    /// a server behind a reverse proxy). "http://" may be left out.
    #[arg(value_name = "URL")]
    url: String,
    /// Channel the check publishes to and subscribes to.
    #[arg(long, value_name = "NAME", default_value = "crier-health")]
    channel: String,
    /// Seconds the whole check may take (connects included).
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_timeout)]
    timeout: Duration,
    /// Publish secret (the server's --publish-secret), sent as
    /// `Authorization: Bearer`. Default: env CRIER_PUBLISH_SECRET (its first
    /// comma-separated value), which keeps it out of the process list.
    #[arg(long, value_name = "SECRET")]
    publish_secret: Option<Secret>,
    /// Signed token for a private health channel (docs/TOKENS.md), sent as
    /// `Authorization: Bearer` on the subscription, and on the publish when
    /// no publish secret is given.
    #[arg(long, value_name = "TOKEN")]
    token: Option<Secret>,
    /// Print one JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err("a number of seconds between 0 and 3600".into()),
    }
}

/// Runs the check and prints its outcome.
pub fn run(args: HealthArgs) -> ExitCode {
    let target = match Target::parse(&args.url) {
        Ok(t) => t,
        Err(e) => return usage(&e),
    };
    if let Err(e) = check_channel(&args.channel) {
        return usage(&format!("--channel {:?}: {e}", args.channel));
    }
    let publish_secret = args.publish_secret.clone().or_else(|| {
        let env = std::env::var("CRIER_PUBLISH_SECRET").ok()?;
        let first = env.split(',').map(str::trim).find(|s| !s.is_empty())?;
        Some(Secret::new(first))
    });
    let check = Check {
        target: &target,
        channel: &args.channel,
        deadline: Instant::now() + args.timeout,
        timeout: args.timeout,
        publish_bearer: publish_secret.as_ref().or(args.token.as_ref()),
        subscribe_bearer: args.token.as_ref(),
    };
    let outcome = check.run();
    let (line, code) = match &outcome {
        Ok(ok) if args.json => (ok.json(&target).to_string(), ExitCode::SUCCESS),
        Ok(ok) => (format!("ok {:.1} ms", ok.latency_ms()), ExitCode::SUCCESS),
        Err(f) if args.json => (f.json().to_string(), ExitCode::from(1)),
        Err(f) => (
            format!("fail: {}: {}", f.stage, f.reason),
            ExitCode::from(1),
        ),
    };
    println!("{line}");
    code
}

fn usage(message: &str) -> ExitCode {
    eprintln!("crier health: {message}");
    ExitCode::from(2)
}

/// The channel id rule of the server, minus what a health check cannot
/// use: several channels (`a/b`) and a backtrack suffix (`x.b5`).
fn check_channel(name: &str) -> Result<(), &'static str> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"_.:@-".contains(&b);
    if name.is_empty() || name.len() > 128 || !name.bytes().all(allowed) {
        return Err("channel ids are 1-128 bytes of A-Z a-z 0-9 _ . : @ -");
    }
    if let Some((_, n)) = name.rsplit_once(".b") {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            return Err("a name ending in .bN reads as a backtrack request");
        }
    }
    Ok(())
}

/// How to reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
}

/// The server named by the URL.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    scheme: Scheme,
    /// `host:port` to connect to (`[::1]:8080` for IPv6).
    connect_to: String,
    /// The `Host` header: the URL's authority as written.
    host_header: String,
    /// Path prefix without a trailing slash ("" or "/push").
    prefix: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = match url.split_once("://") {
            None => (Scheme::Http, url),
            Some(("http", rest)) => (Scheme::Http, rest),
            Some(("https", _)) => {
                return Err("https:// is not supported yet; use http://".into());
            }
            Some((other, _)) => return Err(format!("unsupported URL scheme {other:?}")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) || authority.contains(['?', '#', '@']) {
            return Err(
                "the URL must be http://HOST[:PORT][/PREFIX], without query or user".into(),
            );
        }
        if authority.is_empty() {
            return Err(format!("no host in {url:?}"));
        }
        // "[::1]:8080", "[::1]", "host:8080", "host".
        let has_port = match authority.rfind(':') {
            Some(i) => !authority[i..].contains(']'),
            None => false,
        };
        if has_port {
            let port = &authority[authority.rfind(':').unwrap() + 1..];
            port.parse::<u16>()
                .map_err(|_| format!("bad port {port:?} in {url:?}"))?;
        }
        let default_port = match scheme {
            Scheme::Http => 80,
        };
        let connect_to = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        Ok(Target {
            scheme,
            connect_to,
            host_header: authority.to_string(),
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// Opens a connection, trying each address the host resolves to until
    /// `deadline`. Name resolution itself cannot be bounded with std.
    fn connect(&self, deadline: Instant) -> Result<Box<dyn Wire>, String> {
        let addrs = self
            .connect_to
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.connect_to))?;
        let mut last = format!("{} resolves to no address", self.connect_to);
        for addr in addrs {
            let left = remaining(deadline).ok_or_else(timed_out)?;
            match TcpStream::connect_timeout(&addr, left) {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return match self.scheme {
                        Scheme::Http => Ok(Box::new(tcp)),
                    };
                }
                Err(e) => last = format!("cannot connect to {addr}: {}", io_reason(&e)),
            }
        }
        Err(last)
    }
}

/// A connection to the server: plain TCP today, a TLS stream later.
trait Wire: Read + Write + Send {
    /// Bounds every following read and write.
    fn set_timeout(&self, timeout: Duration) -> io::Result<()>;
}

impl Wire for TcpStream {
    fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

fn timed_out() -> String {
    "timed out".to_string()
}

/// An I/O error as a short reason; a socket timeout is "timed out".
fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => timed_out(),
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => e.to_string(),
    }
}

/// Why the check failed, and at which step.
#[derive(Debug)]
struct Failure {
    /// "subscribe", "publish" or "wait".
    stage: &'static str,
    reason: String,
    /// The HTTP status when the server answered with an error.
    status: Option<u16>,
}

impl Failure {
    fn at(stage: &'static str) -> impl Fn(String) -> Failure {
        move |reason| Failure {
            stage,
            reason,
            status: None,
        }
    }

    fn json(&self) -> Value {
        json!({"ok": false, "stage": self.stage, "error": self.reason, "http_status": self.status})
    }
}

/// A passed check.
#[derive(Debug)]
struct Passed {
    /// Publish request sent → nonce received by the subscriber.
    latency: Duration,
    /// Publish request sent → publish reply read.
    publish: Duration,
    /// Subscriber connect → response head read.
    subscribe: Duration,
    channel: String,
    /// The id the server gave the nonce.
    id: String,
    /// Subscribers of the channel when it was published (this check's own
    /// included).
    subscribers: u64,
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Passed {
    fn latency_ms(&self) -> f64 {
        millis(self.latency)
    }

    fn json(&self, target: &Target) -> Value {
        json!({
            "ok": true,
            "latency_ms": self.latency_ms(),
            "publish_ms": millis(self.publish),
            "subscribe_ms": millis(self.subscribe),
            "channel": self.channel,
            "id": self.id,
            "subscribers": self.subscribers,
            "server": target.host_header,
        })
    }
}

/// One round trip.
struct Check<'a> {
    target: &'a Target,
    channel: &'a str,
    deadline: Instant,
    timeout: Duration,
    publish_bearer: Option<&'a Secret>,
    subscribe_bearer: Option<&'a Secret>,
}

impl Check<'_> {
    fn run(&self) -> Result<Passed, Failure> {
        let started = Instant::now();
        let nonce = nonce();
        let (stream, events) = self.subscribe().map_err(Failure::at("subscribe"))?;
        let subscribed = started.elapsed();

        // The subscriber reads on its own thread, so the arrival time is
        // taken when the bytes come in, not after the publish reply.
        let (tx, rx) = mpsc::channel();
        let wanted = nonce.clone();
        let deadline = self.deadline;
        std::thread::spawn(move || {
            let _ = tx.send(wait_for(stream, events, &wanted, deadline).map(|()| Instant::now()));
        });

        let sent = Instant::now();
        let reply = self.publish(&nonce)?;
        let published = sent.elapsed();
        let left = remaining(self.deadline).unwrap_or_default();
        let arrived = match rx.recv_timeout(left) {
            Ok(Ok(at)) => at,
            Ok(Err(reason)) => return Err(Failure::at("wait")(reason)),
            Err(_) => {
                return Err(Failure::at("wait")(format!(
                    "published (id {}) but not received within {} s",
                    reply.id,
                    self.timeout.as_secs_f64()
                )))
            }
        };
        Ok(Passed {
            latency: arrived.saturating_duration_since(sent),
            publish: published,
            subscribe: subscribed,
            channel: self.channel.to_string(),
            id: reply.id,
            subscribers: reply.subscribers,
        })
    }

    /// Opens the EventSource subscription. Its response head comes after
    /// the server registered it (src/reactor/subscribe.rs), so anything
    /// published from then on is delivered.
    fn subscribe(&self) -> Result<(Box<dyn Wire>, SseReader), String> {
        let mut wire = self.open()?;
        let path = format!("{}/ev/{}", self.target.prefix, self.channel);
        let request = request_head(
            "GET",
            &path,
            &self.target.host_header,
            self.subscribe_bearer,
        ) + "Accept: text/event-stream\r\n\r\n";
        wire.write_all(request.as_bytes())
            .map_err(|e| io_reason(&e))?;
        let head = read_head(&mut *wire)?;
        if head.status != 200 {
            let body = read_body(&mut *wire, head.rest, head.content_length);
            return Err(http_error(head.status, &head.reason, &body));
        }
        if !head.content_type.starts_with("text/event-stream") {
            return Err(format!(
                "/ev answered {:?}, not text/event-stream: not crier?",
                head.content_type
            ));
        }
        let mut events = SseReader::new(head.chunked);
        events.feed(&head.rest)?;
        Ok((wire, events))
    }

    fn publish(&self, nonce: &str) -> Result<PublishReply, Failure> {
        let fail = Failure::at("publish");
        let mut wire = self.open().map_err(&fail)?;
        let path = format!("{}/pub?id={}", self.target.prefix, self.channel);
        let mut request =
            request_head("POST", &path, &self.target.host_header, self.publish_bearer);
        request.push_str(&format!(
            "Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{nonce}",
            nonce.len()
        ));
        wire.write_all(request.as_bytes())
            .map_err(|e| fail(io_reason(&e)))?;
        let head = read_head(&mut *wire).map_err(&fail)?;
        let body = read_body(&mut *wire, head.rest, head.content_length);
        if head.status != 200 {
            return Err(Failure {
                status: Some(head.status),
                ..fail(http_error(head.status, &head.reason, &body))
            });
        }
        let reply: Value = serde_json::from_slice(&body)
            .map_err(|_| fail("the publish reply is not JSON: not crier?".into()))?;
        Ok(PublishReply {
            id: reply["id"].as_str().unwrap_or("?").to_string(),
            subscribers: reply["subscribers"].as_u64().unwrap_or(0),
        })
    }

    fn open(&self) -> Result<Box<dyn Wire>, String> {
        let wire = self.target.connect(self.deadline)?;
        let left = remaining(self.deadline).ok_or_else(timed_out)?;
        wire.set_timeout(left).map_err(|e| io_reason(&e))?;
        Ok(wire)
    }
}

struct PublishReply {
    id: String,
    subscribers: u64,
}

/// A nonce no other check (another host, another process, an earlier run)
/// publishes: pid and the clock in nanoseconds.
fn nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("crier-health {:x}-{nanos:x}", std::process::id())
}

/// The request line and the headers every request has. The bearer goes
/// into the request only, never into anything printed.
fn request_head(method: &str, path: &str, host: &str, bearer: Option<&Secret>) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: crier-health/{}\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(secret) = bearer {
        head.push_str(&format!("Authorization: Bearer {}\r\n", secret.expose()));
    }
    head
}

/// A response head, and the bytes read past it.
struct Head {
    status: u16,
    reason: String,
    content_type: String,
    content_length: Option<usize>,
    chunked: bool,
    rest: Vec<u8>,
}

/// Reads until a complete response head (at most 16 KiB).
fn read_head(wire: &mut dyn Wire) -> Result<Head, String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = wire.read(&mut chunk).map_err(|e| io_reason(&e))?;
        if n == 0 {
            return Err("the server closed the connection without answering".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
                };
                return Ok(Head {
                    status: response.code.unwrap_or(0),
                    reason: response.reason.unwrap_or("").to_string(),
                    content_type: header("content-type").unwrap_or_default(),
                    content_length: header("content-length").and_then(|v| v.parse().ok()),
                    chunked: header("transfer-encoding")
                        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked")),
                    rest: buf[len..].to_vec(),
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < 16 << 10 => {}
            Ok(httparse::Status::Partial) => return Err("response head over 16 KiB".into()),
            Err(e) => return Err(format!("not an HTTP response: {e}")),
        }
    }
}

/// Reads a (small) body: `Content-Length` bytes, or up to the close. Best
/// effort: what it has on an error is what it returns.
fn read_body(wire: &mut dyn Wire, mut body: Vec<u8>, length: Option<usize>) -> Vec<u8> {
    let want = length.unwrap_or(64 << 10).min(64 << 10);
    let mut chunk = [0u8; 4096];
    while body.len() < want {
        match wire.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(want);
    body
}

/// "HTTP 401 Unauthorized: credentials required…", with the `error` of
/// crier's JSON body when there is one. The server never echoes a
/// credential in it.
fn http_error(status: u16, reason: &str, body: &[u8]) -> String {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string));
    let text: String = match detail {
        Some(d) => format!("HTTP {status} {reason}: {d}"),
        None => format!("HTTP {status} {reason}"),
    };
    // One line, and nothing that can drive a terminal.
    text.chars().filter(|c| !c.is_control()).collect()
}

/// Reads events until one carries `nonce`.
fn wait_for(
    mut wire: Box<dyn Wire>,
    mut events: SseReader,
    nonce: &str,
    deadline: Instant,
) -> Result<(), String> {
    let mut chunk = [0u8; 8192];
    loop {
        for data in events.take_events() {
            if data == nonce {
                return Ok(());
            }
        }
        if events.deleted {
            return Err("the health channel was deleted during the check".into());
        }
        let left = remaining(deadline).ok_or_else(timed_out)?;
        wire.set_timeout(left).map_err(|e| io_reason(&e))?;
        match wire.read(&mut chunk) {
            Ok(0) => return Err("the server closed the event stream".into()),
            Ok(n) => events.feed(&chunk[..n])?,
            Err(e) => return Err(io_reason(&e)),
        }
    }
}

/// An EventSource body, decoded: chunked transfer coding (as a proxy may
/// add) undone, then split into events. Pure, for the unit tests.
struct SseReader {
    /// Undecoded chunked framing, when the body is chunked.
    framed: Option<Vec<u8>>,
    /// The last (zero-size) chunk was read.
    last_chunk: bool,
    /// Body bytes not yet split into complete lines.
    text: Vec<u8>,
    /// `data:` lines of the event being read.
    data: Option<String>,
    /// Whether the current event is `channel_deleted`.
    deleting: bool,
    /// Complete events' data.
    ready: Vec<String>,
    /// A `channel_deleted` event was seen.
    deleted: bool,
}

impl SseReader {
    fn new(chunked: bool) -> SseReader {
        SseReader {
            framed: chunked.then(Vec::new),
            last_chunk: false,
            text: Vec::new(),
            data: None,
            deleting: false,
            ready: Vec::new(),
            deleted: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.framed {
            None => self.text.extend_from_slice(bytes),
            // After the last chunk only a trailer and the close are left.
            Some(_) if self.last_chunk => {}
            Some(framed) => {
                framed.extend_from_slice(bytes);
                self.last_chunk = dechunk(framed, &mut self.text)?;
            }
        }
        while let Some(end) = self.text.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.text.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]);
            self.line(line.strip_suffix('\r').unwrap_or(&line));
        }
        if self.text.len() > 1 << 20 {
            return Err("an event stream line over 1 MiB".into());
        }
        Ok(())
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                self.ready.push(data);
            }
            self.deleted |= std::mem::take(&mut self.deleting);
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.deleting = value == "channel_deleted",
            _ => {} // comments (pings), id, retry
        }
    }

    fn take_events(&mut self) -> Vec<String> {
        std::mem::take(&mut self.ready)
    }
}

/// Moves the payload of every complete chunk from `framed` to `out`;
/// true once the last chunk is read.
fn dechunk(framed: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<bool, String> {
    let mut at = 0;
    let mut last = false;
    while let Some(eol) = framed[at..].windows(2).position(|w| w == b"\r\n") {
        let size_line = String::from_utf8_lossy(&framed[at..at + eol]);
        let size_text = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .ok()
            .filter(|&n| n <= MAX_CHUNK)
            .ok_or_else(|| format!("bad chunk size {size_text:?}"))?;
        let start = at + eol + 2;
        if size == 0 {
            // The stream is over; the reader sees the close.
            last = true;
            at = framed.len();
            break;
        }
        if framed.len() < start + size + 2 {
            break;
        }
        out.extend_from_slice(&framed[start..start + size]);
        at = start + size + 2;
    }
    framed.drain(..at);
    // What is left is a chunk being received, after its size line.
    if !framed.is_empty() && !framed.windows(2).any(|w| w == b"\r\n") && framed.len() > 1024 {
        return Err("a chunk size line over 1 KiB".into());
    }
    Ok(last)
}

/// Larger chunks are refused (a crier message is at most
/// `max-message-size`, 1 MiB by default).
const MAX_CHUNK: usize = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(t.connect_to, "127.0.0.1:8080");
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.prefix, "");
        let t = Target::parse("push.example.com/edge/").unwrap();
        assert_eq!(t.connect_to, "push.example.com:80");
        assert_eq!(t.prefix, "/edge");
        let t = Target::parse("http://[::1]:9000/").unwrap();
        assert_eq!(t.connect_to, "[::1]:9000");
        assert_eq!(
            Target::parse("http://[::1]").unwrap().connect_to,
            "[::1]:80"
        );
        assert!(Target::parse("https://x")
            .unwrap_err()
            .contains("not supported yet"));
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("http://x:99999").is_err());
        assert!(Target::parse("http://x/?a").is_err());
        assert!(Target::parse("http://u:p@x").is_err());
        assert!(Target::parse("http:///x").is_err());
    }

    #[test]
    fn channels() {
        assert!(check_channel("crier-health").is_ok());
        assert!(check_channel("a.b").is_ok());
        assert!(check_channel("a.bc1").is_ok());
        assert!(check_channel("a.b5").is_err());
        assert!(check_channel("a/b").is_err());
        assert!(check_channel("").is_err());
        assert!(check_channel(&"x".repeat(129)).is_err());
    }

    #[test]
    fn events_split_across_reads_and_lines() {
        let mut r = SseReader::new(false);
        r.feed(b"retry: 3000\n\n: ping\n\nid: 1\nda").unwrap();
        assert!(r.take_events().is_empty());
        r.feed(b"ta: one\r\ndata:two\n\nid: 2\ndata: x\n").unwrap();
        assert_eq!(r.take_events(), ["one\ntwo"]);
        r.feed(b"\nevent: channel_deleted\ndata: h\n\n").unwrap();
        assert_eq!(r.take_events(), ["x", "h"]);
        assert!(r.deleted);
    }

    #[test]
    fn chunked_bodies_are_decoded_in_any_split() {
        let body = b"d\r\nretry: 3000\n\n\r\n5;x=1\r\ndata:\r\n6\r\n nonce\r\n1\r\n\n\r\n1\r\n\n\r\n0\r\n\r\n";
        for split in 0..body.len() {
            let mut r = SseReader::new(true);
            r.feed(&body[..split]).unwrap();
            r.feed(&body[split..]).unwrap();
            assert_eq!(r.take_events(), ["nonce"], "split at {split}");
        }
        let mut r = SseReader::new(true);
        assert!(r.feed(b"zz\r\n").is_err());
        let mut r = SseReader::new(true);
        assert!(r.feed(b"ffffffffffffffff\r\n").is_err());
        let mut r = SseReader::new(true);
        assert!(r.feed(&[b'1'; 2000]).is_err());
    }

    #[test]
    fn http_errors_are_one_line_with_the_server_reason() {
        let body = br#"{"error":"credentials required: send Authorization: Bearer","status":401}"#;
        assert_eq!(
            http_error(401, "Unauthorized", body),
            "HTTP 401 Unauthorized: credentials required: send Authorization: Bearer"
        );
        assert_eq!(
            http_error(502, "Bad Gateway", b"<html>\n"),
            "HTTP 502 Bad Gateway"
        );
    }

    #[test]
    fn the_bearer_is_sent_but_never_debug_printed() {
        let secret = Secret::new("hunter2");
        let head = request_head("POST", "/pub?id=a", "h", Some(&secret));
        assert!(head.contains("Authorization: Bearer hunter2\r\n"));
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
