//! The raw floor (`--floor-server --listen ADDR`): a minimal single-threaded mio fan-out
//! server that encodes each published message once and does one write() per subscriber,
//! with no queues, timers or status. It shows what "just writing the bytes" costs on this
//! machine, the reference crier is measured against.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, FlushCompress};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::wire::{self, ws_server_frame};
use crate::Res;

const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

enum Role {
    Http,
    Sse,
    Ws { deflate: bool },
}

struct FConn {
    sock: TcpStream,
    role: Role,
    inbuf: Vec<u8>,
    /// Bytes a full socket buffer refused; flushed on the next writable event.
    out: Vec<u8>,
    /// (channel, index in that channel's subscriber list)
    member: Option<(String, usize)>,
}

impl FConn {
    /// One write() of pre-encoded bytes; any remainder waits in `out`. False = dead.
    fn send(&mut self, bytes: &[u8]) -> bool {
        if !self.out.is_empty() {
            self.out.extend_from_slice(bytes);
            return true;
        }
        match self.sock.write(bytes) {
            Ok(n) => {
                self.out.extend_from_slice(&bytes[n..]);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.out.extend_from_slice(bytes);
                true
            }
            Err(_) => false,
        }
    }

    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            match self.sock.write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        self.out = Vec::new();
        true
    }
}

#[derive(Default)]
struct Chan {
    subs: Vec<usize>,
    next_id: u64,
}

enum FloorReq {
    Publish {
        chan: String,
        body: Vec<u8>,
    },
    Sse {
        chan: String,
    },
    Ws {
        chan: String,
        key: String,
        deflate: bool,
    },
    Status,
    NotFound,
}

struct Floor {
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<FConn>>,
    free: Vec<usize>,
    chans: HashMap<String, Chan>,
}

const LISTENER: Token = Token(usize::MAX - 1);

pub fn entry(args: &[String]) -> i32 {
    let addr = match args {
        [flag, a, ..] if flag == "--listen" => a.parse::<SocketAddr>(),
        _ => "127.0.0.1:8080".parse(),
    };
    let run = addr.map_err(|e| e.to_string()).and_then(run_floor);
    match run {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("floor-server: {e}");
            1
        }
    }
}

/// Listener with a 4096 backlog (mio's default is 1024; crier and nginx use 4096 too), so
/// connect bursts are not slowed by SYN retransmits.
fn floor_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(TcpListener::from_std(s.into()))
}

fn run_floor(addr: SocketAddr) -> Res<()> {
    let poll = Poll::new().map_err(|e| e.to_string())?;
    let mut listener = floor_listener(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| e.to_string())?;
    let mut f = Floor {
        poll,
        listener,
        conns: Vec::new(),
        free: Vec::new(),
        chans: HashMap::new(),
    };
    let mut events = Events::with_capacity(1024);
    // The harness stops the floor; the lifetime cap only guards against orphaning.
    let deadline = Instant::now() + Duration::from_secs(4 * 3600);
    while Instant::now() < deadline {
        if let Err(e) = f.poll.poll(&mut events, Some(Duration::from_secs(1))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll: {e}"));
            }
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                f.accept_all();
                continue;
            }
            let t = ev.token().0;
            if ev.is_writable() && !f.conns[t].as_mut().is_some_and(FConn::flush) {
                f.close(t);
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() {
                f.on_readable(t);
            }
        }
    }
    Ok(())
}

impl Floor {
    fn accept_all(&mut self) {
        loop {
            let (mut sock, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return, // WouldBlock, or EMFILE: retry on the next event
            };
            let _ = sock.set_nodelay(true);
            let t = self.free.pop().unwrap_or(self.conns.len());
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut sock, Token(t), interest)
                .is_err()
            {
                continue;
            }
            let c = FConn {
                sock,
                role: Role::Http,
                inbuf: Vec::new(),
                out: Vec::new(),
                member: None,
            };
            if t == self.conns.len() {
                self.conns.push(Some(c));
            } else {
                self.conns[t] = Some(c);
            }
        }
    }

    fn close(&mut self, t: usize) {
        let Some(mut c) = self.conns.get_mut(t).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.sock);
        if let Some((name, slot)) = c.member {
            if let Some(ch) = self.chans.get_mut(&name) {
                ch.subs.swap_remove(slot);
                // The former last subscriber now sits at `slot`: fix its back-reference.
                if let Some(&moved) = ch.subs.get(slot) {
                    if let Some(Some(m)) = self.conns.get_mut(moved) {
                        m.member = Some((name, slot));
                    }
                }
            }
        }
        self.free.push(t);
    }

    fn on_readable(&mut self, t: usize) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(c) = self.conns[t].as_mut() else {
                return;
            };
            match c.sock.read(&mut buf) {
                Ok(0) => return self.close(t),
                // Subscribers' input (pongs, close frames) is ignored.
                Ok(n) if matches!(c.role, Role::Http) => c.inbuf.extend_from_slice(&buf[..n]),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(t),
            }
        }
        self.serve_requests(t);
    }

    /// Handles every complete (possibly pipelined) request buffered on connection `t`.
    fn serve_requests(&mut self, t: usize) {
        let mut replies = Vec::new();
        loop {
            let Some(c) = self.conns[t].as_mut() else {
                return;
            };
            if !matches!(c.role, Role::Http) {
                break;
            }
            let (used, req) = match parse_floor_request(&c.inbuf) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(_) => return self.close(t),
            };
            c.inbuf.drain(..used);
            match req {
                FloorReq::Publish { chan, body } => {
                    let (id, n) = self.publish(&chan, &body);
                    let json = format!(
                        "{{\"channel\":\"{chan}\",\"id\":{id},\"subscribers\":{n},\
                         \"published_messages\":{id},\"stored_messages\":0}}"
                    );
                    replies.extend_from_slice(http_json(200, &json).as_bytes());
                }
                FloorReq::Status => {
                    let subs: usize = self.chans.values().map(|c| c.subs.len()).sum();
                    let json = format!("{{\"subscribers\":{subs}}}");
                    replies.extend_from_slice(http_json(200, &json).as_bytes());
                }
                FloorReq::NotFound => replies.extend_from_slice(http_json(404, "{}").as_bytes()),
                FloorReq::Sse { chan } => self.subscribe(t, &chan, Role::Sse, SSE_HEAD.into()),
                FloorReq::Ws { chan, key, deflate } => {
                    let head = ws_accept_head(&key, deflate);
                    self.subscribe(t, &chan, Role::Ws { deflate }, head);
                }
            }
        }
        let alive = self.conns[t].as_mut().is_some_and(|c| c.send(&replies));
        if !alive {
            self.close(t);
        }
    }

    fn subscribe(&mut self, t: usize, chan: &str, role: Role, head: String) {
        let ch = self.chans.entry(chan.to_string()).or_default();
        let Some(c) = self.conns[t].as_mut() else {
            return;
        };
        c.role = role;
        c.inbuf = Vec::new();
        c.member = Some((chan.to_string(), ch.subs.len()));
        ch.subs.push(t);
        if !c.send(head.as_bytes()) {
            self.close(t);
        }
    }

    /// The floor itself: encode once, then one write() per subscriber socket.
    fn publish(&mut self, chan: &str, body: &[u8]) -> (u64, usize) {
        let ch = self.chans.entry(chan.to_string()).or_default();
        ch.next_id += 1;
        let id = ch.next_id;
        let sse = sse_event(id, body);
        let ws = ws_server_frame(body, false);
        let mut wsd: Option<Vec<u8>> = None;
        let mut dead = Vec::new();
        for &t in &ch.subs {
            let Some(c) = self.conns[t].as_mut() else {
                continue;
            };
            let bytes: &[u8] = match c.role {
                Role::Sse => &sse,
                Role::Ws { deflate: false } => &ws,
                Role::Ws { deflate: true } => {
                    wsd.get_or_insert_with(|| ws_server_frame(&deflate_message(body), true))
                }
                Role::Http => continue,
            };
            if !c.send(bytes) {
                dead.push(t);
            }
        }
        let n = ch.subs.len() - dead.len();
        for t in dead {
            self.close(t);
        }
        (id, n)
    }
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                        Cache-Control: no-cache\r\nConnection: keep-alive\r\n\r\n";

fn sse_event(id: u64, body: &[u8]) -> Vec<u8> {
    let mut e = format!("id: {id}\n").into_bytes();
    for line in body.split(|&c| c == b'\n') {
        e.extend_from_slice(b"data: ");
        e.extend_from_slice(line);
        e.push(b'\n');
    }
    e.push(b'\n');
    e
}

fn ws_accept_head(key: &str, deflate: bool) -> String {
    use base64::Engine as _;
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(WS_GUID.as_bytes());
    let accept = base64::engine::general_purpose::STANDARD.encode(h.finalize());
    let ext = if deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
         client_no_context_takeover\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{ext}\r\n"
    )
}

fn http_json(status: u16, body: &str) -> String {
    let reason = if status == 200 { "OK" } else { "Not Found" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One complete request from the front of `buf`: (bytes used, request).
fn parse_floor_request(buf: &[u8]) -> Res<Option<(usize, FloorReq)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Request::new(&mut headers);
    let head_len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let header = |name: &str| wire::header(r.headers, name);
    let path = r.path.unwrap_or("/");
    let method = r.method.unwrap_or("GET");
    if method == "POST" {
        let len: usize = header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() < head_len + len {
            return Ok(None);
        }
        let body = buf[head_len..head_len + len].to_vec();
        let req = match path.strip_prefix("/pub?id=") {
            Some(chan) => FloorReq::Publish {
                chan: chan.split('&').next().unwrap_or_default().to_string(),
                body,
            },
            None => FloorReq::NotFound,
        };
        return Ok(Some((head_len + len, req)));
    }
    let req = if let Some(chan) = path.strip_prefix("/ev/") {
        FloorReq::Sse { chan: chan.into() }
    } else if let (Some(chan), Some(key)) = (path.strip_prefix("/ws/"), header("sec-websocket-key"))
    {
        let deflate =
            header("sec-websocket-extensions").is_some_and(|v| v.contains("permessage-deflate"));
        FloorReq::Ws {
            chan: chan.into(),
            key,
            deflate,
        }
    } else if path == "/status" {
        FloorReq::Status
    } else {
        FloorReq::NotFound
    };
    Ok(Some((head_len, req)))
}

/// Deflates one message for permessage-deflate without context takeover.
fn deflate_message(payload: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(payload.len() + 64);
    loop {
        let before = c.total_in() as usize;
        if c.compress_vec(&payload[before..], &mut out, FlushCompress::Sync)
            .is_err()
        {
            break;
        }
        if c.total_in() as usize >= payload.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(256);
    }
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    out
}
