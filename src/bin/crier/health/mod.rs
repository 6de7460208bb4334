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

mod sse;
mod wire;

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crier::Secret;
use serde_json::{json, Value};

use sse::SseReader;
use wire::{
    http_error, io_reason, read_body, read_head, remaining, request_head, timed_out, Target, Wire,
};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
