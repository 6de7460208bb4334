//! idle-memory: what an idle subscriber costs the server, in user-space RSS and in kernel
//! socket memory, measured between an empty server and one holding N confirmed subscribers.

use std::thread;
use std::time::Duration;

use super::{put, subscribe_all, Ctx, Metrics};
use crate::client::pool::SubPlan;
use crate::client::Transport;
use crate::harness::{kernel_socket_slab_bytes, proc_rss_bytes, sockstat_tcp_mem_bytes};
use crate::peers::Server;
use crate::Res;

pub(super) fn run(ctx: &Ctx, transport: Transport) -> Res<Metrics> {
    let mut m = Metrics::new();
    for &n in &ctx.opts.sizes {
        let p = idle_point(ctx, transport, n)?;
        let t = transport.name();
        put(&mut m, &format!("{t}_{n}_rss_B_per_sub"), p.rss_per_sub);
        put(
            &mut m,
            &format!("{t}_{n}_tcp_buf_B_per_conn"),
            p.tcp_buf_per_conn,
        );
        put(
            &mut m,
            &format!("{t}_{n}_sock_slab_B_per_conn"),
            p.slab_per_conn,
        );
        put(
            &mut m,
            &format!("{t}_{n}_empty_rss_KiB"),
            p.empty_rss as f64 / 1024.0,
        );
    }
    Ok(m)
}

struct IdlePoint {
    rss_per_sub: f64,
    /// Kernel TCP buffer memory (sockstat), both ends of each loopback connection.
    tcp_buf_per_conn: f64,
    /// Kernel socket objects (slabinfo), both ends of each loopback connection.
    slab_per_conn: f64,
    empty_rss: u64,
}

/// Byte delta per connection of an optional kernel counter (NaN when unreadable).
fn per_conn(before: Option<u64>, after: Option<u64>, conns: f64) -> f64 {
    match (before, after) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / conns,
        _ => f64::NAN,
    }
}

fn idle_point(ctx: &Ctx, transport: Transport, n: usize) -> Res<IdlePoint> {
    let server = Server::start(ctx)?;
    let pid = server.pid()?;
    thread::sleep(Duration::from_millis(300));
    let rss0 = proc_rss_bytes(pid)?;
    let (k0, s0) = (sockstat_tcp_mem_bytes(), kernel_socket_slab_bytes());
    let plan = SubPlan {
        transport,
        total: n,
        channels: 1,
        publishers: 1,
    };
    let (mut pool, a) = subscribe_all(ctx, server.addr, &plan)?;
    thread::sleep(Duration::from_millis(500));
    let rss1 = proc_rss_bytes(pid)?;
    let (k1, s1) = (sockstat_tcp_mem_bytes(), kernel_socket_slab_bytes());
    pool.quit();
    let conns = a.connected as f64;
    Ok(IdlePoint {
        rss_per_sub: rss1.saturating_sub(rss0) as f64 / conns,
        tcp_buf_per_conn: per_conn(k0, k1, conns),
        slab_per_conn: per_conn(s0, s1, conns),
        empty_rss: rss0,
    })
}
