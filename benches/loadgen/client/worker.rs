//! The client worker process (`--client-worker SPEC`): one mio event loop holding up to
//! ~19K subscribers, opening them with bounded handshake concurrency and reporting
//! counters on stdout. Many subscribers per process keep the load side cheap; several
//! processes get past the per-process open-files limit.

use std::io::{self, BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::{json, Value};

use super::sub::{Phase, RxCtx, Sub};
use super::{WStats, WorkerSpec};
use crate::harness::mono_ns;
use crate::Res;

pub fn entry(args: &[String]) -> i32 {
    let spec = args
        .first()
        .ok_or_else(|| "client-worker: missing spec".to_string())
        .and_then(|s| serde_json::from_str::<Value>(s).map_err(|e| e.to_string()))
        .and_then(|v| WorkerSpec::from_json(&v));
    match spec.and_then(run_worker) {
        Ok(()) => 0,
        Err(e) => {
            emit(&json!({"ev": "fatal", "error": e}));
            1
        }
    }
}

/// Reads commands ("report", "hold", "release", "close", "reset", "quit") from stdin on a thread;
/// EOF means quit, so a dying harness never leaves workers behind.
fn spawn_stdin_reader() -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
        let _ = tx.send("quit".into());
    });
    rx
}

struct Worker {
    spec: WorkerSpec,
    poll: Poll,
    subs: Vec<Option<Sub>>,
    next: usize,
    in_flight: usize,
    st: WStats,
    /// `--tls`: every subscriber gets a session from this configuration.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Worker {
    /// Opens connections while fewer than `concurrency` handshakes are in flight.
    fn open_more(&mut self) {
        while self.in_flight < self.spec.concurrency && self.next < self.spec.count {
            let i = self.next;
            self.next += 1;
            self.st.opened += 1;
            let now = mono_ns();
            if self.st.first_start == 0 {
                self.st.first_start = now;
            }
            let opened = open_socket(self.spec.addr, self.spec.src).and_then(|mut sock| {
                self.poll.registry().register(
                    &mut sock,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                Ok(sock)
            });
            let session = match &self.tls {
                Some(cfg) => super::tls::session(cfg).map(Some),
                None => Ok(None),
            };
            match opened
                .map_err(|e| e.to_string())
                .and_then(|s| Ok((s, session?)))
            {
                Ok((sock, session)) => {
                    let channel = ((self.spec.first + i) % self.spec.channels) as u32;
                    self.subs[i] = Some(Sub::new(sock, channel, now, session));
                    self.in_flight += 1;
                }
                Err(e) => {
                    self.st.failed += 1;
                    self.st.note_error(&format!("connect: {e}"));
                }
            }
        }
    }

    fn drop_sub(&mut self, i: usize, err: String) {
        let Some(mut sub) = self.subs[i].take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut sub.sock);
        if sub.phase == Phase::Stream {
            self.st.closed += 1;
        } else {
            self.st.failed += 1;
            self.in_flight -= 1;
        }
        self.st.note_error(&err);
    }

    fn handle(&mut self, i: usize, readable: bool, scratch: &mut [u8]) {
        let Some(sub) = self.subs.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let pending = sub.phase != Phase::Stream;
        let mut cx = RxCtx {
            now: mono_ns(),
            epoch: self.spec.epoch,
            publishers: self.spec.publishers as u64,
            transport: self.spec.transport,
            st: &mut self.st,
        };
        let res = sub.on_event(readable, scratch, &mut cx);
        let established = sub.phase == Phase::Stream;
        match res {
            Err(e) => self.drop_sub(i, e),
            Ok(()) if pending && established => self.in_flight -= 1,
            Ok(()) => {}
        }
    }

    /// Registers (or deregisters) every open subscriber with epoll; a
    /// socket registered again reports its readiness at once.
    fn watch_all(&mut self, watch: bool) -> Res<()> {
        let registry = self.poll.registry();
        for (i, sub) in self.subs.iter_mut().enumerate() {
            let Some(sub) = sub else {
                continue;
            };
            let r = if watch {
                registry.register(
                    &mut sub.sock,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                )
            } else {
                registry.deregister(&mut sub.sock)
            };
            r.map_err(|e| format!("epoll_ctl: {e}"))?;
        }
        Ok(())
    }

    /// Closes every subscriber from the client side, half with a normal close (FIN) and
    /// half with a reset (RST, `SO_LINGER` 0), as browsers and crashed clients leave.
    /// Subscriber g resets when `g % channels + g / channels` is odd: half of them, and
    /// on every channel the two kinds alternate (g % 2 alone would give whole channels
    /// one kind when the channel count is even). Returns (FIN, RST) counts; nothing is
    /// opened afterwards.
    fn close_all(&mut self) -> (u64, u64) {
        let (mut fin, mut rst) = (0, 0);
        let c = self.spec.channels;
        self.next = self.spec.count;
        for i in 0..self.subs.len() {
            let Some(mut sub) = self.subs[i].take() else {
                continue;
            };
            let _ = self.poll.registry().deregister(&mut sub.sock);
            let g = self.spec.first + i;
            if (g % c + g / c) % 2 == 1 {
                // Linger on with a zero timeout: close() sends RST and drops the socket.
                let _ = socket2::SockRef::from(&sub.sock).set_linger(Some(Duration::ZERO));
                rst += 1;
            } else {
                fin += 1;
            }
        }
        self.in_flight = 0;
        (fin, rst)
    }

    /// Forgets every message received so far, on every subscriber and in the counters,
    /// so that the next phase is counted and checked on its own (seqs from 0 again).
    fn reset_messages(&mut self) {
        self.subs
            .iter_mut()
            .flatten()
            .for_each(Sub::forget_messages);
        self.st.reset_messages();
    }

    fn sweep_timeouts(&mut self) {
        let limit = self.spec.connect_timeout.as_nanos() as u64;
        let now = mono_ns();
        let late: Vec<usize> = (0..self.subs.len())
            .filter(|&i| {
                self.subs[i].as_ref().is_some_and(|s| {
                    s.phase != Phase::Stream && now.saturating_sub(s.started) > limit
                })
            })
            .collect();
        for i in late {
            self.drop_sub(i, "subscribe handshake timed out".into());
        }
    }
}

fn run_worker(spec: WorkerSpec) -> Res<()> {
    let commands = spawn_stdin_reader();
    let poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let deadline = Instant::now() + spec.lifetime;
    let tls = match spec.tls_ca.as_str() {
        "" => None,
        ca => Some(super::tls::config(ca)?),
    };
    let mut w = Worker {
        tls,
        subs: (0..spec.count).map(|_| None).collect(),
        spec,
        poll,
        next: 0,
        in_flight: 0,
        st: WStats::default(),
    };
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 256 * 1024];
    let (mut last_progress, mut last_sweep) = (Instant::now(), Instant::now());
    // "hold": stop reading (the kernel buffers what arrives) so the load
    // costs no CPU while the server is measured. The sockets leave epoll
    // meanwhile: an arriving segment then wakes nobody, as it would on a
    // client machine of its own, instead of every server core taking this
    // process's epoll lock.
    let mut held = false;
    loop {
        if held {
            // Blocks: a held worker does not even wake up until told.
            match commands.recv().as_deref().map(str::trim) {
                Ok("release") => {
                    w.watch_all(true)?;
                    held = false;
                }
                Ok("quit") | Err(_) => return Ok(()),
                _ => {}
            }
            continue;
        }
        w.open_more();
        if let Err(e) = w.poll.poll(&mut events, Some(Duration::from_millis(20))) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll: {e}"));
            }
        }
        for ev in events.iter() {
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            w.handle(ev.token().0, readable, &mut scratch);
        }
        if last_sweep.elapsed() > Duration::from_millis(250) {
            w.sweep_timeouts();
            last_sweep = Instant::now();
        }
        if last_progress.elapsed() > Duration::from_millis(100) {
            emit(&w.st.progress("progress"));
            last_progress = Instant::now();
        }
        while let Ok(cmd) = commands.try_recv() {
            match cmd.trim() {
                "report" => emit(&w.st.report()),
                "close" => {
                    let (fin, rst) = w.close_all();
                    emit(&json!({"ev": "closed", "fin": fin, "rst": rst}));
                }
                "reset" => {
                    w.reset_messages();
                    emit(&w.st.progress("reset"));
                }
                "hold" => {
                    w.watch_all(false)?;
                    held = true;
                    emit(&json!({"ev": "held"}));
                }
                "quit" => return Ok(()),
                _ => {}
            }
        }
        if Instant::now() > deadline {
            return Err("client worker lifetime exceeded".into());
        }
    }
}

/// Non-blocking connect from `src` (a distinct 127.x address per worker, with the port
/// picked at connect time) so that many runs in a row never run out of ephemeral ports.
fn open_socket(addr: SocketAddr, src: Ipv4Addr) -> io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    let one: libc::c_int = 1;
    // SAFETY: valid fd and option buffer. IP_BIND_ADDRESS_NO_PORT defers port choice to
    // connect(); failure only means the old behaviour, so the result is ignored.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    s.bind(&SocketAddr::from((src, 0)).into())?;
    match s.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    s.set_nodelay(true)?;
    Ok(TcpStream::from_std(s.into()))
}

fn emit(v: &Value) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}
