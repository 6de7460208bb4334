//! One subscriber connection: connect, send the subscribe request, check the response
//! head, then count every message it receives (latency, duplicates, gaps, order). The
//! stream parsing itself is per transport, in `sse` and `ws`.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

use super::ws::WsRx;
use super::{Transport, WStats};
use crate::harness::mono_ns;
use crate::wire::{self, ChunkDecoder, MAX_CARRY, WARM};
use crate::Res;

/// What a subscriber's parser needs besides its own state.
pub(super) struct RxCtx<'a> {
    pub(super) now: u64,
    pub(super) epoch: u64,
    /// Publisher connections: seq k came from connection k % publishers.
    pub(super) publishers: u64,
    pub(super) transport: Transport,
    pub(super) st: &'a mut WStats,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Connecting,
    Head,
    Stream,
}

/// One subscriber. Kept small: idle buffers are empty Vecs (no allocation).
pub(super) struct Sub {
    pub(super) sock: TcpStream,
    pub(super) phase: Phase,
    channel: u32,
    pub(super) started: u64,
    /// Raw bytes not yet parsed (partial head, frame or chunk).
    carry: Vec<u8>,
    /// Partial SSE line.
    pub(super) line: Vec<u8>,
    pub(super) chunk: Option<ChunkDecoder>,
    pub(super) ws: Option<Box<WsRx>>,
    /// Bitset of received sequence numbers: duplicate / missing detection.
    seen: Vec<u64>,
    /// `--tls`: the client session the socket's bytes go through.
    tls: Option<Box<rustls::ClientConnection>>,
    /// Per publisher connection, 1 + the highest seq received from it (0 = none yet):
    /// order is only defined among the messages of one connection.
    max_seq: Vec<u64>,
    warm: bool,
}

impl Sub {
    pub(super) fn new(
        sock: TcpStream,
        channel: u32,
        now: u64,
        tls: Option<Box<rustls::ClientConnection>>,
    ) -> Sub {
        Sub {
            sock,
            phase: Phase::Connecting,
            channel,
            started: now,
            carry: Vec::new(),
            line: Vec::new(),
            chunk: None,
            ws: None,
            seen: Vec::new(),
            tls,
            max_seq: Vec::new(),
            warm: false,
        }
    }

    /// Sends the subscribe request once the non-blocking connect has completed.
    /// Returns false while the connect is still in progress.
    fn try_send_request(&mut self, transport: Transport) -> Res<bool> {
        if let Some(e) = self.sock.take_error().map_err(|e| e.to_string())? {
            return Err(format!("connect: {e}"));
        }
        match self.sock.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(false),
            Err(e) => return Err(format!("connect: {e}")),
        }
        let req = transport.request(&format!("c{}", self.channel));
        match self.io_write(req.as_bytes()) {
            Ok(n) if n == req.len() => {
                self.phase = Phase::Head;
                Ok(true)
            }
            Ok(_) => Err("short write of subscribe request".into()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(format!("write request: {e}")),
        }
    }

    pub(super) fn on_event(
        &mut self,
        readable: bool,
        scratch: &mut [u8],
        cx: &mut RxCtx,
    ) -> Res<()> {
        if self.phase == Phase::Connecting && !self.try_send_request(cx.transport)? {
            return Ok(());
        }
        if readable || self.phase != Phase::Connecting {
            self.read_all(scratch, cx)?;
        }
        Ok(())
    }

    /// Edge-triggered: drain the socket until WouldBlock.
    fn read_all(&mut self, scratch: &mut [u8], cx: &mut RxCtx) -> Res<()> {
        loop {
            match self.io_read(scratch) {
                Ok(0) => return Err("server closed the connection".into()),
                Ok(n) => {
                    cx.now = mono_ns();
                    self.feed(&scratch[..n], cx)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Reads plaintext: from the socket, or through the TLS session.
    fn io_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(t) => super::tls::read(t, &mut self.sock, buf),
            None => self.sock.read(buf),
        }
    }

    /// Writes plaintext: to the socket, or through the TLS session.
    pub(super) fn io_write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            Some(t) => super::tls::write(t, &mut self.sock, data),
            None => self.sock.write(data),
        }
    }

    fn feed(&mut self, data: &[u8], cx: &mut RxCtx) -> Res<()> {
        if self.carry.is_empty() {
            let used = self.process(data, cx)?;
            self.carry.extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.carry);
            buf.extend_from_slice(data);
            let used = self.process(&buf, cx)?;
            buf.drain(..used);
            if !buf.is_empty() {
                self.carry = buf;
            }
        }
        if self.carry.len() > MAX_CARRY {
            return Err("unparseable stream (too many buffered bytes)".into());
        }
        Ok(())
    }

    /// Parses as much of `data` as possible; returns the number of bytes consumed.
    fn process(&mut self, data: &[u8], cx: &mut RxCtx) -> Res<usize> {
        let mut used = 0;
        if self.phase == Phase::Head {
            let Some(end) = find(data, b"\r\n\r\n") else {
                return Ok(0);
            };
            self.on_head(&data[..end + 4], cx)?;
            used = end + 4;
        }
        if self.phase != Phase::Stream {
            return Ok(used);
        }
        let rest = &data[used..];
        let n = if cx.transport.is_ws() {
            self.ws_frames(rest, cx)?
        } else {
            self.sse_bytes(rest, cx)?
        };
        Ok(used + n)
    }

    fn on_head(&mut self, head: &[u8], cx: &mut RxCtx) -> Res<()> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        resp.parse(head)
            .map_err(|e| format!("bad response head: {e}"))?;
        let status = resp.code.unwrap_or(0);
        let want = if cx.transport.is_ws() { 101 } else { 200 };
        if status != want {
            return Err(format!("subscribe answered {status}, expected {want}"));
        }
        let header = |name: &str| wire::header(resp.headers, name).map(|v| v.to_ascii_lowercase());
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            self.chunk = Some(ChunkDecoder::new());
        }
        if cx.transport.is_ws() {
            let ext = header("sec-websocket-extensions").unwrap_or_default();
            self.ws = Some(Box::new(WsRx::negotiated(&ext)));
        }
        self.phase = Phase::Stream;
        cx.st.connected += 1;
        cx.st.last_established = cx.now;
        cx.st.conn_lat.record(cx.now.saturating_sub(self.started));
        Ok(())
    }

    pub(super) fn on_message(&mut self, payload: &[u8], cx: &mut RxCtx) {
        let st = &mut *cx.st;
        if payload.starts_with(WARM) {
            if !self.warm {
                self.warm = true;
                st.warm += 1;
            }
            return;
        }
        let Some((t, seq)) = wire::parse_payload(payload).filter(|&(_, s)| s < 1 << 24) else {
            st.unparsed += 1;
            return;
        };
        st.recv += 1;
        st.last_recv = cx.now;
        st.lat.record(cx.now.saturating_sub(cx.epoch + t));
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & bit != 0 {
            st.dup += 1;
            return;
        }
        self.seen[word] |= bit;
        st.distinct += 1;
        let lane = (seq % cx.publishers.max(1)) as usize;
        if lane >= self.max_seq.len() {
            self.max_seq.resize(lane + 1, 0);
        }
        if seq < self.max_seq[lane] {
            st.ooo += 1;
        } else {
            self.max_seq[lane] = seq + 1;
        }
    }

    /// Forgets which messages arrived (a "reset"): the next phase numbers from 0 again.
    pub(super) fn forget_messages(&mut self) {
        self.seen = Vec::new();
        self.max_seq = Vec::new();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
