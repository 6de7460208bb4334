//! The reactor's sockets: accept and admit, read and hand input on, note
//! writability, and close. Writing is `flush.rs`; what the bytes mean is
//! decided elsewhere.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;

use super::conn::{Conn, Role};
use super::events::ConnEvent;
use super::timer::{secs_to_ticks, TICK};
use super::{sockopt, Reactor};
use crate::status::{CloseCause, ConnKind, Limit, PeerGone, ReactorStats};

/// Size of the per-reactor read buffer. Every connection reads into it, so
/// idle connections need no buffer of their own.
pub(super) const SCRATCH_BYTES: usize = 64 * 1024;

/// At most this many reads per connection per readiness event, so one busy
/// publisher cannot starve the other connections of this reactor.
const MAX_READS_PER_EVENT: usize = 16;

/// The answer to a connection over `max-connections`: fixed bytes, written
/// once without buffering.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 50\r\nConnection: close\r\nRetry-After: 5\r\n\r\n{\"error\":\"server at capacity\",\"status\":503}\n\n\n\n\n\n\n";

/// The answer to a connection over `max-connections-per-ip`.
const OVER_PER_IP: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: 64\r\nConnection: close\r\nRetry-After: 5\r\n\r\n{\"error\":\"too many connections from your address\",\"status\":429}\n";

/// What a connection does with the input it receives, by its current role
/// (see [`Reactor::on_input`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputUse {
    /// HTTP requests: parse them.
    Requests,
    /// WebSocket frames: read them.
    Frames,
    /// A waiting long-poll: keep the bytes (a pipelined request) for when
    /// the poll is answered.
    Hold,
    /// SSE and stream subscribers have nothing to say, and a closing
    /// connection has nothing left to hear: drop the bytes.
    Drop,
}

impl InputUse {
    fn of(c: &Conn) -> InputUse {
        if c.flags.close_after_flush() {
            return InputUse::Drop;
        }
        match &c.role {
            Role::Http(_) => InputUse::Requests,
            Role::Subscriber(s) if s.ws().is_some() => InputUse::Frames,
            Role::Subscriber(s) if s.longpoll().is_some() => InputUse::Hold,
            Role::Subscriber(_) => InputUse::Drop,
        }
    }
}

impl Reactor {
    /// Accepts on every listener (used when accepts resume after a pause).
    pub(super) fn accept_all(&mut self) {
        self.accept_on(false);
        self.accept_on(true);
    }

    /// Accepts what is waiting on the main listener, or (`second`) on the
    /// `tls-listen` one.
    pub(super) fn accept_on(&mut self, second: bool) {
        let max = self.settings.config.max_connections;
        let tls = second || self.listener_tls;
        while let Some(listener) = if second {
            &self.tls_listener
        } else {
            &self.listener
        } {
            match listener.accept() {
                Ok((mut socket, peer)) => {
                    let open = self.shared.open_connections.fetch_add(1, Ordering::Relaxed);
                    if max > 0 && open >= max {
                        self.shared.open_connections.fetch_sub(1, Ordering::Relaxed);
                        // Fast, fixed answer; the socket buffer of a fresh
                        // connection always has room for it. A TLS client
                        // could not read it: it only sees the close.
                        if !tls {
                            let _ = socket.write(OVER_CAPACITY);
                        }
                        self.stats().closed(CloseCause::OverCapacity);
                        self.note(None, Some(peer), ConnEvent::Refused(Limit::Connections));
                        continue;
                    }
                    let ip_key = match self.shared.per_ip.admit(peer.ip()) {
                        Some(key) => key,
                        None => {
                            self.shared.open_connections.fetch_sub(1, Ordering::Relaxed);
                            if !tls {
                                let _ = socket.write(OVER_PER_IP);
                            }
                            self.note(
                                None,
                                Some(peer),
                                ConnEvent::Refused(Limit::ConnectionsPerIp),
                            );
                            continue;
                        }
                    };
                    self.admit(socket, ip_key, tls);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let out_of_fds = matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE)
                            | Some(libc::ENFILE)
                            | Some(libc::ENOBUFS)
                            | Some(libc::ENOMEM)
                    );
                    if out_of_fds {
                        // Keep serving who we have; pending clients wait in
                        // the backlog. Retry after a tick, never busy-loop.
                        ReactorStats::add(&self.stats().accept_fd_errors, 1);
                        if self.accept_paused_until == 0 {
                            log::warn!("accept: {e}; pausing accepts for {TICK:?}");
                        }
                        self.accept_paused_until = self.now + 1;
                    } else {
                        log::warn!("accept failed: {e}");
                    }
                    return;
                }
            }
        }
    }

    fn admit(&mut self, mut socket: mio::net::TcpStream, ip_key: u32, tls: bool) {
        sockopt::on_accept(&socket);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        // Readable and writable at once, edge triggered: no epoll_ctl is
        // needed later when a write blocks.
        if let Err(e) = self.poll.registry().register(
            &mut socket,
            mio::Token(key),
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        ) {
            log::warn!("cannot register connection: {e}");
            self.shared.open_connections.fetch_sub(1, Ordering::Relaxed);
            self.shared.per_ip.release(ip_key);
            return;
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        let conn = entry.insert(Conn::new(socket, self.next_generation));
        conn.ip_key = ip_key;
        let st = self.stats();
        ReactorStats::add(&st.accepted, 1);
        st.connections[ConnKind::Http as usize].fetch_add(1, Ordering::Relaxed);
        if tls && !self.open_tls(key) {
            self.close(key, None);
            return;
        }
        // For TLS, the handshake must be done by then too.
        let deadline = self.now + secs_to_ticks(self.settings.config.handshake_timeout);
        self.set_deadline(key, deadline);
    }

    pub(super) fn on_writable(&mut self, k: usize) {
        if let Some(c) = self.conns.get_mut(k) {
            c.flags.set_write_blocked(false);
            if c.out.is_empty() && !(c.flags.tls() && self.tls.has_pending(k)) {
                return;
            }
            if matches!(c.role, Role::Http(_)) {
                self.flush.urgent(k, c);
            } else {
                self.flush.queue(k, c);
            }
        }
    }

    /// Continues a connection whose reading was cut short (read cap) or
    /// paused, starting with the input it already holds.
    pub(super) fn resume_reading(&mut self, k: usize) {
        if self.conns.get(k).is_some_and(|c| !c.pending_in.is_empty()) {
            self.on_input(k, &[]);
        }
        self.on_readable(k);
    }

    /// Reads what the socket has (bounded) into the shared scratch buffer
    /// and hands it on.
    pub(super) fn on_readable(&mut self, k: usize) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut reads = 0;
        while let Some(c) = self.conns.get_mut(k) {
            if c.flags.read_paused() {
                break;
            }
            if reads == MAX_READS_PER_EVENT {
                // Edge-triggered readiness will not report the rest again:
                // come back next turn, after everyone else had a go.
                self.more_to_read.push(k);
                break;
            }
            reads += 1;
            let tls = c.flags.tls();
            match c.socket.read(&mut scratch) {
                Ok(0) => {
                    self.peer_gone(k, PeerGone::Eof);
                    break;
                }
                Ok(n) if tls => self.on_tls_input(k, &mut scratch[..n]),
                Ok(n) => self.on_input(k, &scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let how = if e.raw_os_error() == Some(libc::ETIMEDOUT) {
                        PeerGone::Timeout
                    } else {
                        PeerGone::Reset
                    };
                    self.peer_gone(k, how);
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    /// Hands `data` (after any input the connection kept) to whatever the
    /// connection is now, and keeps what that does not consume.
    ///
    /// One function, because one read can carry the end of one role and the
    /// start of the next: a WebSocket client's first frames right behind its
    /// handshake, a request pipelined behind a long-poll. So what one role
    /// leaves is offered again to the role the connection has after it, and
    /// only what the last one cannot use yet is kept: an unfinished request
    /// or frame, or the requests behind a waiting long-poll (served once it
    /// is answered; past one request head reading pauses). Subscribers that
    /// have nothing to say, and closing connections, drop their input.
    pub(super) fn on_input(&mut self, k: usize, data: &[u8]) {
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        let kept = c.pending_in.take();
        let had_partial = !kept.is_empty();
        let owned;
        let buf: &[u8] = if kept.is_empty() {
            data
        } else {
            let mut b = kept;
            b.extend_from_slice(data);
            owned = b;
            &owned
        };
        let mut pos = 0;
        let mut use_now = InputUse::of(c);
        loop {
            let used = match use_now {
                InputUse::Requests => self.feed_http(k, &buf[pos..], had_partial),
                InputUse::Frames => self.feed_ws(k, &buf[pos..]),
                InputUse::Hold | InputUse::Drop => 0,
            };
            pos += used;
            let Some(c) = self.conns.get(k) else {
                return;
            };
            let next = InputUse::of(c);
            let changed = next != use_now;
            use_now = next;
            if pos == buf.len() || !changed {
                break;
            }
        }
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        match use_now {
            InputUse::Drop => {}
            InputUse::Hold => {
                if buf.len() - pos > self.settings.config.max_header_bytes {
                    c.flags.set_read_paused(true);
                }
                c.pending_in.set(buf[pos..].to_vec());
            }
            InputUse::Requests | InputUse::Frames => c.pending_in.set(buf[pos..].to_vec()),
        }
    }

    /// Sends what is queued, then closes (used after a final response).
    pub(super) fn close_after_flush(&mut self, k: usize, cause: Option<CloseCause>) {
        if let Some(c) = self.conns.get_mut(k) {
            if c.flags.close_after_flush() {
                return;
            }
            c.flags.set_close_after_flush(true);
            self.flush.urgent(k, c);
            if let Some(cause) = cause {
                self.note(Some(k), None, ConnEvent::Cut(cause));
            }
            self.unsubscribe_all(k);
        }
    }

    /// The peer went away (noticed as `how`): reap the connection.
    pub(super) fn peer_gone(&mut self, k: usize, how: PeerGone) {
        let closing = self
            .conns
            .get(k)
            .is_some_and(|c| c.flags.close_after_flush());
        if !closing {
            ReactorStats::add(&self.stats().peers_gone[how as usize], 1);
        }
        self.close(k, None);
    }

    /// Closes connection `k` now: unsubscribes it, deregisters, frees the
    /// slot. `cause` is counted when the server decided it.
    pub(super) fn close(&mut self, k: usize, cause: Option<CloseCause>) {
        if !self.conns.contains(k) {
            return;
        }
        self.unsubscribe_all(k);
        if let Some(cause) = cause {
            self.note(Some(k), None, ConnEvent::Cut(cause));
        }
        let mut c = self.conns.remove(k);
        if c.flags.tls() {
            self.tls
                .forget(k, cause, &self.shared.stats.reactors[self.id]);
        }
        self.wheel.cancel(c.timer);
        if c.flags.awaiting_reply() || c.flags.replay_pending() || c.flags.composite_ids() {
            self.cluster.remove(k);
        }
        self.shared.per_ip.release(c.ip_key);
        let _ = self.poll.registry().deregister(&mut c.socket);
        self.shared.open_connections.fetch_sub(1, Ordering::Relaxed);
        let st = &self.shared.stats.reactors[self.id];
        st.connections[c.kind() as usize].fetch_sub(1, Ordering::Relaxed);
    }

    /// Closes everything as the reactor stops.
    pub(super) fn close_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            // Best effort: push out what is queued (a goodbye) without waiting.
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            let _ = self
                .tls
                .write_conn(k, c, &self.shared.stats.reactors[self.id]);
            // A connection already closing was counted under its own cause.
            let cause = (!c.flags.close_after_flush()).then_some(CloseCause::Shutdown);
            self.close(k, cause);
        }
    }
}
