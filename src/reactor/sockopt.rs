//! Socket options, in one place: what every accepted socket gets, and what
//! a subscriber's socket gets so dead peers and stalled readers show.

use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::config::Config;

/// Unsent bytes the kernel may hold for a subscriber before writes return
/// EAGAIN. Without it the kernel grows a stalled reader's send buffer to
/// megabytes that `max-queued-bytes` never sees; with it the backlog stays
/// in our queue, where the cap counts it. Bytes sent but not yet
/// acknowledged are not "unsent" and are bounded by the congestion window.
const KERNEL_UNSENT_BYTES: libc::c_int = 16 * 1024;

/// Every accepted socket: replies and pushes are small and latency matters,
/// so no Nagle delay.
pub(super) fn on_accept(socket: &mio::net::TcpStream) {
    let _ = socket.set_nodelay(true);
}

/// A socket that became a subscriber. TCP keepalive and TCP_USER_TIMEOUT
/// bound how long a peer that vanished without FIN/RST can hold the slot,
/// even while our data sits unacknowledged in the kernel; the unsent-bytes
/// watermark keeps a stalled reader's backlog where the cap can see it.
pub(super) fn on_subscribe(socket: &mio::net::TcpStream, cfg: &Config) {
    let sock = socket2::SockRef::from(socket);
    if cfg.tcp_keepalive > 0 {
        let idle = Duration::from_secs(cfg.tcp_keepalive);
        let interval = Duration::from_secs((cfg.tcp_keepalive / 4).clamp(1, 15));
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(interval)
            .with_retries(4);
        let _ = sock.set_tcp_keepalive(&ka);
    }
    if cfg.tcp_user_timeout > 0 {
        let _ = sock.set_tcp_user_timeout(Some(Duration::from_secs(cfg.tcp_user_timeout)));
    }
    if let Err(e) = set_notsent_lowat(socket, KERNEL_UNSENT_BYTES) {
        log::debug!("TCP_NOTSENT_LOWAT: {e}");
    }
}

/// Sets TCP_NOTSENT_LOWAT (not in socket2).
fn set_notsent_lowat(socket: &mio::net::TcpStream, bytes: libc::c_int) -> std::io::Result<()> {
    // SAFETY: the descriptor belongs to a live socket borrowed for the call,
    // and the option value is a c_int on the stack whose size is passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
